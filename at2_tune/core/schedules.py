"""Model-free schedules: policies that order the open candidates from what they observed and
from a ranking given up front (e.g. the prior tasks' order), with no posterior.

They are the transfer baselines (``at2_tune.bench.baselines``) and the schedules AT2's planner
replays on the prior tasks (``at2_tune.core.planner``). :class:`ModelFreeCore` gives one the
coordinator's decision-core protocol, so it runs through the coordinator exactly as the AT2
engine does, on one slot or on ``K``. Each recommends the best value observed so far (ties:
the earliest observation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Collection, Sequence

import numpy as np

from at2_tune.core.acquisition import rotation_order
from at2_tune.core.observations import ObservationStore
from at2_tune.core.policies import (BestObserved, Query, RecommendingPolicy, Situation,
                                    queries_in_order, situation_of)


@dataclass
class _ModelFree(RecommendingPolicy):
    """A model-free policy: it recommends the best observed value, or ``fallback`` before the
    first one (there is no posterior to predict from)."""

    fallback: int = 0
    decides_on = None
    residual_correction = False

    def __post_init__(self) -> None:
        self.recommender = BestObserved(fallback=self.fallback)


@dataclass
class RoundRobin(_ModelFree):
    """Train the first ``k`` of ``ranking`` in turn: the configuration in place ``i`` is owed the
    share ``(i + 1) ** -decay`` (normalized over the open ones) of their epochs; the one owed the
    most goes first (ties: the better place). A configuration at its last epoch leaves the
    rotation and the others continue; once all have, nothing is trained."""

    ranking: Sequence[int] = ()
    k: int = 3
    decay: float = 0.0
    name = "round-robin"

    def order(self, posterior, situation: Situation) -> list[int]:
        is_open = np.zeros(situation.trained.size, dtype=bool)
        is_open[situation.open] = True
        members = np.array([(place, c) for place, c in enumerate(self.ranking[: self.k])
                            if is_open[c]], dtype=np.int64).reshape(-1, 2)
        if not members.size:
            return []
        places, configs = members[:, 0], members[:, 1]
        order = rotation_order(places, situation.trained[configs], self.decay)
        return [int(configs[i]) for i in order]


@dataclass
class Screening(_ModelFree):
    """Train every configuration of ``ranking`` for one epoch, in that order."""

    ranking: Sequence[int] = ()
    name = "screening"

    def order(self, posterior, situation: Situation) -> list[int]:
        open_ = set(situation.open.tolist())
        return [int(c) for c in self.ranking if situation.trained[c] == 0 and c in open_]


@dataclass
class SuccessiveHalving(_ModelFree):
    """Successive halving from the configurations ``start`` (in that order; ties keep it).

    Each rung trains its configurations one after the other up to the rung's epoch (1, eta,
    eta^2, ...); the best ``max(1, len // eta)`` by their value at that epoch go on to the next
    rung. With ``train_survivor`` a single survivor is trained to its last epoch; otherwise
    training stops once the last survivor reaches its rung. The rungs are recomputed from the
    observations at every call, so the policy holds no state of its own."""

    start: Sequence[int] = ()
    eta: int = 3
    n_epochs: int = 1
    train_survivor: bool = False
    values: dict[tuple[int, int], float] = field(default_factory=dict)
    name = "successive-halving"

    def observe(self, candidate: int, epoch: int, value: float) -> None:
        super().observe(candidate, epoch, value)
        self.values[(int(candidate), int(epoch))] = float(value)

    def order(self, posterior, situation: Situation) -> list[int]:
        alive, rung = np.asarray(self.start), 1
        while True:
            if alive.size == 1 and self.train_survivor:
                rung = self.n_epochs
            rung = min(rung, self.n_epochs)
            pending = [int(c) for c in alive if situation.trained[c] < rung]
            if pending:
                open_ = set(situation.open.tolist())
                return [c for c in pending if c in open_]
            if alive.size == 1 or rung == self.n_epochs:
                return []
            scores = np.array([self.values[(int(c), rung)] for c in alive])
            alive = alive[np.argsort(-scores, kind="stable")[:max(1, alive.size // self.eta)]]
            rung *= self.eta


@dataclass
class Portfolio(_ModelFree):
    """Train the configurations of ``ranking`` one after another, each to its last epoch (a
    FIFO scheduler over a zero-shot portfolio, :func:`greedy_portfolio`)."""

    ranking: Sequence[int] = ()
    name = "portfolio"

    def order(self, posterior, situation: Situation) -> list[int]:
        open_ = set(situation.open.tolist())
        return [int(c) for c in self.ranking if c in open_]


class ModelFreeCore:
    """The coordinator's decision-core protocol for a model-free policy: candidates, the
    observations, and the policy's order and recommendation (no posterior)."""

    def __init__(self, policy, candidates: Sequence[dict[str, Any]], n_epochs: int) -> None:
        self.policy = policy
        self.candidates = list(candidates)
        self.n_epochs = n_epochs
        self.observations = ObservationStore(n_epochs)
        self.failed: set[int] = set()

    @property
    def n_candidates(self) -> int:
        return len(self.candidates)

    def observe(self, candidate: int, epoch: int, value: float) -> None:
        observation = self.observations.check(candidate, epoch, value, len(self.candidates))
        self.observations.append(observation)
        self.policy.observe(candidate, epoch, observation.value)

    def mark_failed(self, candidate: int) -> None:
        self.failed.add(candidate)

    def condition(self) -> None:
        """Nothing to condition: no model."""

    def next_epoch(self, candidate: int) -> int:
        return self.observations.next_epoch(candidate)

    def ranked_queries(self, limit: int | None = None,
                       closed: Collection[int] = ()) -> list[Query]:
        situation = situation_of(self.observations.next_epochs(len(self.candidates)), self.failed,
                                 self.n_epochs, np.ones(len(self.candidates), dtype=bool),
                                 closed=closed)
        return queries_in_order(self.policy.order(None, situation), self.next_epoch, limit)

    def recommend(self) -> int:
        eligible = [c for c in range(len(self.candidates)) if c not in self.failed]
        return self.policy.recommend(None, eligible)

    def state_dict(self) -> dict[str, Any]:
        return {"observations": self.observations.to_json(), "failed": sorted(self.failed),
                "policy": self.policy.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.observations = ObservationStore.from_json(state["observations"], self.n_epochs)
        self.failed = set(state["failed"])
        for observation in self.observations:
            self.policy.observe(observation.candidate, observation.epoch, observation.value)
        self.policy.load_state_dict(state["policy"])


def greedy_portfolio(scores: np.ndarray, limit: int | None = None) -> list[int]:
    """Syne Tune's ``ZeroShotTransfer`` (Wistuba et al. 2015), reimplemented: configurations
    in the order a greedy portfolio picks them from the prior tasks' ``scores`` ``(T, C)``
    (higher is better; NaN: not observed).

    Each task ranks its configurations (1 = best, ties averaged, NaN left out). The next pick is
    the configuration with the lowest mean rank over the tasks that ranked it (ties: the lower
    index); then every task's ranks are capped at the pick's rank there, so a configuration
    gains only where it beats what the portfolio holds. Once every task's ranks are equal,
    the remaining configurations are ranked afresh. ``limit``: stop after that many picks."""
    scores = np.asarray(scores, dtype=float)
    remaining = [c for c in range(scores.shape[1]) if not np.isnan(scores[:, c]).all()]
    columns = list(remaining)
    ranks = _row_ranks(-scores[:, columns])
    picked: list[int] = []
    while remaining and (limit is None or len(picked) < limit):
        with np.errstate(invalid="ignore"):
            means = np.nanmean(ranks, axis=0)
        candidates = [i for i, c in enumerate(columns) if c in remaining and not np.isnan(means[i])]
        best = min(candidates, key=lambda i: (means[i], columns[i]))
        cap = ranks[:, best]
        ranks = np.where(np.isnan(cap)[:, None], ranks, np.minimum(ranks, cap[:, None]))
        picked.append(columns[best])
        remaining.remove(columns[best])
        if remaining and np.nansum(_row_std(ranks)) == 0:
            columns = list(remaining)
            ranks = _row_ranks(-scores[:, columns])
    return picked


def _row_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks (1 = smallest) within each row, ties averaged, NaN left as NaN (pandas' rank):
    a value with ``L`` smaller and ``E`` equal values (itself included) in its row has rank
    ``L + (E + 1) / 2``."""
    values = np.asarray(values, dtype=float)
    smaller = (values[:, None, :] < values[:, :, None]).sum(axis=2)
    equal = (values[:, None, :] == values[:, :, None]).sum(axis=2)
    return np.where(np.isnan(values), np.nan, smaller + (equal + 1) / 2)


def _row_std(ranks: np.ndarray) -> np.ndarray:
    """Each row's sample standard deviation over its ranked entries (NaN below 2)."""
    counts = (~np.isnan(ranks)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 1, np.nanstd(ranks, axis=1, ddof=1) if ranks.size else 0.0,
                        np.nan)
