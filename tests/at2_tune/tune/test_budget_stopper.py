"""The epoch-budget stopper: counts each reported epoch once and ends the experiment at the
budget, also when a scheduler pauses and resumes trials (real Ray Tune)."""

import json
import tempfile
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402
from ray.tune.result import RESULT_DUPLICATE  # noqa: E402
from ray.tune.schedulers import HyperBandScheduler  # noqa: E402

from at2_tune.tune.budget import EpochBudgetStopper  # noqa: E402


def test_counts_results_not_duplicates_and_stops_at_the_budget():
    stopper = EpochBudgetStopper(3, keep=("epoch",))
    assert stopper("a", {"epoch": 1, "x": 0}) is False
    assert stopper("a", {"epoch": 1, RESULT_DUPLICATE: True}) is False  # not counted
    assert stopper("b", {"epoch": 1}) is False
    assert not stopper.stop_all()
    assert stopper("a", {"epoch": 2}) is True            # the third epoch: budget spent
    assert stopper.stop_all()
    assert stopper("b", {"epoch": 2}) is True            # after the budget: stopped, ignored
    assert [(r.trial_id, r.result) for r in stopper.records] == [
        ("a", {"epoch": 1}), ("b", {"epoch": 1}), ("a", {"epoch": 2})]
    assert stopper.ignored == 1


@pytest.mark.parametrize("budget", [0, -1, 2.5, True])
def test_a_budget_below_one_epoch_is_refused(budget):
    with pytest.raises(ValueError, match="at least 1 epoch"):
        EpochBudgetStopper(budget)


def _make_trainable():
    """A trainable reporting ``score`` per epoch that resumes from its checkpoint (epoch)
    after a pause; made here so that Ray ships it by value (workers cannot import tests)."""

    def trainable(config):
        start, resumed = 0, False
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as directory:
                start = json.loads((Path(directory) / "epoch.json").read_text())["epoch"]
                resumed = True
        for epoch in range(start + 1, 10):
            with tempfile.TemporaryDirectory() as directory:
                (Path(directory) / "epoch.json").write_text(json.dumps({"epoch": epoch}))
                tune.report({"score": config["x"] * epoch, "epoch": epoch, "resumed": resumed},
                            checkpoint=tune.Checkpoint.from_directory(directory))

    return trainable


@pytest.mark.integration  # local Ray, Tune with HyperBand
def test_the_budget_holds_exactly_with_a_pausing_scheduler(tmp_path):
    # HyperBand(max_t=9, eta=3) over 12 trials: 3 trials to 9 epochs (27 epochs), 5 paused
    # at 3 epochs (42), 4 paused at 1 epoch (46); Ray's HyperBand starts every pending trial
    # before it resumes a paused one, so epochs 47-50 are resumed trials.
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        stopper = EpochBudgetStopper(50, keep=("epoch", "resumed"))
        tune.run(_make_trainable(), config={"x": tune.uniform(0, 1)}, num_samples=12, stop=stopper,
                 scheduler=HyperBandScheduler(time_attr="epoch", max_t=9, reduction_factor=3),
                 metric="score", mode="max", storage_path=str(tmp_path), verbose=0,
                 search_alg=tune.search.BasicVariantGenerator(random_state=0))
    finally:
        ray.shutdown()
    assert stopper.spent == 50
    per_trial: dict[str, list[int]] = {}
    for record in stopper.records:
        per_trial.setdefault(record.trial_id, []).append(record.result["epoch"])
    for epochs in per_trial.values():  # each epoch once, in order, across pauses
        assert epochs == list(range(1, len(epochs) + 1))
    assert any(r.result["resumed"] for r in stopper.records), "no trial was paused and resumed"
    assert sum(len(e) for e in per_trial.values()) == 50
