"""Settings of the AT2 surrogate and decision core; one default for every task."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from at2_tune.model.fit import OptimizerSettings


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
    online_steps: int = 10
    """Optimizer steps after new observations; each batch holds every target observation."""
    online_epochs: float = 0.0
    """If > 0, online updates run this many passes over all data instead of ``online_steps``."""
    online_optimizer: OptimizerSettings = field(
        default_factory=lambda: OptimizerSettings("adam", 0.01))
    natural_gradient: bool = False
    """Update q(u) by natural gradients (gpytorch NGD) and only the hyperparameters by
    ``offline_optimizer`` / ``online_optimizer``. Measured on the LCBench pairs it was not
    better than plain Adam and its offline fit was ~3x slower, so it is off by default."""
    natural_lr: float = 0.1
    beta: float = 0.25
    """UCB exploration weight: score = mean + beta * std."""
    standardize_prior: bool = True
    """Give every prior task the same mean and spread before fitting (see
    ``PriorData.standardized``); the paper fits raw values."""
    unmatched_distance: str | float = "mean"
    """Task distance when fewer than 2 cells are matched: a number, or ``"mean"`` for the mean
    distance between the prior tasks (the paper uses 0.5)."""

    @classmethod
    def reference(cls) -> "AT2Settings":
        """The AT2 paper's protocol: 1000 inducing points, 200 offline epochs of SGD
        (lr 0.02, momentum 0.8, 1% warm-up then linear decay), 3 epochs after each query."""
        sgd = OptimizerSettings("sgd", 0.02, momentum=0.8, schedule="warmup_linear",
                                warmup_fraction=0.01)
        return cls(n_inducing=1000, target_inducing_share=0.0, offline_epochs=200,
                   offline_optimizer=sgd, online_epochs=3.0,
                   online_optimizer=dataclasses.replace(sgd, schedule="constant"),
                   unmatched_distance=0.5, standardize_prior=False)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "AT2Settings":
        data = dict(data)
        for key in ("offline_optimizer", "online_optimizer"):
            data[key] = OptimizerSettings(**data[key])
        return cls(**data)
