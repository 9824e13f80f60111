"""``at2-tune compare``: live ``at2-tune tune`` runs of one dataset, side by side.

Each run folder holds the ``summary.json`` of one method with one seed. The comparison is over
what every method shares: the epochs it spent, in the order they were counted (``trace``), the
recommended trial's test top-1 (measured by the trainer on the test split, which no method sees
while it decides), the time to the first trial and the wall time. Per method, the mean and the
standard error over its runs (seeds).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from at2_tune.errors import AT2Error
from at2_tune.evaluation import mean_se_cell, standard_error
from at2_tune.live.options import METRIC, OPTIONS_FILE
from at2_tune.live.summary import SUMMARY_FILE
from at2_tune.paths import atomic_write

FRACTIONS = (0.25, 0.5, 1.0)
"""Points of the budget at which the best validation value so far is compared."""
TABLE_FILE = "compare.csv"
RUNS_FILE = "compare-runs.csv"
PLOT_FILE = "compare.png"
SAME_ACROSS_RUNS = ("budget_epochs", "concurrency")


@dataclass(frozen=True)
class Run:
    """One ``at2-tune tune`` run, as the comparison reads it."""

    folder: Path
    method: str
    seed: int
    budget_epochs: int
    best_so_far: np.ndarray
    """``(epochs_spent,)`` the best validation value after each counted epoch."""
    test_top1: float | None
    first_trial_s: float | None
    wall_s: float

    def best_at(self, fraction: float) -> float | None:
        """The best validation value within the first ``ceil(fraction * budget)`` epochs."""
        epochs = math.ceil(fraction * self.budget_epochs)
        if self.best_so_far.size == 0:
            return None
        return float(self.best_so_far[min(epochs, self.best_so_far.size) - 1])


def read_run(folder: str | Path) -> tuple[Run, dict[str, Any]]:
    """The run of ``folder`` and its summary; a clear error for a folder without one."""
    folder = Path(folder)
    path = folder / SUMMARY_FILE
    if not path.is_file():
        raise AT2Error(f"{folder} holds no {SUMMARY_FILE}; pass the --out folder of a finished "
                       "`at2-tune tune` run")
    summary = json.loads(path.read_text())
    if summary.get("interrupted"):
        raise AT2Error(f"{folder} was interrupted (Ctrl-C) after {summary.get('epochs_spent')} "
                       f"of {summary.get('budget_epochs')} epochs; finish it with the same "
                       "`at2-tune tune` command and --resume, or leave it out")
    if "trace" not in summary:
        raise AT2Error(f"{path} has no per-epoch trace (written by an at2-tune before "
                       "`--method`); run that tuning again to compare it")
    options_path = folder / OPTIONS_FILE
    seed = json.loads(options_path.read_text()).get("seed", 0) if options_path.is_file() else 0
    values = np.array([row[METRIC] for row in summary["trace"]], dtype=float)
    first = next((p["since_start_s"] for p in summary.get("phases", ())
                  if p["phase"] == "first trial started"), None)
    run = Run(folder, summary.get("method", "at2"), int(seed), int(summary["budget_epochs"]),
              np.maximum.accumulate(values) if values.size else values,
              summary.get("test_top1"), first, float(summary["wall_s"]))
    return run, summary


def read_runs(folders: Sequence[str | Path]) -> list[Run]:
    """The runs of ``folders``, checked to be comparable: one dataset, one budget and
    concurrency, and no method with the same seed twice."""
    if not folders:
        raise AT2Error("at2-tune compare needs the --out folders of `at2-tune tune` runs")
    read = [read_run(folder) for folder in folders]
    first_run, first = read[0]
    for run, summary in read[1:]:
        if summary.get("dataset") != first.get("dataset"):
            raise AT2Error(f"{run.folder} tuned {summary.get('dataset')}, but {first_run.folder} "
                           f"tuned {first.get('dataset')}; compare runs of one dataset")
        for key in SAME_ACROSS_RUNS:
            if summary.get(key) != first.get(key):
                raise AT2Error(f"{run.folder} has {key}={summary.get(key)}, but "
                               f"{first_run.folder} has {key}={first.get(key)}; compare runs "
                               f"with the same {key}")
    seen: dict[tuple[str, int], Path] = {}
    for run, _ in read:
        if (run.method, run.seed) in seen:
            raise AT2Error(f"{run.folder} and {seen[(run.method, run.seed)]} are both "
                           f"{run.method} with seed {run.seed}; pass each run once (or tune "
                           "again with another --seed)")
        seen[(run.method, run.seed)] = run.folder
    return [run for run, _ in read]


def mean_se(values: Sequence[float | None]) -> tuple[float | None, float | None, int]:
    """Mean, standard error (``None`` below two values) and count of the values given."""
    present = np.array([v for v in values if v is not None], dtype=float)
    if present.size == 0:
        return None, None, 0
    return float(present.mean()), standard_error(present), int(present.size)


def columns() -> list[str]:
    return [*(f"best_val_at_{round(100 * f)}pct" for f in FRACTIONS), "test_top1",
            "first_trial_s", "wall_s"]


def run_values(run: Run) -> list[float | None]:
    return [*(run.best_at(f) for f in FRACTIONS), run.test_top1, run.first_trial_s, run.wall_s]


def table(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """One row per method (in the order first seen): each column's mean, s.e. and count."""
    rows = []
    for method in dict.fromkeys(run.method for run in runs):
        own = [run for run in runs if run.method == method]
        row: dict[str, Any] = {"method": method, "runs": len(own),
                               "seeds": sorted(run.seed for run in own)}
        for index, column in enumerate(columns()):
            mean, se, _ = mean_se([run_values(run)[index] for run in own])
            row[column], row[f"{column}_se"] = mean, se
        rows.append(row)
    return rows


def render(rows: Sequence[dict[str, Any]], budget: int) -> str:
    """The table as Markdown (mean ± s.e. over each method's runs)."""
    heads = [f"best val top-1 @{math.ceil(f * budget)} ep" for f in FRACTIONS]
    header = ["method", "runs", *heads, "test top-1 (recommended)", "first trial (s)",
              "wall (s)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["method"], str(row["runs"])]
        for index, column in enumerate(columns()):
            cells.append(mean_se_cell(row[column], row[f"{column}_se"], 3 if index < 4 else 1))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(path: Path, rows: Sequence[dict[str, Any]], fields: Sequence[str]) -> None:
    def write(handle) -> None:
        import io

        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
        handle.write(text.getvalue().encode())

    atomic_write(path, write)


def plot(runs: Sequence[Run], path: Path) -> Path | None:
    """Best validation top-1 so far against the epochs spent, one line per method and seed;
    ``None`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return None
    figure, axes = plt.subplots(figsize=(7.5, 4.8))
    colors = plt.get_cmap("tab10")
    styles = ("-", "--", ":", "-.", (0, (6, 1, 1, 1, 1, 1)), (0, (1, 3)))
    for index, method in enumerate(dict.fromkeys(run.method for run in runs)):
        own = sorted((run for run in runs if run.method == method), key=lambda r: r.seed)
        for number, run in enumerate(own):
            epochs = np.arange(1, run.best_so_far.size + 1)
            axes.step(epochs, run.best_so_far, where="post", color=colors(index % 10),
                      linestyle=styles[number % len(styles)], linewidth=1.6,
                      label=f"{method} seed {run.seed}")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("epochs spent")
    axes.set_ylabel(f"best {METRIC} so far")
    axes.set_title(f"{len(runs)} runs, budget {runs[0].budget_epochs} epochs")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def compare(folders: Sequence[str | Path], out: str | Path) -> dict[str, Any]:
    """Read the runs, write ``compare.csv`` (per method), ``compare-runs.csv`` (per run) and
    ``compare.png`` to ``out``; returns ``{"rows", "runs", "markdown", "plot"}``."""
    runs = read_runs(folders)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = table(runs)
    fields = ["method", "runs", *[f"{c}{s}" for c in columns() for s in ("", "_se")]]
    write_csv(out / TABLE_FILE, rows, fields)
    per_run = [{"method": run.method, "seed": run.seed, "folder": str(run.folder),
                **dict(zip(columns(), run_values(run)))} for run in runs]
    write_csv(out / RUNS_FILE, per_run, ["method", "seed", "folder", *columns()])
    return {"rows": rows, "runs": per_run, "markdown": render(rows, runs[0].budget_epochs),
            "plot": plot(runs, out / PLOT_FILE)}
