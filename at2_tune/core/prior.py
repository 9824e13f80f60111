"""Learning curves of earlier tuning tasks, the data AT2 transfers from."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from at2_tune.databases import LearningCurveDatabase


@dataclass(frozen=True, eq=False)
class PriorData:
    """Full curves of prior tasks on a shared grid of configurations.

    Attributes:
        tasks: prior task names.
        configs: the grid's configurations (in the search space's vocabulary).
        curves: float64 ``(n_tasks, n_configs, n_epochs)``.
        source: where the data came from (e.g. ``hyperrec seed profile 0``), for metadata.
    """

    tasks: tuple[str, ...]
    configs: tuple[dict[str, Any], ...]
    curves: np.ndarray
    source: str = ""

    @classmethod
    def from_database(cls, db: LearningCurveDatabase, tasks: Sequence[str],
                      seed_profile: int = 0) -> "PriorData":
        curves = np.stack([db.task_curves(task, seed_profile) for task in tasks]) if tasks \
            else np.zeros((0, db.n_configs, db.n_epochs))
        return cls(tuple(tasks), db.configs, curves, f"{db.name} seed profile {seed_profile}")

    @classmethod
    def empty(cls, configs: Sequence[dict[str, Any]], n_epochs: int) -> "PriorData":
        """No prior task: plain multi-fidelity BO over ``configs``."""
        return cls((), tuple(configs), np.zeros((0, len(configs), n_epochs)), "none")

    @property
    def n_tasks(self) -> int:
        return self.curves.shape[0]

    @property
    def n_configs(self) -> int:
        return self.curves.shape[1]

    @property
    def n_epochs(self) -> int:
        return self.curves.shape[2]

    def standardized(self) -> "PriorData":
        """Each task's curves shifted and scaled to the prior tasks' average mean and spread.

        Tasks differ in how far their configurations spread (LCBench accuracies near 0.99 vs
        near 0.6); without this, the tasks with the widest spread dominate what transfers.
        The common target scale keeps the prior comparable with the new task's raw values.
        """
        if self.n_tasks == 0:
            return self
        flat = self.curves.reshape(self.n_tasks, -1)
        mean = flat.mean(axis=1)[:, None, None]
        spread = np.maximum(flat.std(axis=1), 1e-12)[:, None, None]
        curves = (self.curves - mean) / spread * spread.mean() + mean.mean()
        return PriorData(self.tasks, self.configs, curves, f"{self.source} (standardized)")

    def fingerprint(self) -> str:
        """A hash of tasks, configs and curves (keys the cache of offline fits)."""
        digest = hashlib.sha256(json.dumps([self.tasks, self.configs], sort_keys=True).encode())
        digest.update(np.ascontiguousarray(self.curves, dtype=np.float64).tobytes())
        return digest.hexdigest()
