"""Record AT2's decisions on the replay protocols, to show that a change leaves them alone.

    python -m experiments.decision_record --out results/decisions.json
    python -m experiments.decision_record --compare results/decisions.json

Each case (a test task with its prior tasks, one seed profile) is replayed through the
coordinator on 1 and on 4 simulated slots with the default settings, and every observation is
recorded as ``[config, epoch, recommended config]`` in arrival order. ``--compare FILE`` replays
the cases that FILE holds and prints each case whose decisions differ (exit status 1 if any).
``tests/experiments/test_decision_record.py`` compares a sample of cases against a recorded
file, so a refactoring that changes a decision fails the suite.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path
from typing import Any

from at2_tune import databases
from at2_tune.simulator import resolve_task, run_replay
from at2_tune.bench import protocols

CONCURRENCY = (1, 4)
BUDGET = 100


@functools.lru_cache(maxsize=None)
def load_database(name: str, data_dir: str | None):
    return databases.load_database(name, data_dir)


def case_decisions(db, case: protocols.Case, seed_profile: int, concurrency: int,
                   budget: int = BUDGET) -> list[list[int]]:
    """``[[config, epoch, recommended], ...]``: the replay's observations in arrival order."""
    task = resolve_task(db, train_tasks=case.train_tasks, test_task=case.test_task,
                        seed_profile=seed_profile, budget=budget)
    trace = run_replay(db, task, seed=0, concurrency=concurrency)["trace"]
    return [[row["config_id"], row["epoch"], row["recommended_config_id"]] for row in trace]


def record(database: str, protocol: str, data_dir: str | None = None,
           tasks: list[str] | None = None, concurrency=CONCURRENCY,
           budget: int = BUDGET) -> list[dict[str, Any]]:
    """The decisions of every case of ``protocol`` on ``database`` (all seed profiles)."""
    db = load_database(database, data_dir)
    rows = []
    for case in protocols.cases(db, protocol, tasks=tasks):
        for profile in range(db.n_seeds):
            for slots in concurrency:
                rows.append({"database": database, "protocol": protocol, "case": case.name,
                             "train_tasks": list(case.train_tasks), "test_task": case.test_task,
                             "seed_profile": profile, "concurrency": slots, "budget": budget,
                             "decisions": case_decisions(db, case, profile, slots, budget)})
    return rows


def replay_recorded(row: dict[str, Any], data_dir: str | None = None) -> list[list[int]]:
    """The decisions of a recorded case, made again by this code."""
    db = load_database(row["database"], data_dir)
    case = protocols.Case(row["protocol"], row["case"], tuple(row["train_tasks"]),
                          row["test_task"])
    return case_decisions(db, case, row["seed_profile"], row["concurrency"], row["budget"])


def first_difference(a: list[list[int]], b: list[list[int]]) -> int | None:
    """The first observation (0-based) where two decision records differ, else ``None``."""
    for index, (x, y) in enumerate(zip(a, b)):
        if list(x) != list(y):
            return index
    return None if len(a) == len(b) else min(len(a), len(b))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", action="append", choices=["hyperrec", "lcbench"])
    parser.add_argument("--protocol", action="append", choices=["loo", "pairs"])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, help="write the decisions of every case here")
    parser.add_argument("--compare", type=Path, help="replay the cases of this file and diff")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.compare:
        rows = json.loads(args.compare.read_text())
        differ = 0
        for row in rows:
            index = first_difference(row["decisions"], replay_recorded(row, args.data_dir))
            if index is not None:
                differ += 1
                print(f"DIFFERS {row['database']} {row['protocol']} {row['case']} "
                      f"sp{row['seed_profile']} K={row['concurrency']} at observation {index}")
        print(f"{len(rows) - differ} of {len(rows)} cases make the same decisions "
              f"({sum(len(r['decisions']) for r in rows)} observations; "
              f"{time.perf_counter() - started:.0f} s)")
        return 1 if differ else 0
    if args.out is None:
        parser.error("give --out FILE or --compare FILE")
    rows = [row for database in args.database or ["hyperrec", "lcbench"]
            for protocol in args.protocol or ["loo", "pairs"]
            for row in record(database, protocol, args.data_dir)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows) + "\n")
    print(f"{len(rows)} cases recorded in {args.out} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
