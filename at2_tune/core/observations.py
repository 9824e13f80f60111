"""An append-only store of the target task's observations."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from at2_tune.errors import AT2Error


@dataclass(frozen=True)
class Observation:
    """Candidate ``candidate`` reached validation value ``value`` after ``epoch`` epochs (1-based)."""

    candidate: int
    epoch: int
    value: float


class ObservationStore:
    """Observations of the target task, in arrival order; each (candidate, epoch) at most once."""

    def __init__(self, n_epochs: int) -> None:
        self.n_epochs = n_epochs
        self._rows: list[Observation] = []
        self._epochs: dict[int, set[int]] = {}
        self._next: dict[int, int] = {}  # smallest epoch not observed, per observed candidate

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[Observation]:
        return iter(self._rows)

    def check(self, candidate: int, epoch: int, value: float, n_candidates: int) -> Observation:
        """The observation, or a clear :class:`AT2Error` naming what is wrong with it."""
        if not 0 <= candidate < n_candidates:
            raise AT2Error(f"candidate {candidate} does not exist; candidates are 0..{n_candidates - 1}")
        if not isinstance(epoch, int) or isinstance(epoch, bool) or not 1 <= epoch <= self.n_epochs:
            raise AT2Error(f"epoch {epoch!r} of candidate {candidate} is outside 1..{self.n_epochs}; "
                           "epochs are 1-based integers up to the maximum number of epochs")
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise AT2Error(f"value {value!r} of candidate {candidate} at epoch {epoch} is not a "
                           "number; report the metric as a float") from None
        if not math.isfinite(value):
            raise AT2Error(f"value {value} of candidate {candidate} at epoch {epoch} is not "
                           "finite; record the trial as failed instead of observing it")
        if epoch in self._epochs.get(candidate, ()):
            raise AT2Error(f"candidate {candidate} was already observed at epoch {epoch}; "
                           "each (candidate, epoch) is observed once")
        return Observation(candidate, epoch, value)

    def append(self, observation: Observation) -> None:
        self._rows.append(observation)
        seen = self._epochs.setdefault(observation.candidate, set())
        seen.add(observation.epoch)
        epoch = self._next.get(observation.candidate, 1)
        while epoch in seen:
            epoch += 1
        self._next[observation.candidate] = epoch

    def epochs_of(self, candidate: int) -> set[int]:
        return set(self._epochs.get(candidate, ()))

    def next_epoch(self, candidate: int) -> int:
        """The smallest epoch of ``candidate`` not observed yet (``n_epochs + 1`` when done)."""
        return self._next.get(candidate, 1)

    def next_epochs(self, n_candidates: int) -> np.ndarray:
        """``(n_candidates,)`` int: :meth:`next_epoch` of every candidate."""
        epochs = np.ones(n_candidates, dtype=np.int64)
        for candidate, epoch in self._next.items():
            epochs[candidate] = epoch
        return epochs

    def to_json(self) -> list[list]:
        return [[o.candidate, o.epoch, o.value] for o in self._rows]

    @classmethod
    def from_json(cls, rows: list[list], n_epochs: int) -> "ObservationStore":
        store = cls(n_epochs)
        for candidate, epoch, value in rows:
            store.append(Observation(int(candidate), int(epoch), float(value)))
        return store
