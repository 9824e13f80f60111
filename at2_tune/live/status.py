"""One status line per AT2 decision (the scheduler's ``on_decision`` hook)."""

from __future__ import annotations

from dataclasses import dataclass

from at2_tune.core.coordinator import Coordinator, Decision, TrialStatus


def status_line(coordinator: Coordinator, trial_id: str, epoch: int, value: float,
                decision: Decision, metric: str = "val_top1", label: str = "AT2") -> str:
    """``AT2 | trial T epoch E: metric=V -> pause | running 2, paused 3, done 1 | 12/40
    epochs | recommended: trial R (metric V')``."""
    counts = {s: len(coordinator.trials_with(s)) for s in TrialStatus}
    running = counts[TrialStatus.RUNNING] + counts[TrialStatus.PENDING]
    budget = coordinator.budget_epochs
    spent = f"{coordinator.epochs_spent}/{budget}" if budget else f"{coordinator.epochs_spent}"
    line = (f"{label} | trial {trial_id} epoch {epoch}: {metric}={value:.4f} -> "
            f"{decision.name.lower()} | running {running}, paused {counts[TrialStatus.PAUSED]}, "
            f"done {counts[TrialStatus.DONE]} | {spent} epochs")
    held = coordinator.recommendation()
    if held is not None and held.trial_id is not None:
        shown = "" if held.value is None else f" ({metric} {held.value:.4f})"
        line += f" | recommended: trial {held.trial_id}{shown}"
    return line


@dataclass(frozen=True)
class StatusPrinter:
    """Prints :func:`status_line` after each decision (picklable: Tune saves the scheduler)."""

    metric: str = "val_top1"
    label: str = "AT2"
    """The method that decides, first on the line."""

    def __call__(self, coordinator: Coordinator, trial_id: str, epoch: int, value: float,
                 decision: Decision) -> None:
        print(status_line(coordinator, trial_id, epoch, value, decision, self.metric,
                          self.label), flush=True)
