"""``OUT/summary.json`` and ``OUT/curves.png`` of a live tuning run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from at2_tune.core.coordinator import Coordinator
from at2_tune.paths import atomic_write

SUMMARY_FILE = "summary.json"
PLOT_FILE = "curves.png"


def trial_entries(coordinator: Coordinator, metrics: dict[str, list[dict[str, Any]]],
                  metric: str) -> list[dict[str, Any]]:
    """One entry per trial: id, config, epochs AT2 counted, best metric, status, node."""
    engine = coordinator.engine
    values: dict[str, list[float]] = {}
    for row in coordinator.trace:
        values.setdefault(row.trial_id, []).append(row.value)
    entries = []
    for trial_id, record in coordinator.trials.items():
        rows = metrics.get(trial_id, [])
        nodes = [r["node_id"] for r in rows if r.get("node_id")]
        failed = record.candidate in engine.failed
        entries.append({
            "trial_id": trial_id, "candidate": record.candidate,
            "config": dict(engine.candidates[record.candidate]),
            "epochs": record.last_epoch,
            f"best_{metric}": max(values[trial_id]) if trial_id in values else None,
            "status": "failed" if failed else record.status.value,
            "node_id": nodes[-1] if nodes else None, "node_ids": sorted(set(nodes)),
        })
    return entries


def build_summary(coordinator: Coordinator, metrics: dict[str, list[dict[str, Any]]],
                  metric: str, wall_s: float, extra: dict[str, Any]) -> dict[str, Any]:
    """The summary document of a coordinated method (AT2 or a transfer baseline; see the
    README's ``at2-tune tune`` section)."""
    trials = trial_entries(coordinator, metrics, metric)
    held = coordinator.recommendation()
    candidate = None if held is None else held.candidate
    trial_id = None if held is None else held.trial_id
    trace = [{"trial_id": row.trial_id, "epoch": row.epoch, metric: row.value}
             for row in coordinator.trace]
    return {
        "recommended_config": None if candidate is None
        else dict(coordinator.engine.candidates[candidate]),
        **recommended_numbers(trace, trial_id, metrics, metric),
        "epochs_spent": coordinator.epochs_spent, "budget_epochs": coordinator.budget_epochs,
        "trials": trials, "trace": trace, "wall_s": round(wall_s, 3), **extra,
    }


def recommended_numbers(trace: list[dict[str, Any]], trial_id: str | None,
                        metrics: dict[str, list[dict[str, Any]]],
                        metric: str) -> dict[str, Any]:
    """The recommended trial, its best counted ``metric``, the epoch of it (the first, on
    ties) and the test top-1 the trainer measured at that epoch (on the test split, which no
    method sees while it decides)."""
    own = [row for row in trace if row["trial_id"] == trial_id]
    best = max(own, key=lambda row: row[metric]) if own else None
    epoch = None if best is None else best["epoch"]
    test = None
    for row in metrics.get(trial_id, []):
        if row.get("training_iteration") == epoch:
            test = row.get("test_top1")
    return {"recommended_trial": trial_id, f"best_{metric}": None if best is None
            else best[metric], "recommended_epoch": epoch, "test_top1": test}


def build_ray_summary(results, stopper, metrics: dict[str, list[dict[str, Any]]], metric: str,
                      space, budget_epochs: int, wall_s: float,
                      extra: dict[str, Any]) -> dict[str, Any]:
    """The summary document of a Ray Tune method: the epochs ``stopper`` (an
    ``EpochBudgetStopper``) counted, in order; the recommendation is the trial with the best
    counted value (ties: the earliest), as Ray's ``ResultGrid.get_best_result`` would pick
    within the budget."""
    trace = [{"trial_id": record.trial_id, "epoch": int(record.result["training_iteration"]),
              metric: float(record.result[metric])} for record in stopper.records]
    recommended = max(trace, key=lambda row: row[metric])["trial_id"] if trace else None
    by_trial = {}
    for result in results:
        trial_id = (result.metrics or {}).get("trial_id")
        if trial_id is not None:
            by_trial[trial_id] = result
    trials = []
    for trial_id in dict.fromkeys(row["trial_id"] for row in trace):
        counted = [row[metric] for row in trace if row["trial_id"] == trial_id]
        nodes = [r["node_id"] for r in metrics.get(trial_id, []) if r.get("node_id")]
        result = by_trial.get(trial_id)
        trials.append({
            "trial_id": trial_id,
            "config": None if result is None else space.from_ray_config(result.config),
            "epochs": len(counted), f"best_{metric}": max(counted),
            "status": "failed" if result is not None and result.error is not None else "done",
            "node_id": nodes[-1] if nodes else None, "node_ids": sorted(set(nodes)),
        })
    config = next((t["config"] for t in trials if t["trial_id"] == recommended), None)
    return {"recommended_config": config,
            **recommended_numbers(trace, recommended, metrics, metric),
            "epochs_spent": len(trace), "budget_epochs": budget_epochs,
            "epochs_after_budget": stopper.ignored, "trials": trials, "trace": trace,
            "wall_s": round(wall_s, 3), **extra}


def ray_checkpoint(results, trial_id: str | None, epoch: int | None) -> str | None:
    """Where the checkpoint of ``trial_id`` saved at ``epoch`` that Ray keeps in ``results`` (a
    ``ResultGrid``) lies, as ``AT2Searcher.recommendation()["checkpoint"]`` names it (a URI on
    remote storage); ``None`` when Ray keeps none for that epoch."""
    from at2_tune.tune.held_checkpoint import location

    for result in results:
        if (result.metrics or {}).get("trial_id") != trial_id:
            continue
        for checkpoint, checkpoint_metrics in result.best_checkpoints or []:
            if checkpoint_metrics.get("training_iteration") == epoch:
                return location(checkpoint)
    return None


def write_summary(out: Path, summary: dict[str, Any]) -> Path:
    path = Path(out) / SUMMARY_FILE
    text = json.dumps(summary, indent=2, sort_keys=False)
    atomic_write(path, lambda handle: handle.write(text.encode()))
    return path


def plot_curves(out: Path, summary: dict[str, Any], metrics: dict[str, list[dict[str, Any]]],
                metric: str) -> Path | None:
    """Every trial's learning curve, the recommended trial highlighted; ``None`` without
    matplotlib (the ``bench`` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, axes = plt.subplots(figsize=(7, 4.5))
    recommended = summary["recommended_trial"]
    for trial in summary["trials"]:
        rows = [r for r in metrics.get(trial["trial_id"], []) if r.get(metric) is not None]
        if not rows or trial["trial_id"] == recommended:
            continue
        axes.plot([r["training_iteration"] for r in rows], [r[metric] for r in rows],
                  color="0.6", linewidth=1, marker=".", markersize=3)
    rows = [r for r in metrics.get(recommended, []) if r.get(metric) is not None]
    if rows:
        axes.plot([r["training_iteration"] for r in rows], [r[metric] for r in rows],
                  color="tab:red", linewidth=2.5, marker="o", markersize=4,
                  label=f"recommended: trial {recommended}")
        axes.legend(loc="lower right")
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("epoch")
    axes.set_ylabel(metric)
    axes.set_title(f"{len(summary['trials'])} trials, {summary['epochs_spent']} of "
                   f"{summary['budget_epochs']} epochs")
    axes.grid(alpha=0.3)
    path = Path(out) / PLOT_FILE
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
