"""Cheap baselines for replay tuning, written as policies and replayed by the same coordinator.

Each baseline is a model-free schedule (``at2_tune.core.schedules``): it orders the open candidates
from what it observed and from the prior tasks' ranks. A
:class:`~at2_tune.core.schedules.ModelFreeCore` gives it the coordinator's decision-core protocol,
so a baseline runs through the coordinator's K-slot simulator
(``at2_tune.core.simulation.simulate``) exactly as AT2 does, on one slot or on ``K``. Every baseline
recommends the configuration with the best value observed so far (ties: the earliest observation).

:func:`run_baseline` returns a :class:`BaselineRun`: the recommended configuration after every
query of the budget and the configuration trained by each query. A baseline that stops
training before the budget is spent keeps its last recommendation for the remaining queries,
so ``recommended`` always has ``task.budget`` entries and ``trained`` may have fewer.

The transfer baselines (:func:`zero_shot`, :func:`top_k_round_robin`,
:func:`transfer_successive_halving`) order the configurations by their average rank on the
prior tasks (``task.train_tasks``); the others ignore the prior tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from at2_tune.core.coordinator import Coordinator
from at2_tune.core.prior import prior_order as core_prior_order
from at2_tune.core.schedules import (ModelFreeCore, Portfolio, RoundRobin, Screening,  # noqa: F401
                                     SuccessiveHalving, greedy_portfolio)
from at2_tune.core.simulation import Timing, simulate
from at2_tune.databases import LearningCurveDatabase
from at2_tune.simulator import ReplayTask


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


# ---------------------------------------------------------------- running them
def replay_policy(db: LearningCurveDatabase, task: ReplayTask, policy, concurrency: int = 1,
                  seed: int = 0, timing: Timing = Timing()) -> BaselineRun:
    """Replay a model-free ``policy`` on ``task`` through the coordinator on ``concurrency``
    simulated slots (``at2_tune.core.simulation.simulate``, epochs as long as ``timing`` says:
    by default seeded durations per configuration)."""
    core = ModelFreeCore(policy, db.configs, db.n_epochs)
    coordinator = Coordinator(core, budget_epochs=task.budget, max_concurrent=concurrency,
                              track_recommendations=True)
    simulate(coordinator, db.task_curves(task.test_task, task.seed_profile), concurrency, seed,
             timing=timing)
    trained = [row.candidate for row in coordinator.trace]
    recommended = [row.recommended for row in coordinator.trace] or [core.recommend()]
    return BaselineRun(recommended + [recommended[-1]] * (task.budget - len(trained)), trained)


# ---------------------------------------------------------------- the baselines
def prior_order(db: LearningCurveDatabase, task: ReplayTask, method: str) -> np.ndarray:
    """Configuration indices by mean rank of their best values on the prior tasks, best first
    (ties: lower index): :func:`at2_tune.core.prior.prior_order`, the order AT2's planner and
    the live baselines read too.

    Raises:
        ValueError: ``task`` has no prior tasks (``method`` names the caller in the message).
    """
    return core_prior_order(_best_values(db, task, method))


def zero_shot(db: LearningCurveDatabase, task: ReplayTask) -> BaselineRun:
    """The configuration with the best average rank on the prior tasks, without any query."""
    return BaselineRun([int(prior_order(db, task, "zero_shot")[0])] * task.budget, [])


def prior_best_values(db: LearningCurveDatabase, task: ReplayTask) -> np.ndarray:
    """``(T, C)`` each prior task's best value of each configuration over its epochs."""
    return _best_values(db, task, "the portfolio")


def _best_values(db: LearningCurveDatabase, task: ReplayTask, method: str) -> np.ndarray:
    if not task.train_tasks:
        raise ValueError(f"{method} is a transfer baseline and needs prior tasks, but "
                         f"task.train_tasks is empty (test task {task.test_task!r}); name prior "
                         "tasks (e.g. resolve_task(db, pair=0) or train_tasks=[...]) or use a "
                         "baseline without transfer (one_epoch_screening, successive_halving)")
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


def top_n_in_turn(db: LearningCurveDatabase, task: ReplayTask, n: int,
                  order: np.ndarray | None = None, concurrency: int = 1) -> BaselineRun:
    """Train the ``n`` best configurations by average prior rank (or of ``order``) one after
    another, each to its last epoch (on ``K`` slots, ``K`` at once)."""
    if n < 1:
        raise ValueError(f"top_n_in_turn: n={n} must be at least 1")
    if order is None:
        order = prior_order(db, task, "top_n_in_turn")
    ranking = [int(c) for c in order[:n]]
    return replay_policy(db, task, Portfolio(ranking[0], ranking=ranking), concurrency)


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
                                order: np.ndarray | None = None,
                                timing: Timing = Timing()) -> BaselineRun:
    """Successive halving over the ``n`` best configurations by average prior rank (or of
    ``order``); once a single configuration survives, it is trained until the budget ends or
    it reaches its last epoch."""
    if order is None:
        order = prior_order(db, task, "transfer_successive_halving")
    start = np.asarray(order)[:n]
    return _successive_halving(db, task, start, eta, True, concurrency, timing)


def _successive_halving(db, task, start, eta: int, train_survivor: bool,
                        concurrency: int, timing: Timing = Timing()) -> BaselineRun:
    if eta < 2 or len(start) < 1:
        raise ValueError(f"successive halving needs eta >= 2 and at least one configuration "
                         f"(got eta={eta}, {len(start)} configurations)")
    start = [int(c) for c in start]
    policy = SuccessiveHalving(start[0], start=start, eta=eta, n_epochs=db.n_epochs,
                               train_survivor=train_survivor)
    return replay_policy(db, task, policy, concurrency, timing=timing)


BY_NAME: dict[str, Callable[..., BaselineRun]] = {
    "zero-shot": lambda db, task, rng, k=1: zero_shot(db, task),
    "top1": lambda db, task, rng, k=1: top_k_round_robin(db, task, 1, concurrency=k),
    "top2": lambda db, task, rng, k=1: top_k_round_robin(db, task, 2, concurrency=k),
    "top2-in-turn": lambda db, task, rng, k=1: top_n_in_turn(db, task, 2, concurrency=k),
    "top3-in-turn": lambda db, task, rng, k=1: top_n_in_turn(db, task, 3, concurrency=k),
    "top3": lambda db, task, rng, k=1: top_k_round_robin(db, task, 3, concurrency=k),
    "top5": lambda db, task, rng, k=1: top_k_round_robin(db, task, 5, concurrency=k),
    "top4-weighted": lambda db, task, rng, k=1: top_k_round_robin(db, task, 4, decay=0.5,
                                                                  concurrency=k),
    "transfer-sh": lambda db, task, rng, k=1: transfer_successive_halving(db, task, 9,
                                                                           concurrency=k),
    "transfer-sh27": lambda db, task, rng, k=1: transfer_successive_halving(db, task, 27,
                                                                            concurrency=k),
    "portfolio": lambda db, task, rng, k=1: portfolio(db, task, concurrency=k),
    "screening": lambda db, task, rng, k=1: one_epoch_screening(db, task, rng, k),
    "successive-halving": lambda db, task, rng, k=1: successive_halving(db, task, rng,
                                                                        concurrency=k),
}
"""The baselines by name, each called as ``(database, task, numpy Generator, slots=1)`` (the
deterministic ones ignore the generator). ``top1`` is the prior's best configuration trained
alone; ``topN-in-turn`` trains the prior's top N each to its end in turn."""
RANDOM = ("screening", "successive-halving")
"""The baselines of :data:`BY_NAME` that use the generator."""
