"""Matched-cell statistics between tasks, the data the AT2 task kernel is measured from.

A *cell* is one (configuration, epoch) of the shared grid of ``n_cells = N configs x E epochs``.
For tasks ``i`` and ``j``, the matched cells are those observed in both. With ``n_ij`` matched
cells and each task's matched values centred by their mean, the AT2 distance is

    d_ij = || (x_i - mean x_i) - (x_j - mean x_j) ||^2 / n_ij
         = ( S2_ij + S2_ji - 2 C_ij - (S_ij - S_ji)^2 / n_ij ) / n_ij

where ``S_ij`` is the sum of task ``i``'s values over the cells matched with ``j``, ``S2_ij`` the
sum of their squares and ``C_ij`` the sum of products. These sufficient statistics are sums over
cells, so an observation updates one row and one column in O(tasks) and no distance is ever
recomputed from scratch.
"""

from __future__ import annotations

import torch

from at2_tune.errors import AT2Error

UNMATCHED_DISTANCE = 0.5
"""``d_ij`` when tasks ``i`` and ``j`` share at most one cell (the AT2 paper's value)."""


class MatchedTaskStatistics:
    """Per-task-pair sums over matched cells, updated incrementally (float64 tensors).

    Attributes:
        values: ``(T, n_cells)`` observed values (0 where unobserved).
        observed: ``(T, n_cells)`` bool mask.
        counts: ``(T, T)`` number of matched cells ``n_ij`` (diagonal: cells observed in ``i``).
        sums: ``(T, T)`` ``S_ij``; ``squares``: ``(T, T)`` ``S2_ij``; ``products``: ``(T, T)`` ``C_ij``.
    """

    def __init__(self, n_tasks: int, n_cells: int) -> None:
        self.n_tasks, self.n_cells = n_tasks, n_cells
        self.values = torch.zeros(n_tasks, n_cells, dtype=torch.float64)
        self.observed = torch.zeros(n_tasks, n_cells, dtype=torch.bool)
        self.counts = torch.zeros(n_tasks, n_tasks, dtype=torch.float64)
        self.sums = torch.zeros_like(self.counts)
        self.squares = torch.zeros_like(self.counts)
        self.products = torch.zeros_like(self.counts)

    @classmethod
    def from_table(cls, values: torch.Tensor, observed: torch.Tensor) -> "MatchedTaskStatistics":
        """Statistics of a whole ``(T, n_cells)`` table at once (a few matrix products)."""
        stats = cls(*values.shape)
        mask = observed.to(torch.float64)
        x = torch.where(observed, values.to(torch.float64), 0.0)
        stats.values, stats.observed = x, observed.clone()
        stats.counts = mask @ mask.T
        stats.sums = x @ mask.T
        stats.squares = (x * x) @ mask.T
        stats.products = x @ x.T
        return stats

    def add(self, task: int, cells: torch.Tensor, values: torch.Tensor) -> None:
        """Record ``values`` (``(k,)``) of ``task`` at ``cells`` (``(k,)`` distinct, unobserved)."""
        cells = torch.as_tensor(cells, dtype=torch.long).reshape(-1)
        values = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
        if cells.numel() != values.numel():
            raise AT2Error(f"{cells.numel()} cells but {values.numel()} values")
        if cells.unique().numel() != cells.numel() or bool(self.observed[task, cells].any()):
            raise AT2Error(f"task {task}: cells {cells.tolist()} repeat or were already observed; "
                           "each (config, epoch) is observed at most once per task")
        other_mask = self.observed[:, cells].to(torch.float64)          # (T, k)
        other_values = self.values[:, cells]                            # (T, k), 0 if unobserved
        row_counts = other_mask.sum(1)
        row_sums = other_mask @ values                                  # S_task,j
        col_sums = other_values.sum(1)                                  # S_j,task
        row_squares = other_mask @ (values * values)
        col_squares = (other_values * other_values).sum(1)
        row_products = other_values @ values
        for table, row, col in ((self.counts, row_counts, row_counts),
                                (self.sums, row_sums, col_sums),
                                (self.squares, row_squares, col_squares),
                                (self.products, row_products, row_products)):
            table[task, :] += row
            table[:, task] += col  # row[task] = col[task] = 0: the cells are new to `task`
        self.values[task, cells] = values
        self.observed[task, cells] = True
        k = float(cells.numel())
        self.counts[task, task] += k
        self.sums[task, task] += values.sum()
        self.squares[task, task] += (values * values).sum()
        self.products[task, task] += (values * values).sum()

    def distances(self, unmatched: float | None = None) -> torch.Tensor:
        """``(T, T)`` centred mean squared distances ``d_ij``; ``d_ii = 0``.

        Pairs with at most one matched cell get ``unmatched`` (default
        :data:`UNMATCHED_DISTANCE`).
        """
        n = self.counts
        safe_n = n.clamp_min(1.0)
        spread = self.squares + self.squares.T - 2 * self.products \
            - (self.sums - self.sums.T) ** 2 / safe_n
        distance = (spread / safe_n).clamp_min(0.0)
        fill = UNMATCHED_DISTANCE if unmatched is None else unmatched
        distance = torch.where(n > 1, distance, torch.full_like(distance, fill))
        distance.fill_diagonal_(0.0)
        return distance

    def matched_fraction(self) -> torch.Tensor:
        """``(T, T)`` fraction ``n_ij / n_cells`` of the grid matched between each pair."""
        return self.counts / self.n_cells

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"values": self.values, "observed": self.observed, "counts": self.counts,
                "sums": self.sums, "squares": self.squares, "products": self.products}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for key in ("values", "observed", "counts", "sums", "squares", "products"):
            setattr(self, key, state[key].clone())
        self.n_tasks, self.n_cells = self.values.shape
