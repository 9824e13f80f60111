"""The :class:`LearningCurveDatabase` type that replay, the surrogate and the benchmarks read."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from at2_tune.errors import AT2Error, UnknownTaskError


@dataclass(frozen=True)
class TrainTestPair:
    """One of the paper's transfer settings: tune ``test_task`` with ``train_tasks`` as prior."""

    train_tasks: tuple[str, ...]
    test_task: str


@dataclass(frozen=True, eq=False)
class LearningCurveDatabase:
    """Validation-accuracy learning curves of a fixed set of configurations on several tasks.

    Attributes:
        name: database name (``hyperrec`` or ``lcbench``).
        tasks: task names; ``curves``' task axis follows this order.
        configs: configurations in the search space's vocabulary; ``curves``' config axis
            follows this order (index = the release's config id).
        raw_configs: the same configurations in the release's own vocabulary.
        curves: float64 array ``[seed, task, config, epoch]`` of validation accuracy in [0, 1];
            epoch index ``e`` holds the value after ``e + 1`` epochs of training.
        pairs: the paper's train/test task pairs for this database.
        space_name: name of the search space ``configs`` belong to (see ``search_spaces``).
    """

    name: str
    tasks: tuple[str, ...]
    configs: tuple[dict[str, Any], ...]
    raw_configs: tuple[dict[str, Any], ...]
    curves: np.ndarray
    pairs: tuple[TrainTestPair, ...]
    space_name: str
    _task_index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        expected = (len(self.tasks), len(self.configs))
        if self.curves.ndim != 4 or self.curves.shape[1:3] != expected:
            raise AT2Error(f"{self.name}: curves have shape {self.curves.shape}; expected "
                           f"[seed, {expected[0]} tasks, {expected[1]} configs, epoch]")
        self.curves.setflags(write=False)
        object.__setattr__(self, "_task_index", {t: i for i, t in enumerate(self.tasks)})

    @property
    def n_seeds(self) -> int:
        return self.curves.shape[0]

    @property
    def n_tasks(self) -> int:
        return self.curves.shape[1]

    @property
    def n_configs(self) -> int:
        return self.curves.shape[2]

    @property
    def n_epochs(self) -> int:
        return self.curves.shape[3]

    def task_index(self, task: str) -> int:
        """Index of ``task`` on the task axis.

        Raises:
            UnknownTaskError: ``task`` is not in this database (the message suggests the
                closest name and lists them all).
        """
        try:
            return self._task_index[task]
        except KeyError:
            close = difflib.get_close_matches(str(task), self.tasks, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownTaskError(f"unknown task {task!r} in database {self.name!r}.{hint} "
                                   f"Known tasks: {', '.join(self.tasks)}") from None

    def _seed(self, seed: int) -> int:
        if not 0 <= seed < self.n_seeds:
            raise AT2Error(f"seed profile {seed} does not exist in {self.name!r}; "
                           f"choose one of 0..{self.n_seeds - 1}")
        return seed

    def pair(self, index: int) -> TrainTestPair:
        """The paper's train/test pair number ``index`` (0-based)."""
        if not 0 <= index < len(self.pairs):
            raise AT2Error(f"pair {index} does not exist in {self.name!r}; "
                           f"choose one of 0..{len(self.pairs) - 1}")
        return self.pairs[index]

    def task_curves(self, task: str, seed: int = 0) -> np.ndarray:
        """Curves of every configuration on ``task``: float64 ``[config, epoch]`` (read-only)."""
        return self.curves[self._seed(seed), self.task_index(task)]

    def curve(self, task: str, config_id: int, seed: int = 0) -> np.ndarray:
        """The learning curve ``[epoch]`` of configuration ``config_id`` on ``task``."""
        return self.task_curves(task, seed)[self._config(config_id)]

    def _config(self, config_id: int) -> int:
        if not 0 <= config_id < self.n_configs:
            raise AT2Error(f"config id {config_id} does not exist in {self.name!r}; "
                           f"choose one of 0..{self.n_configs - 1}")
        return config_id

    def final_values(self, task: str, seed: int = 0) -> np.ndarray:
        """Best value over epochs of every configuration on ``task``: ``[config]``."""
        return self.task_curves(task, seed).max(axis=1)

    def ranks(self, task: str, seed: int = 0) -> np.ndarray:
        """Rank of every configuration on ``task`` by final value: ``[config]``, 0 = best.

        A configuration's rank is the number of configurations with a strictly better final
        value, so tied configurations share a rank.
        """
        final = self.final_values(task, seed)
        return (final[None, :] > final[:, None]).sum(axis=1)

    def rank(self, task: str, config_id: int, seed: int = 0) -> int:
        """Rank of ``config_id`` on ``task`` (0 = best of all configurations)."""
        return int(self.ranks(task, seed)[self._config(config_id)])

    def regret(self, task: str, config_id: int, seed: int = 0) -> float:
        """Best final value on ``task`` minus the final value of ``config_id`` (>= 0)."""
        final = self.final_values(task, seed)
        return float(final.max() - final[self._config(config_id)])

    def tasks_excluding(self, excluded: Sequence[str]) -> tuple[str, ...]:
        """All tasks but ``excluded`` (each of which must exist)."""
        drop = {self.tasks[self.task_index(t)] for t in excluded}
        return tuple(t for t in self.tasks if t not in drop)
