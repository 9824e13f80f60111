"""Replay benchmark: AT2 vs its no-transfer ablation vs cheap baselines, on four protocols.

    python -m experiments.replay_benchmark --database hyperrec --protocol loo --jobs 2 --out results/bench
    python -m experiments.replay_benchmark --database hyperrec --protocol loo --out results/bench --report-only

Protocols: ``pairs``, the paper's train/test pairs of each database (``--pairs``); ``loo``, every
task of the database (or those of ``--tasks``) as the test task with all the other tasks as prior
tasks; ``subsets``, every such task with seeded random subsets of the other tasks as prior
(``--prior-sizes``, ``--draws``; ``at2_tune.bench.protocols``), each size reported as its own protocol
``subsets-K``; ``histories``, the subsets' priors cut to the tuning histories a user would have
left (``--history-configs`` random configurations per prior task, ASHA-stopped curves:
``at2_tune.bench.histories``, the cases and histories of ``at2-tune bench --protocol
histories``), each size reported as ``histories-K``, AT2 runs recording where each query came
from (``decision_sources``). This harness runs AT2 in process with ``--set`` overrides, for
measuring settings; ``at2-tune bench`` runs the product through Ray Tune. A case is a test task
(with its prior) and one seed profile. A run is one method with one seed on one case: AT2 and
at2-no-transfer run every seed of ``--seeds``, the random baselines (screening, successive-halving)
the seeds 0..N-1 of ``--baseline-seeds``, the other baselines once.

Each run is written to ``OUT/runs/<run key>.json`` when it finishes: the run document of ``at2-tune
bench`` (``at2_tune.bench.runs.run_job``: a trace row per epoch with the trained configuration,
its epoch and value, and the recommendation with its rank and normalized regret; AT2's plan),
plus the peak RSS of the worker process so far. A run whose file exists is not run again, so an
interrupted benchmark resumes where it stopped (``at2_tune.bench.harness``, the harness
``at2-tune bench`` uses too). The methods are the bench's and every baseline of
``at2_tune.bench.baselines.BY_NAME``. The key names the database, test task, seed profile, method
and seed, plus a hash of the budget, the ``--set`` overrides (AT2 methods only) and the prior
tasks the method uses (none for at2-no-transfer and the random baselines, whose runs are therefore
shared by both protocols).

Then the runs that the options name are aggregated (``at2_tune.evaluation``) into
``OUT/summary.json`` and ``OUT/summary.md`` (printed): per database and protocol, the rank and
normalized regret at 10, 25, 50 and 100 queries (mean ± standard error over cases, seeds
averaged within a case first), the mean rank among the methods, configs touched, AT2's paired
difference with the best baseline, and AT2's timing. ``--report-only`` aggregates without running.
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import sys
from pathlib import Path
from typing import Any

import numpy as np

from at2_tune import evaluation
from at2_tune.bench import baselines
from at2_tune.errors import AT2Error
from at2_tune.bench import harness, protocols
from at2_tune.bench.harness import Job

BASELINES = baselines.BY_NAME
"""The baselines by method name; each is called with (database, task, numpy Generator)."""
METHODS = ("at2", "at2-no-transfer", *BASELINES)
"""The default methods; ``reference`` (AT2 with the paper's protocol, slow) can be added."""
RANDOM_BASELINES = baselines.RANDOM
WITHOUT_PRIOR = ("at2-no-transfer", *RANDOM_BASELINES)
"""Methods that ignore the prior tasks."""


@functools.lru_cache(maxsize=None)
def _database(name: str, data_dir: str | None):
    from at2_tune.databases import load_database

    return load_database(name, data_dir)


def _settings(method: str, overrides: dict[str, Any]):
    from at2_tune.core.settings import AT2Settings

    settings = AT2Settings.reference() if method == "reference" else AT2Settings()
    return settings.with_assignments(f"{name}={json.dumps(value)}"  # as --set: validated, merged
                                     for name, value in overrides.items())


def run_job(job: Job, data_dir: str | None = None, fit_cache: str | None = None,
            threads: int = 1) -> dict[str, Any]:
    """Run ``job`` in process and return its run document (what ``OUT/runs/<key>.json`` holds):
    the bench's results document (``at2_tune.bench.runs.run_job``, AT2 on the local backend),
    with the median seconds per query of an AT2 run and the peak RSS of the worker so far."""
    from at2_tune.bench import runs as bench_runs

    db = _database(job.database, data_dir)
    settings = None
    if job.method in evaluation.AT2_METHODS:
        import torch

        torch.set_num_threads(threads)
        settings = _settings(job.method, job.overrides)
    document = bench_runs.run_job(job, db, data_dir, fit_cache, settings, backend="local")
    timing = document["timing"]
    timing["query_s_median"] = None
    if job.method in evaluation.AT2_METHODS:
        if not document["trace"]:
            raise RuntimeError(f"{job.key}: AT2 made no query")
        walls = [timing["offline_fit_s"]] + [row["wall_s"] for row in document["trace"]]
        timing["query_s_median"] = float(np.median(np.diff(walls)))
    document["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return document


def evaluated(document: dict[str, Any], data_dir: str | None = None) -> dict[str, Any]:
    """The evaluation run of a run document (``at2_tune.bench.report.curves_of``: the held
    model's and the recommendation's regret and rank after each epoch), with its slots, timing
    and peak RSS."""
    from at2_tune.bench.report import curves_of

    db = _database(document["database"], data_dir)
    return {**curves_of(db, document), "concurrency": document["concurrency"],
            "timing": document["timing"], "peak_rss_mb": document.get("peak_rss_mb")}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", action="append", choices=["hyperrec", "lcbench"],
                        help="repeatable (default: both)")
    parser.add_argument("--protocol", action="append",
                        choices=("pairs", "loo", "subsets", "histories"),
                        help="pairs: the paper's train/test pairs; loo: every task as test task "
                             "with all the others as prior tasks; subsets: every task as test "
                             "task with random subsets of the others as prior tasks "
                             "; histories: the subsets' priors cut to tuning histories "
                             "(at2_tune.bench.histories; the --history-* options) "
                             "(repeatable; default: pairs)")
    parser.add_argument("--history-configs", type=int, default=25, metavar="N",
                        help="histories protocol: trials per prior task (default 25)")
    parser.add_argument("--history-overlap", choices=["independent", "none"],
                        default="independent")
    parser.add_argument("--history-scheduler", choices=["asha", "fifo"], default="asha")
    parser.add_argument("--draw-seed", type=int, default=0,
                        help="histories protocol: seed of the prior draws and histories")
    parser.add_argument("--pairs", default="0,1,2,3,4", help="pair numbers (pairs protocol)")
    parser.add_argument("--tasks", default=None, metavar="NAME,...",
                        help="test tasks of the loo and subsets protocols (default: every task)")
    parser.add_argument("--prior-sizes", default=",".join(map(str, protocols.PRIOR_SIZES)),
                        metavar="K,...", help="prior tasks per case (subsets protocol)")
    parser.add_argument("--draws", type=int, default=protocols.DRAWS,
                        help="random priors of each size per test task (subsets protocol)")
    parser.add_argument("--seed-profiles", default=None, metavar="P,...",
                        help="seed profiles of the test task (default: all the database has: "
                             "0,1 for HyperRec, 0 for LCBench)")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated, from {', '.join(METHODS)}, reference "
                             "(default: all but reference)")
    parser.add_argument("--seeds", default="0,1,2", help="seeds of the AT2 runs")
    parser.add_argument("--baseline-seeds", type=int, default=10, metavar="N",
                        help="seeds 0..N-1 of the random baselines (screening, "
                             "successive-halving); default 10")
    parser.add_argument("--budget", default="100", metavar="B,...",
                        help="epochs per run; several: one run per budget, each planned for "
                             "its budget (default 100)")
    parser.add_argument("--concurrency", type=int, default=1, metavar="K",
                        help="simulated slots of every run (default 1)")
    parser.add_argument("--jobs", type=int, default=2,
                        help="worker processes; each gives torch max(1, 2 // jobs) threads")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                        help="override an AT2Settings field (JSON value), e.g. --set beta=1.0 "
                             "or --set 'online_optimizer={\"name\": \"adam\", \"lr\": 0.003}'")
    parser.add_argument("--fit-cache", default=None, metavar="DIR",
                        help="reuse offline fits saved in DIR (and save new ones there); runs "
                             "that differ only in online settings then share one fit")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=Path("results/replay_benchmark"))
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: aggregate the run files in OUT/runs that the "
                             "options name")
    args = parser.parse_args(argv)
    unknown = set(args.methods.split(",")) - {*METHODS, "reference"}
    if unknown:
        parser.error(f"unknown method(s) {', '.join(sorted(unknown))}; choose from "
                     f"{', '.join(METHODS)}, reference")
    try:
        args.budgets = _ints(args.budget)
    except ValueError:
        parser.error(f"--budget {args.budget!r}: expected comma-separated integers, e.g. "
                     "10,25,50,100")
    if args.jobs < 1 or args.concurrency < 1 or args.baseline_seeds < 1 or \
            not args.budgets or min(args.budgets) < 1:
        parser.error("--jobs, --concurrency, --baseline-seeds and every --budget must be at "
                     "least 1")
    return args


def _ints(text: str) -> list[int]:
    return [int(item) for item in text.split(",") if item.strip()]


def _cases(db, protocol: str, args: argparse.Namespace) -> list[protocols.Case]:
    """Every case of ``protocol`` in ``db`` that the options name."""
    return protocols.cases(db, protocol, pairs=_ints(args.pairs),
                           tasks=None if args.tasks is None else args.tasks.split(","),
                           prior_sizes=_ints(args.prior_sizes), draws=args.draws,
                           seed=args.draw_seed if protocol == "histories" else
                           protocols.SUBSET_SEED)


def _history_options(args: argparse.Namespace, protocol: str) -> dict[str, Any] | None:
    """The histories protocol's options, as ``at2-tune bench`` records them (else ``None``)."""
    if protocol != "histories":
        return None
    from at2_tune.bench.histories import HistoryOptions

    options = HistoryOptions(args.history_configs, args.history_overlap, args.history_scheduler)
    return {**options.to_json(), "draw_seed": args.draw_seed}


def plan(args: argparse.Namespace) -> list[Job]:
    """Every run the options name, AT2 runs first (the longest)."""
    databases = args.database or ["hyperrec", "lcbench"]
    methods = args.methods.split(",")
    args.overrides = {}
    dbs = {name: _database(name, args.data_dir) for name in databases}
    if args.tasks is not None:
        missing = [t for t in args.tasks.split(",") if t and
                   not any(t in db.tasks for db in dbs.values())]
        for task in missing:
            dbs[databases[0]].task_index(task)  # raises UnknownTaskError with a suggestion
    if any(m in evaluation.AT2_METHODS for m in methods):
        from at2_tune.core.settings import AT2Settings

        AT2Settings().with_assignments(args.set)  # a bad value fails here, not in every run
        args.overrides = {field.strip(): json.loads(value)  # as given: the run keys hash them
                          for field, _, value in (item.partition("=") for item in args.set)}
    jobs = []
    for name, db in dbs.items():
        profiles = list(range(db.n_seeds)) if args.seed_profiles is None else \
            [p for p in _ints(args.seed_profiles) if p < db.n_seeds]
        if not profiles:
            raise AT2Error(f"{name} has seed profiles 0..{db.n_seeds - 1}; none of "
                           f"--seed-profiles {args.seed_profiles} exists")
        for protocol, budget in ((p, b) for p in args.protocol or ["pairs"]
                                 for b in args.budgets):
            jobs += harness.plan(
                name, _cases(db, protocol, args), methods, profiles=profiles, budget=budget,
                concurrency=args.concurrency,
                seeds=lambda m: _ints(args.seeds) if m in evaluation.AT2_METHODS else
                range(args.baseline_seeds if m in RANDOM_BASELINES else 1),
                uses_prior=lambda m: m not in WITHOUT_PRIOR,
                overrides=lambda m: args.overrides if m in evaluation.AT2_METHODS else {},
                history=_history_options(args, protocol))
    jobs.sort(key=lambda j: j.method not in evaluation.AT2_METHODS)
    return jobs


def report(jobs: list[Job], args: argparse.Namespace) -> str | None:
    """Aggregate the existing runs of ``jobs``; write summary.json and summary.md."""
    runs = [evaluated(d, args.data_dir) for d in harness.load_documents(jobs, args.out / "runs")]
    if len(runs) < len(jobs):
        print(f"{len(jobs) - len(runs)} of the {len(jobs)} runs the options name have no file "
              f"in {args.out / 'runs'}; the summary leaves them out", file=sys.stderr)
    if not runs:
        return None
    if len(args.budgets) > 1:  # the budget known up front: each run judged at its end
        for run in runs:
            run["protocol"] = f"{run['protocol']} B={run['budget']}"
        summary = evaluation.summarize(runs, None)
        markdown = evaluation.budget_table(
            [{**r, "protocol": r["protocol"].rsplit(" B=", 1)[0]} for r in runs]) + "\n" + \
            evaluation.render_markdown(summary)
    else:
        summary = evaluation.summarize(runs, evaluation.checkpoints_for(args.budgets[0]))
        markdown = evaluation.budget_table(runs) + "\n" + evaluation.render_markdown(summary)
    harness.write_json(args.out / "summary.json", summary)
    (args.out / "summary.md").write_text(markdown)
    return markdown


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        jobs = plan(args)
    except (AT2Error, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0 if args.report_only else harness.run_missing(
        jobs, run_job, args.out / "runs", args.jobs, description="replay runs",
        data_dir=args.data_dir, fit_cache=args.fit_cache, threads=max(1, 2 // args.jobs))
    markdown = report(jobs, args)
    if markdown is None:
        print(f"error: no run file in {args.out / 'runs'} for these options", file=sys.stderr)
        return 1
    print(markdown)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
