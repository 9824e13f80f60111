"""A synthetic prior: parametric learning curves on a toy space (no data release needed).

Configuration ``c`` has a learning rate, a width and an optimizer. On task ``t`` its curve is
``peak * (1 - exp(-rate * epoch))`` with ``peak`` highest when the learning rate is near the task's
own optimum, so tasks agree on what is good up to a shift, and curves rise at config-specific
rates; a little seeded noise on top. Values are accuracies in (0, 1).
"""

from __future__ import annotations

import numpy as np

from at2_tune.core.prior import PriorData
from search_spaces import Categorical, Float, SearchSpace

TOY_SPACE = SearchSpace("toy", [Float("lr", 1e-4, 1e-1, log=True), Float("width", 0.0, 1.0),
                                Categorical("optimizer", ("adam", "sgd"))])
N_EPOCHS = 12


def toy_configs(count: int = 30, seed: int = 0) -> list[dict]:
    return TOY_SPACE.sample_many(np.random.default_rng(seed), count)


def toy_curves(configs: list[dict], optimum_lr: float, seed: int) -> np.ndarray:
    """``(len(configs), N_EPOCHS)`` curves of one task whose best learning rate is ``optimum_lr``."""
    rng = np.random.default_rng(seed)
    lr = np.log10([c["lr"] for c in configs])
    width = np.array([c["width"] for c in configs])
    adam = np.array([c["optimizer"] == "adam" for c in configs])
    peak = 0.9 - 0.12 * (lr - np.log10(optimum_lr)) ** 2 + 0.05 * width + 0.03 * adam
    rate = 0.2 + 0.6 * width
    epochs = np.arange(1, N_EPOCHS + 1)
    curves = np.clip(peak, 0.05, 0.98)[:, None] * (1 - np.exp(-rate[:, None] * epochs[None]))
    return np.clip(curves + 0.005 * rng.standard_normal(curves.shape), 0.0, 1.0)


def toy_prior(n_tasks: int = 3, configs: list[dict] | None = None) -> PriorData:
    configs = configs or toy_configs()
    optima = np.geomspace(3e-3, 3e-2, max(n_tasks, 2))[:n_tasks]
    curves = np.stack([toy_curves(configs, lr, seed=t) for t, lr in enumerate(optima)])
    return PriorData(tuple(f"toy{t}" for t in range(n_tasks)), tuple(configs), curves, "toy")


def toy_target(configs: list[dict] | None = None) -> np.ndarray:
    """The new task: like the last prior task (optimum 3e-2), unlike their average."""
    return toy_curves(configs or toy_configs(), 3e-2, seed=99)
