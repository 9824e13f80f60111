"""The AT2 task kernel, measured from matched low-fidelity observations."""

from __future__ import annotations

import torch
from gpytorch.constraints import GreaterThan, Interval, Positive
from gpytorch.kernels import Kernel

from at2_tune.model.task_statistics import MatchedTaskStatistics


class TaskKernel(Kernel):
    r"""Similarity of tasks from the distance of their matched (config, epoch) observations.

    .. math::
        k_{ij} = \exp\left(-\frac{d_{ij}}{(l\, g_{ij})^2}\right), \qquad
        g_{ij} = \frac{U}{1 + (U - 1)\, n_{ij} / (N E)}

    with ``d_ij`` and ``n_ij`` from :class:`~at2_tune.model.task_statistics.MatchedTaskStatistics`
    (set with :meth:`set_statistics`), a learned lengthscale ``l > 0`` and a learned sharpening
    ``U > 1``: with few matched cells, ``g`` is close to ``U`` and tasks look alike; as a new
    task's observations accumulate, ``g`` goes to 1 and the similarity sharpens. No outputscale
    (the model scales the product of kernels once).

    Nothing here assumes full grids: ``n_ij`` counts the cells observed by both tasks. A pair
    sharing at most one cell (the new task before its observations, or two tasks of a partially
    observed prior that ran different configurations or stopped at different epochs) has no
    measured distance: ``d_ij`` is the ``unmatched`` distance given to :meth:`set_statistics`
    (``ModelSettings.unmatched_distance``), and ``n_ij / (N E)`` near 0 makes ``g`` near ``U``.
    Prior pairs that matched only part of the grid likewise keep ``g > 1``.

    The matrix is made positive semi-definite by shrinking it towards the identity by the
    smallest amount that does so (``(K + c I) / (1 + c)``; ``c`` is computed without gradient),
    because distances measured on different matched subsets need not be Euclidean.

    Inputs: ``(..., n, 1)`` task indices stored as floats.
    """

    is_stationary = False

    def __init__(self, n_tasks: int, lengthscale_constraint: Interval | None = None,
                 sharpening_constraint: Interval | None = None, psd_margin: float = 1e-6,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.n_tasks = n_tasks
        self.psd_margin = psd_margin
        self.register_parameter("raw_task_lengthscale", torch.nn.Parameter(torch.zeros(1)))
        self.register_parameter("raw_sharpening", torch.nn.Parameter(torch.zeros(1)))
        self.register_constraint("raw_task_lengthscale", lengthscale_constraint or Positive())
        self.register_constraint("raw_sharpening", sharpening_constraint or GreaterThan(1.0))
        self.register_buffer("distances", torch.full((n_tasks, n_tasks), 0.5))
        self.register_buffer("matched_fraction", torch.zeros(n_tasks, n_tasks))
        self.distances.fill_diagonal_(0.0)
        self.task_lengthscale = 1.0
        self.sharpening = 1.5

    @property
    def task_lengthscale(self) -> torch.Tensor:
        return self.raw_task_lengthscale_constraint.transform(self.raw_task_lengthscale)

    @task_lengthscale.setter
    def task_lengthscale(self, value: float | torch.Tensor) -> None:
        value = torch.as_tensor(value, dtype=self.raw_task_lengthscale.dtype).reshape(1)
        self.initialize(raw_task_lengthscale=self.raw_task_lengthscale_constraint.inverse_transform(value))

    @property
    def sharpening(self) -> torch.Tensor:
        return self.raw_sharpening_constraint.transform(self.raw_sharpening)

    @sharpening.setter
    def sharpening(self, value: float | torch.Tensor) -> None:
        value = torch.as_tensor(value, dtype=self.raw_sharpening.dtype).reshape(1)
        self.initialize(raw_sharpening=self.raw_sharpening_constraint.inverse_transform(value))

    def set_statistics(self, statistics: MatchedTaskStatistics, unmatched: float | None = None) -> None:
        """Copy the current distances and matched fractions (``(T, T)``) into the kernel."""
        dtype = self.distances.dtype
        self.distances = statistics.distances(unmatched).to(dtype)
        self.matched_fraction = statistics.matched_fraction().to(dtype)

    def task_covariance(self) -> torch.Tensor:
        """The ``(T, T)`` task correlation matrix (unit diagonal, PSD)."""
        u = self.sharpening
        g = u / (1 + (u - 1) * self.matched_fraction)
        k = torch.exp(-self.distances / (self.task_lengthscale * g) ** 2)
        with torch.no_grad():
            smallest = torch.linalg.eigvalsh(k.double()).min().item()
        shift = max(0.0, self.psd_margin - smallest)
        if shift > 0:
            k = (k + shift * torch.eye(self.n_tasks, dtype=k.dtype)) / (1 + shift)
        return k

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False,
                **params) -> torch.Tensor:
        """``x1``: ``(..., n, 1)``, ``x2``: ``(..., m, 1)`` task indices -> ``(..., n, m)``."""
        covariance = self.task_covariance()
        i1 = x1[..., 0].round().long()
        i2 = x2[..., 0].round().long()
        if diag:
            return covariance[i1, i2]
        return covariance[i1.unsqueeze(-1), i2.unsqueeze(-2)]
