"""The 7-dimensional LCBench search space and its database vocabulary.

The released LCBench configs hold the 7 tunable values plus 10 keys that are the same in
every config (network, optimizer, scheduler, ...): :data:`LCBENCH_CONSTANTS`.
:func:`from_database_config` keeps the tunable values, :func:`to_database_config` writes the
constants back.

The release stores ``num_layers`` as the bool ``True`` (meaning 1) in 36 of its 100 configs;
:func:`from_database_config` turns it into the int ``1``, so a round trip gives the raw config
with ``num_layers=True`` replaced by ``1`` (equal under ``==``, since ``True == 1``, but an
``int``).
"""

from __future__ import annotations

from typing import Any, Mapping

from search_spaces.errors import SearchSpaceError
from search_spaces._text import did_you_mean, value_repr
from search_spaces.params import Float, Integer, same_choice
from search_spaces.space import SearchSpace
from search_spaces.validation import InvalidConfigError

SPACE_NAME = "lcbench"

LCBENCH_CONSTANTS: dict[str, Any] = {
    "imputation_strategy": "mean",
    "learning_rate_scheduler": "cosine_annealing",
    "loss": "cross_entropy_weighted",
    "network": "shapedmlpnet",
    "normalization_strategy": "standardize",
    "optimizer": "sgd",
    "cosine_annealing_T_max": 50,
    "cosine_annealing_eta_min": 1e-08,
    "activation": "relu",
    "mlp_shape": "funnel",
}
"""The fixed keys of every released LCBench config and their values."""

_RELEASE_KEY_ORDER = (
    "batch_size", "imputation_strategy", "learning_rate_scheduler", "loss", "network",
    "max_dropout", "normalization_strategy", "optimizer", "cosine_annealing_T_max",
    "cosine_annealing_eta_min", "activation", "max_units", "mlp_shape", "num_layers",
    "learning_rate", "momentum", "weight_decay",
)


def lcbench_space() -> SearchSpace:
    """A new instance of the LCBench space (7 numeric parameters, no categoricals)."""
    return SearchSpace(SPACE_NAME, [
        Integer("batch_size", 16, 512, log=True),
        Float("learning_rate", 1e-4, 1e-1, log=True),
        Float("momentum", 0.1, 0.99),
        Float("weight_decay", 1e-5, 1e-1),
        Integer("num_layers", 1, 5),
        Integer("max_units", 64, 1024, log=True),
        Float("max_dropout", 0.0, 1.0),
    ])


LCBENCH_SPACE = lcbench_space()
"""The LCBench space (see :func:`lcbench_space`)."""

_TUNABLE = tuple(param.name for param in LCBENCH_SPACE.parameters)


def _error(message: str) -> SearchSpaceError:
    return SearchSpaceError(f"LCBench database config: {message}")


def from_database_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical LCBench config of a released database config.

    ``num_layers=True`` becomes ``1``; the constant keys are checked against
    :data:`LCBENCH_CONSTANTS` and dropped.

    Raises:
        SearchSpaceError: an unknown or missing key, a constant with another value, or a
            tunable value outside the space.
    """
    if not isinstance(raw, Mapping):
        raise _error(f"config must be a dict, got {type(raw).__name__} {value_repr(raw)}")
    expected = (*_TUNABLE, *LCBENCH_CONSTANTS)
    for key in raw:
        if key not in expected:
            raise _error(f"config has the unknown key {key!r}{did_you_mean(str(key), expected)}; "
                         f"expected exactly {sorted(expected)!r}; remove {key!r}")
    for key in expected:
        if key not in raw:
            raise _error(f"config is missing {key!r}; expected exactly {sorted(expected)!r}")
    for key, constant in LCBENCH_CONSTANTS.items():
        if not same_choice(raw[key], constant):
            raise _error(f"config[{key!r}]={value_repr(raw[key])}, but every LCBench config has "
                         f"{key}={constant!r}; this is not an LCBench configuration")
    config = {key: raw[key] for key in _TUNABLE}
    if config["num_layers"] is True:
        config["num_layers"] = 1
    try:
        return LCBENCH_SPACE.validate(config)
    except InvalidConfigError as exc:
        raise _error(str(exc)) from exc


def to_database_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The released-database form of an LCBench config (validated first), keys in release order.

    ``num_layers`` stays an int (the release's ``True`` is written as ``1``).
    """
    values = {**LCBENCH_SPACE.validate(config), **LCBENCH_CONSTANTS}
    return {key: values[key] for key in _RELEASE_KEY_ORDER}
