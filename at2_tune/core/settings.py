"""Settings of a tuning run, in two groups: the model's (offline) and the policy's (online).

``ModelSettings`` shape the multi-task GP, its offline fit on the prior tasks, its online update
and the output transform; an offline fit depends on them alone, so runs that differ only in
``PolicySettings`` share one fit. ``PolicySettings`` name the policy that decides
(``at2_tune.core.policies``) and its few knobs. One default for every task; the measurements
behind each default are in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Iterable

from at2_tune.core.transform import WARPS
from at2_tune.model.fit import OptimizerSettings

POLICY_NAMES = ("auto", "planned", "leaders", "paper", "no_prior")
"""``PolicySettings.name`` values; ``"auto"`` is ``"planned"`` with prior tasks, else
``"no_prior"`` (``at2_tune.core.policy_registry.POLICIES``)."""
OBJECTIVES = ("model", "configuration")
"""``PolicySettings.objective`` values (``at2_tune.core.planner``)."""


@dataclass(frozen=True)
class ModelSettings:
    """The multi-task GP (size, offline fit, online update) and the output transform."""

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
    """At most this many offline optimizer steps, whatever ``offline_epochs`` asks."""
    online_update: str = "exact"
    """``"exact"``: q(u) set to its closed-form optimum given all data after each batch of
    observations; ``"gradient"``: only ``online_steps``/``online_epochs`` gradient steps (the
    paper)."""
    online_steps: int = 0
    """Gradient steps on the kernel hyperparameters after new observations (0: they stay the
    offline fit's, and the prior tasks' part of the exact update is cached)."""
    online_epochs: float = 0.0
    """If > 0, online updates run this many passes over all data instead of ``online_steps``."""
    online_optimizer: OptimizerSettings = field(
        default_factory=lambda: OptimizerSettings("adam", 0.01))
    standardize_prior: bool = True
    """Give every prior task the same mean and spread before fitting (the paper fits raw values)."""
    output_warp: str = "auto"
    """``"log_error"`` (accuracies in [0, 1]), ``"standardize"`` (any scale), ``"none"`` (the
    paper) or ``"auto"`` (``at2_tune.core.transform.resolve_output_warp``)."""
    scale_target: bool = True
    """Map the new task onto the prior tasks' scale by an affine map fitted on matched cells
    (``at2_tune.core.target_scale``; the paper fits raw values)."""
    unmatched_distance: str | float = "mean"
    """Task distance when fewer than 2 cells are matched: a number (the paper: 0.5), or
    ``"mean"``, the mean distance between prior tasks that share cells."""

    @property
    def online_gradient(self) -> bool:
        """Whether conditioning takes gradient steps (then the hyperparameters move online)."""
        return self.online_steps > 0 or self.online_epochs > 0

    def __post_init__(self) -> None:
        _check_choice("model.output_warp", self.output_warp, WARPS)
        _check_choice("model.online_update", self.online_update, ("exact", "gradient"))


@dataclass(frozen=True)
class PolicySettings:
    """Which policy decides (``at2_tune.core.policies``) and its knobs."""

    name: str = "auto"
    """``"planned"`` (a schedule chosen for the budget on the prior tasks), ``"leaders"`` (a round
    robin over the transfer posterior's leaders), ``"paper"`` (the AT2 paper's UCB of the next
    epoch on the GP), ``"no_prior"`` (freeze-thaw on the new task's own GP, for the budget), or
    ``"auto"``: ``"planned"`` with prior tasks, else ``"no_prior"``."""
    objective: str = "model"
    """What the user keeps, and what ``planned`` plans for: ``"model"``, the best model trained
    within the budget (the best value observed); ``"configuration"`` (the AT2 paper's), a
    configuration to train again to its end, scored by its full-training value."""
    leaders: int = 4
    """``leaders``: how many of the most promising configurations are trained in turn."""
    leaders_decay: float = 0.5
    """``leaders``: the leader in place ``i`` (0 = best) is owed a share of the epochs
    proportional to ``(i + 1) ** -leaders_decay`` (0: equal shares)."""
    beta: float = 0.25
    """``paper``: the UCB's exploration weight, score = mean + beta * std."""
    residual_min_epochs: int = 2
    """``leaders`` and ``planned``: a curve is corrected by its own residuals once this many of
    its epochs are observed (``at2_tune.core.residual``)."""

    def __post_init__(self) -> None:
        _check_choice("policy.name", self.name, POLICY_NAMES)
        _check_choice("policy.objective", self.objective, OBJECTIVES)
        if not isinstance(self.leaders, int) or self.leaders < 1:
            raise ValueError(f"PolicySettings.leaders={self.leaders!r} must be an integer >= 1")
        if not isinstance(self.residual_min_epochs, int) or self.residual_min_epochs < 1:
            raise ValueError(f"PolicySettings.residual_min_epochs={self.residual_min_epochs!r} "
                             "must be an integer >= 1 (1: correct a curve from its first epoch)")


@dataclass(frozen=True)
class AT2Settings:
    """Everything that shapes a tuning run besides the data and the seed.

    The defaults are at2-tune's; :meth:`reference` is the AT2 paper's protocol.
    """

    model: ModelSettings = field(default_factory=ModelSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)

    @classmethod
    def reference(cls) -> "AT2Settings":
        """The AT2 paper's protocol: 1000 inducing points, 200 offline epochs of SGD
        (lr 0.02, momentum 0.8, 1% warm-up then linear decay), 3 epochs after each query, the
        UCB of the next epoch on the GP."""
        sgd = OptimizerSettings("sgd", 0.02, momentum=0.8, schedule="warmup_linear",
                                warmup_fraction=0.01)
        model = ModelSettings(n_inducing=1000, target_inducing_share=0.0, offline_epochs=200,
                              offline_max_steps=10**9, offline_optimizer=sgd, online_epochs=3.0,
                              online_optimizer=dataclasses.replace(sgd, schedule="constant"),
                              unmatched_distance=0.5, standardize_prior=False,
                              online_update="gradient", scale_target=False, output_warp="none")
        return cls(model, PolicySettings(name="paper"))

    def offline_json(self) -> dict[str, Any]:
        """What an offline fit depends on: the model settings."""
        return dataclasses.asdict(self.model)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "AT2Settings":
        unknown = set(data) - {"model", "policy"}
        if unknown:
            raise ValueError(f"settings JSON has keys {sorted(unknown)}; expected 'model' and "
                             "'policy' (settings saved by an at2-tune before the split into "
                             "model and policy settings cannot be read: start a new run)")
        model = dict(data.get("model", {}))
        for key in ("offline_optimizer", "online_optimizer"):
            if key in model:
                model[key] = OptimizerSettings(**model[key])
        return cls(ModelSettings(**model), PolicySettings(**data.get("policy", {})))

    def with_assignments(self, assignments: Iterable[str]) -> "AT2Settings":
        """A copy with each ``FIELD=JSON`` assignment applied in order (the ``--set`` option).

        ``FIELD`` is ``model.NAME`` or ``policy.NAME``, or a bare ``NAME`` of either group, e.g.
        ``["leaders=3", 'policy.name="paper"', 'online_optimizer={"lr": 0.1}']`` (an optimizer's
        JSON object changes only the keys it names).

        Raises ``ValueError`` naming the assignment for a missing ``=``, an unknown field, a
        value that is not JSON or not of the field's type, and whatever the settings refuse.
        """
        values = self.to_json()
        for assignment in assignments:
            name, sep, text = assignment.partition("=")
            group, field_name = _field_of(name.strip(), assignment) if sep else (None, None)
            if group is None:
                raise ValueError(f"setting {assignment!r}: expected FIELD=JSON with FIELD one of "
                                 f"{', '.join(_all_fields())}; e.g. leaders=3 or "
                                 "'policy.name=\"paper\"'")
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"setting {assignment!r}: the value {text!r} is not JSON ({exc});"
                                 " quote strings, e.g. 'policy.name=\"paper\"'") from None
            values[group][field_name] = _checked_value(group, field_name, value,
                                                       values[group][field_name], assignment)
        return type(self).from_json(values)


def with_objective(settings: AT2Settings, objective: str | None) -> AT2Settings:
    """``settings`` with ``policy.objective`` set to ``objective`` (``None``: unchanged).

    Raises ``ValueError`` naming the allowed objectives for any other value."""
    if objective is None:
        return settings
    _check_choice("objective", objective, OBJECTIVES)
    return dataclasses.replace(settings,
                               policy=dataclasses.replace(settings.policy, objective=objective))


_GROUPS = {"model": ModelSettings, "policy": PolicySettings}


def _all_fields() -> list[str]:
    return [f"{group}.{f.name}" for group, kind in _GROUPS.items()
            for f in dataclasses.fields(kind)]


def _field_of(name: str, assignment: str) -> tuple[str | None, str | None]:
    """``(group, field)`` of ``model.X``/``policy.X`` or a bare field name, else ``(None, None)``."""
    group, dot, rest = name.partition(".")
    if dot:
        kind = _GROUPS.get(group)
        known = kind is not None and rest in {f.name for f in dataclasses.fields(kind)}
        return (group, rest) if known else (None, None)
    owners = [g for g, kind in _GROUPS.items() if name in {f.name for f in dataclasses.fields(kind)}]
    return (owners[0], name) if len(owners) == 1 else (None, None)


_JSON_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,),
               "str | float": (str, int, float)}


def _checked_value(group: str, name: str, value: Any, current: Any, assignment: str) -> Any:
    """``value`` for field ``group.name`` (whose current JSON value is ``current``),
    type-checked; an optimizer's object is merged into ``current``."""
    kind = next(f.type for f in dataclasses.fields(_GROUPS[group]) if f.name == name)
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


def _check_choice(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(map(repr, allowed))}")
