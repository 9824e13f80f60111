"""Replay tuning through Ray Tune: the same protocol and results as :mod:`at2_tune.simulator`."""

from __future__ import annotations

import tempfile
import time
from typing import Any, Callable

from at2_tune.core.prior import PriorData
from at2_tune.core.settings import AT2Settings
from at2_tune.databases import LearningCurveDatabase
from at2_tune.core.offline_cache import FitCache
from at2_tune.simulator import ReplayTask, results_document, trace_row
from at2_tune.tune.scheduler import AT2Scheduler
from at2_tune.tune.searcher import AT2Searcher

METRIC = "val_acc"


def run_replay_ray(db: LearningCurveDatabase, task: ReplayTask, seed: int = 0,
                   settings: AT2Settings | None = None, concurrency: int = 1,
                   seconds_per_epoch: float = 0.0, fit_cache: FitCache | None = None,
                   storage_path: str | None = None, data_dir: str | None = None,
                   on_query: Callable[[dict[str, Any]], None] | None = None,
                   prior: PriorData | None = None) -> dict[str, Any]:
    """Run ``task`` with ``tune.run``, the replay trainable, AT2Searcher and AT2Scheduler.

    With ``concurrency=1`` it makes exactly the queries of :func:`at2_tune.simulator.run_replay`.
    Returns the same results document (``"backend": "ray"``). ``prior``: the prior tasks'
    curves (default: the database's curves of ``task.train_tasks``), e.g. tuning histories;
    the candidates are the database's configurations either way.
    """
    import ray
    from ray import tune

    from search_spaces import get_space
    from trainers.curve_trainable import make_replay_trainable

    settings = settings or AT2Settings()
    started = time.perf_counter()
    if prior is None:
        prior = PriorData.from_database(db, task.train_tasks, task.seed_profile)
    searcher = AT2Searcher(get_space(db.space_name), prior=prior, settings=settings, seed=seed,
                           budget_epochs=task.budget, fit_cache=fit_cache,
                           track_recommendations=True, candidates=list(db.configs),
                           max_epochs=db.n_epochs)
    trainable = make_replay_trainable(db.name, task.test_task, task.seed_profile,
                                      seconds_per_epoch, METRIC, data_dir)
    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(num_cpus=max(2, concurrency), include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            tune.run(trainable, search_alg=searcher, scheduler=AT2Scheduler(searcher),
                     metric=METRIC, mode="max", num_samples=db.n_configs,
                     max_concurrent_trials=concurrency, reuse_actors=True, verbose=0,
                     storage_path=storage_path or scratch, raise_on_failed_trial=False)
    finally:
        if started_ray:
            ray.shutdown()
    trace = []
    for number, row in enumerate(searcher.coordinator.trace, start=1):
        trace.append(trace_row(db, task, number, row.candidate, row.epoch, row.value,
                               row.recommended))
        if on_query is not None:
            on_query(trace[-1])
    return results_document(db, task, seed, settings.to_json(), trace, backend="ray",
                            concurrency=concurrency,
                            timing={"offline_fit_s": searcher.offline_fit_seconds,
                                    "total_s": time.perf_counter() - started},
                            offline_fit=searcher.offline_fit_outcome,
                            offline_fit_reused=searcher.offline_fit_outcome == "cache hit")
