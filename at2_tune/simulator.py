"""The coordinator's K-slot simulator, and replay tuning on a learning-curve database with it.

:func:`simulate` carries out any coordinator's decisions (AT2's engine, or a model-free baseline
of ``at2_tune.bench.baselines``) on ``K`` simulated slots with deterministic simulated epoch
durations: a trial's epoch reveals the next value of its configuration's curve. :func:`run_replay`
is the AT2 paper's online protocol on a database task in pure Python: the target task starts with
no observation, each query trains one configuration for one more epoch, and after every query
the recommendation is ranked on the target task (0 = best of all configurations, by best value
over epochs). The decisions are the same as through Ray Tune (``at2_tune.tune.ray_replay``).
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from at2_tune.core.coordinator import Coordinator, TraceRow
from at2_tune.core.engine import AT2Engine
from at2_tune.core.offline_cache import FitCache, prepare_engine
from at2_tune.core.prior import PriorData
from at2_tune.core.settings import AT2Settings
from at2_tune.core.setup import RunSetup
from at2_tune.core.simulation import Timing, epoch_seconds, simulate  # noqa: F401
from at2_tune.databases import LearningCurveDatabase

TRACE_FIELDS = ("query", "epochs_spent", "config_id", "epoch", "value", "recommended_config_id",
                "rank", "regret", "wall_s", "sim_time")


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


def build_engine(db: LearningCurveDatabase, task: ReplayTask, seed: int,
                 settings: AT2Settings, prior: PriorData | None = None) -> AT2Engine:
    """The task's engine over the database's configurations, with its prior tasks (``prior``,
    default the database's curves of ``task.train_tasks``), not yet fitted: built as
    ``AT2Searcher`` builds it (``at2_tune.core.setup``), for a metric to maximize. Plan, then
    :func:`~at2_tune.core.offline_cache.prepare_engine` it, as :func:`run_replay` does."""
    from search_spaces import get_space

    if prior is None:
        prior = PriorData.from_database(db, task.train_tasks, task.seed_profile)
    setup = RunSetup(space=get_space(db.space_name), prior=prior, settings=settings, seed=seed,
                     candidates=list(db.configs))
    engine, _ = setup.new_engine(metric=None, mode="max")
    return engine


def run_replay(db: LearningCurveDatabase, task: ReplayTask, seed: int = 0,
               settings: AT2Settings | None = None,
               on_query: Callable[[dict[str, Any]], None] | None = None,
               fit_cache: FitCache | str | Path | None = None,
               concurrency: int = 1, prior: PriorData | None = None,
               timing: Timing = Timing()) -> dict[str, Any]:
    """Run AT2 on ``task`` through the coordinator on ``concurrency`` simulated slots (see
    :func:`simulate`, epochs as long as ``timing`` says) and return the results document
    (:func:`results_document`).

    With ``fit_cache`` the offline fit on the prior tasks is reused from there when an
    identical one was saved before, and saved otherwise; ``None``: no cache. ``prior``: the
    prior tasks' curves (default: the database's of ``task.train_tasks``), e.g. histories.
    """
    settings = settings or AT2Settings()
    started = time.perf_counter()
    engine = build_engine(db, task, seed, settings, prior)
    coordinator = Coordinator(engine, budget_epochs=task.budget, max_concurrent=concurrency,
                              track_recommendations=True)
    # plan first, as AT2Searcher does: a model-free schedule reads no posterior, so the GP is
    # not fitted for it (on a prior of tuning histories, 10-50 s saved)
    coordinator.plan()
    fitting = time.perf_counter()
    fit = prepare_engine(engine, FitCache.coerce(fit_cache))
    offline_fit_s = time.perf_counter() - fitting
    curves = db.task_curves(task.test_task, task.seed_profile)
    rows: list[dict[str, Any]] = []

    def record(row: TraceRow, sim_time: float) -> None:
        rows.append(trace_row(db, task, len(rows) + 1, row.candidate, row.epoch, row.value,
                              row.recommended, wall_s=time.perf_counter() - started,
                              sim_time=sim_time))
        if on_query is not None:
            on_query(rows[-1])

    simulate(coordinator, curves, concurrency, seed, record, timing=timing)
    plan = coordinator.plan()  # the plan made before the first decision (None: no plan)
    return results_document(db, task, seed, settings.to_json(), rows, backend="local",
                            concurrency=concurrency,
                            timing={"offline_fit_s": offline_fit_s,
                                    "total_s": time.perf_counter() - started},
                            offline_fit=fit, offline_fit_reused=fit == "cache hit",
                            plan=None if plan is None else plan.to_json())


def trace_row(db: LearningCurveDatabase, task: ReplayTask, number: int, config: int | None,
              epoch: int | None, value: float | None, recommended: int | None, *,
              epochs_spent: int | None = None, wall_s: float | None = None,
              sim_time: float | None = None) -> dict[str, Any]:
    """One row of a replay's trace (:data:`TRACE_FIELDS`), for every method: query ``number``
    trained ``config`` for ``epoch`` and observed ``value`` (all three ``None`` for a method
    that trains nothing), with the recommendation after it and the recommendation's rank and
    regret on the target task. ``epochs_spent``: default ``number``."""
    return {"query": number, "epochs_spent": number if epochs_spent is None else epochs_spent,
            "config_id": None if config is None else int(config),
            "epoch": None if epoch is None else int(epoch),
            "value": None if value is None else float(value),
            "recommended_config_id": None if recommended is None else int(recommended),
            "rank": db.rank(task.test_task, recommended, task.seed_profile),
            "regret": db.regret(task.test_task, recommended, task.seed_profile),
            "wall_s": wall_s, "sim_time": sim_time}


def trace_rows(db: LearningCurveDatabase, task: ReplayTask,
               observed: Sequence[tuple[int, int, float]],
               recommended: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """:func:`trace_row` of every ``(config, epoch, value)`` of ``observed``, in order.
    ``recommended``: the method's recommendation after each; ``None``: the configuration with
    the best value observed so far (ties: the earliest observation)."""
    rows, best, best_value = [], None, -math.inf
    for number, (config, epoch, value) in enumerate(observed, start=1):
        if value > best_value:
            best, best_value = config, value
        pick = best if recommended is None else recommended[number - 1]
        rows.append(trace_row(db, task, number, config, epoch, value, pick))
    return rows


def results_document(db: LearningCurveDatabase, task: ReplayTask, seed: int,
                     settings: dict[str, Any], trace: list[dict[str, Any]], *, backend: str,
                     concurrency: int, timing: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The results document of a replay run, the same for every method and backend;
    ``settings``: the method's settings as JSON (``AT2Settings.to_json()`` for AT2)."""
    return {"database": task.database, "train_tasks": list(task.train_tasks),
            "test_task": task.test_task, "seed_profile": task.seed_profile,
            "budget": task.budget, "seed": seed, "method": "at2", "backend": backend,
            "concurrency": concurrency, "settings": dict(settings), "trace": trace,
            "timing": timing, **extra}


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
