"""Acquisition functions: small classes that score candidates' next epochs from a posterior.

Each takes a :class:`CurvePosterior` (the posterior mean and standard deviation of every
candidate's whole learning curve, on the new task's own scale) and the next epoch of each
candidate to score, and returns one value per candidate: higher is better. None of them trains
or changes anything, so a new acquisition is one class tested against a hand-made posterior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class CurvePosterior:
    """Posterior of every candidate's learning curve: ``mean`` and ``std``, ``(n_candidates,
    n_epochs)`` each (epoch ``e`` is column ``e - 1``)."""

    mean: np.ndarray
    std: np.ndarray

    @property
    def n_epochs(self) -> int:
        return self.mean.shape[1]

    def remaining(self, next_epochs: np.ndarray) -> np.ndarray:
        """``(k, n_epochs)`` mask of each candidate's epochs from its next one on."""
        epochs = np.arange(1, self.n_epochs + 1)
        return epochs[None, :] >= np.asarray(next_epochs)[:, None]


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


@dataclass(frozen=True)
class BestFutureEI(Acquisition):
    """The highest expected improvement over ``incumbent`` across the remaining epochs."""

    incumbent: float

    def __call__(self, posterior, candidates, next_epochs):
        rows = np.asarray(candidates)
        improvement = expected_improvement(posterior.mean[rows], posterior.std[rows], self.incumbent)
        return np.where(posterior.remaining(next_epochs), improvement, -np.inf).max(axis=1)


@dataclass(frozen=True)
class CurveThompson(Acquisition):
    """Thompson sampling of whole curves: each candidate's curve is drawn as ``mean + z * std``
    with one standard normal ``z`` per candidate (its curve sits that many standard deviations
    above or below the mean at every epoch), and scores the best drawn value over its remaining
    epochs. ``draws`` are fixed per decision, so scoring is a pure function of the posterior.
    """

    draws: np.ndarray
    """``(n_candidates,)`` standard normal draws, one per candidate."""

    def __call__(self, posterior, candidates, next_epochs):
        rows = np.asarray(candidates)
        sample = posterior.mean[rows] + np.asarray(self.draws)[rows, None] * posterior.std[rows]
        return np.where(posterior.remaining(next_epochs), sample, -np.inf).max(axis=1)


@dataclass(frozen=True)
class RandomHorizonPI(Acquisition):
    """ifBO's MF-PI with a random horizon and threshold (Rakotoarison et al., 2024): the
    probability that the candidate, trained ``horizon`` epochs beyond what it has (at most to the
    last epoch), is above ``threshold``. Horizon and threshold are drawn per decision
    (:meth:`draw`), the same for every candidate, so that some decisions favour a short, likely
    gain and others a long shot."""

    horizon: int
    threshold: float

    @classmethod
    def draw(cls, rng: np.random.Generator, posterior: CurvePosterior, incumbent: float,
             bounded: bool) -> "RandomHorizonPI":
        """ifBO's draw: a horizon uniform on ``1..n_epochs`` and the threshold ``incumbent +
        (ceiling - incumbent) * 10 ** u``, ``u`` uniform on [-4, -1] (0.01% to 10% of the way
        from the incumbent to the ceiling). The ceiling is 1 for values ``bounded`` in [0, 1]
        (accuracies), else the highest ``mean + 3 std`` of the posterior."""
        horizon = int(rng.integers(1, posterior.n_epochs + 1))
        ceiling = 1.0 if bounded else float((posterior.mean + 3.0 * posterior.std).max())
        gap = max(ceiling - incumbent, 0.0)
        return cls(horizon, float(incumbent + gap * 10.0 ** rng.uniform(-4.0, -1.0)))

    def __call__(self, posterior, candidates, next_epochs):
        rows = np.asarray(candidates)
        columns = np.minimum(np.asarray(next_epochs) - 2 + self.horizon, posterior.n_epochs - 1)
        mean, std = posterior.mean[rows, columns], posterior.std[rows, columns]
        z = (mean - self.threshold) / np.maximum(std, 1e-12)
        return torch.special.ndtr(torch.as_tensor(z)).numpy()


def expected_improvement(mean: np.ndarray, std: np.ndarray, incumbent: float) -> np.ndarray:
    """``E[max(0, f - incumbent)]`` for ``f ~ N(mean, std^2)``, elementwise."""
    mean_t, std_t = torch.as_tensor(mean), torch.as_tensor(std).clamp_min(1e-12)
    z = (mean_t - incumbent) / std_t
    normal = torch.distributions.Normal(torch.zeros((), dtype=mean_t.dtype),
                                        torch.ones((), dtype=mean_t.dtype))
    improvement = (mean_t - incumbent) * torch.special.ndtr(z) + std_t * normal.log_prob(z).exp()
    return improvement.numpy()


def best_value_distribution(posterior: CurvePosterior) -> tuple[np.ndarray, np.ndarray]:
    """Each candidate's best value over all epochs, as a normal: ``(mean, std)``, ``(n,)`` each.

    The mean is the highest point of the posterior mean curve; the std is the posterior std at
    that epoch (how much the candidate's best value is still unknown).
    """
    peak = posterior.mean.argmax(axis=1)
    rows = np.arange(posterior.mean.shape[0])
    return posterior.mean[rows, peak], posterior.std[rows, peak]


def owed_epochs(weights: np.ndarray, trained: np.ndarray) -> np.ndarray:
    """Epochs each member of a weighted rotation is owed once the next epoch is trained:
    ``share_i * (epochs trained in the rotation + 1) - trained_i``, with ``share = weights /
    weights.sum()``. ``weights`` ``(k,)`` are >= 0 (0: out of the rotation), ``trained`` ``(k,)``
    the epochs trained so far; the member owed the most trains next."""
    weights, trained = np.asarray(weights, dtype=float), np.asarray(trained, dtype=float)
    return weights / weights.sum() * (trained[weights > 0].sum() + 1.0) - trained


@dataclass(frozen=True)
class LeadersRoundRobin(Acquisition):
    """Train the model's ``k`` most promising configurations in turn, the more promising more often.

    The leaders are the ``k`` contenders with the highest predicted best value (the peak of the
    posterior mean curve), re-ranked after every observation, so the set follows what the model
    learns about the new task. The leader in place ``i`` (0 = most promising) is owed the share
    ``(i + 1) ** -decay / sum_j (j + 1) ** -decay`` of the epochs trained on leaders; the leader
    furthest below its share (after the next epoch) scores highest, ties to the better place.
    With ``decay=0`` every leader is owed the same share: the least trained goes first. Every
    other candidate scores below every leader, in the order of its predicted best value. The
    model-based counterpart of training the prior's top-k configurations in turn.
    """

    contenders: tuple[int, ...]
    trained_epochs: np.ndarray
    """``(n_candidates,)`` epochs trained so far per candidate."""
    k: int = 3
    decay: float = 0.0

    def __call__(self, posterior, candidates, next_epochs):
        best_mean, _ = best_value_distribution(posterior)
        contenders = np.asarray(self.contenders)
        order = contenders[np.argsort(-best_mean[contenders], kind="stable")]
        n = posterior.mean.shape[0]
        place = np.full(n, len(order))
        place[order] = np.arange(len(order))
        leaders = order[: self.k]
        trained = np.asarray(self.trained_epochs, dtype=float)
        deficit = np.zeros(n)
        deficit[leaders] = owed_epochs((np.arange(len(leaders)) + 1.0) ** -self.decay,
                                       trained[leaders])
        rows = np.asarray(candidates)
        leader = place[rows] < self.k
        # leaders: largest deficit, then better place (deficits differ by at least ~1/k^decay
        # of an epoch or are equal); the rest: by place, below every leader
        tie_break = (n - place[rows]) / (n + 1.0) * 1e-6
        return np.where(leader, 2.0 * n + deficit[rows] + tie_break, -place[rows].astype(float))
