"""The AT2 sparse variational GP: per-task constant mean, scale * epoch * task * hyper kernel."""

from __future__ import annotations

from dataclasses import dataclass

import gpytorch
import torch
from gpytorch.kernels import ScaleKernel
from gpytorch.models import ApproximateGP
from gpytorch.variational import CholeskyVariationalDistribution, VariationalStrategy

from at2_tune.model.epoch_kernel import EpochKernel
from at2_tune.model.hyper_kernel import HyperparameterKernel
from at2_tune.model.inputs import InputLayout
from at2_tune.model.task_kernel import TaskKernel


class TaskMean(gpytorch.means.Mean):
    """A learned constant per task."""

    def __init__(self, n_tasks: int, task_column: int) -> None:
        super().__init__()
        self.task_column = task_column
        self.register_parameter("constants", torch.nn.Parameter(torch.zeros(n_tasks)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., n, width)`` -> ``(..., n)``."""
        return self.constants[x[..., self.task_column].round().long()]


@dataclass(frozen=True)
class ModelShape:
    """Sizes that fix the model's parameter shapes (part of a saved fit's metadata)."""

    n_numeric: int
    categorical_sizes: tuple[int, ...]
    n_tasks: int
    n_inducing: int
    embedding_dim: int = 2
    hidden_dim: int = 32
    feature_dim: int = 8

    @property
    def layout(self) -> InputLayout:
        return InputLayout(self.n_numeric, len(self.categorical_sizes))


class AT2GP(ApproximateGP):
    """Sparse variational GP over rows laid out by :class:`InputLayout`.

    Covariance: ``s * K_epoch(t, t') * K_task(i, j) * K_hyper(x, x')``, one outputscale ``s``.
    Inducing points are learned (their task and categorical columns are indices and do not
    move; the epoch kernel uses ``|t|`` so their progress stays positive).
    """

    def __init__(self, shape: ModelShape, inducing_points: torch.Tensor) -> None:
        layout = shape.layout
        if inducing_points.shape != (shape.n_inducing, layout.width):
            raise ValueError(f"inducing points have shape {tuple(inducing_points.shape)}, "
                             f"expected ({shape.n_inducing}, {layout.width})")
        distribution = CholeskyVariationalDistribution(shape.n_inducing)
        strategy = VariationalStrategy(self, inducing_points, distribution,
                                       learn_inducing_locations=True)
        super().__init__(strategy)
        self.shape = shape
        self.layout = layout
        self.mean_module = TaskMean(shape.n_tasks, layout.task_column)
        self.epoch_kernel = EpochKernel(active_dims=[layout.progress_column])
        self.task_kernel = TaskKernel(shape.n_tasks, active_dims=[layout.task_column])
        self.hyper_kernel = HyperparameterKernel(
            shape.n_numeric, shape.categorical_sizes, shape.embedding_dim, shape.hidden_dim,
            shape.feature_dim, active_dims=layout.config_columns)
        self.covar_module = ScaleKernel(self.epoch_kernel * self.task_kernel * self.hyper_kernel)

    def initialize_variational_distribution(self) -> None:
        """Initialize q(u) from the prior now (GPyTorch otherwise does it, drawing from the global
        RNG, at the first training call); call it under a seeded RNG for reproducibility."""
        strategy = self.variational_strategy
        strategy._variational_distribution.initialize_variational_distribution(
            strategy.prior_distribution)
        strategy.variational_params_initialized.fill_(1)

    def forward(self, x: torch.Tensor) -> gpytorch.distributions.MultivariateNormal:
        return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))


def stratified_inducing_points(rows: torch.Tensor, n_inducing: int, target_task: int, target_share: float,
                               generator: torch.Generator, task_column: int) -> torch.Tensor:
    """Pick ``n_inducing`` inducing points: training rows, plus copies placed on the target task.

    ``target_share`` of the points are randomly chosen rows whose task column is set to
    ``target_task``, so the posterior can represent what is specific to the new task even
    before it has observations; the rest are rows drawn uniformly without replacement.

    Args:
        rows: ``(n, width)`` training inputs.
    Returns:
        ``(n_inducing, width)``.
    """
    n_target = int(round(n_inducing * target_share))
    picks = torch.randperm(rows.shape[0], generator=generator)
    if rows.shape[0] < n_inducing:
        picks = picks[torch.randint(rows.shape[0], (n_inducing,), generator=generator)]
    chosen = rows[picks[:n_inducing]].clone()
    chosen[:n_target, task_column] = float(target_task)
    return chosen
