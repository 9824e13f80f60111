"""Optimizer and LR-scheduler builders with exactly the HyperRec semantics.

* ``"Adam"``: ``torch.optim.Adam(lr, weight_decay, betas=(beta0, beta1))``.
* ``"Momentum"``: ``torch.optim.SGD(lr, weight_decay, momentum)``.

Schedulers are stepped ONCE PER EPOCH (after the epoch's training and evaluation), so every
"step"/"period" argument below counts epochs:

* ``"StepLR"``: ``StepLR(step_size, gamma=step_gamma)``:
  ``lr_e = lr * step_gamma ** floor(e / step_size)``.
* ``"ExponentialLR"``: ``ExponentialLR(gamma=exp_gamma)``: ``lr_e = lr * exp_gamma ** e``.
* ``"CyclicLR"``: ``CyclicLR(base_lr=lr, max_lr, step_size_up, gamma=cyclic_gamma,
  mode="exp_range", cycle_momentum=<optimizer is SGD>)``: a triangle between ``lr`` and
  ``max_lr`` with half-period ``step_size_up`` epochs whose amplitude decays as
  ``cyclic_gamma ** e``. For SGD, ``cycle_momentum=True`` makes the scheduler cycle the
  momentum between PyTorch's defaults 0.8 and 0.9 (inversely to the LR), replacing the
  configured ``momentum`` while the schedule runs; for Adam momentum cycling is off.
* ``"CosineAnnealingWarmRestarts"``: ``CosineAnnealingWarmRestarts(T_0, T_mult, eta_min)``.

Here ``e`` is the number of completed epochs (0 during the first epoch).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from trainers.errors import TrainerConfigError


def build_optimizer(config: Mapping[str, Any], params: Iterable[torch.nn.Parameter]) -> Optimizer:
    """Optimizer of a validated config (see :func:`trainers.config.validate_config`)."""
    name = config["optimizer"]
    lr = float(config["lr"])
    weight_decay = float(config["weight_decay"])
    if name == "Adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay,
                                betas=(float(config["beta0"]), float(config["beta1"])))
    if name == "Momentum":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay,
                               momentum=float(config["momentum"]))
    raise TrainerConfigError(f"optimizer {name!r} is not 'Adam' or 'Momentum'")


def build_scheduler(config: Mapping[str, Any], optimizer: Optimizer) -> LRScheduler:
    """Per-epoch LR scheduler of a validated config, attached to ``optimizer``."""
    name = config["scheduler"]
    sched = torch.optim.lr_scheduler
    if name == "StepLR":
        return sched.StepLR(optimizer, step_size=int(config["step_size"]),
                            gamma=float(config["step_gamma"]))
    if name == "ExponentialLR":
        return sched.ExponentialLR(optimizer, gamma=float(config["exp_gamma"]))
    if name == "CyclicLR":
        return sched.CyclicLR(optimizer, base_lr=float(config["lr"]),
                              max_lr=float(config["max_lr"]),
                              step_size_up=int(config["step_size_up"]),
                              gamma=float(config["cyclic_gamma"]), mode="exp_range",
                              cycle_momentum=isinstance(optimizer, torch.optim.SGD))
    if name == "CosineAnnealingWarmRestarts":
        return sched.CosineAnnealingWarmRestarts(optimizer, T_0=int(config["T_0"]),
                                                 T_mult=int(config["T_mult"]),
                                                 eta_min=float(config["eta_min"]))
    raise TrainerConfigError(
        f"scheduler {name!r} is not one of StepLR, ExponentialLR, CyclicLR, "
        f"CosineAnnealingWarmRestarts")
