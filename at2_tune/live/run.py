"""Run (or resume) one live tuning experiment: AT2Searcher + AT2Scheduler over the trainers'
ResNet trainable, through ``tune.Tuner``."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from at2_tune.core.offline_cache import FitCache
from at2_tune.core.prior import PriorData
from at2_tune.errors import AT2Error
from at2_tune.live import cluster, methods, records, summary
from at2_tune.live.options import METRIC, LiveOptions, check_dataset, check_options, \
    check_resume, save_options
from at2_tune.live.phases import FirstTrialPhases, PhaseClock
from at2_tune.live.status import StatusPrinter

EXPERIMENT = "at2-tune"
TRIALS_DIR = "trials"
HYPERREC_PRIOR_EPOCHS = 75


@dataclass(frozen=True)
class Plan:
    """What AT2 chooses from: the space, the prior and the candidate configurations.

    ``candidates`` are the prior's configurations (their low-epoch observations on the new
    task are cells matched with every prior task, which the task kernel is measured from)
    followed by ``samples`` fresh configurations of the space (which let AT2 leave the
    prior's grid; their predictions come from the hyperparameter kernel alone).
    """

    space: Any
    prior: str | PriorData | None
    candidates: tuple[dict[str, Any], ...]
    epochs: int
    description: str


def plan_of(options: LiveOptions) -> Plan:
    """Resolve ``options.prior`` into a :class:`Plan` (loads and checks the prior)."""
    from search_spaces import HYPERREC_SPACE
    from search_spaces.keys import distinct

    rng = np.random.default_rng(options.seed)
    samples = tuple(HYPERREC_SPACE.sample_many(rng, options.n_samples))
    if options.prior == "none":
        return Plan(HYPERREC_SPACE, None, samples, options.epochs, "none")
    if options.prior == "hyperrec":
        from at2_tune.databases import load_database

        db = load_database("hyperrec", options.data_dir)
        _check_epochs(options, HYPERREC_PRIOR_EPOCHS, "the HyperRec database")
        return Plan(HYPERREC_SPACE, "hyperrec", tuple(distinct(db.configs + samples)),
                    HYPERREC_PRIOR_EPOCHS, f"hyperrec ({db.n_tasks} tasks)")
    from at2_tune.databases.user import load_user_database

    db = load_user_database(options.prior)
    if db.space.name != HYPERREC_SPACE.name:
        raise AT2Error(f"prior {options.prior} was built in the space {db.space.name!r}, but "
                       "at2-tune tune trains HyperRec configurations; use "
                       f"AT2Searcher(prior={str(options.prior)!r}) in your own tune.run for "
                       "that space")
    # a history of shorter runs: its later epochs are unobserved (NaN)
    prior = PriorData.from_user_database(db).with_epochs(options.epochs)
    return Plan(HYPERREC_SPACE, prior, tuple(distinct(prior.configs + samples)), options.epochs,
                f"{options.prior} ({prior.n_tasks} tasks)")


def _check_epochs(options: LiveOptions, prior_epochs: int, what: str) -> None:
    if options.epochs != prior_epochs:
        raise AT2Error(f"--epochs {options.epochs} differs from the {prior_epochs} epochs of "
                       f"{what}: AT2's epoch axis is the prior's; use --epochs {prior_epochs} "
                       "(the budget still limits what trains) or --prior none")


def make_searcher(options: LiveOptions, plan: Plan):
    """The searcher of a coordinated method (``at2``, ``top3``, ``portfolio``); built the same
    way to read the final state back."""
    from at2_tune.tune import AT2Searcher
    from at2_tune.tune.baseline_searcher import TransferBaselineSearcher

    common = dict(space=plan.space, metric=METRIC, mode="max", prior=plan.prior,
                  seed=options.seed, candidates=list(plan.candidates), max_epochs=plan.epochs,
                  budget_epochs=options.budget_epochs, max_concurrent=options.concurrency,
                  data_dir=options.data_dir, track_recommendations=True)
    if options.method != "at2":
        return TransferBaselineSearcher(options.method, fit_cache=None, **common)
    return AT2Searcher(
        fit_cache=FitCache(Path(options.fit_cache)) if options.fit_cache else FitCache(),
        objective=options.objective, **common)


def make_trainable(options: LiveOptions, plan: Plan, resources: dict[str, float]):
    from ray import tune

    from trainers.ray_trainable import make_trainable as trainer

    trainable = trainer(options.data, epochs=plan.epochs, device=options.device,
                        seed=options.seed, small_input_stem=options.small_input_stem)
    return tune.with_resources(trainable, resources)


def run_live(options: LiveOptions, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Check everything, connect to Ray, tune, write ``summary.json``; returns the summary."""
    started = time.perf_counter()
    clock = PhaseClock(say)
    check_options(options)
    check_resume(options)
    from search_spaces import HYPERREC_SPACE

    max_batch = int(HYPERREC_SPACE.parameter("batch_size").high)
    data = check_dataset(options.data, max_batch)
    clock.stamp("dataset checked", detail=data["name"])
    plan = plan_of(options)
    clock.stamp("prior loaded", detail=plan.description)
    owns_ray = cluster.connect(options.address)
    clock.stamp("Ray started" if owns_ray else "connected to Ray")
    try:
        resources = cluster.trial_resources(options.cpus_per_trial, options.gpus_per_trial,
                                            cluster.cluster_resources())
        save_options(options)
        say(f"at2-tune tune: {data['name']} ({data['num_classes']} classes, "
            f"{data['num_images']} images, {data['image_size']} px), prior {plan.description}, "
            f"{len(plan.candidates)} candidates, budget {options.budget_epochs} epochs, "
            f"{options.concurrency} at a time, {resources['cpu']:g} CPU + "
            f"{resources['gpu']:g} GPU per trial")
        extra = {"method": options.method,
                 "settings": methods.settings_of(options.method, plan, options.concurrency),
                 "prior": plan.description, "dataset": data,
                 "concurrency": options.concurrency, "resources_per_trial": resources}
        if options.method in methods.RAY:
            with ctrl_c_recorded() as interrupt:
                experiment, results, stopper = _fit_ray_method(options, plan, resources, clock)
            metrics = records.read_all(Path(options.out) / TRIALS_DIR)
            document = summary.build_ray_summary(
                results, stopper, metrics, METRIC, plan.space, options.budget_epochs,
                time.perf_counter() - started,
                {**extra, "experiment": experiment, "phases": clock.phases})
            document["recommended_checkpoint"] = summary.ray_checkpoint(
                results, document["recommended_trial"], document["recommended_epoch"])
        else:
            with ctrl_c_recorded() as interrupt:
                experiment = _fit(options, plan, resources, clock)
            final = make_searcher(options, plan)
            with local_copy(experiment) as folder:
                final.restore_from_dir(folder)
            recommendation = final.recommendation()
            metrics = records.read_all(Path(options.out) / TRIALS_DIR)
            document = summary.build_summary(
                final.coordinator, metrics, METRIC, time.perf_counter() - started,
                {**extra, "experiment": experiment, "recommendation": recommendation,
                 "plan": _plan_json(final), "phases": clock.phases})
            document["recommended_checkpoint"] = (recommendation or {}).get("checkpoint")
    finally:
        if owns_ray:
            import ray

            ray.shutdown()
        from trainers.staging import remove_orphaned

        remove_orphaned()  # the staging folders of trials killed on this host (Ctrl-C)
    document["interrupted"] = interrupt.received
    summary.write_summary(options.out, document)
    plot = summary.plot_curves(options.out, document, metrics, METRIC)
    say(_closing_lines(options, document, plot))
    if interrupt.received:
        say(f"interrupted after {document['epochs_spent']} of {document['budget_epochs']} "
            "epochs: run the same command with --resume to finish it (Tune saved the "
            "experiment); `at2-tune compare` refuses the run until then")
        raise KeyboardInterrupt("at2-tune tune was interrupted (Ctrl-C)")
    return document


class CtrlC:
    """Whether Ctrl-C stopped the tuning (:func:`ctrl_c_recorded`)."""

    received = False


@contextlib.contextmanager
def ctrl_c_recorded() -> Iterator[CtrlC]:
    """While Tune tunes: Ctrl-C stops it as Tune's own handler does (the experiment is saved
    one last time; Tune stops so on SIGUSR1, which it always listens to) and is recorded, so the
    run is reported as interrupted, not finished; a second Ctrl-C, or one before Tune listens,
    raises ``KeyboardInterrupt`` at once. With Tune's handler alone ``Tuner.fit`` returned as if
    the run had finished, and ``summary.json`` held a run cut short that ``at2-tune compare``
    took for a whole one. Main thread only (elsewhere signals cannot be handled: no-op)."""
    record = CtrlC()
    if threading.current_thread() is not threading.main_thread():
        yield record
        return

    def on_ctrl_c(signum, frame):
        tune_listens = signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, signal.SIG_IGN,
                                                                  None)
        if record.received or not tune_listens:
            raise KeyboardInterrupt
        record.received = True
        os.kill(os.getpid(), signal.SIGUSR1)

    saved = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # this handler instead of Tune's
    previous = signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        yield record
    finally:
        signal.signal(signal.SIGINT, previous)
        if saved is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = saved


def _fit(options: LiveOptions, plan: Plan, resources: dict[str, float],
         clock: PhaseClock) -> str:
    """Run (or restore and finish) the Tune experiment; returns its path. The first trial's
    start (and the offline fit before it) is stamped on ``clock``."""
    from ray import tune

    from at2_tune.tune import AT2Scheduler

    experiment = f"{options.storage_path.rstrip('/')}/{EXPERIMENT}"
    trainable = make_trainable(options, plan, resources)
    _quiet_forced_syncs()
    if options.resume:
        if not tune.Tuner.can_restore(experiment):
            raise AT2Error(f"--resume: nothing to restore in {experiment} (Tune saved no "
                           "experiment state there); check --storage, or start without "
                           "--resume")
        tuner = tune.Tuner.restore(experiment, trainable=trainable, resume_unfinished=True)
    else:
        searcher = make_searcher(options, plan)
        scheduler = AT2Scheduler(searcher, on_decision=StatusPrinter(
            METRIC, "AT2" if options.method == "at2" else options.method))
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler,
                                        num_samples=len(plan.candidates),
                                        max_concurrent_trials=options.concurrency,
                                        reuse_actors=True),
            run_config=run_config(options, clock, searcher))
    results = tuner.fit()
    if results.errors and len(results.errors) == len(results):
        raise AT2Error(f"every trial failed ({len(results.errors)}); the first error: "
                       f"{results.errors[0]}")
    return experiment


def _quiet_forced_syncs() -> None:
    """Tune warns whenever it saved the experiment twice within 5 s because a trial saved
    ``num_to_keep`` checkpoints since the last save. A freeze-thaw run checkpoints every epoch
    of every trial, so that is the rule, not a bottleneck: 45 warnings of 6 lines each in a
    200-epoch run on digits. The saves stay as Tune makes them (they keep a resume exact)."""
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


def run_config(options: LiveOptions, clock: PhaseClock, searcher=None, stop=None):
    """The ``RunConfig`` every method runs with: the experiment in ``options.storage_path``,
    each trial's two best checkpoints and its latest kept, every result logged by the driver,
    the first trial's start (and ``searcher``'s offline fit) stamped on ``clock``; ``stop``:
    Tune's stop criterion."""
    from ray import tune

    return tune.RunConfig(
        name=EXPERIMENT, storage_path=options.storage_path, verbose=0, stop=stop,
        # verbose=0: the status lines of AT2's decisions are the progress report; Tune's
        # per-trial tables repeat a trial's config at every resume (a 20-epoch run printed
        # 513 lines with verbose=1, 15 config tables of them)
        # a ResNet checkpoint with its optimizer state is 150-300 MB: keeping every epoch's
        # fills a disk within a few hundred epochs. The best by the metric, because the best
        # epoch holds the model the run recommends (kept only by the latest, it is deleted
        # once later epochs are saved); Ray keeps the latest besides. Two, not one: Tune's
        # saved experiment state can lag one checkpoint behind (it is forced once a trial has
        # saved num_to_keep times), and after a crash the trial restores from the one that
        # state names; with one kept, that one was already deleted
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2, checkpoint_score_attribute=METRIC,
                                                checkpoint_score_order="max"),
        failure_config=tune.FailureConfig(max_failures=options.max_failures),
        callbacks=[records.TrialMetricsLog(Path(options.out).resolve() / TRIALS_DIR),
                   FirstTrialPhases(clock, searcher)])


def _fit_ray_method(options: LiveOptions, plan: Plan, resources: dict[str, float],
                    clock: PhaseClock):
    """Run a Ray Tune method (``methods.RAY``) until the epoch budget is spent; returns the
    experiment's path, Tune's results and the budget stopper with the counted epochs."""
    from ray import tune

    from at2_tune.tune.budget import EpochBudgetStopper

    experiment = f"{options.storage_path.rstrip('/')}/{EXPERIMENT}"
    search_alg, scheduler = methods.ray_search(options.method, plan, options.seed,
                                               options.data_dir)
    _quiet_forced_syncs()
    stopper = EpochBudgetStopper(options.budget_epochs,
                                 keep=("trial_id", "training_iteration", METRIC))
    tuner = tune.Tuner(
        make_trainable(options, plan, resources), param_space=plan.space.to_param_space(),
        tune_config=tune.TuneConfig(search_alg=search_alg, scheduler=scheduler, metric=METRIC,
                                    mode="max",
                                    # every trial trains >= 1 epoch: enough for the budget
                                    num_samples=options.budget_epochs + options.concurrency,
                                    max_concurrent_trials=options.concurrency,
                                    reuse_actors=True),
        run_config=run_config(options, clock, stop=stopper))
    ray_tune_log = logging.getLogger("ray.tune")
    level = ray_tune_log.level
    # at the end Tune warns of every trial the budget stopper left unstarted (no results, by
    # design); errors still show
    ray_tune_log.setLevel(logging.ERROR)
    try:
        results = tuner.fit()
    finally:
        ray_tune_log.setLevel(level)
    if not stopper.records:
        errors = [r.error for r in results if r.error is not None]
        raise AT2Error(f"no trial reported an epoch ({len(errors)} failed"
                       + (f"; the first error: {errors[0]}" if errors else "") + ")")
    return experiment, results, stopper


@contextlib.contextmanager
def local_copy(experiment: str) -> Iterator[str]:
    """A local folder with the searcher's saved states of ``experiment``: the folder itself,
    or, for a storage URI (``s3://``, ``gs://``, ``file://``), a temporary copy of those files."""
    if "://" not in experiment:
        yield experiment
        return
    import pyarrow.fs

    from at2_tune.tune.searcher_state import BACKUP_FILE

    filesystem, path = pyarrow.fs.FileSystem.from_uri(experiment)
    with tempfile.TemporaryDirectory() as folder:
        for info in filesystem.get_file_info(pyarrow.fs.FileSelector(path)):
            if info.base_name.startswith("searcher-state-") or info.base_name == BACKUP_FILE:
                pyarrow.fs.copy_files(info.path, os.path.join(folder, info.base_name),
                                      source_filesystem=filesystem)
        yield folder


def _closing_lines(options: LiveOptions, document: dict[str, Any], plot: Path | None) -> str:
    best = document[f"best_{METRIC}"]
    test = document["test_top1"]
    lines = [f"recommended by {options.method}: trial {document['recommended_trial']} "
             f"({METRIC} {'-' if best is None else f'{best:.4f}'} at epoch "
             f"{document['recommended_epoch']}, test_top1 "
             f"{'-' if test is None else f'{test:.4f}'}) {document['recommended_config']}",
             f"the model: {document.get('recommended_checkpoint') or 'no checkpoint kept'}",
             f"{document['epochs_spent']}/{document['budget_epochs']} epochs over "
             f"{len(document['trials'])} trials in {document['wall_s']:.0f} s",
             f"summary: {Path(options.out) / summary.SUMMARY_FILE}"]
    if options.method in methods.COORDINATED:
        lines.append(f"in Python: at2_tune.load_recommendation({document['experiment']!r})")
    if plot is not None:
        lines.append(f"learning curves: {plot}")
    return "\n".join(lines)


def _plan_json(searcher) -> dict[str, Any] | None:
    """The budget plan AT2 carried out (``None`` for a searcher that does not plan)."""
    plan = getattr(searcher, "plan", None)
    return None if plan is None else plan.to_json()
