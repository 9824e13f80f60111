"""Every trial's per-epoch results, kept by the driver in ``OUT/trials/<trial_id>/metrics.jsonl``.

The driver writes them (a Tune callback), so they are complete on a multi-node cluster too,
whatever the workers' disks hold. A line is appended per result; reading keeps the first
result of each epoch (after ``Tuner.restore`` a trial may train an epoch again from an older
checkpoint; AT2 counted the first) and skips a line cut short by a crash.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ray import tune

METRICS_FILE = "metrics.jsonl"
SKIPPED = ("config", "checkpoint_dir_name", "done", "should_checkpoint", "experiment_tag")


def result_row(result: dict[str, Any]) -> dict[str, Any]:
    """The plain values of a Tune result (numbers, strings, booleans; non-finite -> null)."""
    row: dict[str, Any] = {}
    for key, value in result.items():
        if key in SKIPPED or not isinstance(value, (int, float, str, bool)) and value is not None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        row[key] = value
    return row


class TrialMetricsLog(tune.Callback):
    """Appends each result to ``folder/<trial_id>/metrics.jsonl`` (in the driver)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = str(folder)

    def on_trial_result(self, iteration: int, trials: list, trial: Any,
                        result: dict[str, Any], **info: Any) -> None:
        path = Path(self.folder) / str(trial.trial_id) / METRICS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            handle.write(json.dumps(result_row(result), sort_keys=True) + "\n")


def read_trial_metrics(path: Path, epoch_key: str = "training_iteration") -> list[dict[str, Any]]:
    """The rows of one ``metrics.jsonl``, one per epoch (the first of repeats), by epoch."""
    rows: dict[int, dict[str, Any]] = {}
    for line in Path(path).read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # the line a crash cut short
        epoch = row.get(epoch_key)
        if isinstance(epoch, int) and epoch not in rows:
            rows[epoch] = row
    return [rows[e] for e in sorted(rows)]


def read_all(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """``{trial_id: rows}`` of every trial folder under ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {p.parent.name: read_trial_metrics(p) for p in sorted(folder.glob(f"*/{METRICS_FILE}"))}
