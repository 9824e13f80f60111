"""Policies: what to train next, and what to recommend, given a curve posterior.

One small protocol (:class:`Policy`):

* ``observe(candidate, epoch, value)``: a value of the new task arrived;
* ``order(posterior, situation)``: the open candidates, the one to train next first;
* ``recommend(posterior, eligible)``: the configuration to use now;
* ``state_dict()`` / ``load_state_dict(state)``: what the policy holds beyond the observations
  (the engine replays those into a restored policy).

A policy reads a :class:`~at2_tune.core.posterior.CurvePosterior` and trains nothing. Each
policy names the posterior it decides on (:attr:`Policy.decides_on`: ``"transfer"``, the prior tasks'
average and spread, or ``"gp"``) and whether observed curves are corrected by their residuals.
``at2_tune.core.policy_registry`` maps the names of ``PolicySettings.name`` to them and to the
budget planner's ``planned`` (``at2_tune.core.planner``):

* ``planned`` (the default with prior tasks): a schedule chosen for the budget on the prior
  tasks, carried out over the prior's order (``at2_tune.core.planner``);
* ``leaders``: a weighted round robin over the transfer posterior's ``k`` most promising
  configurations, re-ranked after every observation (``planned`` decides so until it plans);
* ``paper``: the AT2 paper's UCB of the next epoch on the GP, recommending the best predicted;
* ``no_prior`` (the default without prior tasks): freeze-thaw with the budget known, the
  expected improvement of the best value observed per epoch on the new task's own GP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Protocol, Sequence

import numpy as np

from at2_tune.core.acquisition import (Acquisition, ImprovementPerEpoch, NextEpochUCB,
                                       rotation_order)
from at2_tune.core.posterior import CurvePosterior
from at2_tune.core.settings import PolicySettings
from at2_tune.errors import AT2Error


@dataclass(frozen=True)
class Query:
    """Train ``candidate`` for epoch ``epoch`` (1-based)."""

    candidate: int
    epoch: int


@dataclass(frozen=True)
class Situation:
    """What a policy orders: every open candidate (epochs left, not failed) and its next epoch.

    Attributes:
        open: ``(k,)`` open candidate indices, ascending.
        next_epochs: ``(k,)`` their next 1-based epochs.
        eligible: every candidate that did not fail (open or trained to its last epoch).
        trained: ``(n,)`` epochs trained so far per candidate.
        prior_trained: ``(n,)`` bool, candidates some prior task trained.
        best_observed: the best value observed on a candidate that did not fail, on the
            posterior's scale (``OutputTransform.warp``); ``None`` before any.
    """

    open: np.ndarray
    next_epochs: np.ndarray
    eligible: np.ndarray
    trained: np.ndarray
    prior_trained: np.ndarray
    best_observed: float | None = None


def queries_in_order(order: Sequence[int], next_epoch: Callable[[int], int],
                     limit: int | None = None) -> list[Query]:
    """The next epochs of ``order``, at most ``limit`` of them."""
    return [Query(int(c), next_epoch(c)) for c in order[:limit]]


def situation_of(next_epochs: np.ndarray, failed: set[int], n_epochs: int,
                 prior_trained: np.ndarray, best_observed: float | None = None,
                 closed: Collection[int] = ()) -> Situation:
    """The :class:`Situation` of candidates whose next 1-based epochs are ``next_epochs``
    ``(n,)`` (``ObservationStore.next_epochs``); ``best_observed`` on the posterior's scale;
    ``closed``: candidates that cannot train though they have epochs left (their trial ended,
    or none can start), not open."""
    trained = np.asarray(next_epochs, dtype=np.int64) - 1
    eligible = np.arange(trained.size, dtype=np.int64)
    if failed:
        eligible = eligible[~np.isin(eligible, list(failed))]
    open_ = eligible[trained[eligible] < n_epochs]
    if len(closed):
        open_ = open_[~np.isin(open_, list(closed))]
    return Situation(open_, trained[open_] + 1, eligible, trained, prior_trained, best_observed)


class Policy(Protocol):
    name: str
    decides_on: str
    residual_correction: bool

    def observe(self, candidate: int, epoch: int, value: float) -> None: ...

    def order(self, posterior: CurvePosterior, situation: Situation) -> list[int]: ...

    def recommend(self, posterior: CurvePosterior, eligible: Sequence[int]) -> int: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def posterior_scope(self, situation: Situation) -> np.ndarray | None: ...


# ---------------------------------------------------------------- recommenders
def best_predicted(posterior: CurvePosterior, candidates: Sequence[int]) -> int:
    """The candidate whose best predicted value over all epochs is highest (ties: first)."""
    if not len(candidates):
        raise AT2Error("every candidate failed; there is nothing to recommend")
    rows = np.asarray(candidates, dtype=np.int64)
    return int(rows[int(np.argmax(posterior.mean[rows].max(axis=1)))])


@dataclass
class BestObserved:
    """Recommends the candidate with the best value observed so far (ties: the earliest
    observation), among candidates that did not fail; before any such value, ``fallback`` or,
    without one, the best predicted."""

    fallback: int | None = None
    observations: list[tuple[int, float]] = field(default_factory=list)

    def observe(self, candidate: int, epoch: int, value: float) -> None:
        self.observations.append((int(candidate), float(value)))

    def recommend(self, posterior: CurvePosterior, eligible: Sequence[int]) -> int:
        allowed = set(int(c) for c in eligible)
        best = None
        for candidate, value in self.observations:
            if candidate in allowed and (best is None or value > best[1]):
                best = (candidate, value)
        if best is not None:
            return best[0]
        return self.fallback if self.fallback is not None else best_predicted(posterior, eligible)


class BestPredicted:
    """Recommends the candidate with the highest predicted best value (the paper)."""

    def observe(self, candidate: int, epoch: int, value: float) -> None:
        pass

    def recommend(self, posterior: CurvePosterior, eligible: Sequence[int]) -> int:
        return best_predicted(posterior, eligible)


# ---------------------------------------------------------------- policies
class RecommendingPolicy:
    """Observation and recommendation through a recommender; nothing beyond the observations
    to save but the policy's name."""

    recommender: BestObserved | BestPredicted

    def observe(self, candidate: int, epoch: int, value: float) -> None:
        self.recommender.observe(candidate, epoch, value)

    def posterior_scope(self, situation: Situation) -> np.ndarray | None:
        """The candidates whose posterior :meth:`order` and :meth:`recommend` read in
        ``situation``; ``None``: all of them."""
        return None

    def recommend(self, posterior: CurvePosterior, eligible: Sequence[int]) -> int:
        return self.recommender.recommend(posterior, eligible)

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise AT2Error(f"the saved state is of policy {state.get('name')!r}, this engine's "
                           f"is {self.name!r}; build it with the saved settings")


class LeadersRoundRobin(RecommendingPolicy):
    """Train the ``k`` most promising configurations in turn, the more promising more often.

    The leaders are the ``k`` contenders with the highest predicted best value (the peak of the
    posterior mean curve), re-ranked after every observation. Contenders are the candidates that
    did not fail and that a prior task trained, or all that did not fail once fewer than ``k``
    of those are open (the GP's imputations of configurations the prior never ran are not
    reliable enough to displace what it trained). The leader in place ``i`` (0 = most promising)
    is owed the share ``(i + 1) ** -decay`` (normalized) of the epochs trained on leaders; the
    open leader furthest below its share after the next epoch goes first (ties: the better
    place), then the other open leaders the same way, then every other open candidate by its
    place. The model-based counterpart of training the prior's top-k configurations in turn.
    """

    name = "leaders"
    decides_on = "transfer"
    residual_correction = True

    def __init__(self, k: int = 4, decay: float = 0.5) -> None:
        self.k, self.decay = k, decay
        self.recommender = BestObserved()

    def contenders(self, situation: Situation) -> np.ndarray:
        eligible = situation.eligible
        trained_by_prior = eligible[situation.prior_trained[eligible]]
        still_open = np.isin(trained_by_prior, situation.open).sum()
        return trained_by_prior if still_open >= self.k else eligible

    def posterior_scope(self, situation: Situation) -> np.ndarray:
        """The contenders (whose places the order reads) and every observed candidate (whose
        curve residual correction reads); the other candidates keep the place after the
        contenders whatever their posterior, and the recommendation is the best observed.
        So while a prior task trained enough open candidates, nothing off the prior's grid
        needs the GP."""
        return np.union1d(self.contenders(situation), np.flatnonzero(situation.trained > 0))

    def order(self, posterior: CurvePosterior, situation: Situation) -> list[int]:
        best_mean, _ = posterior.best_value()
        contenders = self.contenders(situation)
        ranked = contenders[np.argsort(-best_mean[contenders], kind="stable")]
        n = posterior.mean.shape[0]
        place = np.full(n, len(ranked))
        place[ranked] = np.arange(len(ranked))
        leaders = ranked[: self.k]
        rotation = leaders[rotation_order(np.arange(len(leaders)), situation.trained[leaders],
                                          self.decay)]
        candidates = situation.open
        is_open = np.zeros(n, dtype=bool)
        is_open[candidates] = True
        # the open leaders in the rotation's order; the rest by place, after every leader
        leaders_first = rotation[is_open[rotation]]
        others = candidates[~np.isin(candidates, leaders)]
        rest = others[np.argsort(place[others], kind="stable")]
        return [int(c) for c in leaders_first] + [int(c) for c in rest]


class ScoreOrder(RecommendingPolicy):
    """Orders open candidates by an acquisition's score of their next epoch (ties: lower
    index first)."""

    def __init__(self, name: str, acquisition: Acquisition, recommender, decides_on: str,
                 residual_correction: bool) -> None:
        self.name, self.acquisition, self.recommender = name, acquisition, recommender
        self.decides_on, self.residual_correction = decides_on, residual_correction

    def order(self, posterior: CurvePosterior, situation: Situation) -> list[int]:
        scores = self.acquisition(posterior, situation.open, situation.next_epochs)
        return [int(situation.open[i]) for i in np.argsort(-scores, kind="stable")]


def paper(settings: PolicySettings) -> ScoreOrder:
    """The AT2 paper's: UCB of the next epoch on the GP; recommends the best predicted."""
    return ScoreOrder("paper", NextEpochUCB(settings.beta), BestPredicted(), "gp", False)


def fits_beside_better(per_epoch: np.ndarray, budget: int) -> np.ndarray:
    """Which candidates get a slot within ``budget`` epochs, from the improvement per epoch of
    training each ``h = 1..E`` more epochs, ``per_epoch`` ``(k, E)`` (row ``i``: the candidate
    in place ``i``, best first; ``-inf`` where it cannot train;
    :meth:`~at2_tune.core.acquisition.ImprovementPerEpoch.per_epoch`). A candidate's score is
    its row's maximum, reached at its horizon.

    The first is always kept. A kept candidate claims its horizon and every epoch after it at
    which its improvement per epoch is still at least the next candidate's score: up to there,
    an epoch spent on it is worth more than one spent on the next, so the budget keeps those
    epochs for it. The next candidate is kept when its own horizon fits in the budget beside
    the epochs claimed above it. Returns a ``(k,)`` bool mask."""
    per_epoch = np.asarray(per_epoch, dtype=float)
    scores = per_epoch.max(axis=1)
    following = np.append(scores[1:], -np.inf)
    keep = np.zeros(len(scores), dtype=bool)
    reserved = 0
    for i, row in enumerate(per_epoch):
        horizon = int(np.argmax(row)) + 1
        if i > 0 and reserved + horizon > budget:
            continue
        keep[i] = True  # the horizon is among the epochs worth it: its score >= the next's
        reserved += int(np.flatnonzero(np.isfinite(row) & (row >= following[i])).max()) + 1
    return keep


class BudgetedFreezeThaw(RecommendingPolicy):
    """Without prior tasks: freeze-thaw on the new task's own GP with the budget known.

    Trains the open candidate whose next epochs are expected to add the most to the best value
    observed, per epoch, within the epochs the run has left
    (:class:`~at2_tune.core.acquisition.ImprovementPerEpoch` on
    ``at2_tune.core.models.NewTaskGPModel``); recommends the best observed. Before the first
    value the candidates go in a random order drawn from ``seed``; without a budget
    (:meth:`plan` not called) every candidate may use all its remaining epochs.

    With several slots, a candidate is ordered only if the epochs it is scored for fit in the
    budget beside the epochs that the candidates ranked above it are worth more than it
    (:func:`fits_beside_better`); a slot with none waits. Filling every slot regardless spends
    on the 2nd to Kth best the epochs the best needs later, and caps how deep any one curve
    gets at about the budget over K.
    """

    name = "no_prior"
    decides_on = "new_task_gp"
    residual_correction = False

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.recommender = BestObserved()
        self.planned_for: tuple[int, int] | None = None

    def plan(self, prior_curves: np.ndarray, candidate_cells: Sequence[int | None],
             budget: int, concurrency: int) -> None:
        """Keep the run's budget and slots (the engine's planning hook); plans nothing else."""
        self.planned_for = (int(budget), int(concurrency))

    def epochs_left(self, situation: Situation) -> int | None:
        """Epochs the run can still spend, the next one included (an epoch each other slot is
        training counts as spent); ``None`` without a budget."""
        if self.planned_for is None:
            return None
        budget, slots = self.planned_for
        return max(1, budget - int(situation.trained.sum()) - (slots - 1))

    def order(self, posterior: CurvePosterior, situation: Situation) -> list[int]:
        if situation.best_observed is None:
            draw = np.random.default_rng(self.seed).permutation(situation.trained.size)
            return [int(c) for c in draw[np.isin(draw, situation.open)]]
        left = self.epochs_left(situation)
        acquisition = ImprovementPerEpoch(situation.best_observed,
                                          posterior.n_epochs if left is None else left)
        per_epoch = acquisition.per_epoch(posterior, situation.open, situation.next_epochs)
        ranked = np.argsort(-per_epoch.max(axis=1), kind="stable")
        if self.planned_for is not None and self.planned_for[1] > 1:
            budget = self.planned_for[0] - int(situation.trained.sum())
            ranked = ranked[fits_beside_better(per_epoch[ranked], budget)]
        return [int(situation.open[i]) for i in ranked]

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name,
                "planned_for": None if self.planned_for is None else list(self.planned_for)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        planned = state.get("planned_for")
        self.planned_for = None if planned is None else (int(planned[0]), int(planned[1]))
