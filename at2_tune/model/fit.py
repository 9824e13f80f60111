"""Fitting the AT2 GP: minibatch ELBO with every observation of the target task in every batch."""

from __future__ import annotations

import math
from dataclasses import dataclass

import gpytorch
import torch
from linear_operator.utils.errors import NotPSDError

from at2_tune.errors import AT2Error
from at2_tune.model.gp import AT2GP


@dataclass(frozen=True)
class OptimizerSettings:
    """How parameters move during a fit.

    ``schedule`` is ``"warmup_linear"`` (linear warm-up over ``warmup_fraction`` of the steps,
    starting at ``lr / warmup_steps`` rather than 0, then linear decay to 0) or ``"constant"``.
    """

    name: str = "adam"  # "adam" | "sgd"
    lr: float = 0.01
    momentum: float = 0.8
    schedule: str = "constant"
    warmup_fraction: float = 0.01

    def build(self, parameters) -> torch.optim.Optimizer:
        if self.name == "adam":
            return torch.optim.Adam(parameters, lr=self.lr)
        if self.name == "sgd":
            return torch.optim.SGD(parameters, lr=self.lr, momentum=self.momentum)
        raise AT2Error(f"optimizer {self.name!r} is not supported; use 'adam' or 'sgd'")

    def lr_factor(self, step: int, total_steps: int) -> float:
        """Multiplier of ``lr`` at 0-based ``step`` of ``total_steps``."""
        if self.schedule == "constant":
            return 1.0
        if self.schedule != "warmup_linear":
            raise AT2Error(f"schedule {self.schedule!r} is not supported; use 'constant' or "
                           "'warmup_linear'")
        warmup = max(1, math.ceil(self.warmup_fraction * total_steps))
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))


def weighted_elbo_loss(model: AT2GP, likelihood: gpytorch.likelihoods.GaussianLikelihood,
                       x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor,
                       n_data: int) -> torch.Tensor:
    """Negative ELBO per datum, ``-(sum_i w_i E[log p(y_i | f_i)] - KL) / n_data``.

    The weights make a minibatch an unbiased estimate of the full data's expected
    log-likelihood: 1 for points that are always in the batch, ``n_pool / n_drawn`` for points
    drawn from a pool.

    Args:
        x: ``(b, width)``; y: ``(b,)``; weights: ``(b,)``.
    """
    output = model(x)
    expected = likelihood.expected_log_prob(y, output)
    kl = model.variational_strategy.kl_divergence()
    return -((weights * expected).sum() - kl) / n_data


@dataclass
class FitData:
    """Training data split into a pool that is sampled and points that are always used.

    ``pool_x``: ``(n_pool, width)``, ``pool_y``: ``(n_pool,)`` (prior tasks);
    ``always_x``: ``(n_always, width)``, ``always_y``: ``(n_always,)`` (the target task).
    """

    pool_x: torch.Tensor
    pool_y: torch.Tensor
    always_x: torch.Tensor
    always_y: torch.Tensor

    def __post_init__(self) -> None:
        if bool(torch.isnan(self.pool_y).any() or torch.isnan(self.always_y).any()):
            raise AT2Error("training values hold NaN; leave unobserved cells out of the fit "
                           "(the surrogate passes observed prior cells only) instead of NaN")

    @property
    def n_data(self) -> int:
        return self.pool_x.shape[0] + self.always_x.shape[0]


def fit(model: AT2GP, likelihood: gpytorch.likelihoods.GaussianLikelihood, data: FitData,
        steps: int, batch_size: int, settings: OptimizerSettings,
        generator: torch.Generator, optimizer: torch.optim.Optimizer | None = None) -> list[float]:
    """Run ``steps`` optimizer steps; each batch holds every ``always`` point plus pool points.

    Pool points are visited in shuffled passes (epochs) without dropping a remainder, so every
    point is used once per pass. ``optimizer`` (built from ``settings`` over every parameter of
    the model and the likelihood if not given) moves the parameters. Returns the loss of every
    step.

    Raises:
        AT2Error: the loss became NaN or infinite (after retrying with more jitter).
    """
    model.train()
    likelihood.train()
    if optimizer is None:
        optimizer = settings.build(list(model.parameters()) + list(likelihood.parameters()))
    n_pool = data.pool_x.shape[0]
    pool_batch = max(1, min(batch_size - data.always_x.shape[0], n_pool)) if n_pool else 0
    order = torch.randperm(n_pool, generator=generator) if n_pool else None
    cursor = 0
    losses = []
    for step in range(steps):
        if n_pool:
            if cursor >= n_pool:
                order, cursor = torch.randperm(n_pool, generator=generator), 0
            index = order[cursor: cursor + pool_batch]
            cursor += pool_batch
            x = torch.cat([data.always_x, data.pool_x[index]])
            y = torch.cat([data.always_y, data.pool_y[index]])
            weights = torch.cat([torch.ones(data.always_x.shape[0], dtype=y.dtype),
                                 torch.full((index.numel(),), n_pool / index.numel(), dtype=y.dtype)])
        else:
            x, y = data.always_x, data.always_y
            weights = torch.ones_like(y)
        for group in optimizer.param_groups:
            group["lr"] = settings.lr * settings.lr_factor(step, steps)
        optimizer.zero_grad(set_to_none=True)
        loss = _loss_with_jitter_retries(model, likelihood, x, y, weights, data.n_data)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


_JITTERS = (None, 1e-6, 1e-5, 1e-4, 1e-3)


def _loss_with_jitter_retries(model, likelihood, x, y, weights, n_data) -> torch.Tensor:
    last_error: Exception | None = None
    for jitter in _JITTERS:
        try:
            if jitter is None:
                loss = weighted_elbo_loss(model, likelihood, x, y, weights, n_data)
            else:
                with gpytorch.settings.cholesky_jitter(float_value=jitter, double_value=jitter):
                    loss = weighted_elbo_loss(model, likelihood, x, y, weights, n_data)
            if torch.isfinite(loss):
                return loss
            last_error = AT2Error(f"loss is {loss.item()}")
        except (RuntimeError, NotPSDError) as exc:
            last_error = exc
    raise AT2Error(f"the GP fit failed even with Cholesky jitter {_JITTERS[-1]}: {last_error}. "
                   "The data may hold duplicate or extreme values; check the observations, or "
                   "use fewer inducing points.") from last_error
