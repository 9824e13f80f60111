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
"""

from __future__ import annotations

import numpy as np

from at2_tune.core.acquisition import CurvePosterior

LEVEL = 0.6
"""Share of a residual that persists across all epochs of the configuration."""
LENGTH = 0.25
"""Progress distance over which the rest of a residual decays."""
NOISE_SHARE = 0.05
"""Observation noise as a share of the residual variance."""
MIN_VARIANCE = 1e-8


def epoch_correlation(t1: np.ndarray, t2: np.ndarray) -> np.ndarray:
    """``(len(t1), len(t2))`` residual correlations between training progresses."""
    return LEVEL + (1.0 - LEVEL) * np.exp(-np.abs(t1[:, None] - t2[None, :]) / LENGTH)


def correct_observed(posterior: CurvePosterior, candidates: np.ndarray, epochs: np.ndarray,
                     values: np.ndarray) -> CurvePosterior:
    """The posterior with every observed candidate's curve conditioned on its own residuals.

    Args:
        posterior: the transfer posterior, ``(n_candidates, n_epochs)``.
        candidates, epochs, values: ``(k,)`` observations (1-based epochs, values on the
            posterior's scale).
    """
    if len(values) == 0:
        return posterior
    candidates, epochs = np.asarray(candidates), np.asarray(epochs)
    residuals = np.asarray(values, dtype=float) - posterior.mean[candidates, epochs - 1]
    variance = max(float(np.mean(residuals ** 2)), MIN_VARIANCE)
    mean, std = posterior.mean.copy(), posterior.std.copy()
    n_epochs = posterior.n_epochs
    grid = np.arange(1, n_epochs + 1) / n_epochs
    for candidate in np.unique(candidates):
        mine = candidates == candidate
        seen = epochs[mine] / n_epochs
        gram = variance * (epoch_correlation(seen, seen) + NOISE_SHARE * np.eye(seen.size))
        cross = variance * epoch_correlation(grid, seen)                  # (E, k_c)
        chol = np.linalg.cholesky(gram)
        solved = np.linalg.solve(chol, cross.T)                           # (k_c, E)
        weights = np.linalg.solve(chol.T, np.linalg.solve(chol, residuals[mine]))
        mean[candidate] += cross @ weights
        unexplained = np.clip(1.0 - (solved ** 2).sum(axis=0) / variance, 0.0, 1.0)
        std[candidate] *= np.sqrt(unexplained)
    return CurvePosterior(mean, std)
