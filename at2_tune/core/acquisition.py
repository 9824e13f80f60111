"""Acquisition functions: small classes that score candidates' next epochs from a posterior.

Each takes a :class:`~at2_tune.core.posterior.CurvePosterior` (the posterior mean and standard
deviation of every candidate's whole learning curve, on the new task's own scale) and the next
epoch of each candidate to score, and returns one value per candidate: higher is better. None
of them trains or changes anything, so each is tested against a hand-made posterior. The
policies (``at2_tune.core.policies``) order candidates by them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from at2_tune.core.posterior import CurvePosterior


class Acquisition:
    """Scores ``candidates`` (``(k,)`` indices) at their ``next_epochs`` (``(k,)``, 1-based)."""

    def __call__(self, posterior: CurvePosterior, candidates: np.ndarray,
                 next_epochs: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class NextEpochUCB(Acquisition):
    """The AT2 paper's rule: the upper confidence bound ``mean + beta * std`` of the next epoch."""

    beta: float = 0.25

    def __call__(self, posterior, candidates, next_epochs):
        rows, columns = np.asarray(candidates), np.asarray(next_epochs) - 1
        return posterior.mean[rows, columns] + self.beta * posterior.std[rows, columns]


@dataclass(frozen=True)
class ImprovementPerEpoch(Acquisition):
    """The expected improvement of the best value observed (``incumbent``, on the posterior's
    scale) per epoch spent, within the epochs left.

    Training a candidate whose next epoch is ``n`` for ``h`` more epochs reaches epoch
    ``n + h - 1``, for ``1 <= h <= epochs_left`` and up to its last epoch; the score is the
    highest ``EI(value at that epoch) / h`` over those ``h``. A user keeps the best model
    trained, so an epoch is worth what it is expected to add to the best value observed, and
    an improvement the budget cannot reach is worth nothing: with few epochs left, a curve
    close to the incumbent goes on and a fresh configuration (which needs many epochs to catch
    up) does not start. Freeze-thaw's choice between continuing a curve and starting a new one
    (Swersky et al. 2014), with the cost of an improvement counted in epochs and the budget
    known (as in cost-sensitive freeze-thaw, arXiv 2510.00492)."""

    incumbent: float
    epochs_left: int

    def __call__(self, posterior, candidates, next_epochs):
        return self.per_epoch(posterior, candidates, next_epochs).max(axis=1)

    def per_epoch(self, posterior: CurvePosterior, candidates: np.ndarray,
                  next_epochs: np.ndarray) -> np.ndarray:
        """``EI / h`` ``(k, E)`` of training each candidate ``h = 1..E`` more epochs
        (``-inf`` beyond the epochs left or its last epoch)."""
        rows, next_epochs = np.asarray(candidates), np.asarray(next_epochs)
        spent = np.arange(1, posterior.n_epochs + 1)[None, :]  # (1, E) epochs trained more
        reached = next_epochs[:, None] + spent - 2  # (k, E) 0-based epoch then reached
        reachable = (spent <= self.epochs_left) & (reached < posterior.n_epochs)
        columns = np.minimum(reached, posterior.n_epochs - 1)
        mean = np.take_along_axis(posterior.mean[rows], columns, axis=1)
        std = np.take_along_axis(posterior.std[rows], columns, axis=1)
        gain = expected_improvement(mean, std, self.incumbent)
        return np.where(reachable, gain / spent, -np.inf)


def expected_improvement(mean: np.ndarray, std: np.ndarray, incumbent: float) -> np.ndarray:
    """``E[max(Y - incumbent, 0)]`` for ``Y ~ N(mean, std^2)``, elementwise (where ``std`` is 0:
    ``max(mean - incumbent, 0)``)."""
    mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
    gap = mean - incumbent
    scale = np.where(std > 0, std, 1.0)
    z = gap / scale
    cdf = torch.special.ndtr(torch.as_tensor(z)).numpy()
    density = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return np.where(std > 0, scale * (z * cdf + density), np.maximum(gap, 0.0))


def rotation_order(places: np.ndarray, trained: np.ndarray, decay: float) -> np.ndarray:
    """The order of a weighted rotation: member ``i``, at place ``places[i]`` (0 = first) with
    ``trained[i]`` epochs, is owed the share ``(place + 1) ** -decay`` of the members' epochs
    (:func:`owed_epochs`); returns the member indices ``(k,)``, the one owed the most after the
    next epoch first (ties: the better place). ``decay=0`` is a plain round robin. The
    model-free round robins and the ``leaders`` policy both rotate so."""
    places = np.asarray(places, dtype=float)
    deficit = np.round(owed_epochs((places + 1.0) ** -decay, trained), 9)
    return np.lexsort((places, -deficit))


def owed_epochs(weights: np.ndarray, trained: np.ndarray) -> np.ndarray:
    """Epochs each member of a weighted rotation is owed once the next epoch is trained:
    ``share_i * (epochs trained in the rotation + 1) - trained_i``, with ``share = weights /
    weights.sum()``. ``weights`` ``(k,)`` are >= 0 (0: out of the rotation), ``trained`` ``(k,)``
    the epochs trained so far; the member owed the most trains next."""
    weights, trained = np.asarray(weights, dtype=float), np.asarray(trained, dtype=float)
    return weights / weights.sum() * (trained[weights > 0].sum() + 1.0) - trained
