"""One bench run: a method with one seed on one replay case, through Ray Tune or in process.

Every run returns the replay results document (:func:`at2_tune.simulator.results_document`): a
trace with one row per epoch spent, in the order the driver received them, each with the
trained configuration, its epoch and value, and the method's recommendation after it with
its rank and regret on the test task. The Ray methods' recommendation is the configuration
with the best value observed so far (ties: the earliest); AT2's is its own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from at2_tune.bench import baselines, harness, protocols
from at2_tune.bench import methods as bench_methods
from at2_tune.bench.harness import Job
from at2_tune.databases import LearningCurveDatabase
from at2_tune.evaluation import AT2_METHODS
from at2_tune.simulator import ReplayTask, results_document, run_replay, trace_row, trace_rows

METRIC = "val_acc"


BACKENDS = ("ray", "local")
"""How AT2's runs are carried out: through Ray Tune (``AT2Searcher`` + ``AT2Scheduler``, what
``at2-tune bench`` measures) or in this process through the coordinator's simulated slots
(``at2_tune.simulator.run_replay``: the same decisions on one slot, no Ray)."""


def run_job(job: Job, db: LearningCurveDatabase, data_dir: str | None = None,
            fit_cache=None, settings=None, backend: str = "ray") -> dict[str, Any]:
    """Run ``job`` and return its results document (``method`` is the job's).

    ``fit_cache``: a ``FitCache`` (or its folder) for AT2's offline fit, or ``None``;
    ``settings``: AT2's settings (default ``AT2Settings()``; the bench always uses the
    default); ``backend``: one of :data:`BACKENDS` for AT2's runs (Ray's tuners run through Ray
    Tune, the model-free baselines in process, either way).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    started = time.perf_counter()
    task = job.task()
    if job.method in AT2_METHODS:
        with quiet_tune() if backend == "ray" else contextlib.nullcontext():
            document = _run_at2(job, db, task, data_dir, fit_cache, settings, backend)
    elif job.method in bench_methods.RAY:
        with quiet_tune():
            document = _run_ray_method(job, db, task, data_dir)
    else:
        document = _run_model_free(job, db, task)
    spent = sum(1 for row in document["trace"] if row["config_id"] is not None)
    timing = document["timing"]
    timing["total_s"] = time.perf_counter() - started
    if spent and job.method not in baselines.BY_NAME:
        # beyond the offline fit and the simulated training of `spent` epochs on K slots
        training_s = spent * job.seconds_per_epoch / job.concurrency
        tuning_s = timing["tune_s"] - (timing.get("offline_fit_s") or 0.0) - training_s
        timing["overhead_s_per_query"] = tuning_s / spent
    else:
        timing["overhead_s_per_query"] = timing["tune_s"] / spent if spent else None
    document.update(method=job.method, protocol=job.protocol, case=job.case, key=job.key,
                    job=asdict(job))
    return document


def history_prior(job: Job, db: LearningCurveDatabase):
    """The job's prior as tuning histories (``PriorData``), or ``None`` on a grid protocol."""
    if not job.history:
        return None
    from at2_tune.bench.histories import case_history

    with tempfile.TemporaryDirectory() as scratch:
        return case_history(db, job, Path(scratch) / "history")


def _run_at2(job: Job, db: LearningCurveDatabase, task: ReplayTask, data_dir: str | None,
             fit_cache, settings, backend: str) -> dict[str, Any]:
    started = time.perf_counter()
    history = history_prior(job, db)
    if backend == "local":
        document = run_replay(db, task, seed=job.seed, settings=settings, fit_cache=fit_cache,
                              concurrency=job.concurrency, prior=history)
    else:
        from at2_tune.tune.ray_replay import run_replay_ray

        document = run_replay_ray(db, task, seed=job.seed, settings=settings,
                                  concurrency=job.concurrency, fit_cache=fit_cache,
                                  data_dir=data_dir, seconds_per_epoch=job.seconds_per_epoch,
                                  prior=history)
    if history is not None:  # where its queries came from, while the histories are at hand
        from at2_tune.bench.histories import decision_sources

        document["decision_sources"] = decision_sources(
            history, db.configs, [(row["config_id"], row["epoch"]) for row in document["trace"]])
    document["timing"]["tune_s"] = time.perf_counter() - started
    return document


def _run_model_free(job: Job, db: LearningCurveDatabase, task: ReplayTask) -> dict[str, Any]:
    started = time.perf_counter()
    history = history_prior(job, db)
    if history is None:
        run = baselines.BY_NAME[job.method](db, task, np.random.default_rng(job.seed),
                                            job.concurrency)
    else:
        run = history_baseline(job.method, db, task, history, job.concurrency)
    curves = db.task_curves(task.test_task, task.seed_profile)
    epochs: dict[int, int] = {}
    observed = []
    for config in run.trained:
        epochs[config] = epochs.get(config, 0) + 1
        observed.append((config, epochs[config], float(curves[config, epochs[config] - 1])))
    if observed:
        rows = trace_rows(db, task, observed, recommended=run.recommended[:len(observed)])
    else:  # zero-shot: a recommendation without training; one row per budget epoch unspent
        rows = [trace_row(db, task, q, None, None, None, run.recommended[0], epochs_spent=0)
                for q in range(1, task.budget + 1)]
    return results_document(db, task, job.seed, {}, rows, backend="in-process",
                            concurrency=job.concurrency,
                            timing={"offline_fit_s": None,
                                    "tune_s": time.perf_counter() - started})


def history_baseline(method: str, db: LearningCurveDatabase, task: ReplayTask, history,
                      concurrency: int):
    """A model-free transfer baseline on tuning histories: the configurations the histories
    trained in the prior's order (``PriorData.order_of``, as live tuning and the other
    protocols read it), the portfolio from their best values."""
    order = history.order_of(db.configs)
    if method == "zero-shot":
        return baselines.BaselineRun([int(order[0])] * task.budget, [])
    if method == "portfolio":
        return baselines.portfolio(db, task, history.best_values_on(db.configs), concurrency)
    if method in ("transfer-sh", "transfer-sh27"):
        start = 27 if method == "transfer-sh27" else 9
        return baselines.transfer_successive_halving(db, task, start, concurrency=concurrency,
                                                     order=order)
    if method.endswith("-in-turn"):  # topN-in-turn
        return baselines.top_n_in_turn(db, task, int(method[3:-len("-in-turn")]), order,
                                       concurrency)
    k, decay = {"top1": (1, 0.0), "top2": (2, 0.0), "top3": (3, 0.0), "top5": (5, 0.0),
                "top4-weighted": (4, 0.5)}[method]
    return baselines.top_k_round_robin(db, task, k, decay, order, concurrency)


def _run_ray_method(job: Job, db: LearningCurveDatabase, task: ReplayTask,
                    data_dir: str | None) -> dict[str, Any]:
    import ray
    from ray import tune

    from at2_tune.bench.baselines import prior_order
    from at2_tune.tune.budget import EpochBudgetStopper
    from search_spaces import get_space
    from trainers.curve_trainable import make_replay_trainable

    space = get_space(db.space_name)
    warm = []
    if job.method == "optuna-warm":
        history = history_prior(job, db)
        if history is None:
            order = prior_order(db, task, "optuna-warm")[:bench_methods.WARM_START_POINTS]
        else:
            order = history.order_of(db.configs)[:bench_methods.WARM_START_POINTS]
        warm = [space.to_ray_sample(db.configs[i]) for i in order]
    search_alg, scheduler = bench_methods.ray_tuner(job.method, db.n_epochs, job.seed, warm)
    stopper = EpochBudgetStopper(task.budget, keep=("config_id", "epoch", METRIC))
    trainable = make_replay_trainable(db.name, task.test_task, task.seed_profile,
                                      job.seconds_per_epoch, METRIC, data_dir, snap=True)
    trainable = tune.with_resources(trainable, _slot_resources(ray.cluster_resources(),
                                                               job.concurrency))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        tune.run(trainable, config=space.to_param_space(), search_alg=search_alg,
                 scheduler=scheduler, metric=METRIC, mode="max",
                 num_samples=task.budget + job.concurrency, stop=stopper,
                 reuse_actors=True, verbose=0, storage_path=scratch,
                 raise_on_failed_trial=False)
    tune_s = time.perf_counter() - started
    observed = [(r.result["config_id"], r.result["epoch"], r.result[METRIC])
                for r in stopper.records]
    settings = bench_methods.settings_of(job.method, db.n_epochs, job.concurrency)
    document = results_document(db, task, job.seed, settings,
                                trace_rows(db, task, observed), backend="ray",
                                concurrency=job.concurrency,
                                timing={"offline_fit_s": None, "tune_s": tune_s})
    document["ignored_after_budget"] = stopper.ignored
    document["trials"] = len({r.trial_id for r in stopper.records})
    return document


SLOT_RESOURCE = "at2_bench_slot"
"""A custom Ray resource (1 per worker's cluster) that limits a Ray method to K trials."""


def _slot_resources(cluster: dict[str, float], concurrency: int) -> dict[str, float]:
    """Resources of one trial such that exactly ``concurrency`` trials run at a time.

    Not ``max_concurrent_trials``: Tune's concurrency limiter counts paused trials as live, so
    HyperBand's paused trials would block new ones. With the bench's own cluster a share of
    :data:`SLOT_RESOURCE` (and a token CPU share: an AT2 run before may leave one CPU held by
    an actor of Tune's reuse cache); with another cluster, a share of all its CPUs.
    """
    if cluster.get(SLOT_RESOURCE, 0) >= 1:
        return {"cpu": 0.01, SLOT_RESOURCE: 1 / concurrency - 1e-4}
    return {"cpu": cluster.get("CPU", 1.0) / concurrency}


@contextlib.contextmanager
def quiet_tune():
    """Keep Tune's console output out of the bench's: the new output engine's experiment box
    (printed even with ``verbose=0``; ``RAY_AIR_NEW_OUTPUT=0`` selects the old reporter, which
    prints nothing at ``verbose=0``) and the warnings of its end-of-run analysis about every
    trial the budget stopper left unstarted (no results by design). Errors still show.
    Tune's default per-trial loggers are off.
    (Redirecting stdout instead keeps Tune from releasing the last trial's CPU.)"""
    loggers = [logging.getLogger(name) for name in ("ray.tune", "ray.train")]
    levels = [log.level for log in loggers]
    settings = {"RAY_AIR_NEW_OUTPUT": "0",
                # no per-trial CSV/JSON/TensorBoard files: nobody reads them here, and each
                # trial's tensorboardX writer thread stayed alive until the worker exited
                "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    for log in loggers:
        log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def plan(db: LearningCurveDatabase, protocol: str, methods: list[str], *, budget: int,
         repeats: int, concurrency: int, seconds_per_epoch: float = 0.0,
         pairs: list[int] | None = None,
         tasks: list[str] | None = None,
         seed_profiles: list[int] | None = None,
         history: dict[str, Any] | None = None, prior_sizes: list[int] | None = None,
         draws: int = 1) -> list[Job]:
    """Every run: each method on each case (``pairs``, ``loo`` or ``histories``: random priors
    of ``prior_sizes`` tasks, ``draws`` of each, cut to histories by ``history``, the options
    of ``at2_tune.bench.histories.HistoryOptions`` plus ``draw_seed``) and seed profile, with
    seeds ``0..repeats-1`` (one run for the deterministic methods); AT2 runs first."""
    if repeats < 1:
        raise ValueError(f"repeats={repeats} must be at least 1")
    if not seconds_per_epoch >= 0:
        raise ValueError(f"seconds_per_epoch={seconds_per_epoch} must be at least 0")
    if protocol not in ("pairs", "loo", "histories"):
        raise ValueError(f"protocol {protocol!r} is not 'pairs', 'loo' or 'histories'")
    if (protocol == "histories") != (history is not None):
        raise ValueError("the histories protocol, and only it, takes history options")
    profiles = list(range(db.n_seeds)) if seed_profiles is None else seed_profiles
    for profile in profiles:
        db.final_values(db.tasks[0], profile)  # an unknown seed profile: a clear error
    for task in tasks or ():
        db.task_index(task)  # an unknown task: an error with a suggestion
    chosen = protocols.cases(db, protocol, pairs=range(len(db.pairs)) if pairs is None else pairs,
                             tasks=tasks, prior_sizes=prior_sizes or protocols.PRIOR_SIZES,
                             draws=draws, seed=(history or {}).get("draw_seed", 0))
    jobs = harness.plan(
        db.name, chosen, methods, profiles=profiles, budget=budget, concurrency=concurrency,
        seeds=lambda m: range(1 if m in bench_methods.DETERMINISTIC else repeats),
        uses_prior=lambda m: m not in bench_methods.WITHOUT_PRIOR,
        seconds_per_epoch=lambda m: 0.0 if m in bench_methods.MODEL_FREE else seconds_per_epoch,
        history=history)
    jobs.sort(key=lambda j: j.method not in bench_methods.AT2)
    return jobs
