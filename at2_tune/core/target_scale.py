"""The new task's values on the prior tasks' scale: an affine map fitted on matched cells.

Prior tasks are fitted on one common scale (see ``PriorData.standardized``), but a new task can sit
anywhere: HyperRec's SCENE15 runs between 0.98 and 0.99 while its prior tasks spread from 0.1 to
0.9. The model sees ``(y - offset) / scale`` for the new task, with ``offset`` and ``scale`` from a
least-squares fit of its observations on the prior tasks' mean value at the same (configuration,
epoch) cells, shrunk towards ``scale = 1``; predictions are mapped back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_SCALE = 0.02
"""Smallest scale the fit may return (keeps the map increasing and invertible)."""


@dataclass(frozen=True)
class AffineScale:
    """``model value = (y - offset) / scale``; the identity by default.

    A fitted map also says how sure it is (:func:`fit_affine_scale`): the new task's level at
    the model value ``centre`` has variance ``level_variance`` and the scale
    ``scale_variance`` (both on the new task's scale, uncorrelated at ``centre``), so a value
    mapped from model value ``f`` carries :meth:`map_variance` on top of the model's own."""

    offset: float = 0.0
    scale: float = 1.0
    centre: float = 0.0
    level_variance: float = 0.0
    scale_variance: float = 0.0

    def map_variance(self, model_value: np.ndarray) -> np.ndarray:
        """``level_variance + scale_variance (f - centre)^2`` for model values ``f`` (any
        shape): the farther from the matched cells, the less sure."""
        shift = np.asarray(model_value, dtype=float) - self.centre
        return self.level_variance + self.scale_variance * shift ** 2

    def to_model(self, values: np.ndarray) -> np.ndarray:
        return (np.asarray(values) - self.offset) / self.scale

    def mean_from_model(self, mean: np.ndarray) -> np.ndarray:
        return self.offset + self.scale * np.asarray(mean)

    def std_from_model(self, std: np.ndarray) -> np.ndarray:
        return self.scale * np.asarray(std)


def fit_affine_scale(values: np.ndarray, reference: np.ndarray, reference_variance: float,
                     prior_strength: float = 2.0) -> AffineScale:
    """Fit ``values ~ offset + scale * reference`` with ``prior_strength`` pseudo-observations of
    spread ``reference_variance`` pulling ``scale`` towards 1.

    Args:
        values: ``(n,)`` the new task's observations.
        reference: ``(n,)`` the prior tasks' mean value at the same cells.
        reference_variance: the variance of the prior tasks' values (the shrinkage's unit).
    Returns:
        the identity with no observation; ``scale = 1`` and a matching offset with one.

    The map's uncertainty is that of a Bayesian linear fit centred at the references' mean:
    residual variance ``s2 = (RSS + prior_strength * reference_variance * scale^2) / (n +
    prior_strength)`` (as many pseudo-residuals as the shrinkage has pseudo-observations, as
    large as the prior's spread mapped onto the new task's scale: one value says little about
    how the task deviates), level variance ``s2 / n``, scale variance ``s2 / (Sxx +
    prior_strength * reference_variance)``. A new task fitted on early epochs of a few
    configurations is mapped far beyond them at its best values; without this, the 90%
    intervals of configurations no prior task trained covered 40-48% of their true best values
    on HyperRec priors of two histories after 10-25 observations (docs/benchmarks.md).
    """
    values, reference = np.asarray(values, dtype=float), np.asarray(reference, dtype=float)
    if values.size == 0:
        return AffineScale()
    centred_x = reference - reference.mean()
    centred_y = values - values.mean()
    pseudo = prior_strength * reference_variance
    spread_x = float(centred_x @ centred_x)
    scale = (centred_x @ centred_y + pseudo) / (spread_x + pseudo)
    scale = max(float(scale), MIN_SCALE)
    residuals = centred_y - scale * centred_x
    noise = (float(residuals @ residuals) + pseudo * scale ** 2) / (values.size + prior_strength)
    return AffineScale(float(values.mean() - scale * reference.mean()), scale,
                       centre=float(reference.mean()), level_variance=noise / values.size,
                       scale_variance=noise / (spread_x + pseudo) if spread_x + pseudo > 0
                       else 0.0)
