"""The AT2 decision core: observations -> surrogate -> acquisition -> decision.

One engine tunes one target task. It knows a finite, growable list of candidate configurations;
a query trains one candidate for one more epoch (freeze-thaw). No Ray imports here: the Ray Tune
searcher and scheduler wrap this class.

Conditioning is an explicit step: :meth:`AT2Engine.observe` records values,
:meth:`AT2Engine.condition` updates the model with every value recorded so far (once per batch of
observations), and the queries (:meth:`~AT2Engine.posterior`, :meth:`~AT2Engine.score`,
:meth:`~AT2Engine.ranked_queries`, :meth:`~AT2Engine.recommend`) read the conditioned model
without changing it; they refuse to answer from a model that has not seen every observation.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from at2_tune.core import acquisition as acq
from at2_tune.core import residual
from at2_tune.core.acquisition import CurvePosterior
from at2_tune.core.observations import ObservationStore
from at2_tune.core.prior import (PriorData, copula_average, copula_imputed_average,
                                 mean_over_tasks)
from at2_tune.core.settings import AT2Settings
from at2_tune.core.spread import pooled_spread, spread_error_scale, spread_over_tasks
from at2_tune.core.surrogate import DTYPE, AT2Surrogate, encode_configs
from at2_tune.errors import AT2Error
from search_spaces import config_key

STATE_VERSION = 3
IMPUTATION_FOLDS = 5
"""Folds of the observed grid configurations in ``AT2Engine.imputation_error``."""
IMPUTATION_SEED = 7411
"""Mixed with the engine's seed to draw those folds (the same folds for the same seed)."""


_IDENTITY_WORDS = {"space": "the search space", "prior": "the prior tasks' data",
                   "candidates": "the candidate configurations",
                   "offline_settings": "the offline settings (AT2Settings fields other than "
                                       "the online ones)", "seed": "the seed",
                   "format": "the state format"}
"""What each field of ``AT2Engine.identity()`` is, in an identity-mismatch error."""


@dataclass(frozen=True)
class Query:
    """Train ``candidate`` for epoch ``epoch`` (1-based); ``score`` is its acquisition value."""

    candidate: int
    epoch: int
    score: float


class AT2Engine:
    """Freeze-thaw AT2 over a list of candidate configurations of one target task.

    Args:
        space: the search space (``search_spaces.SearchSpace``) candidates belong to.
        prior: curves of prior tasks (``PriorData.empty`` for plain multi-fidelity BO).
        settings: model and protocol settings.
        seed: seeds every random choice (initial weights, inducing points, minibatches);
            ties between equal scores go to the lower candidate index.
        candidates: initial candidates (default: the prior grid's configurations).
    """

    def __init__(self, space, prior: PriorData, settings: AT2Settings | None = None,
                 seed: int = 0, candidates: Sequence[dict[str, Any]] | None = None) -> None:
        self.space = space
        self.settings = settings or AT2Settings()
        self.raw_prior = prior
        self.seed = seed
        self.n_epochs = prior.n_epochs
        self.torch_generator = torch.Generator().manual_seed(seed)
        self.observations = ObservationStore(self.n_epochs)
        self.failed: set[int] = set()
        self._grid_index = {config_key(c): i for i, c in enumerate(prior.configs)}
        self.candidates: list[dict[str, Any]] = []
        self._candidate_cell: list[int | None] = []
        self._encoded = torch.zeros(0, space.n_numeric + space.n_categorical, dtype=DTYPE)
        self.add_candidates(prior.configs if candidates is None else candidates)
        self._identity = self._compute_identity()
        self.surrogate = AT2Surrogate(space, prior, self.settings, self.torch_generator, self._encoded)
        self._stale = True
        self._posterior: CurvePosterior | None = None
        self._surprises: list[float] = []
        self._decides_alone: tuple[int, bool] | None = None  # (candidates, answer)

    # ---------------------------------------------------------------- identity
    def _compute_identity(self) -> dict[str, Any]:
        return {"format": STATE_VERSION, "space": _digest(_space_json(self.space)),
                "prior": self.raw_prior.fingerprint(), "candidates": _digest(self.candidates),
                "offline_settings": _digest(self.settings.offline_json()), "seed": self.seed}

    def identity(self) -> dict[str, Any]:
        """What this tuning state belongs to: digests of the space's JSON, the prior tasks'
        data, the initial candidates and the offline settings, the seed and the state format.
        Equal identities share an offline fit; a saved state loads only into an equal one."""
        return dict(self._identity)

    def identity_key(self) -> str:
        """A short hash of :meth:`identity` (the name of the offline fit in a ``FitCache``)."""
        return _digest(self._identity)[:24]

    def check_identity(self, saved: dict[str, Any], what: str = "the saved state") -> None:
        """Raise a clear error naming what differs when ``saved`` is not this engine's identity."""
        mine = self.identity()
        differ = sorted(k for k in mine.keys() | saved.keys() if mine.get(k) != saved.get(k))
        if differ:
            details = "; ".join(_IDENTITY_WORDS.get(k, k) if k not in ("seed", "format")
                                else f"{_IDENTITY_WORDS[k]} (saved {saved.get(k)!r}, here "
                                     f"{mine.get(k)!r})" for k in differ)
            raise AT2Error(f"{what} belongs to a different tuning run; these differ: {details}."
                           " Build the engine with the space, prior, candidates, offline "
                           "settings and seed it was saved with, or start a new run")

    @property
    def prior(self) -> PriorData:
        """The prior tasks as the model sees them (standardized by default)."""
        return self.surrogate.prior

    # ---------------------------------------------------------------- candidates
    def add_candidates(self, configs: Sequence[dict[str, Any]]) -> list[int]:
        """Append configurations (validated by the space); returns their candidate indices.

        Raises:
            AT2Error: a configuration repeats (in ``configs`` or among the candidates): its
                observations would be one grid cell observed twice.
        """
        configs = [self.space.validate(c) for c in configs]
        if not configs:
            return []
        keys = [config_key(c) for c in self.candidates + configs]
        if len(set(keys)) != len(keys):
            repeated = next(c for c, k in zip(self.candidates + configs, keys)
                            if keys.count(k) > 1)
            raise AT2Error(f"candidate configuration {repeated} is given more than once; pass "
                           "each candidate once (search_spaces.keys.distinct drops repeats)")
        start = len(self.candidates)
        self.candidates.extend(configs)
        self._candidate_cell.extend(self._grid_index.get(config_key(c)) for c in configs)
        self._encoded = torch.cat([self._encoded, encode_configs(self.space, configs)])
        self._posterior = None
        self._stale = True
        return list(range(start, len(self.candidates)))

    @property
    def n_candidates(self) -> int:
        return len(self.candidates)

    # ---------------------------------------------------------------- observations
    def observe(self, candidate: int, epoch: int, value: float) -> None:
        """Record the target task's ``value`` of ``candidate`` after ``epoch`` epochs; the model
        sees it at the next :meth:`condition`.

        Raises:
            AT2Error: unknown candidate, epoch outside 1..n_epochs, NaN/inf or non-numeric
                value, or a repeated (candidate, epoch).
        """
        observation = self.observations.check(candidate, epoch, value, self.n_candidates)
        warped = float(self.surrogate.transform.warp(observation.value))  # checks the range too
        if self._posterior is not None and not self._stale:
            mean = self._posterior.mean[candidate, epoch - 1]
            std = self._posterior.std[candidate, epoch - 1]
            self._surprises.append(float((warped - mean) / max(std, 1e-12)))
        self.observations.append(observation)
        cell = self._candidate_cell[candidate]
        if cell is not None:
            self.surrogate.observe_cells([cell * self.n_epochs + epoch - 1], [warped])
        self._stale = True

    def mark_failed(self, candidate: int) -> None:
        """Never propose ``candidate`` again (its training crashed or diverged)."""
        if not 0 <= candidate < self.n_candidates:
            raise AT2Error(f"candidate {candidate} does not exist; candidates are 0..{self.n_candidates - 1}")
        self.failed.add(candidate)

    def next_epoch(self, candidate: int) -> int:
        return self.observations.next_epoch(candidate)

    # ---------------------------------------------------------------- state changes
    def fit_offline(self) -> None:
        """Fit the model on the prior tasks (once; no-op without prior tasks)."""
        self.surrogate.fit_offline()

    def condition(self) -> None:
        """Update the model with every observation recorded so far (fits offline first if that
        was not done); a no-op when nothing changed since the last call."""
        if not self._stale:
            return
        candidates, epochs, values, cells = self._observation_arrays()
        if self.prior_decides_alone():
            self.surrogate.fit_transform(epochs, values, cells)  # the new task's scale only
        else:
            self.surrogate.condition(self._encoded[candidates], epochs, values, cells)
        self._posterior = self._corrected_posterior(candidates, epochs, values)
        self._stale = False

    def _corrected_posterior(self, candidates, epochs, values) -> CurvePosterior:
        """The surrogate's posterior, observed curves corrected by their residuals
        (``settings.residual_correction``; ``at2_tune.core.residual``)."""
        if self.prior_decides_alone():
            posterior = self._with_prior_average_mean(self._no_gp_posterior())
        else:
            posterior = self.surrogate.curve_posterior(self._encoded)
            if self.settings.transfer_mean in ("prior_average", "prior_quantile"):
                posterior = self._with_prior_average_mean(posterior)
        if not self.settings.residual_correction:
            return posterior
        return residual.correct_observed(posterior, np.asarray(candidates, dtype=np.int64),
                                         epochs.numpy().astype(np.int64),
                                         self.surrogate.transform.warp(values),
                                         self.residual_kernel, self.settings.residual_min_epochs)

    def _no_gp_posterior(self) -> CurvePosterior:
        """A posterior of no information (mean 0, std NaN), for :meth:`_with_prior_average_mean`
        to replace wholly."""
        shape = (self.n_candidates, self.n_epochs)
        return CurvePosterior(np.zeros(shape), np.full(shape, np.nan))

    def prior_decides_alone(self) -> bool:
        """Whether the GP's posterior of the new task takes no part in any decision, so that
        conditioning skips its exact update and its curve posterior (66 of the 70 ms a
        HyperRec result cost) and ``prepare_engine`` skips the offline fit: every candidate is
        a grid configuration that prior tasks observed at every epoch, the mean is the prior tasks' (copula) average with equal
        weights and the std their spread (``transfer_std="prior_spread"``, at least 2 prior
        tasks), and nothing moves the GP online. Decisions are the same either way; the GP is
        conditioned (from all observations, as always) once a candidate needs it."""
        if self._decides_alone is None or self._decides_alone[0] != self.n_candidates:
            self._decides_alone = (self.n_candidates, self._check_decides_alone())
        return self._decides_alone[1]

    def _check_decides_alone(self) -> bool:
        s = self.settings
        if s.transfer_mean not in ("prior_average", "prior_quantile") or \
                s.transfer_std != "prior_spread" or s.transfer_weights != "uniform" or \
                s.online_gradient or self.prior.n_tasks < 2 or not self.n_candidates or \
                any(cell is None for cell in self._candidate_cell):
            return False
        _, count = self._uniform_grid_average
        if (count[np.array(self._candidate_cell, dtype=np.int64)] == 0).any():
            return False  # an unobserved cell: its imputation is the GP's
        posterior = self._with_prior_average_mean(self._no_gp_posterior())
        return bool(np.isfinite(posterior.mean).all() and np.isfinite(posterior.std).all())

    @functools.cached_property
    def residual_kernel(self) -> residual.ResidualKernel | None:
        """The residual kernel of ``settings.residual_kernel`` (``residual.residual_kernel``;
        ``None``: the fixed one); it depends on the prior alone, so it is computed once."""
        return residual.residual_kernel(self.settings.residual_kernel, self.prior.curves,
                                        self.prior.observed)

    def _with_prior_average_mean(self, posterior: CurvePosterior) -> CurvePosterior:
        """``posterior`` with every candidate's mean curve replaced by its average curve over
        the prior tasks (on the model's scale, mapped onto the new task's).

        Each (config, epoch) averages the prior tasks that observed it. Where none did (a grid
        configuration the prior never ran, or a candidate off the grid), the prior tasks'
        values there are the GP's (``AT2Surrogate.prior_task_means``), averaged the same way
        (with ``"prior_quantile"`` each is scored among its task's observed values,
        ``prior.copula_imputed_average``):
        the new task's own GP posterior sits on another level before it has observations (on
        LCBench its best predicted values were about twice the prior average's), so mixing it
        with the prior average ranked every such candidate above every grid configuration.
        With ``transfer_std="prior_spread"`` the std is the cell's spread over the prior tasks,
        or its epoch's pooled spread where fewer than 2 tasks observed it, widened by the
        error scale; with a single prior task (no spread to measure) it stays the GP's."""
        if not self.prior.n_tasks:
            return posterior
        n_candidates, n_epochs = posterior.mean.shape
        weights = self.task_weights()
        average = np.full((n_candidates, n_epochs), np.nan)
        grid = [(row, cell) for row, cell in enumerate(self._candidate_cell) if cell is not None]
        rows, cells = (np.array(column, dtype=np.int64) for column in zip(*grid)) if grid \
            else (np.zeros(0, np.int64), np.zeros(0, np.int64))
        quantile = self.settings.transfer_mean == "prior_quantile"
        if grid:
            grid_average, count = self._uniform_grid_average if weights is None else \
                self._grid_average(weights)
            average[rows] = np.where(count[cells] > 0, grid_average[cells], np.nan)
        unobserved = np.isnan(average)
        penalty = self.settings.imputation_penalty
        error = self.imputation_error if penalty and unobserved.any() else None
        if unobserved.any():
            per_task = self.surrogate.prior_task_means(self._encoded)  # (T, n, E)
            if quantile:
                imputed = copula_imputed_average(per_task, self.prior.curves,
                                                 self.prior.observed, weights)
            else:
                imputed, _ = mean_over_tasks(per_task, np.ones(per_task.shape, dtype=bool),
                                             weights)
            if error is not None:
                imputed = imputed - penalty * error
            average = np.where(unobserved, imputed, average)
        transform = self.surrogate.transform
        std = posterior.std
        if self.settings.transfer_std == "prior_spread":
            deviation, error_scale, pooled = self.prior_spread
            spread = np.broadcast_to(np.where(pooled > 0, pooled, np.nan),
                                     (n_candidates, n_epochs)).copy()
            if error is not None:
                spread = np.where(unobserved, np.hypot(spread, error), spread)
            spread[rows] = np.where(np.isnan(deviation[cells]), spread[rows], deviation[cells])
            widened = np.abs(transform.std_from_model(error_scale * spread))
            std = np.where(np.isnan(widened), std, widened)  # 1 prior task: the GP's
        return CurvePosterior(transform.mean_from_model(average), std)

    def _grid_average(self, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """``(C, E)`` the prior tasks' (copula) average of every grid cell and how many
        observed it (``settings.transfer_mean``)."""
        combine = copula_average if self.settings.transfer_mean == "prior_quantile" \
            else mean_over_tasks
        return combine(self.prior.curves, self.prior.observed, weights)

    @functools.cached_property
    def _uniform_grid_average(self) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_grid_average` with equal task weights: it depends on the prior alone, so
        it is computed once (the copula ranks every task's cells)."""
        return self._grid_average(None)

    @functools.cached_property
    def prior_trained(self) -> np.ndarray:
        """``(C,)`` bool: the grid configurations some prior task observed at some epoch."""
        return self.prior.observed.any(axis=(0, 2))

    @functools.cached_property
    def imputation_error(self) -> np.ndarray:
        """``(E,)`` RMS error, on the model's scale, of the GP's average of the prior tasks'
        curves at configurations no prior task observed, measured by cross-validation.

        The observed grid configurations are split into ``IMPUTATION_FOLDS`` seeded folds; for
        each, the GP's q(u) is refitted without the fold's cells
        (``AT2Surrogate.held_out_prior_means``, hyperparameters as fitted) and its average over
        the prior tasks is compared with the average of their observed values there. Zero
        with fewer than 2 observed configurations (nothing to hold out). Depends on the prior
        and the offline fit alone, so it is computed once, when first needed."""
        configs = np.flatnonzero(self.prior_trained)
        if configs.size < 2:
            return np.zeros(self.n_epochs)
        rng = np.random.default_rng([self.seed, IMPUTATION_SEED])
        folds = np.array_split(rng.permutation(configs), min(IMPUTATION_FOLDS, configs.size))
        squared, cells = np.zeros(self.n_epochs), np.zeros(self.n_epochs)
        for fold in folds:
            per_task = self.surrogate.held_out_prior_means(fold)  # (T, f, E)
            imputed = per_task.mean(axis=0)
            truth, seen = mean_over_tasks(self.prior.curves[:, fold], self.prior.observed[:, fold])
            error = np.where(seen > 0, imputed - np.nan_to_num(truth), 0.0)
            squared += (error ** 2).sum(axis=0)
            cells += (seen > 0).sum(axis=0)
        return np.sqrt(np.divide(squared, cells, out=np.zeros_like(squared), where=cells > 0))

    @functools.cached_property
    def prior_spread(self) -> tuple[np.ndarray, float, np.ndarray]:
        """``(C, E)`` spread of the prior tasks around their average on the model's scale (NaN
        where fewer than 2 observed a cell), the error scale that widens it and the ``(E,)``
        pooled spread of each epoch (``at2_tune.core.spread``); they depend on the prior alone,
        so they are computed once."""
        return (spread_over_tasks(self.prior.curves, self.prior.observed),
                spread_error_scale(self.prior.curves, self.prior.observed),
                pooled_spread(self.prior.curves, self.prior.observed))

    def task_weights(self) -> np.ndarray | None:
        """``(T,)`` weights of the prior tasks in the prior-average mean (``None``: equal; see
        ``AT2Settings.transfer_weights``)."""
        s = self.settings
        if s.transfer_weights == "uniform" or not self.prior.n_tasks:
            return None
        statistics, n_tasks = self.surrogate.statistics, self.prior.n_tasks
        matched = statistics.counts[n_tasks, :n_tasks].numpy()
        if matched.max() <= 1:
            return None  # nothing measured yet
        distance = statistics.distances()[n_tasks, :n_tasks].numpy()
        scale = max(float(distance[matched > 1].mean()), 1e-12)
        shrink = np.where(matched > 1, matched / (matched + s.similarity_cells), 0.0)
        logits = -shrink * distance / (s.similarity_temperature * scale)
        weights = np.exp(logits - logits.max())
        return weights / weights.sum()

    def _observation_arrays(self) -> tuple[list[int], torch.Tensor, np.ndarray, list[int | None]]:
        """Observed candidates, epochs ``(n,)``, values ``(n,)`` and grid configurations."""
        rows = self.observations.to_json()
        candidates = [int(r[0]) for r in rows]
        return (candidates, torch.tensor([r[1] for r in rows], dtype=DTYPE),
                np.array([r[2] for r in rows], dtype=float),
                [self._candidate_cell[c] for c in candidates])

    # ---------------------------------------------------------------- queries (pure)
    def posterior(self) -> CurvePosterior:
        """Posterior of every candidate's whole curve, ``(n_candidates, n_epochs)`` mean and std
        (stds scaled by :meth:`calibration`)."""
        if self._stale or self._posterior is None:
            raise AT2Error("the model has not seen every observation: call engine.condition() "
                           "after observe() and before asking for scores or recommendations")
        factor = self.calibration()
        return CurvePosterior(self._posterior.mean, self._posterior.std * factor)

    def curve_posterior(self) -> tuple[np.ndarray, np.ndarray]:
        posterior = self.posterior()
        return posterior.mean, posterior.std

    def predict(self, candidates: Sequence[int], epochs: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the latent curve at each pair: ``(k,)`` each."""
        posterior = self.posterior()
        rows, columns = np.asarray(candidates), np.asarray(epochs) - 1
        return posterior.mean[rows, columns], posterior.std[rows, columns]

    def acquisition(self) -> acq.Acquisition:
        """The acquisition function of ``settings.acquisition`` for the current posterior."""
        s = self.settings
        name = s.acquisition
        if name == "auto":
            name = "leaders" if self.prior.n_tasks else "best_future"
        if name == "next_epoch":
            return acq.NextEpochUCB(s.beta)
        if name == "best_future":
            return acq.BestFutureUCB(s.beta)
        if name == "thompson":
            # one draw per candidate and decision, from (seed, observations so far): the same
            # decision after a restore, and no RNG state that queries would advance
            rng = np.random.default_rng([self.seed, len(self.observations)])
            return acq.CurveThompson(rng.standard_normal(self.n_candidates))
        contenders = tuple(c for c in range(self.n_candidates) if c not in self.failed)
        if name == "leaders":
            if s.unobserved_candidates == "after_observed":
                contenders = self._prior_observed_first(contenders)
            trained = np.array([self.next_epoch(c) - 1 for c in range(self.n_candidates)])
            return acq.LeadersRoundRobin(contenders, trained, s.leaders, s.leaders_decay)
        incumbent = float(self.posterior().mean[self._recommendable()].max())
        if name == "mf_pi":  # drawn from (seed, observations so far), as Thompson's draws
            rng = np.random.default_rng([self.seed, len(self.observations)])
            return acq.RandomHorizonPI.draw(rng, self.posterior(), incumbent,
                                            bounded=self.surrogate.transform.warp_name == "log_error")
        return acq.BestFutureEI(incumbent)

    def _prior_observed_first(self, contenders: tuple[int, ...]) -> tuple[int, ...]:
        """The contenders some prior task trained (``unobserved_candidates="after_observed"``),
        or all of them when fewer than ``settings.leaders`` of those are still open."""
        if not self.prior.n_tasks:
            return contenders
        observed = tuple(c for c in contenders if self._candidate_cell[c] is not None
                         and self.prior_trained[self._candidate_cell[c]])
        open_ = set(self.open_candidates())
        return observed if sum(c in open_ for c in observed) >= self.settings.leaders \
            else contenders

    def score(self, candidates: Sequence[int], epochs: Sequence[int]) -> np.ndarray:
        """Acquisition value of training each candidate for its given next epoch: ``(k,)``."""
        return self.acquisition()(self.posterior(), np.asarray(candidates, dtype=np.int64),
                                  np.asarray(epochs, dtype=np.int64))

    def calibration(self) -> float:
        """Factor on the model's standard deviations: the root mean square of the standardized
        errors of its predictions of the values observed since (at least 1; 1 without
        ``settings.calibrate``)."""
        if not self.settings.calibrate or not self._surprises:
            return 1.0
        return max(1.0, float(np.sqrt(np.mean(np.square(self._surprises)))))

    def open_candidates(self) -> list[int]:
        """Candidates that have epochs left and did not fail."""
        return [c for c in range(self.n_candidates)
                if c not in self.failed and self.next_epoch(c) <= self.n_epochs]

    def next_query(self) -> Query | None:
        """The (candidate, next epoch) with the highest acquisition value; ``None`` when nothing is left."""
        ranked = self.ranked_queries(limit=1)
        return ranked[0] if ranked else None

    def ranked_queries(self, candidates: Sequence[int] | None = None,
                       limit: int | None = None) -> list[Query]:
        """Open candidates' next epochs ranked by acquisition value, best first (ties: lower index first).

        Args:
            candidates: restrict to these (default: every open candidate).
            limit: return at most this many.
        """
        open_ = set(self.open_candidates())
        chosen = [c for c in (range(self.n_candidates) if candidates is None else candidates)
                  if c in open_]
        if not chosen:
            return []
        epochs = [self.next_epoch(c) for c in chosen]
        scores = self.score(chosen, epochs)
        order = np.argsort(-scores, kind="stable")[:limit]
        return [Query(chosen[i], epochs[i], float(scores[i])) for i in order]

    def recommend(self) -> int:
        """The candidate whose best predicted value over all epochs is highest (with
        ``recommend_from="best_observed"``: the best value observed so far, ties to the earliest;
        failed candidates are never recommended)."""
        if self.settings.recommend_from == "best_observed":
            usable = [(i, o) for i, o in enumerate(self.observations)
                      if o.candidate not in self.failed]
            if usable:
                _, best = max(usable, key=lambda pair: (pair[1].value, -pair[0]))  # ties: earliest
                return best.candidate
        candidates = self._recommendable()
        best_over_epochs = self.posterior().mean[candidates].max(axis=1)
        return int(candidates[int(np.argmax(best_over_epochs))])

    def _recommendable(self) -> list[int]:
        candidates = [c for c in range(self.n_candidates) if c not in self.failed]
        if self.settings.recommend_from in ("observed", "best_observed"):
            observed = {o.candidate for o in self.observations}
            candidates = [c for c in candidates if c in observed] or candidates
        if not candidates:
            raise AT2Error("every candidate failed; there is nothing to recommend")
        return candidates

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: tensors and JSON-able values, no pickled code."""
        return {"version": STATE_VERSION, "identity": self.identity(),
                "settings": self.settings.to_json(), "seed": self.seed,
                "candidates": list(self.candidates),
                "observations": self.observations.to_json(), "failed": sorted(self.failed),
                "surrogate": self.surrogate.state_dict(), "stale": self._stale,
                "torch_rng": self.torch_generator.get_state(), "surprises": list(self._surprises)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` into an engine built with the same space and prior."""
        state = copy.deepcopy(state)  # optimizers keep loaded tensors: never share them with the caller
        if state.get("version") != STATE_VERSION:
            raise AT2Error(f"engine state version {state.get('version')!r} is not supported "
                           f"(this at2-tune writes version {STATE_VERSION})")
        self.check_identity(state["identity"])
        if AT2Settings.from_json(state["settings"]) != self.settings:
            raise AT2Error("the saved engine state was made with different settings; build the "
                           "engine with the settings stored in the state")
        known = len(self.candidates)
        self.add_candidates(state["candidates"][known:])
        self.observations = ObservationStore.from_json(state["observations"], self.n_epochs)
        self.failed = set(state["failed"])
        self.surrogate.load_state_dict(state["surrogate"])
        self.torch_generator.set_state(state["torch_rng"])
        self._surprises = [float(z) for z in state.get("surprises", [])]
        self._posterior = None
        self._stale = bool(state["stale"])
        if not self._stale:  # the saved model is conditioned already: only the queries' caches
            candidates, epochs, values, cells = self._observation_arrays()
            self.surrogate.fit_transform(epochs, values, cells)
            self._posterior = self._corrected_posterior(candidates, epochs, values)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=repr).encode()).hexdigest()


def _space_json(space) -> Any:
    try:
        return space.to_json()
    except ValueError:  # a constant JSON cannot hold exactly: its repr still tells spaces apart
        return {"name": space.name, "repr": repr(space)}
