"""The checkpoint that holds a trial's model at one epoch, read from Tune's own bookkeeping.

AT2 recommends the best value observed: a trial *at an epoch*. The model of that epoch exists
only if the trial saved a checkpoint then and Ray kept it. With ``CheckpointConfig(num_to_keep=N)``
alone Ray keeps the latest N checkpoints, so the best epoch's is deleted once N later ones exist;
``checkpoint_score_attribute=<metric>, checkpoint_score_order=<mode>`` keeps the N best (and the
latest) instead. :func:`checkpoint_at` finds the epoch's checkpoint among those Ray still
tracks; :func:`missing_checkpoint_message` says why there is none and what keeps it.
"""

from __future__ import annotations

from typing import Any, Callable

from ray.tune.experiment import Trial
from ray.tune.trainable import FunctionTrainable


def _tracked(trial: Trial) -> list[Any]:
    """The ``_TrainingResult`` of every checkpoint Ray still keeps for ``trial`` (the latest
    one included), each once."""
    manager = trial.run_metadata.checkpoint_manager
    if manager is None:
        return []
    results = list(manager.best_checkpoint_results)
    latest = manager.latest_checkpoint_result
    if latest is not None and all(latest is not r for r in results):
        results.append(latest)
    return [r for r in results if r.checkpoint is not None]


def _epoch(metrics: dict, epoch_of: Callable[[dict], int]) -> int | None:
    try:
        return epoch_of(metrics)
    except Exception:  # noqa: BLE001 - a checkpoint saved without the epoch field
        return None


def kept_epochs(trial: Trial, epoch_of: Callable[[dict], int]) -> list[int]:
    """The epochs whose checkpoints Ray keeps for ``trial``, ascending."""
    epochs = (_epoch(r.metrics, epoch_of) for r in _tracked(trial))
    return sorted(e for e in epochs if e is not None)


def checkpoint_at(trial: Trial, epoch: int, epoch_of: Callable[[dict], int]) -> str | None:
    """Where the checkpoint ``trial`` saved with the result of ``epoch`` lies (a local path, or
    a URI such as ``s3://bucket/...`` on remote storage); ``None`` when Ray keeps none for that
    epoch. ``epoch_of`` reads the epoch from a result (the searcher's ``time_attr``)."""
    for result in _tracked(trial):
        if _epoch(result.metrics, epoch_of) == epoch:
            return location(result.checkpoint)
    return None


def location(checkpoint) -> str:
    """Where a Ray ``Checkpoint`` lies: its local path, or a URI (``s3://bucket/...``) on
    remote storage."""
    scheme = getattr(checkpoint.filesystem, "type_name", "local")
    return checkpoint.path if scheme == "local" else f"{scheme}://{checkpoint.path}"


def _saves_only_when_asked(trial: Trial) -> bool:
    """A class Trainable that Tune does not ask to save every epoch (``checkpoint_frequency``
    other than 1); a function trainable saves what it reports."""
    try:
        trainable = trial.get_trainable_cls()
    except Exception:  # noqa: BLE001 - a trainable not registered in this process
        return False
    return (isinstance(trainable, type) and not issubclass(trainable, FunctionTrainable)
            and trial.checkpoint_freq != 1)


def missing_checkpoint_message(trial: Trial, epoch: int, epoch_of: Callable[[dict], int],
                               metric: str, mode: str) -> str:
    """Why the model of ``trial`` at ``epoch`` has no checkpoint, and the fix."""
    kept = kept_epochs(trial, epoch_of)
    head = f"AT2's recommended model, trial {trial.trial_id} at epoch {epoch}, has no checkpoint"
    if _saves_only_when_asked(trial):
        saved = f"it saved epochs {kept} only" if kept else "it saved none"
        return (f"{head}: a class Trainable saves a checkpoint only when Tune asks (when it "
                f"pauses or ends the trial), and {saved}. To keep the best model, pass "
                f"tune.RunConfig(checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=1, "
                f"num_to_keep=2, "
                f"checkpoint_score_attribute={metric!r}, checkpoint_score_order={mode!r}))")
    if not kept:
        return (f"{head}: the trainable saved none (report it with tune.report(metrics, "
                "checkpoint=tune.Checkpoint.from_directory(...)) at every epoch; AT2 needs "
                "checkpoints to pause and resume trials too)")
    config = trial.run_metadata.checkpoint_manager.checkpoint_config
    keep = config.num_to_keep
    rule = ("the latest ones" if config.checkpoint_score_attribute is None else
            f"the best by {config.checkpoint_score_attribute!r}, and the latest")
    return (f"{head}: Ray keeps the checkpoints of epochs {kept} for it "
            f"(CheckpointConfig(num_to_keep={keep}) keeps {rule}). To keep the best "
            f"model, pass tune.RunConfig(checkpoint_config=tune.CheckpointConfig(num_to_keep="
            f"{keep or 2}, checkpoint_score_attribute={metric!r}, checkpoint_score_order="
            f"{mode!r}))")
