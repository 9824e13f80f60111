"""The posterior of candidates' learning curves: what models produce and policies consume.

Models (``at2_tune.core.transfer``, ``at2_tune.core.models``) return a :class:`CurvePosterior`;
acquisitions and policies (``at2_tune.core.acquisition``, ``at2_tune.core.policies``) read it.
This module imports neither side, so models never import acquisitions (BoTorch's split).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CurvePosterior:
    """Posterior of every candidate's learning curve on the new task's *warped* scale (the output
    transform's step 1, ``at2_tune.core.transform``: for accuracies the log error, not the
    values observed): ``mean`` and ``std``, ``(n_candidates, n_epochs)`` each (epoch ``e`` is
    column ``e - 1``). Compare observed values with it through ``OutputTransform.warp``."""

    mean: np.ndarray
    std: np.ndarray

    @property
    def n_epochs(self) -> int:
        return self.mean.shape[1]

    def remaining(self, next_epochs: np.ndarray) -> np.ndarray:
        """``(k, n_epochs)`` mask of each candidate's epochs from its next one on."""
        epochs = np.arange(1, self.n_epochs + 1)
        return epochs[None, :] >= np.asarray(next_epochs)[:, None]

    def select(self, candidates=None, epochs=None) -> "CurvePosterior":
        """The rows of ``candidates`` (indices, default all) at 1-based ``epochs`` (default all)."""
        rows = slice(None) if candidates is None else np.asarray(candidates, dtype=np.int64)
        columns = slice(None) if epochs is None else np.asarray(epochs, dtype=np.int64) - 1
        return CurvePosterior(self.mean[rows][:, columns], self.std[rows][:, columns])

    def best_value(self) -> tuple[np.ndarray, np.ndarray]:
        """Each candidate's best value over all epochs, as a normal: ``(mean, std)``, ``(n,)``
        each: the peak of the mean curve, and the std at that epoch."""
        peak = self.mean.argmax(axis=1)
        rows = np.arange(self.mean.shape[0])
        return self.mean[rows, peak], self.std[rows, peak]

    @classmethod
    def uninformed(cls, n_candidates: int, n_epochs: int) -> "CurvePosterior":
        """Mean 0 and std NaN everywhere: nothing known yet."""
        shape = (n_candidates, n_epochs)
        return cls(np.zeros(shape), np.full(shape, np.nan))
