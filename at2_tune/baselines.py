"""Cheap baselines for replay tuning, on the same protocol and metric as AT2.

Each baseline returns the recommended configuration after every query of a budget, so that its
rank can be compared with AT2's at any number of queries. A query is one epoch of training.
"""

from __future__ import annotations

import numpy as np

from at2_tune.databases import LearningCurveDatabase
from at2_tune.replay import ReplayTask


def zero_shot(db: LearningCurveDatabase, task: ReplayTask) -> list[int]:
    """The configuration with the best average rank on the prior tasks, without any query."""
    average_rank = np.mean([db.ranks(t, task.seed_profile) for t in task.train_tasks], axis=0)
    return [int(np.argmin(average_rank))] * task.budget


def one_epoch_screening(db: LearningCurveDatabase, task: ReplayTask,
                        rng: np.random.Generator) -> list[int]:
    """Train every configuration for one epoch (in random order); recommend the best so far."""
    first_epoch = db.task_curves(task.test_task, task.seed_profile)[:, 0]
    order = rng.permutation(db.n_configs)
    recommendations = []
    best = None
    for query in range(task.budget):
        if query < order.size and (best is None or first_epoch[order[query]] > first_epoch[best]):
            best = int(order[query])
        recommendations.append(best)
    return recommendations


def successive_halving(db: LearningCurveDatabase, task: ReplayTask, rng: np.random.Generator,
                       n_start: int = 27, eta: int = 3) -> list[int]:
    """Successive halving from ``n_start`` random configurations, rungs at 1, eta, eta^2... epochs.

    The survivors of each rung (the best 1/eta by their value at the rung's epoch) are trained
    up to the next rung. The recommendation is the configuration with the best value observed
    so far (values seen at their own epochs).
    """
    curves = db.task_curves(task.test_task, task.seed_profile)
    alive = rng.choice(db.n_configs, size=n_start, replace=False)
    trained = dict.fromkeys(alive.tolist(), 0)
    best_seen: dict[int, float] = {}
    recommendations: list[int] = []
    rung_epoch = 1
    while len(recommendations) < task.budget:
        for config in alive.tolist():
            while trained[config] < min(rung_epoch, db.n_epochs):
                trained[config] += 1
                value = curves[config, trained[config] - 1]
                best_seen[config] = max(best_seen.get(config, -np.inf), value)
                recommendations.append(max(best_seen, key=best_seen.get))
                if len(recommendations) == task.budget:
                    return recommendations
        if alive.size == 1 or rung_epoch >= db.n_epochs:
            recommendations.extend([recommendations[-1]] * (task.budget - len(recommendations)))
            return recommendations
        scores = curves[alive, min(rung_epoch, db.n_epochs) - 1]
        keep = max(1, alive.size // eta)
        alive = alive[np.argsort(-scores, kind="stable")[:keep]]
        rung_epoch *= eta
    return recommendations
