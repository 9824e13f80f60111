"""Real Ray Tune runs of AT2Searcher + AT2Scheduler on the replay trainable (local Ray)."""

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402

from at2_tune.core.prior import PriorData  # noqa: E402
from at2_tune.core.settings import AT2Settings  # noqa: E402
from at2_tune.replay import resolve_task, run_replay  # noqa: E402
from at2_tune.tune import AT2Scheduler, AT2Searcher  # noqa: E402
from at2_tune.tune.replay import run_replay_ray  # noqa: E402
from trainers.replay import make_replay_trainable  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _searcher(hyperrec, settings, budget, **kwargs) -> AT2Searcher:
    task = resolve_task(hyperrec, pair=0, budget=budget)
    prior = PriorData.from_database(hyperrec, task.train_tasks, task.seed_profile)
    return AT2Searcher(prior=prior, settings=settings, seed=0, budget_epochs=budget,
                       fit_cache=False, **kwargs)


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


def test_four_concurrent_trials_respect_the_budget_and_resume_from_checkpoints(
        hyperrec, fast_settings, tmp_path):
    budget = 24
    searcher = _searcher(hyperrec, fast_settings, budget)
    analysis = _run(make_replay_trainable("hyperrec", "CIFAR100"), searcher, tmp_path,
                    concurrency=4)
    observed = searcher.coordinator.epochs_observed
    assert observed <= budget and observed >= budget - 4
    for trial in analysis.trials:
        epochs = analysis.trial_dataframes[trial.trial_id]["epoch"].tolist() \
            if trial.trial_id in analysis.trial_dataframes else []
        assert epochs == list(range(1, len(epochs) + 1)), f"{trial} restarted: {epochs}"
    engine = searcher.coordinator.engine
    assert len(engine.observations) == observed


def test_failing_trials_do_not_crash_the_run_and_are_not_proposed_again(hyperrec, fast_settings, tmp_path):
    budget = 10
    searcher = _searcher(hyperrec, fast_settings, budget)

    def fails(config):
        return config["optimizer"] == "Adam"

    analysis = _run(make_replay_trainable("hyperrec", "CIFAR100", fail_on=fails), searcher,
                    tmp_path, concurrency=2)
    engine = searcher.coordinator.engine
    failed = {c for c in engine.failed}
    assert failed, "no Adam configuration was tried"
    assert all(engine.candidates[c]["optimizer"] == "Adam" for c in failed)
    tried = [engine.candidates[r.candidate] for r in searcher.coordinator.trace]
    assert all(c["optimizer"] != "Adam" for c in tried)
    assert any(t.status == "ERROR" for t in analysis.trials)


def test_tuner_with_a_user_param_space_and_no_prior(tmp_path):
    def curve_trainable(config):  # defined here so that Ray pickles it by value
        for epoch in range(1, 6):
            value = 1 - math.exp(-epoch * config["rate"]) - (config["opt"]["wd"] - 0.5) ** 2
            tune.report({"score": value if config["opt"]["name"] != "bad" else float("nan")})

    settings = dataclasses.replace(AT2Settings(), n_inducing=16, online_steps=2)
    searcher = AT2Searcher(prior=None, n_candidates=12, max_epochs=5, budget_epochs=15,
                           fit_cache=False, seed=3, settings=settings)
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


def test_missing_metric_mode_and_unsupported_space_are_clear_errors(tmp_path):
    searcher = AT2Searcher(prior=None, fit_cache=False)
    with pytest.raises(ValueError, match="needs a metric and a mode"):
        searcher.suggest("t0")
    with pytest.raises(ValueError, match="mode='maximize' is not supported"):
        AT2Searcher(mode="maximize")
    searcher = AT2Searcher(prior=None, fit_cache=False, metric="m", mode="max")
    with pytest.raises(ValueError, match="sample_from"):
        searcher.set_search_properties("m", "max", {"x": tune.sample_from(lambda spec: 1)})


def _driver(mode: str, storage, data_dir, budget: int, out) -> subprocess.Popen:
    script = Path(__file__).with_name("resume_driver.py")
    return subprocess.Popen([sys.executable, str(script), mode, str(storage), str(data_dir),
                             str(budget), str(out)], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])})


def test_killed_driver_is_restored_without_losing_or_repeating_observations(release_dir, tmp_path):
    budget = 14
    storage = tmp_path / "storage"
    fresh = _driver("fresh", storage, release_dir, budget, tmp_path / "fresh.json")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and fresh.poll() is None:
        if any(storage.glob("resume/searcher-state-*.pkl")):
            break
        time.sleep(0.5)
    time.sleep(3)  # let a few more epochs happen after the first searcher checkpoint
    assert fresh.poll() is None, f"the run ended before it could be killed: {fresh.stderr.read()}"
    os.killpg(fresh.pid, signal.SIGKILL)
    fresh.wait()
    restored = _driver("restore", storage, release_dir, budget, tmp_path / "restored.json")
    _, stderr = restored.communicate(timeout=300)
    assert restored.returncode == 0, stderr.decode()[-3000:]
    result = json.loads((tmp_path / "restored.json").read_text())
    pairs = [tuple(p) for p in result["trace"]]
    assert result["epochs_observed"] == len(pairs) == budget  # as an uninterrupted run
    assert len(set(pairs)) == len(pairs), "an observation was repeated"


def test_no_argument_searcher_defaults_to_the_hyperrec_space_and_database(release_dir, monkeypatch):
    monkeypatch.setenv("AT2_DATA_DIR", str(release_dir))
    searcher = AT2Searcher()
    assert searcher.set_search_properties("val_acc", "max", {})
    space = searcher._resolved_space()
    prior = searcher._resolved_prior(space)
    assert space.name == "hyperrec" and prior.n_tasks == 27 and prior.n_configs == 100
    assert searcher.metric == "val_acc" and searcher.mode == "max"

