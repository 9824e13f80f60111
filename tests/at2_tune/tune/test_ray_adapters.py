"""Real Ray Tune runs of AT2Searcher + AT2Scheduler on the replay trainable (local Ray)."""

import dataclasses
import math

import numpy as np
import pytest

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402

from at2_tune.core.prior import PriorData  # noqa: E402
from at2_tune.core.settings import AT2Settings, ModelSettings, PolicySettings  # noqa: E402
from at2_tune.errors import AT2Error  # noqa: E402
from at2_tune.simulator import resolve_task, run_replay  # noqa: E402
from at2_tune.tune import AT2Scheduler, AT2Searcher  # noqa: E402
from at2_tune.tune.ray_replay import run_replay_ray  # noqa: E402
from at2_tune.bench.baselines import prior_order  # noqa: E402
from search_spaces import config_key  # noqa: E402
from trainers.curve_trainable import make_replay_trainable  # noqa: E402

pytestmark = pytest.mark.integration  # local Ray for the whole module


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _searcher(hyperrec, settings, budget, **kwargs) -> AT2Searcher:
    task = resolve_task(hyperrec, pair=0, budget=budget)
    prior = PriorData.from_database(hyperrec, task.train_tasks, task.seed_profile)
    return AT2Searcher(prior=prior, settings=settings, seed=0, budget_epochs=budget,
                       fit_cache=None, **kwargs)


def _run(trainable, searcher, tmp_path, concurrency, **kwargs):
    return tune.run(trainable, search_alg=searcher, scheduler=AT2Scheduler(searcher),
                    metric="val_acc", mode="max", num_samples=200,
                    max_concurrent_trials=concurrency, reuse_actors=True,
                    storage_path=str(tmp_path), verbose=0, raise_on_failed_trial=False, **kwargs)


def test_one_trial_at_a_time_equals_the_pure_replay_loop(hyperrec, fast_settings, release_dir):
    task = resolve_task(hyperrec, pair=0, budget=8)
    through_ray = run_replay_ray(hyperrec, task, seed=0, settings=fast_settings,
                                 data_dir=str(release_dir))["trace"]
    loop = run_replay(hyperrec, task, seed=0, settings=fast_settings)["trace"]
    fields = ("config_id", "epoch", "value", "recommended_config_id", "rank", "regret")
    assert [[r[f] for f in fields] for r in through_ray] == [[r[f] for f in fields] for r in loop]


class _RunningTrials(tune.Callback):
    """The most trials in flight (the coordinator's count) and running (Tune's) after a step,
    and each trial's reported epochs (in the driver)."""

    def __init__(self, coordinator):
        self.coordinator = coordinator
        self.most_in_flight = self.most_running = 0
        self.epochs: dict[str, list[int]] = {}

    def on_step_end(self, iteration, trials, **info):
        running = sum(t.status == "RUNNING" for t in trials)
        self.most_running = max(self.most_running, running)
        self.most_in_flight = max(self.most_in_flight, self.coordinator.in_flight)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.epochs.setdefault(trial.trial_id, []).append(result["epoch"])


def test_four_concurrent_trials_spend_exactly_the_budget_and_resume_from_checkpoints(
        hyperrec, fast_settings, tmp_path):
    budget = 24
    # the leaders policy keeps four configurations in turn (the default's plan for this prior
    # and budget trains the prior's favourite alone)
    leaders = dataclasses.replace(fast_settings, policy=PolicySettings(name="leaders"))
    searcher = _searcher(hyperrec, leaders, budget)
    watch = _RunningTrials(searcher.coordinator)
    _run(make_replay_trainable("hyperrec", "CIFAR100"), searcher, tmp_path, concurrency=4,
         callbacks=[watch])
    coordinator = searcher.coordinator
    assert coordinator.epochs_spent == coordinator.epochs_observed == budget
    assert len(searcher.engine.observations) == budget
    assert watch.most_in_flight == 4  # all four slots were used, never more
    assert watch.most_running <= 5  # Tune's view: + 1 while a pausing trial saves its checkpoint
    for trial_id, epochs in watch.epochs.items():  # resumed trials continue, never restart
        assert epochs == list(range(1, len(epochs) + 1)), f"{trial_id} restarted: {epochs}"
    assert sum(len(e) for e in watch.epochs.values()) == budget
    assert any(len(e) > 1 for e in watch.epochs.values())


def test_a_configuration_failing_in_its_third_epoch_is_never_proposed_again(
        hyperrec, fast_settings, tmp_path):
    budget = 20
    settings = dataclasses.replace(fast_settings, policy=PolicySettings(name="leaders"))
    searcher = _searcher(hyperrec, settings, budget)
    task = resolve_task(hyperrec, pair=0, budget=budget)
    leaders = {config_key(hyperrec.configs[i]) for i in prior_order(hyperrec, task, "test")[:2]}

    def fails(config):  # the prior's two favourites, which the leaders round robin trains first
        return config_key(config) in leaders

    analysis = _run(make_replay_trainable("hyperrec", "CIFAR100", fail_on=fails, fail_at_epoch=3),
                    searcher, tmp_path, concurrency=2)
    engine, coordinator = searcher.engine, searcher.coordinator
    failed = {config_key(engine.candidates[c]) for c in engine.failed}
    assert failed == leaders
    for candidate in engine.failed:
        assert engine.observations.epochs_of(candidate) == {1, 2}  # observed, then failed
    rows = coordinator.trace
    for candidate in engine.failed:
        trial_ids = {r.trial_id for r in rows if r.candidate == candidate}
        assert len(trial_ids) == 1  # never started again after its failure
    assert coordinator.epochs_observed == budget
    assert sum(t.status == "ERROR" for t in analysis.trials) == 2


def test_a_trainable_that_ignores_its_checkpoint_is_a_clear_error(hyperrec, fast_settings, tmp_path):
    def forgetful(config):  # restarts at epoch 1 whenever it is resumed
        for epoch in range(1, 5):
            tune.report({"val_acc": 0.5 + 0.01 * epoch, "epoch": epoch})

    settings = dataclasses.replace(fast_settings, policy=PolicySettings("leaders", leaders_decay=0.0))
    searcher = _searcher(hyperrec, settings, 12, time_attr="epoch")
    with pytest.raises(Exception, match=r"reported epoch 1 again \(its next epoch is 2\).*restarted from scratch"):
        _run(forgetful, searcher, tmp_path, concurrency=1)
    assert searcher.coordinator.epochs_spent >= 2  # the repeated epoch counts


def test_tuner_with_a_user_param_space_and_no_prior(tmp_path):
    def curve_trainable(config):  # defined here so that Ray pickles it by value
        import json
        import os
        import tempfile

        start = 0  # a paused trial resumes from its checkpoint, as freeze-thaw needs
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as directory:
                start = json.load(open(os.path.join(directory, "epoch.json")))
        for epoch in range(start + 1, 6):
            value = 1 - math.exp(-epoch * config["rate"]) - (config["opt"]["wd"] - 0.5) ** 2
            with tempfile.TemporaryDirectory() as directory:
                with open(os.path.join(directory, "epoch.json"), "w") as handle:
                    json.dump(epoch, handle)
                tune.report({"score": value if config["opt"]["name"] != "bad" else float("nan")},
                            checkpoint=tune.Checkpoint.from_directory(directory))

    settings = AT2Settings(ModelSettings(n_inducing=16, online_steps=2))
    searcher = AT2Searcher(prior=None, n_candidates=12, max_epochs=5, budget_epochs=15,
                           fit_cache=None, seed=3, settings=settings)
    param_space = {"rate": tune.loguniform(0.1, 2.0),
                   "opt": {"name": tune.choice(["good", "bad"]), "wd": tune.uniform(0, 1)}}
    tuner = tune.Tuner(curve_trainable, param_space=param_space,
                       tune_config=tune.TuneConfig(search_alg=searcher,
                                                   scheduler=AT2Scheduler(searcher),
                                                   metric="score", mode="max", num_samples=100,
                                                   max_concurrent_trials=2, reuse_actors=True),
                       run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0))
    results = tuner.fit()
    assert searcher.coordinator.epochs_observed <= 15
    engine = searcher.coordinator.engine
    assert engine.space.name == "custom" and engine.n_epochs == 5
    assert all(engine.candidates[c]["opt"]["name"] == "bad" for c in engine.failed)
    best = results.get_best_result()
    assert best.config["opt"]["name"] == "good"


def test_missing_metric_mode_scheduler_and_unsupported_space_are_clear_errors(tmp_path):
    searcher = AT2Searcher(prior=None, fit_cache=None)
    with pytest.raises(AT2Error, match=r"scheduler=AT2Scheduler\(searcher\)"):
        searcher.suggest("t0")
    AT2Scheduler(searcher)
    with pytest.raises(ValueError, match="needs a metric and a mode"):
        searcher.suggest("t0")
    with pytest.raises(ValueError, match="mode='maximize' is not supported"):
        AT2Searcher(mode="maximize")
    with pytest.raises(TypeError, match="fit_cache=False is not supported; pass None"):
        AT2Searcher(fit_cache=False)
    searcher = AT2Searcher(prior=None, fit_cache=None, metric="m", mode="max")
    with pytest.raises(ValueError, match="sample_from"):
        searcher.set_search_properties("m", "max", {"x": tune.sample_from(lambda spec: 1)})


def test_killed_driver_is_restored_without_losing_or_repeating_observations(release_dir, tmp_path):
    from experiments import kill_restore

    for concurrency in (1, 3):
        rng = np.random.default_rng(concurrency)
        for attempt in range(3):  # a kill that truncates Tune's own state file cannot be restored
            figures = kill_restore.run_case(concurrency, kills=1, budget=14, seconds_per_epoch=0.05,
                                            data_dir=release_dir.resolve(),
                                            out=tmp_path / str(attempt), rng=rng)
            if not figures["tune_state_truncated"]:
                break
        assert figures["kills"] == 1 and not figures["tune_state_truncated"], figures
        assert figures["observations"] == figures["budget"] == 14, figures
        assert figures["repeated"] == figures["non_contiguous_trials"] == 0, figures


def test_no_argument_searcher_defaults_to_the_hyperrec_space_and_database(release_dir, monkeypatch):
    monkeypatch.setenv("AT2_DATA_DIR", str(release_dir))
    searcher = AT2Searcher()
    assert searcher.set_search_properties("val_acc", "max", {})
    inputs = searcher.setup.inputs("val_acc")
    space, prior = inputs.space, inputs.prior
    assert space.name == "hyperrec" and prior.n_tasks == 27 and prior.n_configs == 100
    assert searcher.metric == "val_acc" and searcher.mode == "max"


def _user_prior_run(tmp_path, settings):
    """A run with a 3-task user database of 4 configurations (6 epochs each) plus 6 samples of
    the space, one trial at a time; its searcher and the candidates the prior trained."""
    from at2_tune.databases.user import UserDatabase, UserTask, write_user_database
    from tests.at2_tune.synthetic_prior import TOY_SPACE, toy_configs, toy_prior

    def toy_target(config):  # the synthetic prior's new task, resumable; Ray pickles it by value
        import json
        import os
        import tempfile

        start = 0
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as directory:
                start = json.load(open(os.path.join(directory, "epoch.json")))
        peak = (0.9 - 0.12 * (math.log10(config["lr"]) - math.log10(3e-2)) ** 2
                + 0.05 * config["width"] + 0.03 * (config["optimizer"] == "adam"))
        for epoch in range(start + 1, 7):
            rise = 1 - math.exp(-(0.2 + 0.6 * config["width"]) * epoch)
            value = min(max(peak, 0.05), 0.98) * rise
            with tempfile.TemporaryDirectory() as directory:
                with open(os.path.join(directory, "epoch.json"), "w") as handle:
                    json.dump(epoch, handle)
                tune.report({"val_acc": value},
                            checkpoint=tune.Checkpoint.from_directory(directory))

    prior = toy_prior(3, toy_configs(4, seed=1)).with_epochs(6)  # seed 0: the samples below
    folder = tmp_path / "db"
    write_user_database(UserDatabase(TOY_SPACE, "val_acc", "max", "training_iteration",
                                     tuple(UserTask(t, "toy", 4) for t in prior.tasks),
                                     prior.configs, prior.curves), folder)
    searcher = AT2Searcher(TOY_SPACE, prior=str(folder), n_candidates=6, budget_epochs=30,
                           fit_cache=None, seed=0, settings=settings)
    _run(toy_target, searcher, tmp_path / "run", concurrency=1)
    engine = searcher.coordinator.engine
    grid = {config_key(c) for c in prior.configs}
    on_grid = {c for c in range(engine.n_candidates) if config_key(engine.candidates[c]) in grid}
    assert engine.n_candidates == 10 and len(on_grid) == 4
    assert searcher.coordinator.epochs_observed == 30
    return searcher, on_grid


def test_samples_of_the_space_wait_for_the_user_priors_configurations(tmp_path, fast_settings):
    searcher, on_grid = _user_prior_run(tmp_path, fast_settings)
    finished: set[int] = set()  # grid candidates trained for all 6 epochs so far
    samples_seen = 0
    for row in searcher.coordinator.trace:
        if row.candidate in on_grid:
            finished |= {row.candidate} if row.epoch == 6 else set()
        else:  # a sample: only once fewer than `leaders` (4) grid candidates are open
            assert len(on_grid) - len(finished) < 4, (row, finished)
            samples_seen += 1
    assert finished and samples_seen > 0  # the rule was reached, then let them in
