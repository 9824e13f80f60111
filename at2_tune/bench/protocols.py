"""The evaluation protocols: which prior tasks go with which new task.

``pairs``: the paper's train/test pairs (4 prior tasks each). ``loo``: every task as the new task
with all the other tasks as prior. ``subsets``: every task as the new task with seeded random
subsets of the other tasks as prior, ``draws`` of each size in ``prior_sizes``; a team's own
history rarely holds 26 earlier tasks, and the paper's 5 pairs are too few cases to tell
policies apart (each size gives 27 x draws HyperRec and 35 x draws LCBench cases). Each size is
its own protocol, ``subsets-K``, so the reports keep them apart. ``histories``: the cases of
``subsets``, each prior task then cut to a tuning history (``at2_tune.bench.histories``), as
``histories-K``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from at2_tune.errors import AT2Error

PROTOCOLS = ("pairs", "loo", "subsets", "histories")
PRIOR_SIZES = (2, 4, 8, 16)
DRAWS = 3
SUBSET_SEED = 0


@dataclass(frozen=True)
class Case:
    """A new task with its prior tasks; ``protocol`` is e.g. ``"loo"`` or ``"subsets-4"`` and
    ``name`` tells the cases of one protocol apart (the test task, and the draw for subsets)."""

    protocol: str
    name: str
    train_tasks: tuple[str, ...]
    test_task: str


def prior_subset(tasks: Sequence[str], test_task: str, size: int, draw: int,
                 seed: int = SUBSET_SEED) -> tuple[str, ...]:
    """``size`` of the ``tasks`` other than ``test_task``, drawn at random without replacement
    (in the database's order). The draw depends only on ``(seed, size, draw)`` and the test
    task's position in ``tasks``, so naming fewer test tasks keeps the other cases as they are.

    Raises ``AT2Error`` when ``size`` is not between 1 and the number of other tasks.
    """
    others = [task for task in tasks if task != test_task]
    if not 1 <= size <= len(others):
        raise AT2Error(f"prior size {size} is not between 1 and {len(others)} (the tasks other "
                       f"than {test_task!r}); choose smaller --prior-sizes")
    rng = np.random.default_rng([seed, size, draw, list(tasks).index(test_task)])
    chosen = np.sort(rng.choice(len(others), size=size, replace=False))
    return tuple(others[i] for i in chosen)


def cases(db, protocol: str, pairs: Sequence[int] = range(5),
          tasks: Sequence[str] | None = None, prior_sizes: Sequence[int] = PRIOR_SIZES,
          draws: int = DRAWS, seed: int = SUBSET_SEED) -> list[Case]:
    """Every case of ``protocol`` in ``db``: its ``pairs`` (pairs protocol), or ``tasks`` (all by
    default) as new tasks (loo and subsets)."""
    if protocol not in PROTOCOLS:
        raise AT2Error(f"protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    if protocol == "pairs":
        return [Case("pairs", db.pair(i).test_task, tuple(db.pair(i).train_tasks),
                     db.pair(i).test_task) for i in pairs]
    tests = list(db.tasks) if tasks is None else [t for t in tasks if t in db.tasks]
    if protocol == "loo":
        return [Case("loo", test, db.tasks_excluding([test]), test) for test in tests]
    if draws < 1:
        raise AT2Error(f"draws {draws} must be at least 1 (random priors of each size per task)")
    return [Case(f"{protocol}-{size}", f"{test}#d{draw}",
                 prior_subset(db.tasks, test, size, draw, seed), test)
            for size in prior_sizes for test in tests for draw in range(draws)]
