"""AT2Searcher + AT2Scheduler in the setups an ordinary Ray Tune user has (real local Ray, CPU).

Each test is a row of issue 25's table: a loss with ``mode="min"``, Tune's own stops
(``stop=``, ``done=True``, a trainable that trains fewer epochs), class Trainables with and
without ``reset_config`` under ``reuse_actors=True``, a space of choices only,
``points_to_evaluate``, ``Repeater``, conflicting spaces and metrics, a trainable that reports
every 2nd epoch, restoring into a searcher built with defaults, the public recommendation, and
two of the examples that ship with Ray 2.60 run with the AT2 pair as the README says.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile

import pytest

ray = pytest.importorskip("ray")
from ray import cloudpickle, tune  # noqa: E402
from ray.tune.search import Repeater  # noqa: E402

from at2_tune import load_recommendation  # noqa: E402
from at2_tune.core.coordinator import TrialStatus  # noqa: E402
from at2_tune.errors import AT2Error  # noqa: E402
from at2_tune.tune import AT2Scheduler, AT2Searcher  # noqa: E402
from search_spaces import config_key  # noqa: E402

pytestmark = pytest.mark.integration  # local Ray for the whole module

SPACE = {"lr": tune.loguniform(1e-4, 1e-1), "width": tune.choice([16, 32, 64]),
         "train_epochs": 6}


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


# ---------------------------------------------------------------------- trainables
def accuracy(config: dict, epoch: int) -> float:
    """A rising learning curve whose peak depends on the configuration."""
    peak = 0.95 - 0.1 * (math.log10(config["lr"]) + 2.5) ** 2 - 0.05 * (config["width"] == 16)
    return max(peak, 0.05) * (1 - math.exp(-0.6 * epoch))


def loss(config: dict, epoch: int) -> float:
    """A loss outside [0, 1] (2.3 at worst)."""
    return 2.0 * (1 - accuracy(config, epoch)) + 0.3


def _saved_epoch() -> int:
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return 0
    with checkpoint.as_directory() as directory:
        with open(os.path.join(directory, "epoch.json")) as handle:
            return json.load(handle)


def loss_trainable(config):
    """A function trainable that resumes from its checkpoint and reports a loss each epoch."""
    for epoch in range(_saved_epoch() + 1, config["train_epochs"] + 1):
        with tempfile.TemporaryDirectory() as directory:
            with open(os.path.join(directory, "epoch.json"), "w") as handle:
                json.dump(epoch, handle)
            tune.report({"loss": loss(config, epoch), "epoch": epoch},
                        checkpoint=tune.Checkpoint.from_directory(directory))


def every_second_epoch(config):
    """Reports epochs 2, 4, 6 on ``epoch`` (and resumes from its checkpoint)."""
    for epoch in range(_saved_epoch() + 2, 7, 2):
        with tempfile.TemporaryDirectory() as directory:
            with open(os.path.join(directory, "epoch.json"), "w") as handle:
                json.dump(epoch, handle)
            tune.report({"loss": loss(config, epoch), "epoch": epoch},
                        checkpoint=tune.Checkpoint.from_directory(directory))


class CurveTrainable(tune.Trainable):
    """A class Trainable without ``reset_config``; says ``done`` after ``done_at`` epochs."""

    def setup(self, config):
        self.epoch = 0

    def step(self):
        self.epoch += 1
        return {"acc": accuracy(self.config, self.epoch), "epoch": self.epoch,
                "done": self.epoch >= self.config.get("done_at", 10**6)}

    def save_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "epoch.json"), "w") as handle:
            json.dump(self.epoch, handle)

    def load_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "epoch.json")) as handle:
            self.epoch = json.load(handle)


class ReusableCurveTrainable(CurveTrainable):
    def reset_config(self, new_config):
        self.epoch = 0
        return True


class OverfittingCurveTrainable(ReusableCurveTrainable):
    """Its accuracy peaks at epoch 2 and falls after."""

    def step(self):
        result = super().step()
        return {**result, "acc": accuracy(self.config, 2) - 0.05 * (self.epoch - 2) ** 2}


class _Reported(tune.Callback):
    """Every (trial id, epoch, metric value) Tune produced, in the driver."""

    def __init__(self, metric: str, time_attr: str = "training_iteration"):
        self.metric, self.time_attr = metric, time_attr
        self.rows: list[tuple[str, int, float]] = []

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.rows.append((trial.trial_id, int(result[self.time_attr]), float(result[self.metric])))


def _observed(searcher: AT2Searcher) -> list[tuple[str, int, float]]:
    """Every observation of the coordinator as (trial id, epoch, value as reported)."""
    sign = 1.0 if searcher.mode == "max" else -1.0
    return [(r.trial_id, r.epoch, sign * r.value) for r in searcher.coordinator.trace]


def _searcher(fast_settings, **kwargs) -> AT2Searcher:
    return AT2Searcher(prior=None, fit_cache=None, seed=0, settings=fast_settings, **kwargs)


# ---------------------------------------------------------------------- metric and mode, stops
def test_a_loss_with_mode_min_and_a_stop_criterion_is_observed_exactly_and_recommended(
        fast_settings, tmp_path):
    searcher = _searcher(fast_settings, budget_epochs=14)  # max_epochs from stop=
    reported = _Reported("loss")
    analysis = tune.run(loss_trainable, config=SPACE, search_alg=searcher,
                        scheduler=AT2Scheduler(searcher), metric="loss", mode="min",
                        stop={"training_iteration": 4}, num_samples=50, max_concurrent_trials=2,
                        reuse_actors=True, storage_path=str(tmp_path), verbose=0,
                        callbacks=[reported])
    engine, coordinator = searcher.coordinator.engine, searcher.coordinator
    assert engine.n_epochs == 4 and engine.surrogate.transform.warp_name == "standardize"
    assert max(v for _, _, v in reported.rows) > 1.0  # values outside [0, 1] were tuned
    # every result Tune produced, the stop's last epochs included, observed once; budget exact
    assert sorted(_observed(searcher)) == sorted(reported.rows)
    assert coordinator.epochs_spent == len(reported.rows) == 14
    assert any(epoch == 4 for _, epoch, _ in reported.rows)  # epochs Tune's stop ended on
    assert all(s is TrialStatus.DONE for s in map(coordinator.status, coordinator.trials))

    recommendation = searcher.recommendation()
    best = analysis.get_best_trial("loss", "min", scope="all")
    assert recommendation["trial_id"] == best.trial_id
    assert recommendation["value"] == pytest.approx(min(v for _, _, v in reported.rows))
    assert recommendation["config"] == {k: best.config[k] for k in recommendation["config"]}
    assert load_recommendation(analysis.experiment_path) == json.loads(json.dumps(recommendation))

    from at2_tune.databases.tune_import import read_tune_experiment  # `at2-tune prior import`

    imported = read_tune_experiment(analysis.experiment_path, "loss")
    curves = {(t.trial, e): v for t in imported for e, v in t.values.items()}
    assert len(curves) == 14  # every epoch of the paused and resumed trials, none lost
    assert sorted(curves.values()) == sorted(v for _, _, v in reported.rows)

    saved = tmp_path / "searcher-state.pt"  # Ray's save/restore pattern: a default searcher
    searcher.save(str(saved))
    restored = AT2Searcher()
    restored.restore(str(saved))
    assert restored.recommendation() == recommendation
    assert restored.coordinator.epochs_spent == 14 and restored.metric == "loss"


def overfitting_trainable(config):
    """A loss lowest at epoch 3 that rises after (the model overfits), checkpointed each epoch
    with the epoch it holds."""
    for epoch in range(_saved_epoch() + 1, config["train_epochs"] + 1):
        with tempfile.TemporaryDirectory() as directory:
            with open(os.path.join(directory, "epoch.json"), "w") as handle:
                json.dump(epoch, handle)
            tune.report({"loss": loss(config, 3) + 0.05 * (epoch - 3) ** 2},
                        checkpoint=tune.Checkpoint.from_directory(directory))


def _overfitting_run(fast_settings, tmp_path, checkpoint_config, budget=10, **searcher_kwargs):
    searcher = _searcher(fast_settings, budget_epochs=budget, max_epochs=5, **searcher_kwargs)
    results = tune.Tuner(
        overfitting_trainable, param_space={**SPACE, "train_epochs": 5},
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=AT2Scheduler(searcher),
                                    metric="loss", mode="min", num_samples=20,
                                    max_concurrent_trials=2, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="overfit", verbose=0,
                                  checkpoint_config=checkpoint_config)).fit()
    assert results.num_errors == 0 and searcher.coordinator.epochs_spent == budget
    return searcher, results


def _checkpoint_epoch(path: str) -> int:
    with open(os.path.join(path, "epoch.json")) as handle:
        return json.load(handle)


def test_the_recommendation_names_the_checkpoint_that_holds_the_recommended_model(
        fast_settings, tmp_path):
    keep_best = tune.CheckpointConfig(num_to_keep=1, checkpoint_score_attribute="loss",
                                      checkpoint_score_order="min")
    searcher, results = _overfitting_run(fast_settings, tmp_path, keep_best)
    recommendation = searcher.recommendation()
    assert recommendation["epoch"] == 3  # the loss rises after epoch 3: the best is earlier
    # the folder holds the model of that very epoch, the one Ray itself calls the best
    assert _checkpoint_epoch(recommendation["checkpoint"]) == 3
    best = results.get_best_result(scope="all")
    assert best.metrics["trial_id"] == recommendation["trial_id"]
    assert best.get_best_checkpoint("loss", "min").path == recommendation["checkpoint"]
    assert load_recommendation(results.experiment_path)["checkpoint"] == \
        recommendation["checkpoint"]
    saved = tmp_path / "searcher-state.pt"  # a searcher restored after the run names it too
    searcher.save(str(saved))
    restored = AT2Searcher()
    restored.restore(str(saved))
    assert restored.recommendation() == recommendation


def test_a_recommended_model_whose_checkpoint_ray_deleted_is_named_with_the_fix(
        fast_settings, tmp_path, caplog):
    latest_only = tune.CheckpointConfig(num_to_keep=1)  # the best epoch's is deleted later
    one = [{"lr": 0.01, "width": 32, "train_epochs": 5}]  # trained past its best epoch, 3
    with caplog.at_level("WARNING", logger="at2_tune.tune.searcher"):
        searcher, _ = _overfitting_run(fast_settings, tmp_path, latest_only, budget=5,
                                       candidates=one)
        recommendation = searcher.recommendation()
    assert recommendation["epoch"] == 3 and recommendation["checkpoint"] is None
    warnings = [r.getMessage() for r in caplog.records if "has no checkpoint" in r.getMessage()]
    assert len(warnings) == 1  # once, however often the experiment is saved
    assert f"trial {recommendation['trial_id']} at epoch 3" in warnings[0]
    assert "checkpoint_score_attribute='loss', checkpoint_score_order='min'" in warnings[0]


def test_a_checkpoint_ray_deleted_after_it_was_found_is_not_named_again():
    """The held model's checkpoint existed when the searcher last found it (and saved its
    state), then Ray deleted it (an epoch tied with it was kept instead): the searcher, and a
    searcher restored from its state, name none instead of the deleted path."""

    class Scheduler:
        answers = [("/exp/trial/checkpoint_000000", None), (None, "deleted by Ray")]

        def checkpoint_of(self, trial_id, epoch):
            return self.answers.pop(0)

    searcher = AT2Searcher()
    searcher._scheduler = Scheduler()
    assert searcher._checkpoint_of("t1", 1) == "/exp/trial/checkpoint_000000"
    assert searcher._held_checkpoint == ("t1", 1, "/exp/trial/checkpoint_000000")
    assert searcher._checkpoint_of("t1", 1) is None
    assert searcher._held_checkpoint is None  # so a restored searcher names none either
    searcher._scheduler = None
    assert searcher._checkpoint_of("t1", 1) is None


def test_a_class_trainable_keeps_its_recommended_model_with_the_checkpoint_config_named(
        fast_settings, tmp_path, caplog):
    """A class Trainable saves only when Tune asks (when paused, and at its end), so the
    best epoch of a trial trained on past it (the only configuration here, best at epoch 2
    of 4) has no checkpoint unless CheckpointConfig(checkpoint_frequency=1); the warning
    names that fix, not tune.report's checkpoint, and with it the model is held."""
    def run(checkpoint_config):
        searcher = _searcher(fast_settings, max_epochs=4, budget_epochs=4)
        tune.Tuner(OverfittingCurveTrainable,
                   param_space={"lr": tune.choice([0.003]), "width": 32},
                   tune_config=tune.TuneConfig(search_alg=searcher,
                                               scheduler=AT2Scheduler(searcher), metric="acc",
                                               mode="max", num_samples=20,
                                               max_concurrent_trials=1, reuse_actors=True),
                   run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                             checkpoint_config=checkpoint_config)).fit()
        return searcher.recommendation()

    with caplog.at_level("WARNING", logger="at2_tune.tune.searcher"):
        unsaved = run(None)
    assert unsaved["epoch"] == 2 and unsaved["checkpoint"] is None
    warnings = [r.getMessage() for r in caplog.records if "has no checkpoint" in r.getMessage()]
    assert len(warnings) == 1 and "class Trainable" in warnings[0]
    assert "it saved epochs [4] only" in warnings[0]
    assert "CheckpointConfig(checkpoint_frequency=1, num_to_keep=2, checkpoint_score_" \
           "attribute='acc', checkpoint_score_order='max')" in warnings[0]
    held = run(tune.CheckpointConfig(checkpoint_frequency=1, num_to_keep=2,
                                     checkpoint_score_attribute="acc",
                                     checkpoint_score_order="max"))
    assert held["epoch"] == 2 and _checkpoint_epoch(held["checkpoint"]) == 2


def test_a_class_trainable_with_reset_config_reuses_actors_and_its_done_results_are_observed(
        fast_settings, tmp_path):
    searcher = _searcher(fast_settings, max_epochs=5, budget_epochs=16)
    reported = _Reported("acc")
    space = {**SPACE, "done_at": 3}  # done=True after epoch 3 of max_epochs=5
    results = tune.Tuner(
        ReusableCurveTrainable, param_space=space,
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=AT2Scheduler(searcher),
                                    metric="acc", mode="max", num_samples=50,
                                    max_concurrent_trials=2, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                  callbacks=[reported])).fit()
    assert results.num_errors == 0
    engine = searcher.coordinator.engine
    assert engine.surrogate.transform.warp_name == "standardize"  # no prior: no known bounds
    assert sorted(_observed(searcher)) == sorted(reported.rows)
    assert searcher.coordinator.epochs_spent == len(reported.rows) == 16
    assert max(engine.next_epoch(c) for c in range(engine.n_candidates)) == 4  # done at 3
    assert any(epoch == 3 for _, epoch, _ in reported.rows)
    best = results.get_best_result(scope="all")
    assert searcher.recommendation()["trial_id"] == best.metrics["trial_id"]


def test_a_class_trainable_without_reset_config_under_reuse_actors_is_a_clear_error(
        fast_settings, tmp_path):
    searcher = _searcher(fast_settings, max_epochs=4, budget_epochs=8)
    with pytest.raises(Exception, match=r"CurveTrainable has no reset_config.*reuse_actors=False"):
        tune.run(CurveTrainable, config=SPACE, search_alg=searcher,
                 scheduler=AT2Scheduler(searcher), metric="acc", mode="max", num_samples=10,
                 reuse_actors=True, storage_path=str(tmp_path), verbose=0)


def test_a_trial_that_tune_errors_without_telling_the_scheduler_is_released(fast_settings):
    """Tune errors a trial whose actor reuse fails without calling the scheduler: the next
    scheduling step releases its slot (the run hung at 0 CPUs before)."""
    searcher = _searcher(fast_settings, max_epochs=3, budget_epochs=6, max_concurrent=1)
    scheduler = AT2Scheduler(searcher)
    searcher.set_search_properties("acc", "max", dict(SPACE))
    config = searcher.suggest("t1")
    assert searcher.coordinator.status("t1") is TrialStatus.PENDING
    assert searcher.suggest("t2") is None  # the one slot is held

    class Trial:  # what the scheduler reads of Tune's trials
        def __init__(self, trial_id, status):
            self.trial_id, self.status = trial_id, status

    class Search:
        def is_finished(self):
            return False

    class Controller:
        search_alg = Search()

        def get_trials(self):
            return [Trial("t1", "ERROR")]

    scheduler.choose_trial_to_run(Controller())
    assert searcher.coordinator.status("t1") is TrialStatus.DONE
    engine = searcher.coordinator.engine
    failed = engine.candidates[next(iter(engine.failed))]
    assert config_key(failed) == config_key(config) and searcher.coordinator.in_flight == 0
    assert searcher.suggest("t2") is not None  # the slot is free again


def _first_to_get_here(marker_dir: str) -> bool:
    """True for the first trial to call this (the marker then names it), False after."""
    try:
        handle = os.open(os.path.join(marker_dir, "killed"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.write(handle, tune.get_context().get_trial_id().encode())
    os.close(handle)
    return True


def dying_trainable(config, marker_dir: str, unsaved: bool = False):
    """``loss_trainable`` whose worker process dies by SIGKILL in the middle of epoch 3 (an
    out-of-memory kill), in the first trial to get there only; the marker names that trial.
    ``unsaved``: that trial reports epoch 3 without its checkpoint and dies in epoch 4 instead
    (what Tune sees when a worker dies before the driver registered its last checkpoint, or a
    class Trainable saving only when paused dies): the retry re-runs epoch 3."""
    for epoch in range(_saved_epoch() + 1, config["train_epochs"] + 1):
        if epoch == 3 and unsaved and _first_to_get_here(marker_dir):
            tune.report({"loss": loss(config, epoch)})  # returns when Tune continues it
            os.kill(os.getpid(), signal.SIGKILL)
        if epoch == 3 and not unsaved and _first_to_get_here(marker_dir):
            os.kill(os.getpid(), signal.SIGKILL)
        with tempfile.TemporaryDirectory() as directory:
            with open(os.path.join(directory, "epoch.json"), "w") as handle:
                json.dump(epoch, handle)
            tune.report({"loss": loss(config, epoch)},
                        checkpoint=tune.Checkpoint.from_directory(directory))


def _dying_run(fast_settings, tmp_path, max_failures: int, kill: bool, concurrency: int = 2,
               unsaved: bool = False):
    marker_dir = tmp_path / "marker"
    marker_dir.mkdir(parents=True)
    if not kill:
        (marker_dir / "killed").write_text("")  # taken: nobody dies
    searcher = _searcher(fast_settings, budget_epochs=14, max_epochs=4)
    reported = _Reported("loss")
    results = tune.Tuner(
        tune.with_parameters(dying_trainable, marker_dir=str(marker_dir), unsaved=unsaved),
        param_space={**SPACE, "train_epochs": 4},
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=AT2Scheduler(searcher),
                                    metric="loss", mode="min", num_samples=20,
                                    max_concurrent_trials=concurrency, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="dying", verbose=0,
                                  callbacks=[reported],
                                  failure_config=tune.FailureConfig(max_failures=max_failures))
    ).fit()
    killed = (marker_dir / "killed").read_text() if kill else None
    return searcher, results, reported, killed


def test_a_worker_killed_mid_epoch_resumes_from_its_checkpoint_with_the_budget_exact(
        fast_settings, tmp_path):
    searcher, results, reported, killed = _dying_run(fast_settings, tmp_path / "kill", 1, True)
    assert killed and results.num_errors == 0
    coordinator = searcher.coordinator
    # every epoch observed once, the killed trial's too: it restarted from epoch 2's
    # checkpoint and reported epoch 3 (which it was training when it died) once
    assert sorted(_observed(searcher)) == sorted(reported.rows)
    assert coordinator.epochs_spent == len(reported.rows) == 14
    epochs = [epoch for trial, epoch, _ in reported.rows if trial == killed]
    assert epochs == list(range(1, len(epochs) + 1)) and 3 in epochs
    assert not coordinator.engine.failed
    assert all(s is TrialStatus.DONE for s in map(coordinator.status, coordinator.trials))

    # one slot: the decisions depend on the values alone, so the run without the kill makes
    # the same ones, in the same order, and recommends the same model
    runs = [_dying_run(fast_settings, tmp_path / name, 1, kill, concurrency=1)
            for name, kill in (("one-slot-kill", True), ("one-slot", False))]
    traces = [[(s.coordinator.trials[t].candidate, e, v) for t, e, v in _observed(s)]
              for s, _, _, _ in runs]
    assert traces[0] == traces[1]
    recommendations = [{k: s.recommendation()[k] for k in ("config", "value", "epoch")}
                       for s, _, _, _ in runs]
    assert recommendations[0] == recommendations[1]


def test_a_worker_killed_after_an_unsaved_epoch_re_runs_it_without_counting_it_twice(
        fast_settings, tmp_path):
    """The driver observed epoch 3, but the worker died before a checkpoint of it existed:
    Tune restarts the trial from epoch 2's and the trainable reports epoch 3 again. AT2
    continues it without counting or using that result a second time."""
    searcher, results, reported, killed = _dying_run(fast_settings, tmp_path, 1, True,
                                                     unsaved=True)
    assert killed and results.num_errors == 0
    epochs = [epoch for trial, epoch, _ in reported.rows if trial == killed]
    assert epochs[:4] == [1, 2, 3, 3]  # the re-run epoch reached Tune twice
    observed = [(t, e) for t, e, _ in _observed(searcher)]
    assert sorted(observed) == sorted(set(observed))  # ... and AT2 once
    assert [e for t, e in observed if t == killed] == list(range(1, len(epochs)))
    assert searcher.coordinator.epochs_spent == len(reported.rows) - 1 == 14
    assert not searcher.coordinator.engine.failed


def test_a_worker_killed_without_retries_fails_its_configuration_and_the_run_goes_on(
        fast_settings, tmp_path):
    searcher, results, reported, killed = _dying_run(fast_settings, tmp_path, 0, True)
    assert results.num_errors == 1
    coordinator, engine = searcher.coordinator, searcher.coordinator.engine
    failed = coordinator.trials[killed].candidate
    assert engine.failed == {failed}
    # never proposed again; the budget is spent on the others, exactly
    assert [t for t, r in coordinator.trials.items() if r.candidate == failed] == [killed]
    assert sorted(_observed(searcher)) == sorted(reported.rows)
    assert coordinator.epochs_spent == len(reported.rows) == 14
    assert [epoch for trial, epoch, _ in reported.rows if trial == killed] == [1, 2]


def test_every_epoch_of_paused_and_resumed_trials_is_in_the_result_grid(tmp_path):
    """Tune's logger replaced a resumed trial's result.json with the storage's older copy, and
    ResultGrid lost epochs: in 7 of 10 such runs of experiments.result_grid_rows, and in about
    1 of 3 in this module, before AT2 repaired the file (test_result_repair.py checks the
    repair itself, deterministically)."""
    from experiments.result_grid_rows import one_run

    for seed in range(3):
        assert one_run(f"file://{tmp_path}/storage", seed, epoch_seconds=0.5) == []


def test_one_slot_reusing_actors_needs_one_actor_for_the_whole_run(fast_settings, tmp_path):
    """AT2 starts or resumes a trial only once Tune has released the actor of the trial it
    paused, so that actor is reused. Before, Tune requested a new actor (a placement group)
    for the next trial while the paused one was saving, gave it the freed actor a moment
    later and cancelled the request: 5-6 requests in such a run, and in some runs Ray's
    raylet then counted a CPU as held for good (see the next test)."""
    groups_before = len(ray.util.placement_group_table())
    searcher = _searcher(fast_settings, budget_epochs=14, max_epochs=4)
    analysis = tune.run(loss_trainable, config={**SPACE, "train_epochs": 4},
                        search_alg=searcher, scheduler=AT2Scheduler(searcher), metric="loss",
                        mode="min", num_samples=20, max_concurrent_trials=1, reuse_actors=True,
                        storage_path=str(tmp_path), verbose=0)
    assert searcher.coordinator.epochs_spent == 14
    assert len(analysis.trials) > 2  # trials were paused and resumed on the one actor
    assert {t.status for t in analysis.trials} == {"TERMINATED"}  # none left paused
    assert len(ray.util.placement_group_table()) - groups_before == 1


def test_at2_runs_reusing_actors_leave_every_cpu_to_the_next_run(fast_settings, tmp_path):
    """Nothing of AT2 runs with reuse_actors=True stays behind: a run in the same Ray session
    whose trial wants all 4 CPUs completes. It follows the module's other runs (a killed
    worker among them) in the same session: before AT2 waited for Tune to release a paused
    trial's actor, the raylet counted 1-2 CPUs as held after 4 of 14 runs of the killed-worker
    test, with no actor, placement group or worker process left, and this trial never
    started."""
    for run in range(2):
        searcher = _searcher(fast_settings, max_epochs=4, budget_epochs=10)
        tune.run(ReusableCurveTrainable, config=SPACE, search_alg=searcher,
                 scheduler=AT2Scheduler(searcher), metric="acc", mode="max", num_samples=20,
                 max_concurrent_trials=3, reuse_actors=True, storage_path=str(tmp_path),
                 verbose=0)
        assert searcher.coordinator.epochs_spent == 10
    then = _leftovers()
    everything = tune.run(tune.with_resources(loss_trainable, {"cpu": 4}),
                          config={"lr": 0.01, "width": 32, "train_epochs": 2},
                          metric="loss", mode="min", storage_path=str(tmp_path),
                          time_budget_s=60, verbose=0)  # a guard against a hang (~2 s if not)
    assert [t.status for t in everything.trials] == ["TERMINATED"]
    assert everything.trials[0].last_result.get("training_iteration") == 2, \
        f"the 4-CPU trial never ran: now {_leftovers()}, right after the AT2 runs {then}"


def _leftovers() -> dict:
    """What may hold CPUs: actors not dead (class, state), placement groups not removed,
    worker processes of trainables (``ray::`` processes but Ray's agents and idle workers),
    and the CPUs the raylet counts as free."""
    import ray._private.state as state

    actors = [(a.get("ActorClassName"), a["State"]) for a in state.actors().values()
              if a["State"] != "DEAD"]
    groups = [(g["state"], g["bundles"]) for g in ray.util.placement_group_table().values()
              if g["state"] != "REMOVED"]
    table = subprocess.run(["ps", "-eo", "pid,etimes,args"], capture_output=True,
                           text=True).stdout.splitlines()
    workers = [" ".join(line.split()[:3]) for line in table if "ray::" in line and not any(
        agent in line for agent in ("DashboardAgent", "RuntimeEnvAgent", "ray::IDLE"))]
    return {"cpu_free": ray.available_resources().get("CPU", 0.0), "actors": sorted(actors),
            "placement_groups": groups, "workers": workers}


# ---------------------------------------------------------------------- spaces and conventions
def test_a_space_of_choices_only_is_enumerated_and_points_to_evaluate_start_first(
        fast_settings, tmp_path):
    space = {"a": tune.choice([1, 2]), "b": tune.choice(["x", "y", "z"]), "train_epochs": 3}
    points = [{"a": 2, "b": "z", "train_epochs": 3}, {"a": 1, "b": "y", "train_epochs": 3}]
    searcher = _searcher(fast_settings, max_epochs=4, budget_epochs=18,
                         points_to_evaluate=points)  # the trainable stops after 3 epochs

    def discrete(config):
        for epoch in range(_saved_epoch() + 1, 4):
            with tempfile.TemporaryDirectory() as directory:
                with open(os.path.join(directory, "epoch.json"), "w") as handle:
                    json.dump(epoch, handle)
                acc = 0.1 * config["a"] + 0.05 * "xyz".index(config["b"]) + 0.01 * epoch
                tune.report({"acc": acc},
                            checkpoint=tune.Checkpoint.from_directory(directory))

    analysis = tune.run(discrete, config=space, search_alg=searcher,
                        scheduler=AT2Scheduler(searcher), metric="acc", mode="max",
                        num_samples=50, max_concurrent_trials=1, reuse_actors=True,
                        storage_path=str(tmp_path), verbose=0)
    engine = searcher.coordinator.engine
    assert engine.n_candidates == 6  # every configuration once, not 100 repeating samples
    assert len({config_key(c) for c in engine.candidates}) == 6
    first_two = [r.candidate for r in searcher.coordinator.trace if r.epoch == 1][:2]
    assert [engine.candidates[c] for c in first_two] == points
    assert len(analysis.trials) == 6 and searcher.coordinator.epochs_observed == 18
    assert searcher.recommendation()["config"] == {"a": 2, "b": "z", "train_epochs": 3}


def test_repeater_is_refused_with_a_message_naming_it(fast_settings, tmp_path):
    searcher = _searcher(fast_settings, max_epochs=3, budget_epochs=6)
    with pytest.raises(Exception, match=r"Repeater\(AT2Searcher\(\.\.\.\)\) is not supported"):
        tune.run(loss_trainable, config=SPACE, search_alg=Repeater(searcher, repeat=2),
                 scheduler=AT2Scheduler(searcher), metric="loss", mode="min", num_samples=4,
                 storage_path=str(tmp_path), verbose=0)


def test_a_trainable_reporting_every_second_epoch_gets_an_error_naming_the_fix(
        fast_settings, tmp_path):
    searcher = _searcher(fast_settings, max_epochs=6, budget_epochs=6, time_attr="epoch")
    with pytest.raises(Exception, match=r"reported epoch 2, but its next epoch is 1.*"
                                        r"time_attr='training_iteration'"):
        tune.run(every_second_epoch, config=SPACE, search_alg=searcher,
                 scheduler=AT2Scheduler(searcher), metric="loss", mode="min", num_samples=4,
                 storage_path=str(tmp_path), verbose=0)
    counted = _searcher(fast_settings, max_epochs=3, budget_epochs=6)  # the fix: count reports
    tune.run(every_second_epoch, config=SPACE, search_alg=counted,
             scheduler=AT2Scheduler(counted), metric="loss", mode="min", num_samples=4,
             storage_path=str(tmp_path / "fixed"), verbose=0)
    assert counted.coordinator.epochs_observed == 6


def test_spaces_metrics_and_modes_that_conflict_with_tune_are_errors(fast_settings):
    searcher = _searcher(fast_settings, space=dict(SPACE), max_epochs=3)  # a plain dict
    assert searcher.set_search_properties("loss", "min", dict(SPACE))  # the same space: fine
    assert searcher.setup.space.parameter("lr").domain_text() == "LogUniform(0.0001, 0.1)"
    other = {**SPACE, "lr": tune.uniform(0.5, 0.9)}
    with pytest.raises(ValueError, match=r"(?s)param_space holds another one.*in one place"):
        _searcher(fast_settings, space=dict(SPACE)).set_search_properties("loss", "min", other)
    with pytest.raises(ValueError, match=r"metric='acc'.*metric='loss'"):
        _searcher(fast_settings, metric="acc").set_search_properties("loss", None, {})
    with pytest.raises(ValueError, match=r"mode='max'.*mode='min'"):
        _searcher(fast_settings, mode="max").set_search_properties(None, "min", {})
    with pytest.raises(ValueError, match="expected a search_spaces.SearchSpace or a Ray Tune"):
        AT2Searcher(space=[("lr", 0.1)])


def test_max_epochs_is_required_without_a_prior_or_a_stop(fast_settings):
    searcher = _searcher(fast_settings)
    AT2Scheduler(searcher)
    searcher.set_search_properties("loss", "min", dict(SPACE))
    with pytest.raises(ValueError, match=r"max_epochs=N\), or stop=\{'training_iteration': N\}"):
        searcher.suggest("t0")
    from_stop = _searcher(fast_settings)
    AT2Scheduler(from_stop)
    from_stop.set_search_properties("loss", "min", dict(SPACE), stop={"training_iteration": 7})
    assert from_stop.suggest("t0") is not None and from_stop.coordinator.engine.n_epochs == 7


def test_an_accuracy_prior_keeps_the_log_error_warp_and_names_a_bad_value_as_reported(
        hyperrec, fast_settings):
    from at2_tune.core.prior import PriorData

    prior = PriorData.from_database(hyperrec, ["CIFAR10", "SUN397SUB1"], seed_profile=0)
    searcher = AT2Searcher(prior=prior, fit_cache=None, settings=fast_settings)
    AT2Scheduler(searcher)
    searcher.set_search_properties("val_acc", "max", {})
    searcher.suggest("t0")
    assert searcher.coordinator.engine.surrogate.transform.warp_name == "log_error"
    with pytest.raises(AT2Error, match=r"trial t0 reported val_acc=87\.5, outside \[0, 1\]"):
        searcher.metric_value("t0", {"val_acc": 87.5})
    as_loss = AT2Searcher(prior=prior, fit_cache=None, settings=fast_settings)
    as_loss.set_search_properties("val_loss", "min", {})
    assert as_loss.setup.resolved_settings(prior, "val_loss", "min").model.output_warp == \
        "standardize"


def test_a_prior_imported_with_mode_min_tunes_a_loss(fast_settings, tmp_path):
    """``at2-tune prior import --mode min`` of a loss: the prior is standardized, not warped
    (the log-error warp crashed on the negated losses), and the new task's losses are observed."""
    from at2_tune.databases.user import UserDatabase, UserTask, write_user_database
    from tests.at2_tune.synthetic_prior import TOY_SPACE, toy_configs, toy_prior

    accuracies = toy_prior(3, toy_configs(4, seed=1)).with_epochs(5)
    losses = 2.0 * (1.0 - accuracies.curves) + 0.3  # 0.3 .. 2.3, lower is better
    folder = tmp_path / "loss-db"
    write_user_database(UserDatabase(TOY_SPACE, "loss", "min", "training_iteration",
                                     tuple(UserTask(t, "toy", 4) for t in accuracies.tasks),
                                     accuracies.configs, losses), folder)
    searcher = AT2Searcher(prior=str(folder), fit_cache=None, settings=fast_settings,
                           n_candidates=2, budget_epochs=6)
    AT2Scheduler(searcher)
    searcher.set_search_properties("loss", "min", {})
    config = searcher.suggest("t0")
    engine, coordinator = searcher.coordinator.engine, searcher.coordinator
    assert engine.surrogate.transform.warp_name == "standardize"
    value = searcher.metric_value("t0", {"loss": 1.7})
    assert value == -1.7 and config in [dict(c) for c in engine.candidates]
    coordinator.on_result("t0", 1, value)
    assert searcher.recommendation()["value"] == 1.7 and searcher.recommendation()["epoch"] == 1


# ---------------------------------------------------------------------- Ray's own examples
# evaluation_fn and train_func: from ray/python/ray/tune/examples/custom_func_checkpointing.py
# (Ray 2.60), Copyright The Ray Authors, Apache License 2.0; the sleep shortened.
def evaluation_fn(step, width, height):
    return (0.1 + width * step / 100) ** (-1) + height * 0.1


def train_func(config):
    step = 0
    width, height = config["width"], config["height"]

    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as checkpoint_dir:
            with open(os.path.join(checkpoint_dir, "checkpoint.json")) as f:
                state = json.load(f)
            step = state["step"] + 1

    for current_step in range(step, 100):
        intermediate_score = evaluation_fn(current_step, width, height)

        with tempfile.TemporaryDirectory() as temp_checkpoint_dir:
            with open(os.path.join(temp_checkpoint_dir, "checkpoint.json"), "w") as f:
                json.dump({"step": current_step}, f)
            tune.report(
                {"iterations": current_step, "mean_loss": intermediate_score},
                checkpoint=tune.Checkpoint.from_directory(temp_checkpoint_dir),
            )


def test_rays_custom_func_checkpointing_example_with_the_at2_pair(tmp_path):
    searcher = AT2Searcher(budget_epochs=20, fit_cache=None)  # the README's words, no prior
    reported = _Reported("mean_loss")
    results = tune.Tuner(
        train_func,
        run_config=tune.RunConfig(name="custom_func", stop={"training_iteration": 10},
                                  storage_path=str(tmp_path), verbose=0, callbacks=[reported]),
        tune_config=tune.TuneConfig(metric="mean_loss", mode="min", num_samples=50,
                                    search_alg=searcher, scheduler=AT2Scheduler(searcher),
                                    max_concurrent_trials=2, reuse_actors=True),
        param_space={"steps": 10, "width": tune.randint(10, 100),
                     "height": tune.loguniform(10, 100)},
    ).fit()
    assert results.num_errors == 0 and searcher.coordinator.epochs_spent == 20
    best = results.get_best_result(scope="all")
    recommendation = load_recommendation(results.experiment_path)
    assert recommendation["trial_id"] == best.metrics["trial_id"]
    assert recommendation["value"] == min(v for _, _, v in reported.rows)
    assert sorted(_observed(searcher)) == sorted(reported.rows)


def test_rays_hyperband_example_trainable_with_the_at2_pair(tmp_path):
    from ray.tune.utils.mock_trainable import MyTrainableClass  # ships with Ray, no reset_config

    searcher = AT2Searcher(budget_epochs=24, fit_cache=None)
    reported = _Reported("episode_reward_mean")
    results = tune.Tuner(
        MyTrainableClass,
        run_config=tune.RunConfig(name="hyperband_test", stop={"training_iteration": 8},
                                  storage_path=str(tmp_path), verbose=0, callbacks=[reported],
                                  failure_config=tune.FailureConfig(fail_fast=True)),
        tune_config=tune.TuneConfig(num_samples=50, metric="episode_reward_mean", mode="max",
                                    search_alg=searcher, scheduler=AT2Scheduler(searcher),
                                    max_concurrent_trials=2, reuse_actors=False),
        param_space={"width": tune.randint(10, 90), "height": tune.randint(0, 100)},
    ).fit()
    assert results.num_errors == 0 and searcher.coordinator.epochs_spent == 24
    best = results.get_best_result(scope="all")
    assert searcher.recommendation()["trial_id"] == best.metrics["trial_id"]
    assert searcher.recommendation()["value"] == max(v for _, _, v in reported.rows)
    assert sorted(_observed(searcher)) == sorted(reported.rows)
