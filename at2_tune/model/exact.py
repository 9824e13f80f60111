"""The optimal q(u) of the AT2 GP in closed form, for fixed kernel hyperparameters.

With a Gaussian likelihood, the variational distribution that maximizes the ELBO over all data is
known exactly (Titsias, 2009): in GPyTorch's whitened parameterization ``u = L v`` with
``K_uu = L L^T`` and ``A = L^{-1} K_uf``,

.. math::
    S = (I + A A^T / \\sigma^2)^{-1}, \\qquad m = S A (y - \\mu) / \\sigma^2 .

Conditioning the new task's observations this way (instead of taking stochastic gradient steps on
q(u)) uses every observation exactly, costs one pass over the data, and gives the same posterior
for the same data whatever came before, so recommendations do not drift with optimizer noise.
"""

from __future__ import annotations

import gpytorch
import torch
from gpytorch.variational import CholeskyVariationalDistribution
from linear_operator.utils.cholesky import psd_safe_cholesky

from at2_tune.errors import AT2Error
from at2_tune.model.gp import AT2GP

CHUNK_ROWS = 20_000
"""Data rows per block of ``K_uf`` (bounds memory at ``n_inducing * CHUNK_ROWS`` floats)."""


OFFSET_PRIOR_STD = 1.0
"""Prior standard deviation of a task's offset estimated with q(u) (values are accuracies)."""


@torch.no_grad()
def set_optimal_variational_distribution(model: AT2GP,
                                         likelihood: gpytorch.likelihoods.GaussianLikelihood,
                                         x: torch.Tensor, y: torch.Tensor,
                                         offset_task: int | None = None) -> None:
    """Set ``model``'s q(u) to the ELBO optimum given all data and the current hyperparameters.

    With ``offset_task``, that task's constant mean is estimated jointly: its observations get an
    extra offset ``b ~ N(0, OFFSET_PRIOR_STD^2)``, ``w = [v, b / OFFSET_PRIOR_STD]`` is solved for
    together, the task's constant moves by the posterior mean of ``b`` and q(v) is the marginal
    of the joint posterior. (The new task's level is otherwise unknown: the epoch kernel is 0 at
    epoch 0, so the GP alone cannot explain a task that sits higher than the prior tasks.)

    Args:
        x: ``(n, width)`` inputs (prior tasks and target task together).
        y: ``(n,)`` observed values.
        offset_task: the task whose constant mean is re-estimated (the new task), or None.
    Raises:
        AT2Error: q(u) is not a plain Cholesky-parameterized distribution, or the linear
            algebra failed (non-finite values).
    """
    strategy = model.variational_strategy
    distribution = strategy._variational_distribution
    if not isinstance(distribution, CholeskyVariationalDistribution):
        raise AT2Error("the closed-form q(u) update needs a Cholesky-parameterized q(u); build "
                       "the model with natural=False")
    model.train()  # drops GPyTorch's cached Cholesky factor of K_uu (kernels may have changed)
    inducing = strategy.inducing_points
    k_uu = model.covar_module(inducing).to_dense()
    k_uu = k_uu + strategy.jitter_val * torch.eye(k_uu.shape[-1], dtype=k_uu.dtype)
    chol_uu = psd_safe_cholesky(k_uu)
    n_inducing = inducing.shape[0]
    n_features = n_inducing + (offset_task is not None)
    gram = torch.zeros(n_features, n_features, dtype=k_uu.dtype)
    projected = torch.zeros(n_features, dtype=k_uu.dtype)
    for start in range(0, x.shape[0], CHUNK_ROWS):
        rows = x[start: start + CHUNK_ROWS]
        residual = y[start: start + CHUNK_ROWS] - model.mean_module(rows)
        features = torch.linalg.solve_triangular(
            chol_uu, model.covar_module(inducing, rows).to_dense(), upper=False)
        if offset_task is not None:
            in_task = rows[:, model.layout.task_column].round() == offset_task
            features = torch.cat([features, OFFSET_PRIOR_STD * in_task.to(features.dtype)[None]])
        gram += features @ features.T
        projected += features @ residual
    noise = likelihood.noise.reshape(())
    precision = torch.eye(n_features, dtype=k_uu.dtype) + gram / noise
    chol_precision = psd_safe_cholesky(precision)
    mean = torch.cholesky_solve((projected / noise).unsqueeze(-1), chol_precision).squeeze(-1)
    covariance = torch.cholesky_inverse(chol_precision)[:n_inducing, :n_inducing]
    chol_covariance = psd_safe_cholesky((covariance + covariance.T) / 2)
    if not (torch.isfinite(mean).all() and torch.isfinite(chol_covariance).all()):
        raise AT2Error("the closed-form q(u) update produced non-finite values; check the "
                       "observations for extreme values, or use fewer inducing points")
    distribution.variational_mean.copy_(mean[:n_inducing])
    distribution.chol_variational_covar.copy_(chol_covariance)
    if offset_task is not None:
        model.mean_module.constants[offset_task] += OFFSET_PRIOR_STD * mean[n_inducing]
    model.eval()
