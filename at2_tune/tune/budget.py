"""A Tune ``Stopper`` that ends an experiment after a total number of training epochs.

Every method of a benchmark gets the same budget in epochs, whatever its scheduler does:
trials that run to their last epoch (FIFO), trials stopped early (ASHA), trials paused and
resumed (HyperBand). The stopper counts each reported epoch once, in the order the driver
processes results, and records it; once ``budget`` epochs are counted it stops the trial that
reported the last one and every other trial (``stop_all``). Results that concurrent trials
report after that are not counted and stop their trial too, so the record holds exactly
``budget`` epochs (or fewer if the experiment ended first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ray.tune import Stopper
from ray.tune.result import RESULT_DUPLICATE


@dataclass(frozen=True)
class EpochRecord:
    """One counted epoch: which trial reported it, and what it reported."""

    trial_id: str
    result: dict[str, Any]


class EpochBudgetStopper(Stopper):
    """Stop the experiment after ``budget`` reported epochs in total over all trials.

    Args:
        budget: epochs to spend (each non-duplicate result is one epoch), at least 1.
        keep: result keys to keep in :attr:`records` (all keys when ``None``).
    """

    def __init__(self, budget: int, keep: tuple[str, ...] | None = None) -> None:
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            raise ValueError(f"EpochBudgetStopper(budget={budget!r}): the budget must be an "
                             "integer of at least 1 epoch")
        self.budget = budget
        self.keep = keep
        self.records: list[EpochRecord] = []
        self.ignored = 0
        """Results reported after the budget was spent (stopped, not counted)."""

    @property
    def spent(self) -> int:
        return len(self.records)

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if result.get(RESULT_DUPLICATE):  # the final copy Tune sends when a trial returns
            return self.spent >= self.budget
        if self.spent >= self.budget:
            self.ignored += 1
            return True
        kept = dict(result) if self.keep is None else {k: result.get(k) for k in self.keep}
        self.records.append(EpochRecord(trial_id, kept))
        return self.spent >= self.budget

    def stop_all(self) -> bool:
        return self.spent >= self.budget
