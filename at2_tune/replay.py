"""Replay tuning on a learning-curve database: the AT2 paper's online protocol, in pure Python.

The target task starts with no observation; each query trains one configuration for one more
epoch, i.e. reveals the next value of its curve from the database. After every query the engine's
recommendation is ranked on the target task (0 = best of all configurations, by best value
over epochs).
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from at2_tune.core.engine import AT2Engine
from at2_tune.core.offline_cache import load_or_fit
from at2_tune.core.prior import PriorData
from at2_tune.core.settings import AT2Settings
from at2_tune.databases import LearningCurveDatabase

TRACE_FIELDS = ("query", "epochs_spent", "config_id", "epoch", "value", "recommended_config_id",
                "rank", "regret", "wall_s")


@dataclass(frozen=True)
class ReplayTask:
    """What to replay: prior tasks, target task, seed profile, budget in queries."""

    database: str
    train_tasks: tuple[str, ...]
    test_task: str
    seed_profile: int = 0
    budget: int = 100


def resolve_task(db: LearningCurveDatabase, pair: int | None = None,
                 train_tasks: Sequence[str] | None = None, test_task: str | None = None,
                 seed_profile: int = 0, budget: int = 100) -> ReplayTask:
    """A :class:`ReplayTask` from one of the paper's pairs or from named tasks (validated)."""
    if pair is not None:
        chosen = db.pair(pair)
        train_tasks, test_task = chosen.train_tasks, chosen.test_task
    if test_task is None:
        raise ValueError("name a test task (or a pair)")
    db.task_index(test_task)
    for task in train_tasks or ():
        db.task_index(task)
    if test_task in (train_tasks or ()):
        raise ValueError(f"test task {test_task!r} is also a train task; the target task must "
                         "be new to the tuner")
    if budget < 1:
        raise ValueError(f"budget {budget} must be at least 1 query")
    db.final_values(test_task, seed_profile)  # checks the seed profile
    return ReplayTask(db.name, tuple(train_tasks or ()), test_task, seed_profile, budget)


def run_replay(db: LearningCurveDatabase, task: ReplayTask, seed: int = 0,
               settings: AT2Settings | None = None,
               on_query: Callable[[dict[str, Any]], None] | None = None,
               fit_cache: str | Path | None = None) -> dict[str, Any]:
    """Run AT2 on ``task`` and return the results document (see :func:`write_results`).

    With ``fit_cache`` (a folder), the offline fit on the prior tasks is reused from there when
    an identical one was saved before, and saved otherwise.
    """
    from search_spaces import get_space

    settings = settings or AT2Settings()
    started = time.perf_counter()
    prior = PriorData.from_database(db, task.train_tasks, task.seed_profile)
    engine = AT2Engine(get_space(db.space_name), prior, settings, seed=seed)
    reused = False
    if fit_cache is not None:
        reused = load_or_fit(engine, fit_cache)
    else:
        engine.fit_offline()
    engine.condition()
    offline_fit_s = time.perf_counter() - started
    curves = db.task_curves(task.test_task, task.seed_profile)
    ranks = db.ranks(task.test_task, task.seed_profile)
    final = db.final_values(task.test_task, task.seed_profile)
    trace = []
    for query_number in range(1, task.budget + 1):
        query = engine.next_query()
        if query is None:
            break
        value = float(curves[query.candidate, query.epoch - 1])
        engine.observe(query.candidate, query.epoch, value)
        engine.condition()
        recommended = engine.recommend()
        row = {"query": query_number, "epochs_spent": query_number,
               "config_id": query.candidate, "epoch": query.epoch, "value": value,
               "recommended_config_id": recommended, "rank": int(ranks[recommended]),
               "regret": float(final.max() - final[recommended]),
               "wall_s": time.perf_counter() - started}
        trace.append(row)
        if on_query is not None:
            on_query(row)
    return {"database": task.database, "train_tasks": list(task.train_tasks),
            "test_task": task.test_task, "seed_profile": task.seed_profile,
            "budget": task.budget, "seed": seed, "method": "at2",
            "settings": settings.to_json(), "trace": trace,
            "offline_fit_reused": reused,
            "timing": {"offline_fit_s": offline_fit_s, "total_s": time.perf_counter() - started}}


def write_results(results: dict[str, Any], out_dir: str | Path) -> Path:
    """Write ``results.json`` and ``trace.csv`` into ``out_dir``; returns the JSON path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2))
    tmp.replace(path)
    with open(out / "trace.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=TRACE_FIELDS)
        writer.writeheader()
        writer.writerows(results["trace"])
    return path
