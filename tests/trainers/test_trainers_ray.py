"""A short real Ray Tune run: PAUSE after epoch 1, resume, continue at epoch 2 (not restart)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest
import ray
from ray import tune
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from tests.trainers.helpers import ConfigFactory, ended_pid
from trainers import staging
from trainers.data import DataSpec
from trainers.ray_trainable import make_trainable

pytestmark = pytest.mark.integration  # local Ray and Tune


class PauseAfterFirstEpoch(FIFOScheduler):
    """PAUSE every trial once, on its epoch-1 result; FIFO resumes paused trials later."""

    def __init__(self) -> None:
        super().__init__()
        self.paused: set[str] = set()

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        if result["epoch"] == 1 and trial.trial_id not in self.paused:
            self.paused.add(trial.trial_id)
            return TrialScheduler.PAUSE
        return TrialScheduler.CONTINUE


class ResultLog(tune.Callback):
    """Collects (trial id, epoch, training_iteration) of every result, in the driver."""

    def __init__(self) -> None:
        self.results: list[tuple[str, int, int]] = []

    def on_trial_result(self, iteration: int, trials: Any, trial: Any,
                        result: dict[str, Any], **info: Any) -> None:
        self.results.append((trial.trial_id, result["epoch"], result["training_iteration"]))


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    yield
    ray.shutdown()


def test_paused_trials_resume_at_epoch_2(local_ray: None, tmp_path: Path,
                                         make_config: ConfigFactory) -> None:
    data = DataSpec("synthetic", synthetic_images=64, synthetic_classes=3, image_size=16)
    trainable = tune.with_resources(
        make_trainable(data, epochs=2, device="cpu", seed=0), {"cpu": 1})
    # Ray-style param space: every branch's keys present; the trainable keeps the active ones
    param_space: dict[str, Any] = {**make_config("Adam", "CyclicLR"),
                                   **make_config("Momentum", "StepLR")}
    param_space.update(optimizer=tune.grid_search(["Adam", "Momentum"]), scheduler="CyclicLR")
    scheduler = PauseAfterFirstEpoch()
    log = ResultLog()
    # the trials' temporary folder (the suite's, tests/conftest.py); a trial killed earlier
    # on this host left its staging folder there, which the first trial removes
    worker_tmp = Path(os.environ.get("TMPDIR") or tempfile.gettempdir())
    orphan = worker_tmp / f"at2-trial-{staging._host()}-{ended_pid()}-k1"
    (orphan / "at2_run").mkdir(parents=True)
    staged_before = set(worker_tmp.glob("at2-trial-*")) - {orphan}  # other runs' trials
    tuner = tune.Tuner(
        trainable, param_space=param_space,
        tune_config=tune.TuneConfig(scheduler=scheduler, reuse_actors=True),
        run_config=tune.RunConfig(name="pause", storage_path=str(tmp_path), verbose=0,
                                  callbacks=[log]),
    )
    results = tuner.fit()
    assert results.num_errors == 0
    assert len(scheduler.paused) == 2
    for result in results:
        trial_id = result.metrics["trial_id"]
        # epoch 1, PAUSE, then the resumed trial's first result is epoch 2 (not a restart)
        assert [(e, i) for t, e, i in log.results if t == trial_id] == [(1, 1), (2, 2)]
        assert result.metrics["epoch"] == result.metrics["training_iteration"] == 2
        with result.checkpoint.as_directory() as ckpt:  # the history travels in checkpoints
            run = json.loads((Path(ckpt) / "run.json").read_text())
            epochs = [json.loads(line)["epoch"]
                      for line in (Path(ckpt) / "metrics.jsonl").read_text().splitlines()]
        assert run["resumed_at"] == [1]  # epoch 2 continued from the epoch-1 checkpoint
        assert epochs == [1, 2]
        assert run["config"]["optimizer"] == result.config["optimizer"]
        assert "step_size" not in run["config"]  # the inactive branch was dropped
        # the trainer's staging copy (a whole checkpoint) stays neither in the trial folder,
        # where Ray would copy it to storage next to the checkpoints, nor in a temporary folder
        trial_folder = Path(result.path)
        assert not (trial_folder / "at2_run").exists()
        assert sorted(p.name for p in trial_folder.glob("checkpoint_*")) == \
            ["checkpoint_000000", "checkpoint_000001"]
    assert set(worker_tmp.glob("at2-trial-*")) <= staged_before
    assert not orphan.exists()
