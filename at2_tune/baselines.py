"""Cheap baselines for replay tuning, on the same protocol and metric as AT2.

A query trains one configuration for one more epoch, i.e. reveals the next value of its learning
curve on the test task. Every baseline returns a :class:`BaselineRun`: the recommended
configuration after every query of the budget (the configuration with the best value observed
so far on the test task, ties to the earliest observation) and the configuration trained by each
query. A baseline that stops training before the budget is spent keeps its last recommendation
for the remaining queries, so ``recommended`` always has ``task.budget`` entries and ``trained``
may have fewer.

The transfer baselines (:func:`zero_shot`, :func:`top_k_round_robin`,
:func:`transfer_successive_halving`) order the configurations by their average rank on the
prior tasks (``task.train_tasks``); the others ignore the prior tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from at2_tune.core.acquisition import owed_epochs
from at2_tune.databases import LearningCurveDatabase
from at2_tune.replay import ReplayTask


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


class _Replay:
    """One baseline run on the test task: reveals an epoch per query, tracks the best value."""

    def __init__(self, db: LearningCurveDatabase, task: ReplayTask) -> None:
        self.curves = db.task_curves(task.test_task, task.seed_profile)
        self.budget = task.budget
        self.epochs = np.zeros(db.n_configs, dtype=int)
        self.recommended: list[int] = []
        self.trained: list[int] = []
        self._best_value = -np.inf

    @property
    def spent(self) -> bool:
        return len(self.trained) >= self.budget

    def finished(self, config: int) -> bool:
        """Whether ``config`` has been trained to its last epoch."""
        return self.epochs[config] >= self.curves.shape[1]

    def train(self, config: int) -> None:
        """Spend one query: train ``config`` for its next epoch."""
        value = self.curves[config, self.epochs[config]]
        self.epochs[config] += 1
        self.trained.append(int(config))
        if value > self._best_value:
            self._best_value = value
            self.recommended.append(int(config))
        else:
            self.recommended.append(self.recommended[-1])

    def train_to(self, config: int, epoch: int) -> None:
        """Train ``config`` up to ``epoch`` epochs (fewer if the budget runs out)."""
        while self.epochs[config] < min(epoch, self.curves.shape[1]) and not self.spent:
            self.train(config)

    def result(self) -> BaselineRun:
        padding = [self.recommended[-1]] * (self.budget - len(self.recommended))
        return BaselineRun(self.recommended + padding, list(self.trained))


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


def top_k_round_robin(db: LearningCurveDatabase, task: ReplayTask, k: int,
                      decay: float = 0.0, order: np.ndarray | None = None) -> BaselineRun:
    """Train the ``k`` best configurations by average prior rank one epoch each, in turn.

    With ``decay=0`` query ``i`` trains ``order[i mod k]`` for its next epoch. With ``decay >
    0`` the configuration in place ``i`` (0 = best prior rank) is owed the share ``(i + 1) **
    -decay`` (normalized) of the epochs, and each query trains the one furthest below its share
    (ties to the better place): the prior's favourite gets the most epochs. A configuration at
    its last epoch leaves the rotation and the others continue. ``order`` replaces the
    average-rank order (configuration indices, best first), e.g. for a prior that did not
    observe every configuration.
    """
    if k < 1 or decay < 0:
        raise ValueError(f"top_k_round_robin: k={k} must be at least 1 and decay={decay} at "
                         "least 0")
    if order is None:
        order = prior_order(db, task, "top_k_round_robin")
    rotation = np.asarray(order)[:k]
    weights = (np.arange(k) + 1.0) ** -decay
    run = _Replay(db, task)
    while not run.spent:
        open_ = np.array([not run.finished(c) for c in rotation])
        if not open_.any():
            break
        deficit = owed_epochs(np.where(open_, weights, 0.0), run.epochs[rotation])
        place = int(np.argmax(np.where(open_, np.round(deficit, 9), -np.inf)))  # ties: first
        run.train(int(rotation[place]))
    return run.result()


def one_epoch_screening(db: LearningCurveDatabase, task: ReplayTask,
                        rng: np.random.Generator) -> BaselineRun:
    """Train every configuration for one epoch (in random order); recommend the best so far."""
    run = _Replay(db, task)
    for config in rng.permutation(db.n_configs).tolist():
        if run.spent:
            break
        run.train(config)
    return run.result()


def successive_halving(db: LearningCurveDatabase, task: ReplayTask, rng: np.random.Generator,
                       n_start: int = 27, eta: int = 3) -> BaselineRun:
    """Successive halving from ``n_start`` random configurations, rungs at 1, eta, eta^2... epochs.

    The survivors of each rung (the best 1/eta by their value at the rung's epoch) are trained
    up to the next rung; training stops once the last survivor reaches its rung.
    """
    start = rng.choice(db.n_configs, size=n_start, replace=False)
    return _successive_halving(db, task, start, eta, train_survivor=False)


def transfer_successive_halving(db: LearningCurveDatabase, task: ReplayTask, n: int,
                                eta: int = 3) -> BaselineRun:
    """Successive halving over the ``n`` best configurations by average prior rank.

    Rungs at 1, eta, eta^2... epochs as in :func:`successive_halving`; once a single
    configuration survives, it is trained one epoch per query until the budget ends or it
    reaches its last epoch.
    """
    start = prior_order(db, task, "transfer_successive_halving")[:n]
    return _successive_halving(db, task, start, eta, train_survivor=True)


def _successive_halving(db: LearningCurveDatabase, task: ReplayTask, start: np.ndarray,
                        eta: int, train_survivor: bool) -> BaselineRun:
    """Successive halving from the configurations ``start`` (in that order; ties keep it).

    Each rung trains its configurations one after the other up to the rung's epoch; the best
    ``max(1, len // eta)`` by their value at that epoch go on to the next rung (``eta`` times
    more epochs). With ``train_survivor``, a single survivor is trained to its last epoch.
    """
    if eta < 2 or len(start) < 1:
        raise ValueError(f"successive halving needs eta >= 2 and at least one configuration "
                         f"(got eta={eta}, {len(start)} configurations)")
    run = _Replay(db, task)
    alive = np.asarray(start)
    rung = 1
    while True:
        if alive.size == 1 and train_survivor:
            rung = db.n_epochs
        rung = min(rung, db.n_epochs)
        for config in alive.tolist():
            run.train_to(config, rung)
        if run.spent or alive.size == 1 or rung == db.n_epochs:
            return run.result()
        scores = run.curves[alive, rung - 1]
        alive = alive[np.argsort(-scores, kind="stable")[:max(1, alive.size // eta)]]
        rung *= eta


BY_NAME = {
    "zero-shot": lambda db, task, rng: zero_shot(db, task),
    "top3": lambda db, task, rng: top_k_round_robin(db, task, 3),
    "top5": lambda db, task, rng: top_k_round_robin(db, task, 5),
    "top4-weighted": lambda db, task, rng: top_k_round_robin(db, task, 4, decay=0.5),
    "transfer-sh9": lambda db, task, rng: transfer_successive_halving(db, task, 9),
    "transfer-sh27": lambda db, task, rng: transfer_successive_halving(db, task, 27),
    "screening": lambda db, task, rng: one_epoch_screening(db, task, rng),
    "successive-halving": lambda db, task, rng: successive_halving(db, task, rng),
}
"""The baselines by name, each called as ``(database, task, numpy Generator)`` (the
deterministic ones ignore the generator)."""
RANDOM = ("screening", "successive-halving")
"""The baselines of :data:`BY_NAME` that use the generator."""
