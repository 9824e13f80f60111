"""Optimizers, per-epoch LR schedules against closed-form formulas, config validation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from search_spaces import SearchSpaceError
from tests.trainers.helpers import ConfigFactory
from trainers.config import validate_config
from trainers.optim import build_optimizer, build_scheduler

EPOCHS = 30
LR = 1e-3


def lr_trajectory(config: dict[str, Any], epochs: int = EPOCHS) -> tuple[list[float], list[float]]:
    """LR (and momentum / beta1) used in each epoch, stepping the scheduler once per epoch."""
    param = torch.nn.Parameter(torch.zeros(2))
    optimizer = build_optimizer(config, [param])
    scheduler = build_scheduler(config, optimizer)
    lrs, moms = [], []
    for _ in range(epochs):
        group = optimizer.param_groups[0]
        lrs.append(group["lr"])
        moms.append(group["momentum"] if "momentum" in group else group["betas"][0])
        optimizer.step()
        scheduler.step()
    return lrs, moms


def closed_form(config: dict[str, Any], e: int) -> float:
    """LR during epoch ``e`` (0-based = number of scheduler steps so far)."""
    lr = config["lr"]
    name = config["scheduler"]
    if name == "StepLR":
        return lr * config["step_gamma"] ** (e // config["step_size"])
    if name == "ExponentialLR":
        return lr * config["exp_gamma"] ** e
    if name == "CyclicLR":  # triangle of half-period s, amplitude decaying as gamma ** e
        s = config["step_size_up"]
        cycle = math.floor(1 + e / (2 * s))
        x = abs(e / s - 2 * cycle + 1)
        return lr + (config["max_lr"] - lr) * max(0.0, 1 - x) * config["cyclic_gamma"] ** e
    if name == "CosineAnnealingWarmRestarts":  # walk the restarts explicitly
        t_i, t_cur = config["T_0"], e
        while t_cur >= t_i:
            t_cur -= t_i
            t_i *= config["T_mult"]
        eta_min = config["eta_min"]
        return eta_min + (lr - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2
    raise AssertionError(name)


SCHEDULE_CASES = [  # values inside the HyperRec space, with lr = 1e-3
    ("StepLR", {"step_size": 3, "step_gamma": 0.5}),
    ("StepLR", {"step_size": 2, "step_gamma": 0.1}),
    ("ExponentialLR", {"exp_gamma": 0.9}),
    ("ExponentialLR", {"exp_gamma": 0.999}),
    ("CyclicLR", {"cyclic_gamma": 0.5, "max_lr": 1.5e-3, "step_size_up": 4}),
    ("CyclicLR", {"cyclic_gamma": 0.1, "max_lr": 1.1e-3, "step_size_up": 1}),
    ("CyclicLR", {"cyclic_gamma": 0.3, "max_lr": 1.3e-3, "step_size_up": 10}),
    ("CosineAnnealingWarmRestarts", {"T_0": 3, "T_mult": 2, "eta_min": 5e-4}),
    ("CosineAnnealingWarmRestarts", {"T_0": 5, "T_mult": 1, "eta_min": 9e-4}),
    ("CosineAnnealingWarmRestarts", {"T_0": 2, "T_mult": 4, "eta_min": 6e-4}),
]


@pytest.mark.parametrize("optimizer", ["Adam", "Momentum"])
@pytest.mark.parametrize("scheduler,values", SCHEDULE_CASES)
def test_lr_trajectory_matches_closed_form(optimizer: str, scheduler: str, values: dict[str, Any],
                                           make_config: ConfigFactory) -> None:
    config = validate_config(make_config(optimizer, scheduler, lr=LR, **values))
    lrs, _ = lr_trajectory(config)
    expected = [closed_form(config, e) for e in range(EPOCHS)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-9, atol=1e-12)
    assert lrs[0] == pytest.approx(LR)


def test_cyclic_momentum_cycles_only_for_sgd(make_config: ConfigFactory) -> None:
    values = {"cyclic_gamma": 0.5, "max_lr": 1.5e-3, "step_size_up": 2}
    config = validate_config(make_config("Momentum", "CyclicLR", momentum=0.5, **values))
    lrs, sgd_momentum = lr_trajectory(config, epochs=6)
    # PyTorch's cycle_momentum (HyperRec kept the default for SGD): the momentum moves from
    # max_momentum 0.9 towards base_momentum 0.8 as the LR rises, scaled like the LR amplitude;
    # the configured momentum (0.5) is replaced by the cycle.
    rise = [(lr - 1e-3) / (1.5e-3 - 1e-3) for lr in lrs]  # triangle * gamma ** e, in [0, 1]
    np.testing.assert_allclose(sgd_momentum, [0.9 - 0.1 * r for r in rise], rtol=1e-9)
    assert sgd_momentum[0] == 0.9 and min(sgd_momentum) < 0.9
    _, adam_beta0 = lr_trajectory(validate_config(make_config("Adam", "CyclicLR", beta0=0.85,
                                                              **values)), epochs=5)
    assert adam_beta0 == [0.85] * 5


def test_optimizer_hyperparameters(make_config: ConfigFactory) -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    adam = build_optimizer(validate_config(make_config("Adam", lr=2e-3, weight_decay=1e-5,
                                                       beta0=0.8, beta1=0.95)), [param])
    assert isinstance(adam, torch.optim.Adam)
    group = adam.param_groups[0]
    assert (group["lr"], group["weight_decay"], group["betas"]) == (2e-3, 1e-5, (0.8, 0.95))
    sgd = build_optimizer(validate_config(make_config("Momentum", momentum=0.7)), [param])
    assert isinstance(sgd, torch.optim.SGD)
    assert (sgd.param_groups[0]["momentum"], sgd.param_groups[0]["nesterov"]) == (0.7, False)


def test_validate_config_casts_numpy_scalars(make_config: ConfigFactory) -> None:
    raw = make_config("Momentum", "CosineAnnealingWarmRestarts")
    raw.update(batch_size=np.int64(64), lr=np.float64(0.01), T_0=np.int64(3),
               eta_min=np.float64(0.006))
    config = validate_config(raw)
    assert type(config["batch_size"]) is int and type(config["T_0"]) is int
    assert type(config["lr"]) is float and config["lr"] == 0.01


def test_config_outside_space_is_rejected(make_config: ConfigFactory) -> None:
    with pytest.raises(SearchSpaceError):
        validate_config(make_config(model="ResNet18"))
    with pytest.raises(SearchSpaceError):
        validate_config(make_config(batch_size=4096))
    bad = make_config("Adam")
    del bad["beta1"]
    with pytest.raises(SearchSpaceError):
        validate_config(bad)
    with pytest.raises(SearchSpaceError, match="lr"):
        validate_config(make_config(lr=10.0))
    with pytest.raises(SearchSpaceError, match="dict"):
        validate_config([("lr", 1e-3)])  # type: ignore[arg-type]
