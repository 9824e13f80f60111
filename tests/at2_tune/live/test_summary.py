"""The recommended model's checkpoint, read from a ResultGrid as from Tune's trials (no Ray run)."""

from __future__ import annotations

from types import SimpleNamespace

from ray import tune

from at2_tune.live.summary import ray_checkpoint
from at2_tune.tune.held_checkpoint import location


def _result(trial_id: str, epochs: list[int], folder) -> SimpleNamespace:
    """What ``ray_checkpoint`` reads of a ``ray.tune.Result``: its metrics and the checkpoints
    Ray keeps with each checkpoint's metrics."""
    kept = []
    for epoch in epochs:
        directory = folder / f"{trial_id}-{epoch}"
        directory.mkdir()
        kept.append((tune.Checkpoint.from_directory(str(directory)),
                     {"training_iteration": epoch}))
    return SimpleNamespace(metrics={"trial_id": trial_id}, best_checkpoints=kept)


def test_the_recommended_checkpoint_is_the_kept_one_of_that_trial_and_epoch(tmp_path) -> None:
    results = [_result("a", [2, 5], tmp_path), _result("b", [3, 4], tmp_path)]
    assert ray_checkpoint(results, "b", 3) == str(tmp_path / "b-3")
    assert ray_checkpoint(results, "a", 3) is None  # Ray keeps no checkpoint of a at 3
    assert ray_checkpoint(results, "c", 2) is None and ray_checkpoint(results, None, 2) is None


def test_a_checkpoint_on_remote_storage_is_named_by_its_uri() -> None:
    remote = SimpleNamespace(filesystem=SimpleNamespace(type_name="s3"),
                             path="bucket/run/trial/checkpoint_000002")
    assert location(remote) == "s3://bucket/run/trial/checkpoint_000002"
    local = SimpleNamespace(filesystem=SimpleNamespace(type_name="local"), path="/runs/c")
    assert location(local) == "/runs/c"
