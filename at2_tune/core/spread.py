"""The transfer posterior's standard deviation from the prior tasks' own spread.

In the transfer posterior (``at2_tune.core.transfer``) a grid configuration's mean curve on the
new task is its average curve over the prior tasks, mapped onto the new task's scale. How far the new task can
sit from that average is what the prior tasks show among themselves: the spread of their values
around the average at each (configuration, epoch) cell (:func:`spread_over_tasks`). The new task
is one more draw, and its map is fitted, so the spread is widened by the error scale measured on
the prior when each task in turn plays the new task (:func:`spread_error_scale`: the root mean
square of the held-out task's errors in units of the others' spread). With few tasks a cell's spread is shrunk towards its epoch's pooled one.

The sparse GP's own standard deviations are too small on the new task (``docs/benchmarks.md``,
``experiments.surrogate_quality``).
"""

from __future__ import annotations

import numpy as np

from at2_tune.core.prior import held_out_tasks

MIN_SPREAD = 1e-12
PSEUDO_TASKS = 4.0
"""Weight of the epoch's pooled spread in a cell's spread, in tasks (:func:`spread_over_tasks`)."""


def spread_over_tasks(values: np.ndarray, observed: np.ndarray,
                      pseudo_tasks: float = PSEUDO_TASKS) -> np.ndarray:
    """Standard deviation over the tasks (axis 0) that observed each cell, shrunk towards the
    pooled spread of its epoch.

    A cell's sample variance ``s2`` (ddof 1, from ``n`` tasks) is combined with the mean sample
    variance ``p2`` of all cells of the same epoch (the last axis) as
    ``((n - 1) s2 + pseudo_tasks p2) / (n - 1 + pseudo_tasks)``: with 26 prior tasks the cell's
    own spread dominates, with 4 the pooled one does (3 tasks that happen to agree on a cell
    would otherwise claim to know it).

    Args:
        values: ``(T, ..., E)`` values (anything where unobserved).
        observed: bool, the shape of ``values``.
    Returns:
        ``values.shape[1:]``; NaN where fewer than 2 tasks observed the cell.
    """
    count, variance = _cell_variances(values, observed)
    pooled = _pooled_variance(count, variance)
    shrunk = np.divide((count - 1) * variance + pseudo_tasks * pooled, count - 1 + pseudo_tasks,
                       out=np.full(variance.shape, np.nan), where=count > 1)
    return np.sqrt(shrunk)


def pooled_spread(values: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """``(E,)``: the spread over tasks of a typical cell of each epoch (the root of the mean
    sample variance of the cells at least 2 tasks observed; 0 where none did), the spread of a
    configuration the prior tasks did not observe. Shapes as in :func:`spread_over_tasks`."""
    return np.sqrt(_pooled_variance(*_cell_variances(values, observed)))


def _cell_variances(values: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How many tasks observed each cell, and its sample variance over them (0 below 2)."""
    count = observed.sum(axis=0)
    kept = np.where(observed, values, 0.0)
    mean = kept.sum(axis=0) / np.maximum(count, 1)
    squares = (np.where(observed, values - mean, 0.0) ** 2).sum(axis=0)
    return count, np.where(count > 1, squares / np.maximum(count - 1, 1), 0.0)


def _pooled_variance(count: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """``(E,)``: the mean variance of each epoch's cells observed by at least 2 tasks."""
    cells = (count > 1).reshape(-1, count.shape[-1]).sum(axis=0)
    return variance.reshape(-1, variance.shape[-1]).sum(axis=0) / np.maximum(cells, 1)


def spread_error_scale(curves: np.ndarray, observed: np.ndarray) -> float:
    """How many of the others' spreads a prior task's values lie from the others' average.

    Each prior task plays the new task (``prior.held_out_tasks``: the other tasks' mean mapped
    onto its scale by least squares); its errors at the cells at least two other tasks observed
    are divided by the mapped spread of those tasks (:func:`spread_over_tasks`), and the result
    is the root mean square over all tasks' cells, at least 1. 1.0 with fewer than 3 prior tasks
    (nothing to measure it on).

    Args:
        curves: ``(T, C, E)`` prior values on the model's scale (anything where unobserved).
        observed: bool ``(T, C, E)``.
    """
    if curves.shape[0] < 3:
        return 1.0
    total, count = 0.0, 0
    for held_out in held_out_tasks(curves, observed, min_others=2):
        others = np.delete(np.arange(curves.shape[0]), held_out.task)
        spread = spread_over_tasks(curves[others], observed[others])[held_out.usable]
        errors = (curves[held_out.task] - held_out.mapped())[held_out.usable]
        scale = np.maximum(abs(held_out.slope) * spread, MIN_SPREAD)
        total += float(np.sum((errors / scale) ** 2))
        count += errors.size
    return max(1.0, float(np.sqrt(total / count))) if count else 1.0
