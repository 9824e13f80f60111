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
    """``model value = (y - offset) / scale``; the identity by default."""

    offset: float = 0.0
    scale: float = 1.0

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
    """
    values, reference = np.asarray(values, dtype=float), np.asarray(reference, dtype=float)
    if values.size == 0:
        return AffineScale()
    centred_x = reference - reference.mean()
    centred_y = values - values.mean()
    pseudo = prior_strength * reference_variance
    scale = (centred_x @ centred_y + pseudo) / (centred_x @ centred_x + pseudo)
    scale = max(float(scale), MIN_SCALE)
    return AffineScale(float(values.mean() - scale * reference.mean()), scale)
