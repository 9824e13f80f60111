"""Acquisition functions: small classes that score candidates' next epochs from a posterior.

Each takes a :class:`~at2_tune.core.posterior.CurvePosterior` (the posterior mean and standard
deviation of every candidate's whole learning curve, on the new task's own scale) and the next
epoch of each candidate to score, and returns one value per candidate: higher is better. None
of them trains or changes anything, so each is tested against a hand-made posterior. The
policies (``at2_tune.core.policies``) order candidates by them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
class BestFutureUCB(Acquisition):
    """The highest UCB over the candidate's remaining epochs: how good it can still get."""

    beta: float = 0.25

    def __call__(self, posterior, candidates, next_epochs):
        rows = np.asarray(candidates)
        ucb = posterior.mean[rows] + self.beta * posterior.std[rows]
        return np.where(posterior.remaining(next_epochs), ucb, -np.inf).max(axis=1)


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
