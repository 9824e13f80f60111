"""The optimal q(u) of the AT2 GP in closed form, for fixed kernel hyperparameters.

With a Gaussian likelihood, the variational distribution that maximizes the ELBO over all data is
known exactly (Titsias, 2009): in GPyTorch's whitened parameterization ``u = L v`` with
``K_uu = L L^T`` and ``A = L^{-1} K_uf``,

.. math::
    S = (I + A A^T / \\sigma^2)^{-1}, \\qquad m = S A (y - \\mu) / \\sigma^2 .

The data enter only through ``K_uf K_fu`` and ``K_uf (y - mu)``. The prior tasks all share one grid
of (configuration, epoch) cells and the kernel is ``s * K_epoch * K_task * K_hyper``, so with
``B = s * K_epoch * K_hyper`` between the inducing points and the grid (``M x n_grid``) and
``C`` the task correlations,

.. math::
    K_uf K_fu = (C_\\tau C_\\tau^T) \\circ (B B^T), \\qquad
    K_uf (y - \\mu) = \\textstyle\\sum_j C_{\\tau j} \\circ B (y_j - \\mu_j)

where ``C_tau`` (``M x T``) holds the correlation of each inducing point's task with each prior
task. :class:`PriorSummary` keeps ``B B^T`` and ``B (Y - mu)^T``; while the hyperparameters are
fixed, conditioning on the new task's observations then costs ``O(M^3 + M^2 T)`` however many
prior tasks and cells there are, and the task correlations (which move with every matched
observation) are applied exactly.

A partially observed prior (task ``j`` observed only the cells of a mask ``m_j``, e.g. early-stopped
trials) has one Gram matrix per task: with ``B_j = B diag(m_j)`` the columns of ``B`` task ``j``
observed and ``c_j`` the ``j``-th column of ``C_tau``,

.. math::
    K_uf K_fu = \\textstyle\\sum_j \\operatorname{diag}(c_j)\\, B_j B_j^T \\operatorname{diag}(c_j),
    \\qquad K_uf (y - \\mu) = \\textstyle\\sum_j c_j \\circ B_j (y_j - \\mu_j)

(exactly the update over the observed rows alone). Tasks with the same mask share ``B_j B_j^T``:
a fully observed prior keeps the single Gram matrix ``B B^T`` above.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class PriorSummary:
    """The prior tasks' sufficient statistics for the closed-form q(u), for fixed hyperparameters.

    Attributes:
        roots: ``(K, M, M)`` ``R_k`` with ``R_k R_k^T = B_k B_k^T``, one per distinct mask of
            observed cells (``K = 1`` when every task observed every cell; from an
            eigendecomposition: conditioning whitens ``diag(c_j) R_k`` per task, which keeps the
            whitened Gram matrix positive semi-definite however ill-conditioned ``K_uu`` is).
        groups: ``(T,)`` long, the index into ``roots`` of each prior task's mask.
        projected: ``(M, T)`` ``B_j (y_j - mu_j)``: one column per prior task.
    """

    roots: torch.Tensor
    groups: torch.Tensor
    projected: torch.Tensor

    @classmethod
    @torch.no_grad()
    def compute(cls, model: AT2GP, grid_rows: torch.Tensor, curves: torch.Tensor,
                observed: torch.Tensor | None = None) -> "PriorSummary":
        """Summarize prior tasks observed on (a subset of) the cells of one grid.

        Args:
            grid_rows: ``(n_grid, width)`` input rows of the grid's cells (task column ignored).
            curves: ``(T, n_grid)`` each prior task's values at those cells (ignored where not
                ``observed``, e.g. NaN).
            observed: ``(T, n_grid)`` bool, the cells each task observed (default: the cells
                where ``curves`` is not NaN).
        Raises:
            AT2Error: ``observed`` does not match ``curves``, or an observed value is NaN.
        """
        observed = ~torch.isnan(curves) if observed is None else observed.to(torch.bool)
        _check_observed(grid_rows, curves, observed)
        masks, groups = torch.unique(observed, dim=0, return_inverse=True)
        inducing = model.variational_strategy.inducing_points
        n_inducing, n_tasks = inducing.shape[0], curves.shape[0]
        grams = [torch.zeros(n_inducing, n_inducing, dtype=curves.dtype) for _ in masks]
        projected = torch.zeros(n_inducing, n_tasks, dtype=curves.dtype)
        constants = model.mean_module.constants[:n_tasks]
        scale = model.covar_module.outputscale
        for start in range(0, grid_rows.shape[0], CHUNK_ROWS):
            chunk = slice(start, start + CHUNK_ROWS)
            rows = grid_rows[chunk]
            shared = scale * (model.epoch_kernel(inducing, rows).to_dense()
                              * model.hyper_kernel(inducing, rows).to_dense())
            for gram, mask in zip(grams, masks[:, chunk]):
                part = shared if bool(mask.all()) else shared[:, mask]
                gram += part @ part.T
            residuals = torch.where(observed[:, chunk], curves[:, chunk] - constants[:, None], 0.0)
            projected += shared @ residuals.T
        return cls(torch.stack([_psd_root(gram) for gram in grams]), groups, projected)

    @property
    def n_tasks(self) -> int:
        return self.projected.shape[1]


def _check_observed(grid_rows: torch.Tensor, curves: torch.Tensor, observed: torch.Tensor) -> None:
    if curves.ndim != 2 or curves.shape[1] != grid_rows.shape[0] or observed.shape != curves.shape:
        raise AT2Error(f"prior curves {tuple(curves.shape)} and mask {tuple(observed.shape)} must "
                       f"both be (n_tasks, {grid_rows.shape[0]}): one value per grid cell")
    if bool(torch.isnan(curves[observed]).any()):
        raise AT2Error("a prior value marked observed is NaN; mark it unobserved (observed=False)")


def _psd_root(gram: torch.Tensor) -> torch.Tensor:
    """``R`` ``(M, M)`` with ``R R^T = gram`` (negative eigenvalues of round-off set to 0)."""
    eigenvalues, eigenvectors = torch.linalg.eigh((gram + gram.T) / 2)
    return eigenvectors * eigenvalues.clamp_min(0.0).sqrt()


@torch.no_grad()
def set_optimal_variational_distribution(model: AT2GP,
                                         likelihood: gpytorch.likelihoods.GaussianLikelihood,
                                         x: torch.Tensor, y: torch.Tensor,
                                         offset_task: int | None = None,
                                         prior: PriorSummary | None = None) -> None:
    """Set ``model``'s q(u) to the ELBO optimum given all data and the current hyperparameters.

    With ``offset_task``, that task's constant mean is estimated jointly: its observations get an
    offset ``b ~ N(0, OFFSET_PRIOR_STD^2)`` from its current constant, ``w = [v, b /
    OFFSET_PRIOR_STD]`` is solved for together, the task's constant moves by the posterior mean
    of ``b`` and q(v) is the marginal of the joint posterior. (The new task's level is otherwise
    unknown: the epoch kernel is 0 at epoch 0, so the GP alone cannot explain a task that sits
    higher than the prior tasks.) The caller sets the constant the offset starts from.

    Args:
        x: ``(n, width)`` inputs not covered by ``prior``.
        y: ``(n,)`` observed values.
        offset_task: the task whose constant mean is re-estimated (the new task), or None.
        prior: the prior tasks' summary (tasks ``0..T-1``), computed with the current
            hyperparameters; their rows are then not in ``x``.
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
    n_inducing = inducing.shape[0]
    chol_uu = inducing_cholesky(model)
    dtype = chol_uu.dtype
    whitened_gram, projected = _prior_terms(model, prior, chol_uu)
    offset_cross = torch.zeros(n_inducing, dtype=dtype)
    offset_count, offset_residual = 0.0, 0.0
    for start in range(0, x.shape[0], CHUNK_ROWS):
        rows = x[start: start + CHUNK_ROWS]
        residual = y[start: start + CHUNK_ROWS] - model.mean_module(rows)
        k_uf = model.covar_module(inducing, rows).to_dense()
        features = _whiten(chol_uu, k_uf)
        whitened_gram += features @ features.T
        projected += k_uf @ residual
        if offset_task is not None:
            in_task = (rows[:, model.layout.task_column].round() == offset_task).to(k_uf.dtype)
            offset_cross += k_uf @ in_task
            offset_count += float(in_task.sum())
            offset_residual += float(in_task @ residual)
    whitened_projected = _whiten(chol_uu, projected[:, None])[:, 0]
    n_features = n_inducing + (offset_task is not None)
    full_gram = torch.zeros(n_features, n_features, dtype=dtype)
    full_gram[:n_inducing, :n_inducing] = (whitened_gram + whitened_gram.T) / 2
    full_projected = torch.zeros(n_features, dtype=dtype)
    full_projected[:n_inducing] = whitened_projected
    if offset_task is not None:
        cross = OFFSET_PRIOR_STD * torch.linalg.solve_triangular(
            chol_uu, offset_cross[:, None], upper=False)[:, 0]
        full_gram[:n_inducing, n_inducing] = full_gram[n_inducing, :n_inducing] = cross
        full_gram[n_inducing, n_inducing] = OFFSET_PRIOR_STD ** 2 * offset_count
        full_projected[n_inducing] = OFFSET_PRIOR_STD * offset_residual
    noise = likelihood.noise.reshape(())
    precision = torch.eye(n_features, dtype=dtype) + full_gram / noise
    chol_precision = psd_safe_cholesky(precision, max_tries=6)
    mean = torch.cholesky_solve((full_projected / noise).unsqueeze(-1), chol_precision).squeeze(-1)
    covariance = torch.cholesky_inverse(chol_precision)[:n_inducing, :n_inducing]
    chol_covariance = psd_safe_cholesky((covariance + covariance.T) / 2, max_tries=6)
    if not (torch.isfinite(mean).all() and torch.isfinite(chol_covariance).all()):
        raise AT2Error("the closed-form q(u) update produced non-finite values; check the "
                       "observations for extreme values, or use fewer inducing points")
    distribution.variational_mean.copy_(mean[:n_inducing])
    distribution.chol_variational_covar.copy_(chol_covariance)
    if offset_task is not None:
        model.mean_module.constants[offset_task] += OFFSET_PRIOR_STD * mean[n_inducing]
    model.eval()


def inducing_cholesky(model: AT2GP) -> torch.Tensor:
    """The lower Cholesky factor of ``K_uu`` plus GPyTorch's jitter, ``(M, M)`` (more jitter, up
    to 1e-3, if the inducing points are nearly duplicates)."""
    strategy = model.variational_strategy
    inducing = strategy.inducing_points
    k_uu = model.covar_module(inducing).to_dense()
    k_uu = k_uu + strategy.jitter_val * torch.eye(inducing.shape[0], dtype=k_uu.dtype)
    return psd_safe_cholesky(k_uu, max_tries=6)


def _prior_terms(model: AT2GP, prior: PriorSummary | None,
                 chol_uu: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The prior tasks' whitened ``L^{-1} K_uf K_fu L^{-T}`` ``(M, M)`` and ``K_uf (y - mu)``
    ``(M,)`` (zeros without a summary)."""
    n_inducing = chol_uu.shape[0]
    if prior is None:
        return (torch.zeros(n_inducing, n_inducing, dtype=chol_uu.dtype),
                torch.zeros(n_inducing, dtype=chol_uu.dtype))
    inducing = model.variational_strategy.inducing_points
    tasks = inducing[:, model.layout.task_column].round().long()
    correlation = model.task_kernel.task_covariance()[tasks, : prior.n_tasks]  # (M, T)
    # K_uf K_fu = sum_j diag(c_j) R_j R_j^T diag(c_j): whiten each task's factor, then multiply
    roots = prior.roots if prior.roots.shape[0] == 1 else prior.roots[prior.groups]  # (1|T, M, M)
    factors = (correlation.T[:, :, None] * roots).transpose(0, 1)   # (M, T, M)
    features = _whiten(chol_uu, factors.reshape(n_inducing, -1))
    projected = (correlation * prior.projected).sum(dim=1)
    return features @ features.T, projected


def _whiten(chol: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """``L^{-1} matrix``."""
    return torch.linalg.solve_triangular(chol, matrix, upper=False)
