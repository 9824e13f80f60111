"""Settings of the AT2 surrogate and decision core; one default for every task."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Iterable

from at2_tune.core.transform import WARPS
from at2_tune.model.fit import OptimizerSettings

ONLINE_ONLY = {"online_only": True}
"""Field metadata of settings that only act after the offline fit (acquisition, recommendation,
conditioning): runs that differ only in them share one offline fit."""


@dataclass(frozen=True)
class AT2Settings:
    """Everything that shapes a tuning run besides the data and the seed.

    The defaults are the fast protocol of at2-tune; :meth:`reference` is the AT2 paper's.
    """

    n_inducing: int = 256
    target_inducing_share: float = 0.1
    """Share of inducing points placed on the target task (the paper places none there)."""
    embedding_dim: int = 2
    hidden_dim: int = 32
    feature_dim: int = 8
    batch_size: int = 1000
    offline_epochs: int = 20
    offline_optimizer: OptimizerSettings = field(
        default_factory=lambda: OptimizerSettings("adam", 0.02))
    offline_max_steps: int = 1000
    """At most this many offline optimizer steps (``offline_epochs`` passes over 26 HyperRec
    tasks would be 3,900 steps; the tasks are so alike that fewer passes fit as well)."""
    online_update: str = field(default="exact", metadata=ONLINE_ONLY)
    """How new observations enter the model: ``"exact"`` sets q(u) to its closed-form optimum
    given all data (after ``online_steps`` gradient steps, if any), ``"gradient"`` only takes
    the gradient steps (the paper)."""
    online_steps: int = field(default=0, metadata=ONLINE_ONLY)
    """Optimizer steps on the kernel hyperparameters after new observations (each batch holds
    every target observation). With 0 the hyperparameters stay those of the offline fit, the
    prior tasks' part of the exact update is cached, and a query costs ~0.06 s instead of ~1 s."""
    online_epochs: float = field(default=0.0, metadata=ONLINE_ONLY)
    """If > 0, online updates run this many passes over all data instead of ``online_steps``."""
    online_optimizer: OptimizerSettings = field(
        default_factory=lambda: OptimizerSettings("adam", 0.01))
    beta: float = field(default=0.25, metadata=ONLINE_ONLY)
    """UCB exploration weight: score = mean + beta * std."""
    acquisition: str = field(default="auto", metadata=ONLINE_ONLY)
    """How a candidate's next epoch is scored: ``"auto"`` (``"leaders"`` with prior tasks,
    ``"best_future"`` without: a round robin over the model's favourites needs a prior),
    ``"next_epoch"`` (the paper: UCB of the next
    epoch's value), ``"best_future"`` (the highest UCB over the candidate's remaining epochs,
    i.e. how good the configuration can still get), ``"expected_improvement"`` (the highest
    expected improvement over the recommendation's predicted best value, over the remaining
    epochs), ``"thompson"`` (Thompson sampling of whole curves, ``acquisition.CurveThompson``),
    ``"mf_pi"`` (ifBO's probability of improvement at a random horizon over a random threshold,
    ``acquisition.RandomHorizonPI``) or ``"leaders"`` (``acquisition.LeadersRoundRobin``).
    Measured with the calibrated std (``transfer_std="prior_spread"``; 2026-12-01,
    ``experiments.policy_replica``, equal to the engine, leave-one-task-out, rank
    @10/25/50/100): leaders HyperRec 2.9 / 3.2 / 3.1 / 2.9,
    LCBench 12.4 / 8.5 / 7.0 / 6.0; ``"best_future"`` 3.7 / 3.4 / 3.4 / 3.2 and 12.6 / 12.3 /
    11.6 / 7.9; ``"expected_improvement"`` 5.9 / 5.5 / 5.3 / 3.3 and 13.0 / 10.5 / 6.9 / 5.6;
    ``"thompson"`` 9.9 / 10.4 / 10.7 / 8.7 and 37.8 / 19.1 / 10.4 / 6.9; ``"next_epoch"``
    11.8 / 11.8 / 11.8 / 9.7 and 22.2 / 22.2 / 22.2 / 16.5; ``"mf_pi"`` (2026-12-02, with the
    copula average, whose leaders give 3.1 / 3.0 / 3.2 / 2.8 and 12.1 / 9.5 / 6.6 / 5.4) 4.4 /
    3.3 / 2.8 / 2.8 and 14.1 / 12.8 / 10.7 / 7.5."""
    residual_correction: bool = field(default=True, metadata=ONLINE_ONLY)
    """Correct each observed configuration's curve by its residuals from the GP's prediction
    (``at2_tune.core.residual``): the sparse GP alone cannot reproduce observed curves."""
    residual_kernel: str = field(default="prior_noise", metadata=ONLINE_ONLY)
    """How a residual at one epoch informs the others' (``at2_tune.core.residual``):
    ``"fixed"``: the fixed kernel (60% of a residual persists over the whole curve, the rest
    fades within a quarter of it; 5% noise at every epoch); ``"prior_noise"``: the same kernel
    with each epoch's noise share measured on the prior tasks' own residuals
    (``residual.fixed_kernel_with_prior_noise``: on LCBench the first epoch's residual is mostly
    noise, correlation 0.19 with the second's, so one first epoch no longer moves a curve);
    ``"prior"``: the whole residual covariance of the prior tasks
    (``residual.prior_residual_covariance``, each prior task playing the new task in turn).
    Measured (2026-12-01, leave-one-task-out, all 54 HyperRec and 35 LCBench cases,
    ``experiments.replay_benchmark``, equal to ``experiments.policy_replica``), rank
    @10/25/50/100 minus ``"fixed"`` (paired, ± standard error): ``"prior_noise"`` HyperRec
    -0.07 ± 0.07 / +0.15 ± 0.15 / -0.04 ± 0.04 / -0.02 ± 0.02, LCBench -0.2 ± 1.5 / -1.1 ± 1.0 /
    -1.4 ± 1.0 / -1.8 ± 0.9; ``"prior"`` HyperRec +0.57 ± 0.36 / +0.65 ± 0.26 / +0.04 ± 0.23 /
    +0.41 ± 0.23, LCBench -1.7 ± 1.5 / -1.1 ± 1.1 / -1.6 ± 1.1 / -2.0 ± 1.2. ``"prior_noise"``
    is the default: as good on HyperRec, better on LCBench. On the paper's 5 pairs per database
    (4 prior tasks, few residuals to measure the noise on) it is not better: HyperRec
    5.5 / 4.7 / 4.8 / 3.2 vs 5.5 / 4.7 / 3.3 / 3.2, LCBench 16.4 / 15.4 / 7.4 / 6.4 vs
    16.0 / 14.2 / 7.6 / 7.6."""
    residual_min_epochs: int = field(default=2, metadata=ONLINE_ONLY)
    """A configuration's curve is corrected by its residuals once this many of its epochs are
    observed (1: from its first). One epoch cannot tell a lasting offset from that epoch's
    noise (on LCBench the first epoch's value has Spearman correlation 0.03 with the final
    value, the second's 0.70), and correcting on it reorders the leaders after a single
    epoch. Measured (2026-12-02, ``experiments.policy_replica``, equal to the engine;
    leave-one-task-out plus random priors of 2-16 tasks, 702 HyperRec and 455 LCBench cases),
    rank @10/25/50/100 of 2 minus 1, paired: HyperRec +0.01 ± 0.12 / +0.07 ± 0.04 / -0.00 ±
    0.04 / +0.06 ± 0.05, LCBench -0.88 ± 0.56 / -0.89 ± 0.28 / -0.55 ± 0.23 / -0.33 ± 0.19;
    on other random draws (648 and 420 cases) HyperRec -0.00 / -0.06 / -0.07 / -0.11 (± 0.12 /
    0.06 / 0.05 / 0.04), LCBench -0.99 ± 0.50 / +0.01 ± 0.24 / -0.54 ± 0.20 / -0.40 ± 0.17. 3 is
    no better on LCBench (-0.68 / -1.02 / -0.58 / -0.41 on the random priors)."""
    transfer_mean: str = field(default="prior_quantile", metadata=ONLINE_ONLY)
    """The posterior mean curve of a candidate: the GP's (``"gp"``), its average curve over
    the prior tasks on the new task's scale (``"prior_average"``), or the average of each prior
    task's Gaussian copula scores (``"prior_quantile"``: a cell's value becomes the normal
    quantile of its rank within its task, so a task with a wide or heavy-tailed spread does not
    outweigh the others; the average is mapped back through the pooled prior values' quantiles
    and then onto the new task's scale; Salinas et al. 2020). ``residual_correction`` adds the
    new task's own evidence to either average. Where no prior task observed a configuration
    (e.g. a candidate off the grid), the prior tasks' curves there are the GP's
    (``AT2Surrogate.prior_task_means``), averaged the same way (``"prior_quantile"``: scored
    among each task's observed values, ``prior.copula_imputed_average``).
    Measured (2026-12-02, ``experiments.policy_replica``, equal to the engine; rank
    @10/25/50/100, ``"prior_quantile"`` minus ``"prior_average"``, paired, pooled over the
    leave-one-task-out cases and random priors of 2, 4, 8 and 16 tasks, 702 HyperRec and 455
    LCBench cases): HyperRec -0.37 ± 0.16 / -0.52 ± 0.15 / -0.39 ± 0.12 / -0.12 ± 0.09,
    LCBench +0.23 ± 0.58 / +0.98 ± 0.41 / +0.27 ± 0.35 / -0.29 ± 0.30 (a second set of random
    priors: HyperRec -0.37 / -0.74 / -0.41 / -0.12, LCBench +0.80 / -0.13 / -0.16 / -0.72);
    with half of the grid hidden from the prior (``experiments.held_out_configs``' cases)
    HyperRec level, LCBench 13.4 / 7.7 / 4.6 / 4.4 vs 14.0 / 8.5 / 6.3 / 6.0. The default since
    then: better on HyperRec at every budget, level on LCBench."""
    transfer_std: str = field(default="prior_spread", metadata=ONLINE_ONLY)
    """The posterior standard deviation of a grid configuration whose mean is the prior average
    (``transfer_mean`` ``"prior_average"`` or ``"prior_quantile"``; with ``"gp"`` the GP's is
    used): the GP's (``"gp"``), or the spread of the prior tasks' values around their average
    at each cell, on the new task's scale, widened by the error scale measured when each prior
    task plays the new task (``"prior_spread"``, ``at2_tune.core.spread``); the residual
    correction then narrows it for observed curves as it did the GP's. Measured
    (2026-12-01, ``experiments.surrogate_quality``, leave-one-task-out, default policy, after
    0 / 5 / 10 / 25 observations), 90% interval coverage of all configurations' best values:
    HyperRec (54 cases) 0.26 / 0.53 / 0.61 / 0.81 vs the GP's 0.16 / 0.37 / 0.43 / 0.62, mean
    log-likelihood -24.1 / -7.3 / -3.2 / -0.54 vs -57.9 / -19.0 / -8.3 / -2.1; LCBench (35)
    0.55 / 0.68 / 0.83 / 0.87 vs 0.33 / 0.49 / 0.63 / 0.71, -3.4 / -6.2 / -0.9 / -0.3 vs
    -8.7 / -14.4 / -2.9 / -1.2 (the GP's latent std with its noise added; before the first
    observation the new task's scale is unknown, so no std is calibrated there). On the paper's
    pairs (4 prior tasks) better up to 10 observations, level after 25, too wide on LCBench.
    The default policy ignores the standard deviations (the leaders rank by the mean), so its
    decisions do not change; UCB, expected improvement, Thompson sampling and ``calibrate`` do,
    and ``experiments.policy_replica`` reproduces them without the GP."""
    imputation_penalty: float = field(default=0.0, metadata=ONLINE_ONLY)
    """Where no prior task observed a configuration (``transfer_mean="prior_average"``), its
    mean curve is the GP's average of the prior tasks' curves; with ``imputation_penalty > 0``
    it is lowered by that many times the imputation's cross-validated error at each epoch
    (``AT2Engine.imputation_error``: the RMS error of the same average at observed
    configurations q(u) was refitted without), and with ``transfer_std="prior_spread"`` the
    error is added to its pooled spread. Meant against a winner's curse: the highest of many
    imputations is more often an overestimate than the highest of many averages of observed
    values. Measured (2026-12-02, ``experiments.held_out_configs``, half of the grid hidden
    from the prior, seed profile 0, ``unobserved_candidates="compete"``, AT2 rank
    @10/25/50/100 minus that with 0, paired):
    penalty 1 HyperRec (27) -0.19 ± 0.19 / +0.26 ± 0.34 / -0.22 ± 0.31 / -0.15 ± 0.15, LCBench
    (35) -0.34 ± 0.78 / +1.83 ± 1.48 / +0.57 ± 0.59 / +1.17 ± 0.63; penalty 4 HyperRec
    -1.89 ± 1.05 / +0.15 ± 0.36 / +1.07 ± 0.74 / +1.56 ± 0.97, LCBench +0.43 ± 1.14 /
    +2.00 ± 1.69 / -0.37 ± 1.13 / +0.09 ± 1.16. Not better: a hidden configuration that the GP
    overrates is displaced, but so are the good ones. The error is optimistic besides: the
    hyperparameters (the learned hyperparameter features) were fitted with the held-out
    configurations in the data, so it is several times smaller than the error at
    configurations the offline fit never saw. 0 (default): the imputation as it is, nothing
    computed."""
    unobserved_candidates: str = field(default="after_observed", metadata=ONLINE_ONLY)
    """With ``acquisition="leaders"``: candidates no prior task trained (off the grid, or grid
    configurations the prior never ran) compete for the leaders on their imputed curves
    (``"compete"``), or become contenders only once fewer than ``leaders`` candidates that a
    prior task trained are still open (``"after_observed"``). Measured (2026-12-02,
    ``experiments.held_out_configs``, half of the grid hidden from the prior, seed profile 0;
    ``at2-observed`` there is AT2 given only the observed half as candidates): HyperRec (27)
    rank @10/25/50/100 3.81 / 3.52 / 4.11 / 4.30 vs 9.07 / 6.89 / 6.00 / 3.56 for AT2 over all
    100 (paired -5.26 ± 1.56 / -3.37 ± 1.21 / -1.89 ± 1.18 / +0.74 ± 0.98) and
    -1.15 ± 0.84 / -1.15 ± 0.61 / -0.78 ± 0.75 / +0.85 ± 0.45 vs top4-weighted; LCBench (35)
    level with AT2 over all (+0.66 ± 1.19 / -0.03 ± 1.35 / -0.86 ± 1.13 / -0.14 ± 1.16);
    ``"after_observed"`` reproduces ``at2-observed`` in all 62 cases. The default: the GP's
    imputations are not reliable enough to displace what the prior trained (a winner's curse,
    see ``imputation_penalty``). Fully observed priors decide as before (every grid
    configuration was trained); candidates sampled off the grid (``AT2Searcher`` with a
    database folder) are then trained only once fewer than ``leaders`` grid ones are open."""
    transfer_weights: str = field(default="uniform", metadata=ONLINE_ONLY)
    """How ``transfer_mean="prior_average"`` weighs the prior tasks: equally (``"uniform"``),
    or by their similarity to the new task on the cells both observed (``"similar"``:
    ``softmax(-s_j d_j / (similarity_temperature * mean d))`` with ``d_j`` the task kernel's
    centred distance and ``s_j = n_j / (n_j + similarity_cells)`` shrinking it towards equal
    weights while few cells ``n_j`` are matched). Measured worse than ``"uniform"`` (2026-12-01,
    leave-one-task-out on 9 HyperRec tasks x 2 seed profiles and 9 LCBench tasks, rank @100:
    HyperRec 2.1 vs 1.8, LCBench 19.4 vs 14.7; with temperature 1 and 50 cells 1.8 and 20.1):
    the weights follow the few configurations trained so far and pull the leaders away."""
    similarity_temperature: float = field(default=0.5, metadata=ONLINE_ONLY)
    similarity_cells: float = field(default=10.0, metadata=ONLINE_ONLY)
    leaders: int = field(default=4, metadata=ONLINE_ONLY)
    """With ``acquisition="leaders"``: how many of the model's most promising configurations
    are trained in turn (``acquisition.LeadersRoundRobin``)."""
    leaders_decay: float = field(default=0.5, metadata=ONLINE_ONLY)
    """With ``acquisition="leaders"``: the leader in place ``i`` (0 = most promising) gets a
    share of the epochs proportional to ``(i + 1) ** -leaders_decay`` (0: equal shares)."""
    recommend_from: str = field(default="best_observed", metadata=ONLINE_ONLY)
    """``"all"`` candidates, or only those ``"observed"`` on the target task (all before the
    first observation)."""
    standardize_prior: bool = True
    """Give every prior task the same mean and spread before fitting (see
    ``PriorData.standardized``); the paper fits raw values."""
    calibrate: bool = field(default=False, metadata=ONLINE_ONLY)
    """Scale predictive standard deviations by the RMS standardized error of the model's own
    earlier predictions of the new task's observations (``AT2Engine.calibration``). It makes
    the acquisition explore more; on HyperRec pair 2 it recommended worse (rank 11 and 48 vs
    8 and 2 at 100 queries), so it is off by default."""
    output_warp: str = "auto"
    """``"log_error"``: model ``-log(1 + 1e-3 - v)`` of values ``v`` in [0, 1] (accuracies), which
    stretches the differences among the best configurations (``at2_tune.core.transform``);
    ``"standardize"``: no warp, the new task's values standardized (a loss, a reward, any
    scale); ``"none"``: no warp (the paper); ``"auto"``: ``"log_error"`` when every prior value
    lies in [0, 1] (HyperRec, LCBench), else ``"standardize"``. ``AT2Searcher`` resolves
    ``"auto"`` from the metric and mode as well (``mode="min"`` is never ``"log_error"``)."""
    scale_target: bool = field(default=True, metadata=ONLINE_ONLY)
    """Fit the new task on the prior tasks' scale through an affine map estimated from matched
    cells (``at2_tune.core.target_scale``); the paper fits raw values."""
    unmatched_distance: str | float = "mean"
    """Task distance when fewer than 2 cells are matched (the new task at first; two prior tasks
    of a partially observed prior that share at most one cell): a number, or ``"mean"`` for the
    mean distance between the prior tasks that do share cells (the paper uses 0.5)."""

    @property
    def online_gradient(self) -> bool:
        """Whether conditioning takes gradient steps (then the hyperparameters move online)."""
        return self.online_steps > 0 or self.online_epochs > 0

    @classmethod
    def reference(cls) -> "AT2Settings":
        """The AT2 paper's protocol: 1000 inducing points, 200 offline epochs of SGD
        (lr 0.02, momentum 0.8, 1% warm-up then linear decay), 3 epochs after each query."""
        sgd = OptimizerSettings("sgd", 0.02, momentum=0.8, schedule="warmup_linear",
                                warmup_fraction=0.01)
        return cls(n_inducing=1000, target_inducing_share=0.0, offline_epochs=200,
                   offline_max_steps=10**9, offline_optimizer=sgd, online_epochs=3.0,
                   online_optimizer=dataclasses.replace(sgd, schedule="constant"),
                   unmatched_distance=0.5, standardize_prior=False, acquisition="next_epoch",
                   online_update="gradient", scale_target=False, output_warp="none",
                   residual_correction=False, transfer_mean="gp", transfer_std="gp",
                   recommend_from="all")

    def __post_init__(self) -> None:
        choices = {"acquisition": ("auto", "next_epoch", "best_future", "expected_improvement",
                                   "leaders", "thompson", "mf_pi"),
                   "recommend_from": ("all", "observed", "best_observed"),
                   "output_warp": WARPS,
                   "online_update": ("exact", "gradient"),
                   "transfer_mean": ("gp", "prior_average", "prior_quantile"),
                   "transfer_weights": ("uniform", "similar"),
                   "transfer_std": ("gp", "prior_spread"),
                   "unobserved_candidates": ("compete", "after_observed"),
                   "residual_kernel": ("fixed", "prior", "prior_noise")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"AT2Settings.{name}={getattr(self, name)!r} is not one of "
                                 f"{', '.join(map(repr, allowed))}")
        if not isinstance(self.residual_min_epochs, int) or self.residual_min_epochs < 1:
            raise ValueError(f"AT2Settings.residual_min_epochs={self.residual_min_epochs!r} must "
                             "be an integer >= 1 (1: correct a curve from its first epoch)")

    def offline_json(self) -> dict[str, Any]:
        """The fields an offline fit depends on: all but those marked ``ONLINE_ONLY``."""
        online_only = {f.name for f in dataclasses.fields(self) if f.metadata.get("online_only")}
        return {k: v for k, v in self.to_json().items() if k not in online_only}

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def with_assignments(self, assignments: Iterable[str]) -> "AT2Settings":
        """A copy with each ``FIELD=JSON`` assignment applied in order (the experiments' ``--set``
        option), e.g. ``["leaders=3", 'residual_kernel="fixed"', 'online_optimizer={"lr": 0.1}']``
        (an optimizer's JSON object changes only the keys it names).

        Raises ``ValueError`` naming the assignment for a missing ``=``, an unknown field, a value
        that is not JSON or not of the field's type, and whatever ``AT2Settings`` refuses.
        """
        values = self.to_json()
        for assignment in assignments:
            name, sep, text = assignment.partition("=")
            name = name.strip()
            if not sep or name not in values:
                known = ", ".join(sorted(values))
                raise ValueError(f"setting {assignment!r}: expected FIELD=JSON with FIELD one of "
                                 f"{known}; e.g. leaders=3 or 'residual_kernel=\"fixed\"'")
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"setting {assignment!r}: the value {text!r} is not JSON ({exc});"
                                 " quote strings, e.g. 'acquisition=\"thompson\"'") from None
            values[name] = _checked_value(name, value, values[name], assignment)
        return type(self).from_json(values)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "AT2Settings":
        data = dict(data)
        for key in ("offline_optimizer", "online_optimizer"):
            data[key] = OptimizerSettings(**data[key])
        return cls(**data)


_JSON_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,),
               "str | float": (str, int, float)}


def _checked_value(name: str, value: Any, current: Any, assignment: str) -> Any:
    """``value`` for field ``name`` (whose current JSON value is ``current``), type-checked; an
    optimizer's object is merged into ``current``."""
    kind = next(f.type for f in dataclasses.fields(AT2Settings) if f.name == name)
    if kind == "OptimizerSettings":
        if not isinstance(value, dict) or set(value) - set(current):
            keys = ", ".join(current)
            raise ValueError(f"setting {assignment!r}: {name} takes a JSON object with keys among "
                             f"{keys}, e.g. '{name}={{\"lr\": 0.01}}'")
        return {**current, **value}
    allowed = _JSON_TYPES[kind]
    is_bool = isinstance(value, bool)
    if not isinstance(value, allowed) or (is_bool and bool not in allowed):
        raise ValueError(f"setting {assignment!r}: {name} takes a JSON {kind}, got "
                         f"{type(value).__name__} {value!r}")
    return float(value) if kind == "float" else value
