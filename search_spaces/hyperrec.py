"""The nested search space of the HyperRec database (AT2 paper) and its database vocabulary.

A canonical HyperRec config is a flat dict with the active keys among ``batch_size``, ``model``,
``optimizer``, ``scheduler``, ``lr``, ``weight_decay``, ``beta0``, ``beta1``, ``momentum``,
``step_size``, ``step_gamma``, ``exp_gamma``, ``cyclic_gamma``, ``max_lr``, ``step_size_up``,
``T_0``, ``T_mult`` and ``eta_min``.

The released database stores configs in PyTorch vocabulary (``batchsize``, ``resnet34``,
``SGD``, ``optimizer_param`` / ``scheduler_param``, ``betas``, ``gamma``) and adds derived
fields: ``nepoch``, and for ``CyclicLR`` ``mode='exp_range'``, ``base_lr=lr`` and, with Adam,
``cycle_momentum=False``. :func:`from_database_config` and :func:`to_database_config` convert
between the two; ``to_database_config(from_database_config(raw)) == raw`` for every released
config.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from search_spaces.errors import SearchSpaceError
from search_spaces._text import did_you_mean, value_repr
from search_spaces.params import Categorical, Condition, Float, Integer, Ratio
from search_spaces.space import SearchSpace
from search_spaces.validation import InvalidConfigError

SPACE_NAME = "hyperrec"
DEFAULT_NEPOCH = 75
"""Epochs every released HyperRec config was trained for."""

_ADAM = Condition("optimizer", "Adam")
_MOMENTUM = Condition("optimizer", "Momentum")
_STEP = Condition("scheduler", "StepLR")
_EXPONENTIAL = Condition("scheduler", "ExponentialLR")
_CYCLIC = Condition("scheduler", "CyclicLR")
_COSINE = Condition("scheduler", "CosineAnnealingWarmRestarts")


def hyperrec_space() -> SearchSpace:
    """A new instance of the HyperRec space (15 numeric + 3 categorical parameters)."""
    return SearchSpace(SPACE_NAME, [
        Integer("batch_size", 32, 128),
        Categorical("model", ("ResNet34", "ResNet50")),
        Categorical("optimizer", ("Adam", "Momentum")),
        Categorical("scheduler", ("StepLR", "ExponentialLR", "CyclicLR",
                                  "CosineAnnealingWarmRestarts")),
        Float("lr", 1e-4, 1e-1, log=True),
        Float("weight_decay", 1e-5, 1e-3, log=True),
        Float("beta0", 0.5, 0.999, log=True, condition=_ADAM),
        Float("beta1", 0.8, 0.999, log=True, condition=_ADAM),
        Float("momentum", 1e-3, 1.0, log=True, condition=_MOMENTUM),
        Integer("step_size", 2, 20, condition=_STEP),
        Float("step_gamma", 0.1, 0.5, log=True, condition=_STEP),
        Float("exp_gamma", 0.85, 0.999, log=True, condition=_EXPONENTIAL),
        Float("cyclic_gamma", 0.1, 0.5, log=True, condition=_CYCLIC),
        Ratio("max_lr", "lr", 1.1, 1.5, cap=1.0, encode_low=1.1e-4, encode_high=0.15,
              condition=_CYCLIC),
        Integer("step_size_up", 1, 10, condition=_CYCLIC),
        Integer("T_0", 2, 20, condition=_COSINE),
        Integer("T_mult", 1, 4, condition=_COSINE),
        Ratio("eta_min", "lr", 0.5, 0.9, encode_low=5e-5, encode_high=0.09, condition=_COSINE),
    ])


HYPERREC_SPACE = hyperrec_space()
"""The HyperRec space (see :func:`hyperrec_space`)."""

# ------------------------------------------------------------------ database vocabulary
_TOP_KEYS = ("model", "nepoch", "batchsize", "optimizer", "scheduler", "optimizer_param",
             "scheduler_param")
_MODELS = {"resnet34": "ResNet34", "resnet50": "ResNet50"}
_OPTIMIZERS = {"Adam": "Adam", "SGD": "Momentum"}
_OPTIMIZER_KEYS = {"Adam": ("lr", "weight_decay", "betas"),
                   "SGD": ("lr", "weight_decay", "momentum")}
_SCHEDULER_KEYS = {
    "StepLR": ("step_size", "gamma"),
    "ExponentialLR": ("gamma",),
    "CyclicLR": ("mode", "base_lr", "max_lr", "step_size_up", "gamma"),
    "CosineAnnealingWarmRestarts": ("T_0", "T_mult", "eta_min"),
}
_GAMMA_NAME = {"StepLR": "step_gamma", "ExponentialLR": "exp_gamma", "CyclicLR": "cyclic_gamma"}
_CYCLIC_MODE = "exp_range"

_DATABASE_FIELD = {
    "batch_size": "batchsize", "model": "model", "optimizer": "optimizer",
    "scheduler": "scheduler", "lr": "optimizer_param['lr']",
    "weight_decay": "optimizer_param['weight_decay']", "beta0": "optimizer_param['betas'][0]",
    "beta1": "optimizer_param['betas'][1]", "momentum": "optimizer_param['momentum']",
    "step_size": "scheduler_param['step_size']", "step_gamma": "scheduler_param['gamma']",
    "exp_gamma": "scheduler_param['gamma']", "cyclic_gamma": "scheduler_param['gamma']",
    "max_lr": "scheduler_param['max_lr']", "step_size_up": "scheduler_param['step_size_up']",
    "T_0": "scheduler_param['T_0']", "T_mult": "scheduler_param['T_mult']",
    "eta_min": "scheduler_param['eta_min']",
}


def _error(message: str) -> SearchSpaceError:
    return SearchSpaceError(f"HyperRec database config: {message}")


def _check_keys(where: str, mapping: Any, expected: tuple[str, ...]) -> None:
    if not isinstance(mapping, Mapping):
        raise _error(f"{where} must be a dict, got {type(mapping).__name__} "
                     f"{value_repr(mapping)}")
    for key in mapping:
        if key not in expected:
            raise _error(f"{where} has the unknown key {key!r}{did_you_mean(str(key), expected)}; "
                         f"expected exactly {list(expected)!r}; remove {key!r}")
    for key in expected:
        if key not in mapping:
            raise _error(f"{where} is missing {key!r}; expected exactly {list(expected)!r}")


def _lookup(where: str, value: Any, table: Mapping[str, str]) -> str:
    if not isinstance(value, str) or value not in table:
        hint = did_you_mean(str(value), table)
        raise _error(f"{where}={value_repr(value)} is not one of {list(table)!r}{hint}")
    return table[value]


def from_database_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical HyperRec config of a released database config.

    ``nepoch`` (a positive int) and the derived ``CyclicLR`` fields are checked and dropped.

    Raises:
        SearchSpaceError: an unknown, missing or malformed key, a derived field that does not
            match (``base_lr != lr``, ``mode != 'exp_range'``, ``cycle_momentum`` not ``False``
            with Adam or present with SGD), or a value outside the space.
    """
    _check_keys("config", raw, _TOP_KEYS)
    nepoch = raw["nepoch"]
    if isinstance(nepoch, bool) or not isinstance(nepoch, int) or nepoch < 1:
        raise _error(f"config['nepoch']={value_repr(nepoch)} is not a positive int")
    optimizer = raw["optimizer"]
    scheduler = raw["scheduler"]
    config: dict[str, Any] = {
        "batch_size": raw["batchsize"],
        "model": _lookup("config['model']", raw["model"], _MODELS),
        "optimizer": _lookup("config['optimizer']", optimizer, _OPTIMIZERS),
        "scheduler": _lookup("config['scheduler']", scheduler,
                             {name: name for name in _SCHEDULER_KEYS}),
    }
    config.update(_optimizer_values(optimizer, raw["optimizer_param"]))
    config.update(_scheduler_values(optimizer, scheduler, raw["scheduler_param"], config["lr"]))
    try:
        return HYPERREC_SPACE.validate(config)
    except InvalidConfigError as exc:
        field = _DATABASE_FIELD.get(exc.key or "")
        raise _error(f"{exc} (database field {field})" if field else str(exc)) from exc


def _optimizer_values(optimizer: str, params: Any) -> dict[str, Any]:
    _check_keys("config['optimizer_param']", params, _OPTIMIZER_KEYS[optimizer])
    values = {"lr": params["lr"], "weight_decay": params["weight_decay"]}
    if optimizer == "SGD":
        values["momentum"] = params["momentum"]
        return values
    betas = params["betas"]
    if not isinstance(betas, (list, tuple)) or len(betas) != 2:
        raise _error(f"config['optimizer_param']['betas']={value_repr(betas)} is not a list of "
                     "two numbers [beta0, beta1]")
    values["beta0"], values["beta1"] = betas
    return values


def _scheduler_values(optimizer: str, scheduler: str, params: Any, lr: Any) -> dict[str, Any]:
    expected = _SCHEDULER_KEYS[scheduler]
    if scheduler == "CyclicLR" and optimizer == "Adam":
        expected = (*expected, "cycle_momentum")
    _check_keys("config['scheduler_param']", params, expected)
    values = {key: params[key] for key in expected
              if key not in ("gamma", "mode", "base_lr", "cycle_momentum")}
    if "gamma" in params:
        values[_GAMMA_NAME[scheduler]] = params["gamma"]
    if scheduler == "CyclicLR":
        _check_cyclic_derived(optimizer, params, lr)
    return values


def _check_cyclic_derived(optimizer: str, params: Mapping[str, Any], lr: Any) -> None:
    if params["mode"] != _CYCLIC_MODE:
        raise _error(f"config['scheduler_param']['mode']={value_repr(params['mode'])}; HyperRec "
                     f"CyclicLR configs use mode={_CYCLIC_MODE!r}")
    base_lr = params["base_lr"]
    if not (isinstance(base_lr, (int, float)) and isinstance(lr, (int, float))
            and math.isclose(base_lr, lr, rel_tol=1e-9)):
        raise _error(f"config['scheduler_param']['base_lr']={value_repr(base_lr)} differs from "
                     f"config['optimizer_param']['lr']={value_repr(lr)}; HyperRec CyclicLR "
                     "configs use base_lr = lr")
    if optimizer == "Adam" and params["cycle_momentum"] is not False:
        raise _error(f"config['scheduler_param']['cycle_momentum']="
                     f"{value_repr(params['cycle_momentum'])}; CyclicLR with Adam needs "
                     "cycle_momentum=False (Adam has no momentum to cycle)")


def to_database_config(config: Mapping[str, Any], nepoch: int = DEFAULT_NEPOCH) -> dict[str, Any]:
    """The released-database form of a HyperRec config (validated first).

    Keys come in the order of the release; ``betas`` is a list; the derived ``CyclicLR``
    fields are written back (``mode='exp_range'``, ``base_lr=lr``, and
    ``cycle_momentum=False`` with Adam).
    """
    if isinstance(nepoch, bool) or not isinstance(nepoch, int) or nepoch < 1:
        raise SearchSpaceError(f"nepoch={value_repr(nepoch)} is not a positive int")
    values = HYPERREC_SPACE.validate(config)
    optimizer = {"Adam": "Adam", "Momentum": "SGD"}[values["optimizer"]]
    scheduler = values["scheduler"]
    optimizer_param: dict[str, Any] = {"lr": values["lr"], "weight_decay": values["weight_decay"]}
    if optimizer == "Adam":
        optimizer_param["betas"] = [values["beta0"], values["beta1"]]
    else:
        optimizer_param["momentum"] = values["momentum"]
    return {
        "model": values["model"].lower(),
        "nepoch": nepoch,
        "batchsize": values["batch_size"],
        "optimizer": optimizer,
        "scheduler": scheduler,
        "optimizer_param": optimizer_param,
        "scheduler_param": _scheduler_param(values, optimizer),
    }


def _scheduler_param(values: Mapping[str, Any], optimizer: str) -> dict[str, Any]:
    scheduler = values["scheduler"]
    if scheduler == "StepLR":
        return {"step_size": values["step_size"], "gamma": values["step_gamma"]}
    if scheduler == "ExponentialLR":
        return {"gamma": values["exp_gamma"]}
    if scheduler == "CosineAnnealingWarmRestarts":
        return {"T_0": values["T_0"], "T_mult": values["T_mult"], "eta_min": values["eta_min"]}
    param = {"mode": _CYCLIC_MODE, "base_lr": values["lr"], "max_lr": values["max_lr"],
             "step_size_up": values["step_size_up"], "gamma": values["cyclic_gamma"]}
    if optimizer == "Adam":
        param["cycle_momentum"] = False
    return param
