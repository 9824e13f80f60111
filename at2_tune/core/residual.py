"""Per-configuration correction of the transfer posterior by the new task's own observations.

The AT2 GP summarizes the prior tasks and the new task with a few hundred inducing points and one
noise level learned on the prior tasks; it captures how the new task relates to the prior ones, but
it cannot reproduce a configuration's observed curve on the new task (measured: a configuration
trained to its last epoch is still predicted 0.1-0.2 above or below its observed values on the
warped scale, where the best configurations differ by 0.1). So each observed configuration's
curve is corrected by its residuals ``r = observed - transfer mean``, freeze-thaw style: a GP over
the configuration's epochs with covariance ``v * rho(t, t')``,
``rho = LEVEL + (1 - LEVEL) * exp(-|t - t'| / LENGTH)`` on progress ``t = epoch / n_epochs`` (a
configuration that runs above its prediction keeps running above it, most so near the epochs
seen), noise ``NOISE_SHARE * v``, and ``v`` the mean squared residual of all observations
(empirical Bayes). The transfer std is scaled by the share of ``v`` that stays unexplained.
Configurations without observations keep the transfer posterior.

With prior tasks, :func:`prior_noise_kernel` keeps the fixed correlations but measures each
epoch's noise share on what the prior tasks show when each of them in turn plays the new task
(:func:`prior_residual_covariance`, :func:`fixed_kernel_with_prior_noise`): on LCBench a first
epoch's residual is mostly noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from at2_tune.core.posterior import CurvePosterior
from at2_tune.core.prior import held_out_tasks

LEVEL = 0.6
"""Share of a residual that persists across all epochs of the configuration."""
LENGTH = 0.25
"""Progress distance over which the rest of a residual decays."""
NOISE_SHARE = 0.05
"""Observation noise as a share of the residual variance."""
MIN_VARIANCE = 1e-8


@dataclass(frozen=True)
class ResidualKernel:
    """Residual covariance across epochs: ``signal`` ``(E, E)`` (shared by a curve's epochs) and
    ``noise`` ``(E,)`` (each observation's own); only their shape matters (see
    :func:`correct_observed`)."""

    signal: np.ndarray
    noise: np.ndarray


def epoch_correlation(t1: np.ndarray, t2: np.ndarray) -> np.ndarray:
    """``(len(t1), len(t2))`` residual correlations between training progresses."""
    return LEVEL + (1.0 - LEVEL) * np.exp(-np.abs(t1[:, None] - t2[None, :]) / LENGTH)


def prior_residual_covariance(curves: np.ndarray, observed: np.ndarray,
                              jitter: float = 1e-6) -> np.ndarray | None:
    """``(E, E)`` covariance of the residuals of a task's curves from the other tasks' average.

    Each prior task plays the new task once: its cells are regressed (least squares, one offset
    and one scale per task, on the cells it and the other tasks observed) on the mean of the other
    tasks at the same cells, and the residuals of all its configurations are pooled; the
    covariance of epochs ``e`` and ``e'`` averages over the (task, configuration) pairs that
    observed both. Eigenvalues are clipped at ``jitter`` times the mean variance, so the result
    is positive definite. ``None`` with fewer than 3 prior tasks (too few to tell), or when some
    pair of epochs is never observed together.

    Args:
        curves: ``(T, C, E)`` prior values on the model's scale (anything where unobserved).
        observed: bool ``(T, C, E)``.
    """
    if curves.shape[0] < 3:
        return None
    residuals = np.zeros(curves.shape)
    usable = np.zeros(curves.shape, dtype=bool)
    for held_out in held_out_tasks(curves, observed):
        task = held_out.task
        residuals[task] = np.where(held_out.usable, curves[task] - held_out.mapped(), 0.0)
        usable[task] = held_out.usable
    flat = residuals.reshape(-1, residuals.shape[2])
    weight = usable.reshape(-1, usable.shape[2]).astype(float)
    pairs = weight.T @ weight
    if (pairs < 2).any():
        return None
    covariance = (flat.T @ flat) / pairs
    eigenvalues, vectors = np.linalg.eigh((covariance + covariance.T) / 2)
    floor = jitter * float(np.mean(np.diag(covariance)))
    return (vectors * np.maximum(eigenvalues, floor)) @ vectors.T


def fixed_kernel_with_prior_noise(covariance: np.ndarray) -> ResidualKernel:
    """The fixed kernel's correlations as the signal, and each epoch's noise share as the prior's
    residual covariance ``S`` shows it: the part of an epoch's residual variance that its
    neighbouring epochs do not share, ``(S_ee - s_e) / s_e`` with ``s_e`` the mean covariance
    with the epochs before and after (at least ``NOISE_SHARE``)."""
    n_epochs = covariance.shape[0]
    diagonal = np.diag(covariance)
    neighbours = np.array([np.mean([covariance[e, f] for f in (e - 1, e + 1) if 0 <= f < n_epochs])
                           for e in range(n_epochs)])
    smooth = np.maximum(neighbours, 1e-12 * diagonal.max())
    shares = np.maximum((diagonal - smooth) / smooth, NOISE_SHARE)
    grid = np.arange(1, n_epochs + 1) / n_epochs
    return ResidualKernel(epoch_correlation(grid, grid), shares)


def prior_noise_kernel(curves: np.ndarray, observed: np.ndarray) -> ResidualKernel | None:
    """The fixed kernel with each epoch's noise share measured on the prior ``curves``
    (``(T, C, E)`` on the model's scale) and their ``observed`` mask
    (:func:`fixed_kernel_with_prior_noise`); ``None`` (the fixed kernel) when the prior cannot
    measure its residual covariance (:func:`prior_residual_covariance` is ``None``)."""
    if curves.shape[0] == 0:
        return None
    covariance = prior_residual_covariance(curves, observed)
    return None if covariance is None else fixed_kernel_with_prior_noise(covariance)


def correct_observed(posterior: CurvePosterior, candidates: np.ndarray, epochs: np.ndarray,
                     values: np.ndarray, kernel: ResidualKernel | None = None,
                     min_epochs: int = 1) -> CurvePosterior:
    """The posterior with every observed candidate's curve conditioned on its own residuals.

    Args:
        posterior: the transfer posterior, ``(n_candidates, n_epochs)``.
        candidates, epochs, values: ``(k,)`` observations (1-based epochs, values on the
            posterior's scale).
        min_epochs: a candidate with fewer observed epochs keeps its transfer posterior, and
            its observations take no part (``PolicySettings.residual_min_epochs``).
    """
    candidates, epochs = np.asarray(candidates), np.asarray(epochs)
    values = np.asarray(values, dtype=float)
    if min_epochs > 1 and len(candidates):
        _, index, counts = np.unique(candidates, return_inverse=True, return_counts=True)
        kept = counts[index] >= min_epochs
        candidates, epochs, values = candidates[kept], epochs[kept], values[kept]
    if len(values) == 0:
        return posterior
    residuals = values - posterior.mean[candidates, epochs - 1]
    variance = max(float(np.mean(residuals ** 2)), MIN_VARIANCE)
    mean, std = posterior.mean.copy(), posterior.std.copy()
    n_epochs = posterior.n_epochs
    grid = np.arange(1, n_epochs + 1) / n_epochs
    for candidate in np.unique(candidates):
        mine = candidates == candidate
        seen = epochs[mine] / n_epochs
        if kernel is None:
            gram = variance * (epoch_correlation(seen, seen) + NOISE_SHARE * np.eye(seen.size))
            cross = variance * epoch_correlation(grid, seen)              # (E, k_c)
        else:  # its scale cancels in the mean; the std keeps the unexplained share
            columns = epochs[mine] - 1
            scale = variance / float(np.mean(np.diag(kernel.signal)))
            noise = np.diag(kernel.noise[columns])
            gram = scale * (kernel.signal[np.ix_(columns, columns)] + noise)
            cross = scale * kernel.signal[:, columns]
        chol = np.linalg.cholesky(gram)
        solved = np.linalg.solve(chol, cross.T)                           # (k_c, E)
        weights = np.linalg.solve(chol.T, np.linalg.solve(chol, residuals[mine]))
        mean[candidate] += cross @ weights
        prior_variance = variance if kernel is None else scale * np.diag(kernel.signal)
        unexplained = np.clip(1.0 - (solved ** 2).sum(axis=0) / prior_variance, 0.0, 1.0)
        std[candidate] *= np.sqrt(unexplained)
    return CurvePosterior(mean, std)
