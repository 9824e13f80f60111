"""Validation and normalisation of a HyperRec training configuration.

A configuration is the canonical FLAT dict of the HyperRec space with only the active keys,
e.g. ``{"batch_size": 64, "model": "ResNet34", "optimizer": "Adam", "lr": 1e-3,
"weight_decay": 1e-5, "beta0": 0.9, "beta1": 0.999, "scheduler": "StepLR", "step_size": 5,
"step_gamma": 0.5}``. The search space itself (ranges, choices, conditional keys) is owned by
:mod:`search_spaces`; :func:`validate_config` delegates to ``HYPERREC_SPACE.validate`` (which
returns the canonical form) and only fixes the key order and the Python types of the values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from search_spaces import HYPERREC_SPACE

OPTIMIZER_KEYS: dict[str, tuple[str, ...]] = {
    "Adam": ("beta0", "beta1"),
    "Momentum": ("momentum",),
}
"""Conditional keys of each optimizer choice."""

SCHEDULER_KEYS: dict[str, tuple[str, ...]] = {
    "StepLR": ("step_size", "step_gamma"),
    "ExponentialLR": ("exp_gamma",),
    "CyclicLR": ("cyclic_gamma", "max_lr", "step_size_up"),
    "CosineAnnealingWarmRestarts": ("T_0", "T_mult", "eta_min"),
}
"""Conditional keys of each LR-scheduler choice."""

COMMON_KEYS: tuple[str, ...] = ("batch_size", "model", "optimizer", "scheduler", "lr",
                                "weight_decay")
INT_KEYS: frozenset[str] = frozenset({"batch_size", "step_size", "step_size_up", "T_0",
                                      "T_mult"})
STR_KEYS: frozenset[str] = frozenset({"model", "optimizer", "scheduler"})


def _cast(key: str, value: Any) -> Any:
    if key in STR_KEYS:
        return str(value)
    return int(value) if key in INT_KEYS else float(value)


def validate_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``config`` against the HyperRec space and return its canonical form.

    Args:
        config: HyperRec configuration (flat, only the active keys). Values may be numpy
            scalars, as Ray Tune samples them.

    Returns:
        ``HYPERREC_SPACE.validate(config)`` restricted to the active keys in a stable order
        (common keys, optimizer keys, scheduler keys), with ``int`` for the integer
        hyperparameters and ``float`` for the real ones.

    Raises:
        at2_tune.errors.SearchSpaceError: ``config`` is not a dict or lies outside the HyperRec
            space (unknown / missing / inactive key, value out of range); raised by
            ``HYPERREC_SPACE.validate`` with a message naming the key, the value and the fix.
    """
    canonical = HYPERREC_SPACE.validate(config)
    keys = (COMMON_KEYS + OPTIMIZER_KEYS[str(canonical["optimizer"])]
            + SCHEDULER_KEYS[str(canonical["scheduler"])])
    return {key: _cast(key, canonical[key]) for key in keys}
