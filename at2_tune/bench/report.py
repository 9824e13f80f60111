"""Aggregate bench runs: ``summary.json``, ``summary.md`` and the plots.

A run's curves are, after each epoch spent, the normalized regret ``(best - held) / (best -
worst)`` of the model it holds (the best value observed: what ``get_best_result`` gives a Ray
user) against the configurations' final values, first; and the rank (0 = best of the
database's configurations) and normalized regret of its recommended configuration's final
value (the AT2 paper's metric). Seeds are averaged within a case (a test task with a seed profile)
first; means and standard errors are over cases (:mod:`at2_tune.evaluation`).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from at2_tune import evaluation
from at2_tune.bench import methods as bench_methods
from at2_tune.databases import LearningCurveDatabase


def curves_of(db: LearningCurveDatabase, document: Mapping[str, Any]) -> dict[str, Any]:
    """The evaluation run of a results document: after each of the ``budget`` epochs, the held
    model's ``held_regrets`` and ``held_ranks`` (the best value observed so far; a run that
    trained nothing holds the worst configuration's value) and the recommendation's ``ranks``
    and ``regrets`` (the last carried on if the run spent fewer), and the configurations it
    trained."""
    budget = document["budget"]
    trace = document["trace"][:budget]
    if not trace:
        raise ValueError(f"run {document.get('key')!r} has an empty trace")
    recommended = [row["recommended_config_id"] for row in trace]
    recommended += [recommended[-1]] * (budget - len(recommended))
    task, profile = document["test_task"], document["seed_profile"]
    ranks, final = db.ranks(task, profile), db.final_values(task, profile)
    held = evaluation.held_curve([row["value"] for row in trace if row["value"] is not None],
                                 budget, final.min())
    return {"database": document["database"], "protocol": document["protocol"],
            "case": document["case"], "method": document["method"], "seed": document["seed"],
            "budget": budget,
            "ranks": [int(ranks[c]) for c in recommended],
            "regrets": evaluation.normalized_regret(final, recommended).tolist(),
            "held_regrets": evaluation.held_regrets(final, held).tolist(),
            "held_ranks": evaluation.held_ranks(final, held).tolist(),
            "configs_touched": len({row["config_id"] for row in trace
                                    if row["config_id"] is not None}),
            "epochs_spent": sum(1 for row in trace if row["config_id"] is not None)}


def summarize(db: LearningCurveDatabase, documents: Sequence[Mapping[str, Any]],
              methods: Sequence[str], protocol: str, budget: int,
              concurrency: int) -> dict[str, Any]:
    """The content of ``summary.json``: per method (in ``methods`` order) the rank and
    normalized regret at each checkpoint within the budget with standard errors, the mean
    rank among the methods, runs, cases, seeds, configurations touched, epochs spent and the
    median per-epoch overhead of the run (Tune, searcher and scheduler; AT2's model updates,
    not its offline fit); and AT2's paired difference with the best other method."""
    checkpoints = evaluation.checkpoints_for(budget)
    runs = [curves_of(db, d) for d in documents]
    grouped = evaluation.summarize(runs, checkpoints)
    entries = grouped.get(db.name, {}).get(protocol, {})
    overhead: dict[str, list[float]] = defaultdict(list)
    offline: dict[str, list[float]] = defaultdict(list)
    spent: dict[str, list[int]] = defaultdict(list)
    for document, run in zip(documents, runs):
        timing = document.get("timing") or {}
        if timing.get("overhead_s_per_query") is not None:
            overhead[document["method"]].append(timing["overhead_s_per_query"])
        if timing.get("offline_fit_s") is not None:
            offline[document["method"]].append(timing["offline_fit_s"])
        spent[document["method"]].append(run["epochs_spent"])
    table = {}
    for method in methods:
        if method not in entries:
            continue
        entry = dict(entries[method])
        entry["overhead_s_per_query"] = _median(overhead[method])
        entry["epochs_spent"] = float(np.mean(spent[method]))
        if offline[method]:
            entry["fit_s"] = _median(offline[method])
        table[method] = entry
    return {"database": db.name, "protocol": protocol, "budget": budget,
            "concurrency": concurrency, "checkpoints": list(checkpoints),
            "cases": max((e["cases"] for e in table.values()), default=0), "methods": table}


def _median(values: Sequence[float]) -> float | None:
    return float(np.median(values)) if values else None


def render_markdown(summary: Mapping[str, Any]) -> str:
    """``summary.md``: the rank and regret tables, AT2's paired difference and the overhead."""
    body = evaluation.render_markdown({summary["database"]: {summary["protocol"]:
                                                             summary["methods"]}})
    rows = [f"| {m} | {_seconds(e.get('overhead_s_per_query'))} | {e['epochs_spent']:.1f} |"
            for m, e in summary["methods"].items()]
    return (f"# at2-tune bench: {summary['database']}, {summary['protocol']} protocol, "
            f"budget {summary['budget']} epochs, {summary['concurrency']} concurrent trials\n\n"
            + body + "\nOverhead per epoch (median over runs): the run's wall time less AT2's "
            "offline fit and less the simulated training (epochs x seconds per epoch / "
            "concurrent trials), over its epochs: what Tune, the searcher and the scheduler "
            "add.\n\n"
            "| method | overhead s per epoch | epochs spent |\n| --- | --- | --- |\n"
            + "\n".join(rows) + "\n")


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


# ----------------------------------------------------------------------------- plots
def per_epoch(runs: Iterable[Mapping[str, Any]], metric: str
              ) -> dict[str, dict[str, np.ndarray]]:
    """``{method: {case: curve}}``: ``metric`` (``ranks`` or ``regrets``) per epoch, averaged
    over the seeds of the case."""
    collected: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        collected[run["method"]][run["case"]].append(run[metric])
    return {m: {c: np.mean(np.asarray(v, dtype=float), axis=0) for c, v in by_case.items()}
            for m, by_case in collected.items()}


def average_rank_curves(curves: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per method, its rank among the methods (1 = best, ties averaged) after each epoch,
    averaged over the cases every method has (lower recommendation rank is better)."""
    methods = list(curves)
    common = sorted(set.intersection(*(set(curves[m]) for m in methods))) if methods else []
    if not common:
        return {}
    epochs = len(next(iter(curves[methods[0]].values())))
    table = np.zeros((len(methods), epochs))
    for case in common:
        values = np.stack([curves[m][case] for m in methods])  # (methods, epochs)
        table += np.stack([evaluation.average_ranks(values[:, e]) for e in range(epochs)], axis=1)
    return {m: table[i] / len(common) for i, m in enumerate(methods)}


def write_plots(runs: Sequence[Mapping[str, Any]], methods: Sequence[str], title: str,
                out_dir: Path) -> list[Path]:
    """Write ``held_regret.png`` and ``regret.png`` (mean normalized regret of the held model and
    of the recommendation ± standard error over cases vs epochs spent, log scale),
    ``average_rank.png`` (mean rank among the methods vs epochs spent), ``tasks_rank.png`` and
    ``tasks_regret.png`` (one panel per case: the seed-mean rank and normalized regret of each
    method's recommendation). Returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    regrets, ranks = per_epoch(runs, "regrets"), per_epoch(runs, "ranks")
    held = per_epoch(runs, "held_regrets")
    order = [m for m in methods if m in regrets]
    palette = plt.get_cmap("tab20")
    colors = {m: palette((2 * i) % 20 + (i >= 10)) for i, m in enumerate(order)}
    styles = {m: "-" if m in bench_methods.AT2 else "--" if m in bench_methods.RAY else ":"
              for m in order}
    paths = []
    for curves, name, what in ((held, "held_regret.png", "held model's normalized regret"),
                               (regrets, "regret.png", "recommendation's normalized regret")):
        figure, axis = plt.subplots(figsize=(7, 4.5))
        for method in order:
            table = np.stack(list(curves[method].values()))  # (cases, epochs)
            epochs = np.arange(1, table.shape[1] + 1)
            mean = table.mean(axis=0)
            se = table.std(axis=0, ddof=1) / np.sqrt(len(table)) if len(table) > 1 else 0 * mean
            axis.plot(epochs, mean, styles[method], color=colors[method], label=method,
                      lw=2.2 if method == "at2" else 1.4)
            axis.fill_between(epochs, np.maximum(mean - se, 0), mean + se, color=colors[method],
                              alpha=0.15, lw=0)
        axis.set_yscale("symlog", linthresh=0.01)
        axis.set_ylim(bottom=0)
        axis.set(xlabel="epochs spent", ylabel=f"{what} (log above 0.01)",
                 title=f"{title}: {what}, mean ± s.e. over cases")
        paths.append(_save(figure, axis, out_dir / name))

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for method, curve in average_rank_curves({m: ranks[m] for m in order}).items():
        axis.plot(np.arange(1, len(curve) + 1), curve, styles[method], color=colors[method],
                  label=method, lw=2.2 if method == "at2" else 1.4)
    axis.set_ylim(1, max(len(order), 2))
    axis.set(xlabel="epochs spent", ylabel="average rank among methods (1 = best)",
             title=f"{title}: average rank across methods")
    paths.append(_save(figure, axis, out_dir / "average_rank.png"))

    for metric, curves, label in (("rank", ranks, "rank of recommendation (0 = best)"),
                                  ("regret", regrets, "normalized regret")):
        case_names = sorted({c for m in order for c in curves[m]})
        columns = min(5, len(case_names))
        rows = -(-len(case_names) // columns)
        figure, axes = plt.subplots(rows, columns, figsize=(3.6 * columns + 1.4, 3.0 * rows),
                                    squeeze=False)
        for panel, case in zip(axes.flat, case_names):
            for method in order:
                if case in curves[method]:
                    curve = curves[method][case]
                    panel.step(np.arange(1, len(curve) + 1), curve, styles[method],
                               where="post", color=colors[method], label=method,
                               lw=2.2 if method == "at2" else 1.2)
            panel.set_ylim(bottom=0)
            panel.set(title=case, xlabel="epochs spent", ylabel=label)
            panel.grid(alpha=0.3)
        for panel in list(axes.flat)[len(case_names):]:
            panel.axis("off")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="center right", fontsize="small", frameon=False)
        figure.tight_layout(rect=(0, 0, 1 - 1.4 / (3.6 * columns + 1.4), 1))
        path = out_dir / f"tasks_{metric}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        paths.append(path)
    return paths


def _save(figure, axis, path: Path) -> Path:
    import matplotlib.pyplot as plt

    axis.grid(alpha=0.3)
    axis.legend(fontsize="small", ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
