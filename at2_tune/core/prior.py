"""Learning curves of earlier tuning tasks, the data AT2 transfers from."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from at2_tune.databases import LearningCurveDatabase
from at2_tune.databases.user import UserDatabase
from at2_tune.errors import AT2Error
from at2_tune.evaluation import average_ranks


@dataclass(frozen=True, eq=False)
class PriorData:
    """Curves of prior tasks on a shared grid of configurations, possibly partially observed.

    A prior imported from past experiments may hold early-stopped trials (a configuration seen
    only for its first epochs on a task) and configurations run on some tasks only: the grid is
    then the union of every task's configurations and ``curves`` holds NaN at every unobserved
    (task, config, epoch) cell. Nothing fills NaN in: every reader of ``curves`` uses
    :attr:`observed`. A database prior is fully observed (no NaN).

    Attributes:
        tasks: prior task names.
        configs: the grid's configurations (in the search space's vocabulary).
        curves: float64 ``(n_tasks, n_configs, n_epochs)``; NaN where unobserved.
        source: where the data came from (e.g. ``hyperrec seed profile 0``), for metadata.
    Raises:
        AT2Error: ``curves`` is not 3-dimensional, its task or config axis does not match
            ``tasks`` or ``configs``, it holds an infinite value, or a task observed no cell.
    """

    tasks: tuple[str, ...]
    configs: tuple[dict[str, Any], ...]
    curves: np.ndarray
    source: str = ""

    def __post_init__(self) -> None:
        curves = np.asarray(self.curves)
        if curves.ndim != 3:
            raise AT2Error(f"prior curves have shape {curves.shape}; expected 3 dimensions "
                           "(n_tasks, n_configs, n_epochs), with NaN at unobserved cells")
        n_tasks, n_configs, _ = curves.shape
        if n_tasks != len(self.tasks) or n_configs != len(self.configs):
            raise AT2Error(f"prior curves have shape {curves.shape} but there are "
                           f"{len(self.tasks)} tasks and {len(self.configs)} configs; the "
                           "first two axes must be (tasks, configs) in that order")
        if np.isinf(curves).any():
            raise AT2Error("prior curves hold an infinite value; mark unobserved cells with "
                           "NaN and drop diverged values")
        empty = np.isnan(curves).reshape(n_tasks, n_configs * curves.shape[2]).all(axis=1)
        if empty.any():
            task = self.tasks[int(np.flatnonzero(empty)[0])]
            raise AT2Error(f"prior task {task!r} has no observed value (every cell of its "
                           "curves is NaN); drop it from the prior, or add its observations")

    @classmethod
    def from_database(cls, db: LearningCurveDatabase, tasks: Sequence[str],
                      seed_profile: int = 0) -> "PriorData":
        curves = np.stack([db.task_curves(task, seed_profile) for task in tasks]) if tasks \
            else np.zeros((0, db.n_configs, db.n_epochs))
        return cls(tuple(tasks), db.configs, curves, f"{db.name} seed profile {seed_profile}")

    @classmethod
    def from_user_database(cls, db: UserDatabase) -> "PriorData":
        """A user database's curves (``at2-tune prior``) on the maximized scale (a ``min``
        metric negated)."""
        curves = db.curves if db.mode == "max" else -db.curves
        return cls(db.task_names, db.configs, np.array(curves),
                   f"user database ({len(db.tasks)} tasks, metric {db.metric})")

    @classmethod
    def empty(cls, configs: Sequence[dict[str, Any]], n_epochs: int) -> "PriorData":
        """No prior task: plain multi-fidelity BO over ``configs``."""
        return cls((), tuple(configs), np.zeros((0, len(configs), n_epochs)), "none")

    def with_epochs(self, n_epochs: int) -> "PriorData":
        """The same curves on an epoch axis of ``n_epochs``: later epochs cut off, or missing
        ones added as unobserved (NaN), so a history of shorter runs serves a longer one.

        Raises:
            AT2Error: ``n_epochs < 1``, or a task has no observed value in the first
                ``n_epochs`` epochs.
        """
        if n_epochs < 1:
            raise AT2Error(f"n_epochs={n_epochs} must be at least 1")
        if n_epochs == self.n_epochs:
            return self
        curves = np.full((self.n_tasks, self.n_configs, n_epochs), np.nan)
        kept = min(n_epochs, self.n_epochs)
        curves[:, :, :kept] = self.curves[:, :, :kept]
        return PriorData(self.tasks, self.configs, curves, self.source)

    @property
    def n_tasks(self) -> int:
        return self.curves.shape[0]

    @property
    def n_configs(self) -> int:
        return self.curves.shape[1]

    @property
    def n_epochs(self) -> int:
        return self.curves.shape[2]

    @property
    def observed(self) -> np.ndarray:
        """bool ``(n_tasks, n_configs, n_epochs)``: the cells with a value (not NaN)."""
        return ~np.isnan(self.curves)

    @property
    def fully_observed(self) -> bool:
        """Whether every task observed every cell of the grid (no NaN)."""
        return not np.isnan(self.curves).any()

    def columns_on(self, configs: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """Where the prior's configurations are among ``configs`` (e.g. a database's grid):
        int arrays ``(ours, theirs)``, the prior's column of each configuration that ``configs``
        holds and its index there (a configuration ``configs`` lacks is left out)."""
        from search_spaces.keys import config_key

        where = {config_key(c): i for i, c in enumerate(configs)}
        pairs = [(column, where[config_key(c)]) for column, c in enumerate(self.configs)
                 if config_key(c) in where]
        ours, theirs = (list(side) for side in zip(*pairs)) if pairs else ([], [])
        return np.array(ours, dtype=np.int64), np.array(theirs, dtype=np.int64)

    def best_values_on(self, configs: Sequence[dict[str, Any]]) -> np.ndarray:
        """``(n_tasks, len(configs))`` each prior task's best observed value of each of
        ``configs`` (NaN where the task did not train it, or it is not among the prior's
        configurations): what :func:`prior_order` and the greedy portfolio rank."""
        ours, theirs = self.columns_on(configs)
        scores = np.full((self.n_tasks, len(configs)), np.nan)
        if ours.size:
            scores[:, theirs] = best_values(self.curves[:, ours])
        return scores

    def order_of(self, configs: Sequence[dict[str, Any]]) -> list[int]:
        """Indices into ``configs`` of those the prior tasks trained, best first
        (:func:`prior_order` of :meth:`best_values_on`)."""
        return [int(c) for c in prior_order(self.best_values_on(configs))]

    def matched_counts(self) -> np.ndarray:
        """int ``(n_tasks, n_tasks)``: cells observed by both tasks of each pair (diagonal: cells
        observed by the task). Pairs sharing at most one cell are unmatched for the task kernel
        (``at2_tune.model.task_statistics.UNMATCHED_DISTANCE``)."""
        mask = self.observed.reshape(self.n_tasks, self.n_configs * self.n_epochs)
        mask = mask.astype(np.int64)
        return mask @ mask.T

    def standardized(self) -> "PriorData":
        """Each task's curves shifted and scaled to the prior tasks' average mean and spread.

        Tasks differ in how far their configurations spread (LCBench accuracies near 0.99 vs
        near 0.6); without this, the tasks with the widest spread dominate what transfers.
        The common target scale keeps the prior comparable with the new task's raw values.
        A task's mean and spread are those of its observed cells; NaN cells stay NaN.
        """
        if self.n_tasks == 0:
            return self
        mean, spread = (value[:, None, None] for value in self.task_levels())
        curves = (self.curves - mean) / spread * spread.mean() + mean.mean()
        return PriorData(self.tasks, self.configs, curves, f"{self.source} (standardized)")

    def task_levels(self) -> tuple[np.ndarray, np.ndarray]:
        """``(T,)`` each task's mean and ``(T,)`` its spread (at least 1e-12) over its observed
        cells: what :meth:`standardized` takes away."""
        flat = self.curves.reshape(self.n_tasks, -1)
        return np.nanmean(flat, axis=1), np.maximum(np.nanstd(flat, axis=1), 1e-12)

    def fingerprint(self) -> str:
        """A hash of tasks, configs and curves (keys the cache of offline fits)."""
        digest = hashlib.sha256(json.dumps([self.tasks, self.configs], sort_keys=True).encode())
        digest.update(np.ascontiguousarray(self.curves, dtype=np.float64).tobytes())
        return digest.hexdigest()


def mean_over_tasks(values: np.ndarray, observed: np.ndarray,
                    weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The mean over the tasks (axis 0) that observed each cell, and how many did.

    Args:
        values: ``(T, ...)`` values (any, e.g. NaN, where unobserved).
        observed: bool, the shape of ``values``.
        weights: ``(T,)`` positive task weights (``None``: equal; the plain mean below).
    Returns:
        ``(mean, count)`` of shape ``values.shape[1:]``; ``mean`` is NaN where ``count`` is 0
        (no task observed the cell: nothing is invented). With every cell observed, ``mean``
        equals ``values.mean(axis=0)`` bit for bit.
    """
    count = observed.sum(axis=0)
    if weights is not None:
        shape = (-1,) + (1,) * (values.ndim - 1)
        mass = np.where(observed, weights.reshape(shape), 0.0)
        total = (mass * np.where(observed, values, 0.0)).sum(axis=0)
        mean = np.divide(total, mass.sum(axis=0), out=np.full(total.shape, np.nan),
                         where=count > 0)
        return mean, count
    total = np.where(observed, values, 0.0).sum(axis=0)
    mean = np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0)
    return mean, count


def copula_average(values: np.ndarray, observed: np.ndarray,
                   weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`mean_over_tasks`, on each task's Gaussian copula scores.

    Each task's observed values become ``z = Phi^-1((rank + 1/2) / n)`` (ranks within the
    task, ties averaged); the (weighted) mean ``z`` of a cell over the tasks that observed it
    is mapped back to a value through the quantiles of all observed prior values, at
    ``Phi(z)``. Scale-free across tasks: only each task's ordering of its cells counts.

    Returns:
        ``(value, count)`` of shape ``values.shape[1:]``; NaN where no task observed the cell.
    """
    scores = np.full(values.shape, np.nan)
    for task in range(values.shape[0]):
        mask = observed[task]
        ranks = average_ranks(values[task][mask]) - 1  # 0-based
        scores[task][mask] = _normal_quantile((ranks + 0.5) / ranks.size)
    mean, count = mean_over_tasks(scores, observed, weights)
    return np.where(count > 0, _from_copula(mean, values[observed]), np.nan), count


def copula_imputed_average(imputed: np.ndarray, values: np.ndarray, observed: np.ndarray,
                           weights: np.ndarray | None = None) -> np.ndarray:
    """:func:`copula_average` for cells the tasks did not observe, given a value per task there.

    Each of task ``t``'s ``imputed`` values (e.g. the GP's curves of the prior tasks at a
    configuration none of them trained) becomes ``Phi^-1(m / n)``, with ``m`` the number of the
    ``n`` values the task observed below it plus half of those equal to it, kept within
    ``[1/2, n - 1/2]``: a value the task observed scores as its cell does in
    :func:`copula_average`, one above (below) all of them as its best (worst) cell. The
    (weighted) mean over the tasks is mapped back through the same quantiles, so imputed and
    observed cells sit on one scale.

    Args:
        imputed: ``(T, ...)`` one value per task and cell.
        values, observed: ``(T, C, E)`` the tasks' curves and which cells they observed.
    Returns:
        ``imputed.shape[1:]`` values.
    """
    scores = np.empty(imputed.shape)
    for task in range(values.shape[0]):
        reference = np.sort(values[task][observed[task]])
        below = np.searchsorted(reference, imputed[task], side="left")
        up_to = np.searchsorted(reference, imputed[task], side="right")
        middle = np.clip((below + up_to) / 2, 0.5, reference.size - 0.5)
        scores[task] = _normal_quantile(middle / reference.size)
    mean, _ = mean_over_tasks(scores, np.ones(scores.shape, dtype=bool), weights)
    return _from_copula(mean, values[observed])


def _normal_quantile(level: np.ndarray) -> np.ndarray:
    import torch

    return torch.special.ndtri(torch.as_tensor(np.asarray(level, dtype=float))).numpy()


def _from_copula(mean_score: np.ndarray, pooled: np.ndarray) -> np.ndarray:
    """Mean copula scores mapped back to values through the quantiles of ``pooled`` values
    (NaN scores: anything, the callers mask them)."""
    import torch

    level = torch.special.ndtr(torch.as_tensor(np.nan_to_num(mean_score))).numpy()
    return np.quantile(np.sort(pooled), level)


@dataclass(frozen=True)
class HeldOutTask:
    """One prior task playing the new task: ``reference`` ``(C, E)`` is the mean of the other
    tasks (0 where none observed a cell), ``usable`` (bool ``(C, E)``) the cells this task and
    at least ``min_others`` other tasks observed, and ``offset + slope * reference`` the least
    squares affine map of this task's usable cells on the reference."""

    task: int
    reference: np.ndarray
    usable: np.ndarray
    offset: float
    slope: float

    def mapped(self) -> np.ndarray:
        """``(C, E)`` the reference on this task's scale."""
        return self.offset + self.slope * self.reference


def held_out_tasks(curves: np.ndarray, observed: np.ndarray, min_others: int = 1,
                   min_cells: int = 3):
    """Yield a :class:`HeldOutTask` for every prior task with at least ``min_cells`` usable
    cells (each task in turn plays the new task; the others are its prior).

    Args:
        curves: ``(T, C, E)`` values on the model's scale (anything where unobserved).
        observed: bool ``(T, C, E)``.
    """
    values = np.where(observed, curves, 0.0)
    totals, counts = values.sum(axis=0), observed.sum(axis=0)
    for task in range(curves.shape[0]):
        others = counts - observed[task]
        usable = observed[task] & (others >= min_others)
        if usable.sum() < min_cells:
            continue
        reference = np.where(others > 0, (totals - values[task]) / np.maximum(others, 1), 0.0)
        x, y = reference[usable], values[task][usable]
        spread = float(np.var(x))
        slope = float(np.cov(x, y, bias=True)[0, 1] / spread) if spread > 0 else 1.0
        yield HeldOutTask(task, reference, usable, float(y.mean() - slope * x.mean()), slope)


def best_values(curves: np.ndarray) -> np.ndarray:
    """``(T, C)`` each task's best observed value of each configuration over its epochs (NaN:
    none), from ``(T, C, E)`` curves (NaN: unobserved)."""
    curves = np.asarray(curves, dtype=float)
    best = np.nanmax(np.where(np.isnan(curves), -np.inf, curves), axis=2)
    best[np.isinf(best)] = np.nan
    return best


def prior_order(scores: np.ndarray) -> np.ndarray:
    """Configuration indices by mean rank over the tasks, best first (ties: lower index): the
    prior's order, the one every transfer baseline and AT2's budget planner read, in the bench
    and in live tuning alike.

    ``scores`` ``(T, C)``: each task's value of each configuration, higher is better, NaN where
    the task did not observe it (:func:`best_values`). A task ranks what it observed by the
    number of configurations it saw strictly better, divided by the number it saw less one (so
    tasks that observed few configurations weigh like the others); a configuration's rank is
    the mean over the tasks that observed it. Configurations no task observed are left out.
    """
    scores = np.asarray(scores, dtype=float)
    seen = ~np.isnan(scores)
    filled = np.where(seen, scores, -np.inf)
    better = ((filled[:, None, :] > filled[:, :, None]) & seen[:, None, :]).sum(axis=2)
    counts = np.maximum(seen.sum(axis=1, keepdims=True) - 1, 1)
    ranks = np.where(seen, better / counts, 0.0)
    observed_by = seen.sum(axis=0)
    mean_rank = np.where(observed_by > 0, ranks.sum(axis=0) / np.maximum(observed_by, 1), np.inf)
    order = np.argsort(np.round(mean_rank, 12), kind="stable")  # ties exact, not by rounding
    return order[observed_by[order] > 0]
