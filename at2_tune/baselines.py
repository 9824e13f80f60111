"""Cheap baselines for replay tuning, written as policies and replayed by the same coordinator.

Each baseline is a policy (``at2_tune.core.policies.Policy``) without a model: it orders the
open candidates from what it observed and from the prior tasks' ranks. A
:class:`ModelFreeCore` gives it the coordinator's decision-core protocol, so a baseline runs
through the coordinator's K-slot simulator (``at2_tune.simulator.simulate``) exactly as AT2 does,
on one slot or on ``K``. Every baseline recommends the configuration with the best value
observed so far (ties: the earliest observation).

:func:`run_baseline` returns a :class:`BaselineRun`: the recommended configuration after every
query of the budget and the configuration trained by each query. A baseline that stops
training before the budget is spent keeps its last recommendation for the remaining queries,
so ``recommended`` always has ``task.budget`` entries and ``trained`` may have fewer.

The transfer baselines (:func:`zero_shot`, :func:`top_k_round_robin`,
:func:`transfer_successive_halving`) order the configurations by their average rank on the
prior tasks (``task.train_tasks``); the others ignore the prior tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from at2_tune.core.acquisition import owed_epochs
from at2_tune.core.coordinator import Coordinator
from at2_tune.core.observations import ObservationStore
from at2_tune.core.policies import (BestObserved, Query, RecommendingPolicy, Situation,
                                    queries_in_order, situation_of)
from at2_tune.databases import LearningCurveDatabase
from at2_tune.simulator import ReplayTask, simulate


@dataclass(frozen=True)
class BaselineRun:
    """What a baseline did on one task.

    Attributes:
        recommended: the recommended configuration after each query (``task.budget`` entries).
        trained: the configuration trained by each query that was spent (at most
            ``task.budget`` entries; the n-th time a configuration appears, it trains its n-th
            epoch).
    """

    recommended: list[int]
    trained: list[int]

    @property
    def configs_touched(self) -> int:
        """How many distinct configurations were trained for at least one epoch."""
        return len(set(self.trained))


# ---------------------------------------------------------------- policies
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
        rotation = np.asarray(self.ranking)[: self.k]
        weights = (np.arange(rotation.size) + 1.0) ** -self.decay
        open_ = np.isin(rotation, situation.open)
        if not open_.any():
            return []
        deficit = np.round(owed_epochs(np.where(open_, weights, 0.0),
                                       situation.trained[rotation]), 9)
        places = sorted(np.flatnonzero(open_), key=lambda place: (-deficit[place], place))
        return [int(rotation[place]) for place in places]


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


def greedy_portfolio(scores: np.ndarray) -> list[int]:
    """Syne Tune's ``ZeroShotTransfer`` (Wistuba et al. 2015), reimplemented: configurations
    in the order a greedy portfolio picks them from the prior tasks' ``scores`` ``(T, C)``
    (higher is better; NaN: not observed).

    Each task ranks its configurations (1 = best, ties averaged, NaN left out). The next pick is
    the configuration with the lowest mean rank over the tasks that ranked it (ties: the lower
    index); then every task's ranks are capped at the pick's rank there, so a configuration
    gains only where it beats what the portfolio holds. Once every task's ranks are equal,
    the remaining configurations are ranked afresh."""
    scores = np.asarray(scores, dtype=float)
    remaining = [c for c in range(scores.shape[1]) if not np.isnan(scores[:, c]).all()]
    columns = list(remaining)
    ranks = _row_ranks(-scores[:, columns])
    picked: list[int] = []
    while remaining:
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
    """Ranks (1 = smallest) within each row, ties averaged, NaN left as NaN (pandas' rank)."""
    ranks = np.full(values.shape, np.nan)
    for row, row_values in enumerate(values):
        seen = ~np.isnan(row_values)
        present = row_values[seen]
        order = np.argsort(present, kind="stable")
        positions = np.empty(present.size)
        positions[order] = np.arange(1, present.size + 1)
        for value in np.unique(present):  # ties: their average rank
            tied = present == value
            positions[tied] = positions[tied].mean()
        ranks[row, seen] = positions
    return ranks


def _row_std(ranks: np.ndarray) -> np.ndarray:
    """Each row's sample standard deviation over its ranked entries (NaN below 2)."""
    counts = (~np.isnan(ranks)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 1, np.nanstd(ranks, axis=1, ddof=1) if ranks.size else 0.0,
                        np.nan)


# ---------------------------------------------------------------- running them
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

    def ranked_queries(self, candidates=None, limit: int | None = None) -> list[Query]:
        situation = situation_of(len(self.candidates), self.failed, self.next_epoch,
                                 self.n_epochs, np.ones(len(self.candidates), dtype=bool))
        return queries_in_order(self.policy.order(None, situation), self.next_epoch,
                                candidates, limit)

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


def replay_policy(db: LearningCurveDatabase, task: ReplayTask, policy, concurrency: int = 1,
                  seed: int = 0) -> BaselineRun:
    """Replay a model-free ``policy`` on ``task`` through the coordinator on ``concurrency``
    simulated slots (``at2_tune.simulator.simulate``, seeded epoch durations)."""
    core = ModelFreeCore(policy, db.configs, db.n_epochs)
    coordinator = Coordinator(core, budget_epochs=task.budget, max_concurrent=concurrency,
                              track_recommendations=True)
    simulate(coordinator, db.task_curves(task.test_task, task.seed_profile), concurrency, seed)
    trained = [row.candidate for row in coordinator.trace]
    recommended = [row.recommended for row in coordinator.trace] or [core.recommend()]
    return BaselineRun(recommended + [recommended[-1]] * (task.budget - len(trained)), trained)


# ---------------------------------------------------------------- the baselines
def prior_order(db: LearningCurveDatabase, task: ReplayTask, method: str) -> np.ndarray:
    """Configuration indices by average rank on the prior tasks, best first (ties: lower index).

    Raises:
        ValueError: ``task`` has no prior tasks (``method`` names the caller in the message).
    """
    if not task.train_tasks:
        raise ValueError(f"{method} is a transfer baseline and needs prior tasks, but "
                         f"task.train_tasks is empty (test task {task.test_task!r}); name prior "
                         "tasks (e.g. resolve_task(db, pair=0) or train_tasks=[...]) or use a "
                         "baseline without transfer (one_epoch_screening, successive_halving)")
    average_rank = np.mean([db.ranks(t, task.seed_profile) for t in task.train_tasks], axis=0)
    return np.argsort(average_rank, kind="stable")


def zero_shot(db: LearningCurveDatabase, task: ReplayTask) -> BaselineRun:
    """The configuration with the best average rank on the prior tasks, without any query."""
    return BaselineRun([int(prior_order(db, task, "zero_shot")[0])] * task.budget, [])


def prior_best_values(db: LearningCurveDatabase, task: ReplayTask) -> np.ndarray:
    """``(T, C)`` each prior task's best value of each configuration over its epochs."""
    prior_order(db, task, "the portfolio")  # no prior tasks: the same clear error
    return np.stack([db.task_curves(t, task.seed_profile).max(axis=1) for t in task.train_tasks])


def portfolio(db: LearningCurveDatabase, task: ReplayTask, scores: np.ndarray | None = None,
              concurrency: int = 1) -> BaselineRun:
    """Syne Tune's zero-shot transfer with a FIFO scheduler: the greedy portfolio of the prior
    tasks' ``scores`` (default: their best value of every configuration,
    :func:`prior_best_values`), each configuration trained to its last epoch in turn."""
    ranking = greedy_portfolio(prior_best_values(db, task) if scores is None else scores)
    return replay_policy(db, task, Portfolio(ranking[0], ranking=ranking), concurrency)


def top_k_round_robin(db: LearningCurveDatabase, task: ReplayTask, k: int,
                      decay: float = 0.0, order: np.ndarray | None = None,
                      concurrency: int = 1) -> BaselineRun:
    """Train the ``k`` best configurations by average prior rank in turn (:class:`RoundRobin`).

    With ``decay=0`` query ``i`` trains ``order[i mod k]`` for its next epoch; with ``decay > 0``
    the prior's favourite gets the most epochs. ``order`` replaces the average-rank order
    (configuration indices, best first), e.g. for a prior that did not observe every
    configuration.
    """
    if k < 1 or decay < 0:
        raise ValueError(f"top_k_round_robin: k={k} must be at least 1 and decay={decay} at "
                         "least 0")
    if order is None:
        order = prior_order(db, task, "top_k_round_robin")
    ranking = [int(c) for c in order]
    return replay_policy(db, task, RoundRobin(ranking[0], ranking=ranking, k=k, decay=decay),
                         concurrency)


def one_epoch_screening(db: LearningCurveDatabase, task: ReplayTask,
                        rng: np.random.Generator, concurrency: int = 1) -> BaselineRun:
    """Train every configuration for one epoch (in random order); recommend the best so far."""
    ranking = rng.permutation(db.n_configs).tolist()
    return replay_policy(db, task, Screening(ranking[0], ranking=ranking), concurrency)


def successive_halving(db: LearningCurveDatabase, task: ReplayTask, rng: np.random.Generator,
                       n_start: int = 27, eta: int = 3, concurrency: int = 1) -> BaselineRun:
    """Successive halving from ``n_start`` random configurations, rungs at 1, eta, eta^2...
    epochs; training stops once the last survivor reaches its rung."""
    start = rng.choice(db.n_configs, size=n_start, replace=False)
    return _successive_halving(db, task, start, eta, False, concurrency)


def transfer_successive_halving(db: LearningCurveDatabase, task: ReplayTask, n: int,
                                eta: int = 3, concurrency: int = 1,
                                order: np.ndarray | None = None) -> BaselineRun:
    """Successive halving over the ``n`` best configurations by average prior rank (or of
    ``order``); once a single configuration survives, it is trained until the budget ends or
    it reaches its last epoch."""
    if order is None:
        order = prior_order(db, task, "transfer_successive_halving")
    start = np.asarray(order)[:n]
    return _successive_halving(db, task, start, eta, True, concurrency)


def _successive_halving(db, task, start, eta: int, train_survivor: bool,
                        concurrency: int) -> BaselineRun:
    if eta < 2 or len(start) < 1:
        raise ValueError(f"successive halving needs eta >= 2 and at least one configuration "
                         f"(got eta={eta}, {len(start)} configurations)")
    start = [int(c) for c in start]
    policy = SuccessiveHalving(start[0], start=start, eta=eta, n_epochs=db.n_epochs,
                               train_survivor=train_survivor)
    return replay_policy(db, task, policy, concurrency)


BY_NAME: dict[str, Callable[..., BaselineRun]] = {
    "zero-shot": lambda db, task, rng, k=1: zero_shot(db, task),
    "top3": lambda db, task, rng, k=1: top_k_round_robin(db, task, 3, concurrency=k),
    "top5": lambda db, task, rng, k=1: top_k_round_robin(db, task, 5, concurrency=k),
    "top4-weighted": lambda db, task, rng, k=1: top_k_round_robin(db, task, 4, decay=0.5,
                                                                  concurrency=k),
    "transfer-sh9": lambda db, task, rng, k=1: transfer_successive_halving(db, task, 9,
                                                                           concurrency=k),
    "transfer-sh27": lambda db, task, rng, k=1: transfer_successive_halving(db, task, 27,
                                                                            concurrency=k),
    "portfolio": lambda db, task, rng, k=1: portfolio(db, task, concurrency=k),
    "screening": lambda db, task, rng, k=1: one_epoch_screening(db, task, rng, k),
    "successive-halving": lambda db, task, rng, k=1: successive_halving(db, task, rng,
                                                                        concurrency=k),
}
"""The baselines by name, each called as ``(database, task, numpy Generator, slots=1)`` (the
deterministic ones ignore the generator)."""
RANDOM = ("screening", "successive-halving")
"""The baselines of :data:`BY_NAME` that use the generator."""
