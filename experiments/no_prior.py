"""Without a prior: AT2's ``no_prior`` policy against random search and successive halving.

    python -m experiments.no_prior --database hyperrec --budget 100 --concurrency 1 --seeds 0,1
    python -m experiments.no_prior --database lcbench --budget 50,100,200 --out results/no_prior

Every task of the database is the new task (seed profile 0) and nothing else is known: AT2
runs with an empty prior (policy ``no_prior``: freeze-thaw on the new task's own GP,
``at2_tune.core.models.NewTaskGPModel``) on the coordinator's K-slot simulator, one run per seed
of ``--seeds``. Beside it, on the same database configurations and slots, the schedules a Ray
user gets without a model, each from a random order of the configurations drawn from
``--baseline-seeds`` seeds:

* ``random``: each configuration trained to its last epoch in turn (random search with a FIFO
  scheduler; with one slot, Ray's ASHA does the same, promoting a lone trial at every rung);
* ``sh27``: successive halving of 27 configurations, rungs at 1, 3, 9, 27 epochs, stopping
  once the last survivor reaches its rung (``at2_tune.bench.baselines.successive_halving``);
* ``sh27-survivor`` and ``sh9-survivor``: the same from 27 or 9 configurations, the survivor
  then trained until the budget ends or it reaches its last epoch;
* ``dyhpo`` (with ``--dyhpo``): Syne Tune's DyHPO, a model-based freeze-thaw tuner, from runs
  made in its own environment with as many workers as slots (``experiments.dyhpo_syne_tune``).

The score is the held model's normalized regret after the budget (the best value observed,
``at2_tune.evaluation.held_regrets``), a run per budget. Writes
``OUT/no_prior_{database}_{budget}_{K}.json`` (per task, every seed's regret and AT2's
configurations touched and seconds) and prints the table: mean ± standard error over tasks
(seeds averaged within a task first) and AT2's paired difference with each schedule.

With several slots the outcome depends on when results arrive. ``--equal-epochs`` gives every
epoch the same simulated time (Syne Tune's simulator, Ray with ``--seconds-per-epoch``; pair
DyHPO with it) and ``--start-cost C`` makes each start or resume of a trial cost ``C`` (Ray
at 0.2 s an epoch: about 3); the file name then ends in ``_startC`` / ``_equal``
(``at2_tune.core.simulation.Timing``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from at2_tune import evaluation
from at2_tune.bench import baselines
from at2_tune.core.schedules import Portfolio
from at2_tune.core.simulation import Timing
from at2_tune.errors import AT2Error
from at2_tune.simulator import ReplayTask, run_replay

SCHEDULES = ("random", "sh27", "sh27-survivor", "sh9-survivor")


def held_regret(final: np.ndarray, values: list[float], budget: int) -> float:
    """The held model's normalized regret after ``budget`` epochs of observed ``values``."""
    held = evaluation.held_curve(values, budget, final.min())
    return float(evaluation.held_regrets(final, held)[-1])


def schedule_run(name: str, db, task: ReplayTask, order: np.ndarray,
                 concurrency: int, timing: Timing = Timing()) -> baselines.BaselineRun:
    """Schedule ``name`` of :data:`SCHEDULES` from the random ``order`` of configurations."""
    runs: dict[str, Callable[[], baselines.BaselineRun]] = {
        "random": lambda: baselines.replay_policy(
            db, task, Portfolio(int(order[0]), ranking=[int(c) for c in order]), concurrency,
            timing=timing),
        "sh27": lambda: baselines._successive_halving(db, task, order[:27], 3, False,
                                                      concurrency, timing),
        "sh27-survivor": lambda: baselines.transfer_successive_halving(
            db, task, 27, order=order, concurrency=concurrency, timing=timing),
        "sh9-survivor": lambda: baselines.transfer_successive_halving(
            db, task, 9, order=order, concurrency=concurrency, timing=timing),
    }
    return runs[name]()


def run_task(db, test_task: str, budget: int, concurrency: int, seeds: list[int],
             baseline_seeds: int, timing: Timing = Timing()) -> dict[str, Any]:
    """One task's row: AT2's regret, configurations touched, epochs of its deepest curve,
    simulated wall time and seconds per seed, and every schedule's regret per baseline seed."""
    final, curves = db.final_values(test_task, 0), db.task_curves(test_task, 0)
    task = ReplayTask(db.name, (), test_task, 0, budget)
    row: dict[str, Any] = {"task": test_task, "at2": [], "touched": [], "deepest": [],
                           "wall": [], "seconds": []}
    for seed in seeds:
        started = time.perf_counter()
        trace = run_replay(db, task, seed=seed, concurrency=concurrency,
                           timing=timing)["trace"]
        row["at2"].append(held_regret(final, [r["value"] for r in trace], budget))
        row["touched"].append(len({r["config_id"] for r in trace}))
        row["deepest"].append(max(r["epoch"] for r in trace))  # a curve's epochs come in order
        row["wall"].append(max(r["sim_time"] for r in trace))
        row["seconds"].append(time.perf_counter() - started)
    for name in SCHEDULES:
        row[name] = []
        for seed in range(baseline_seeds):
            order = np.random.default_rng([seed, 7]).permutation(db.n_configs)
            run = schedule_run(name, db, task, order, concurrency, timing)
            row[name].append(held_regret(final, evaluation.held_values(curves, run.trained),
                                          budget))
    return row


def dyhpo_runs(db, path: Path, budget: int, tasks: list[str],
               workers: int = 1) -> dict[str, list[list[float]]]:
    """DyHPO's observed values of every task of ``tasks``, each run's first ``budget`` epochs,
    from the runs with ``workers`` workers in ``path`` (``experiments.dyhpo_syne_tune``),
    checked against the database.

    Raises:
        ValueError: a task without a DyHPO run, or a run that does not fit the database.
    """
    from experiments.dyhpo_syne_tune import read_runs

    runs = read_runs(path, db.name, lambda task: db.task_curves(task, 0), budget, workers)
    for task in tasks:
        if task not in runs:
            raise ValueError(f"{path} has no DyHPO run of {db.name} task {task!r} with "
                             f"{workers} worker(s); run experiments/dyhpo_syne_tune.py run "
                             f"--workers {workers} for it, or leave out --dyhpo")
    return runs


def add_dyhpo(rows: list[dict[str, Any]], db, runs: dict[str, list[list[float]]],
              budget: int) -> None:
    """Give every row a ``dyhpo`` column: the held regret of each of its task's ``runs``."""
    for row in rows:
        final = db.final_values(row["task"], 0)
        row["dyhpo"] = [held_regret(final, values, budget) for values in runs[row["task"]]]


def table(rows: list[dict[str, Any]]) -> list[str]:
    """Markdown rows: each method's mean ± s.e. over tasks and AT2's paired difference."""
    at2 = np.array([np.mean(r["at2"]) for r in rows])
    lines = ["| method | held regret | AT2 - method (paired) |", "| --- | --- | --- |",
             f"| at2 (no_prior) | {evaluation.format_mean_se(at2)} | |"]
    for name in SCHEDULES + (("dyhpo",) if all("dyhpo" in r for r in rows) else ()):
        values = np.array([np.mean(r[name]) for r in rows])
        lines.append(f"| {name} | {evaluation.format_mean_se(values)} | "
                     f"{evaluation.format_mean_se(at2 - values, sign=True)} |")
    touched, deepest, wall, seconds = (np.mean([np.mean(r[key]) for r in rows])
                                       for key in ("touched", "deepest", "wall", "seconds"))
    lines.append(f"\nAT2 touched {touched:.1f} configurations per run and trained its deepest "
                 f"{deepest:.1f} epochs, in {wall:.1f} units of simulated time (an epoch takes "
                 f"about 1; `at2_tune.core.simulation`), {seconds:.1f} s per run.")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["hyperrec", "lcbench"], required=True)
    parser.add_argument("--budget", default="100", help="epochs, comma-separated: a run each")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--start-cost", type=float, default=0.0,
                        help="simulated time a trial spends each time it starts or resumes "
                             "(about 1 per epoch; Ray Tune at 0.2 s an epoch: about 3)")
    parser.add_argument("--equal-epochs", action="store_true",
                        help="every epoch takes 1 unit of simulated time (Syne Tune's "
                             "simulator, Ray with --seconds-per-epoch), not a duration per "
                             "configuration")
    parser.add_argument("--seeds", default="0,1", help="AT2's seeds")
    parser.add_argument("--baseline-seeds", type=int, default=10)
    parser.add_argument("--tasks", default=None, help="comma-separated (default: every task)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=Path("results/no_prior"))
    parser.add_argument("--dyhpo", type=Path, default=None,
                        help="DyHPO's runs (JSON lines of experiments.dyhpo_syne_tune): adds "
                             "its column")
    args = parser.parse_args(argv)
    try:
        timing = Timing(args.start_cost, args.equal_epochs)
    except AT2Error as error:
        parser.error(str(error))
    import torch

    from at2_tune.databases import load_database

    torch.set_num_threads(1)
    db = load_database(args.database, args.data_dir)
    tasks = args.tasks.split(",") if args.tasks else list(db.tasks)
    seeds = [int(s) for s in args.seeds.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    for budget in (int(b) for b in args.budget.split(",")):
        dyhpo = None if args.dyhpo is None else dyhpo_runs(db, args.dyhpo, budget, tasks,
                                                             args.concurrency)
        rows = [run_task(db, t, budget, args.concurrency, seeds, args.baseline_seeds,
                         timing) for t in tasks]
        if dyhpo is not None:
            add_dyhpo(rows, db, dyhpo, budget)
        cost = (f"_start{args.start_cost:g}" if args.start_cost else "") + \
            ("_equal" if args.equal_epochs else "")
        name = f"no_prior_{args.database}_{budget}_{args.concurrency}{cost}.json"
        (args.out / name).write_text(json.dumps(rows, indent=1))
        print(f"\n{args.database}, budget {budget}, {args.concurrency} slot(s), "
              f"start cost {args.start_cost:g}, "
              f"{'equal epochs, ' if args.equal_epochs else ''}"
              f"{len(rows)} tasks, AT2 seeds {args.seeds}:\n")
        print("\n".join(table(rows)))


if __name__ == "__main__":
    main()
