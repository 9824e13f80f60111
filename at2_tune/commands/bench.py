"""``at2-tune bench``: AT2 against the tuners a Ray user would pick instead, on the same replay
tasks and the same budget in epochs; writes a summary, a Markdown table, plots and every run.

    at2-tune bench --database hyperrec --protocol pairs --budget 100 --repeats 3 --out results/bench

OUT/runs/<run>.json is written as each run finishes and skipped when it exists, so an
interrupted bench resumes where it stopped (delete the folder to start over).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from at2_tune.errors import AT2Error

_DEFAULT_METHODS = ("at2,at2-no-transfer,random,asha,hyperband,bohb,optuna,optuna-warm,"
                    "zero-shot,top3,top5,transfer-sh")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench", help="AT2 vs Ray Tune's tuners and transfer baselines on replay tasks",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["hyperrec", "lcbench"], required=True)
    parser.add_argument("--protocol", choices=["pairs", "loo", "histories"], default="pairs",
                        help="pairs: the paper's train/test pairs (default); loo: every task "
                             "as the test task, all others as prior tasks; histories: every "
                             "task as the test task, random prior tasks cut to tuning "
                             "histories (--history-*, --prior-sizes, --draws)")
    parser.add_argument("--pairs", default=None, metavar="I,J,...",
                        help="pair numbers of the pairs protocol (default: all)")
    parser.add_argument("--tasks", default=None, metavar="NAME,...",
                        help="test tasks of the loo protocol (default: every task)")
    parser.add_argument("--seed-profiles", default=None, metavar="P,...",
                        help="seed profiles of the test task (default: all the database has)")
    parser.add_argument("--budget", type=int, default=100, help="epochs per run (default 100)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="seeds of each stochastic method (default 3)")
    parser.add_argument("--methods", default=_DEFAULT_METHODS,
                        help=f"comma-separated (default: all: {_DEFAULT_METHODS})")
    parser.add_argument("--concurrency", type=int, default=1, metavar="K",
                        help="trials at a time in each Ray run (default 1: every decision "
                             "sees every earlier result, and a seed gives the same run)")
    parser.add_argument("--seconds-per-epoch", type=float, default=0.0, metavar="S",
                        help="simulated training time of a replayed epoch in the Ray runs "
                             "(default 0). With K > 1 use e.g. 0.2, so that K trials train side "
                             "by side as with real training: with 0 the first trial's worker "
                             "replays many epochs before the others have started")
    parser.add_argument("--jobs", type=int, default=1, metavar="J",
                        help="runs in parallel, each worker with its own local Ray (default 1)")
    parser.add_argument("--fit-cache", type=Path, default=None, metavar="DIR",
                        help="folder of AT2's saved offline fits (default: ~/.cache/at2-tune/fits)")
    parser.add_argument("--no-fit-cache", action="store_true", help="always fit AT2 offline")
    parser.add_argument("--no-plots", action="store_true", help="write no plots")
    history = parser.add_argument_group(
        "histories protocol", "each prior task replayed as the Ray Tune experiment a user "
        "would have left: random configurations of the grid, cut where ASHA stopped them")
    history.add_argument("--history-configs", type=int, default=25, metavar="N",
                         help="trials per history (default 25)")
    history.add_argument("--history-overlap", choices=["independent", "none"],
                         default="independent",
                         help="independent: each history draws its own configurations; none: "
                              "disjoint across the histories (no two tasks share one)")
    history.add_argument("--history-scheduler", choices=["asha", "fifo"], default="asha",
                         help="asha: cut where Ray's ASHAScheduler (grace 1, reduction 3) "
                              "stopped each trial; fifo: every trial to its last epoch")
    history.add_argument("--prior-sizes", default="4,8,16", metavar="K,...",
                         help="prior tasks per case (default 4,8,16)")
    history.add_argument("--draws", type=int, default=1,
                         help="random priors of each size per test task (default 1)")
    history.add_argument("--draw-seed", type=int, default=0,
                         help="seed of the prior tasks' and histories' draws (default 0)")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, required=True)
    parser.set_defaults(run=_run)


def _ints(option: str, text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise AT2Error(f"{option} {text!r} must be comma-separated integers, e.g. 0,1,2") from None


def _run(args: argparse.Namespace) -> int:
    from at2_tune.bench import harness
    from at2_tune.bench import methods as bench_methods
    from at2_tune.bench.runs import plan
    from at2_tune.databases import load_database

    started = time.perf_counter()
    methods = bench_methods.check_methods(args.methods.split(","))
    bench_methods.check_available(methods)
    for option, value in (("--budget", args.budget), ("--repeats", args.repeats),
                          ("--concurrency", args.concurrency), ("--jobs", args.jobs)):
        if value < 1:
            raise AT2Error(f"{option} {value} must be at least 1")
    if not args.no_plots:
        _check_matplotlib()
    data_dir = str(args.data_dir) if args.data_dir else None
    db = load_database(args.database, data_dir)
    tasks = [t for t in args.tasks.split(",") if t] if args.tasks else None
    try:
        jobs = plan(db, args.protocol, methods, budget=args.budget, repeats=args.repeats,
                    concurrency=args.concurrency, seconds_per_epoch=args.seconds_per_epoch,
                    pairs=_ints("--pairs", args.pairs),
                    tasks=tasks, seed_profiles=_ints("--seed-profiles", args.seed_profiles),
                    history=_history_options(args), prior_sizes=_ints("--prior-sizes",
                                                                      args.prior_sizes),
                    draws=args.draws)
    except ValueError as exc:
        raise AT2Error(str(exc)) from None
    runs_dir = args.out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    from at2_tune.core.offline_cache import FitCache

    fit_cache = None if args.no_fit_cache else FitCache(args.fit_cache)
    with private_ray_folder():
        failed = harness.run_missing(jobs, run_in_worker, runs_dir, args.jobs,
                                     description="bench runs", data_dir=data_dir,
                                     fit_cache=fit_cache)
    documents = harness.load_documents(jobs, runs_dir)
    if not documents:
        raise AT2Error(f"no run finished in {runs_dir}; see the errors above")
    summary = write_summary(db, documents, methods, args, plots=not args.no_plots)
    summary["wall_s"] = time.perf_counter() - started
    harness.write_json(args.out / "summary.json", summary)
    print((args.out / "summary.md").read_text())
    print(f"{len(documents)} of {len(jobs)} runs in {runs_dir}; summary: "
          f"{args.out / 'summary.json'}; {summary['wall_s']:.0f} s")
    return 1 if failed else 0


def _history_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """The histories protocol's options (``None`` for the grid protocols), validated."""
    if args.protocol != "histories":
        return None
    from at2_tune.bench.histories import HistoryOptions

    options = HistoryOptions(args.history_configs, args.history_overlap, args.history_scheduler)
    return {**options.to_json(), "draw_seed": args.draw_seed}


def _decision_sources(documents: list[dict[str, Any]]) -> dict[str, float] | None:
    """AT2's queries by where they came from (each run's ``decision_sources``), the mean share
    over its runs: a cell some history observed, beyond the epochs a history reached, or a
    configuration no history trained."""
    shares = [d["decision_sources"] for d in documents if "decision_sources" in d]
    if not shares:
        return None
    return {name: float(np.mean([s[name] for s in shares])) for name in shares[0]}


def _check_matplotlib() -> None:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise AT2Error("the bench plots need matplotlib, which is not installed; install the "
                       "bench extra (pip install 'at2-tune[bench]') or pass --no-plots")


_RAY_STARTED = False
RAY_FOLDER_ROOT = "/tmp"
"""Where :func:`private_ray_folder` makes its folder: short, as Ray's socket paths inside it
must stay under 108 bytes."""


@contextlib.contextmanager
def private_ray_folder() -> Iterator[Path | None]:
    """The bench's runs: the session folders of the local Ray instances they start (logs and
    spilled objects: 100-400 MB per worker process over a long bench, left in ``/tmp/ray``
    otherwise) go to a folder of their own (``RAY_TMPDIR``, inherited by the spawned workers);
    at the end the Ray this process started (runs in process) is shut down and the folder
    removed. A ``RAY_TMPDIR`` the user set is kept, and its sessions too; yields the folder made,
    or ``None`` then."""
    folder = None if os.environ.get("RAY_TMPDIR") else \
        Path(tempfile.mkdtemp(prefix="at2b", dir=RAY_FOLDER_ROOT))
    if folder is not None:
        os.environ["RAY_TMPDIR"] = str(folder)
    try:
        yield folder
    finally:
        _shutdown_ray()  # before its folder goes
        if folder is not None:
            os.environ.pop("RAY_TMPDIR", None)
            shutil.rmtree(folder, ignore_errors=True)


def run_in_worker(job, data_dir: str | None, fit_cache) -> dict[str, Any]:
    """Run one job in this process, starting a local Ray here the first time one needs it.
    Interrupted (Ctrl-C, or SIGTERM through ``harness.terminate_as_interrupt``), it shuts that
    Ray down before the interrupt goes on (Ray's dashboard and runtime-env agents can still
    outlive it).

    ``fit_cache``: a ``FitCache`` (a frozen dataclass, so it pickles to spawned workers) or
    ``None``."""
    try:
        return _run_in_worker(job, data_dir, fit_cache)
    except (KeyboardInterrupt, SystemExit):  # SystemExit: a SIGTERM within ray.init, whose
        _shutdown_ray()                      # own handler exits
        raise


def _run_in_worker(job, data_dir: str | None, fit_cache) -> dict[str, Any]:
    global _RAY_STARTED
    from at2_tune.notices import quiet_notices

    quiet_notices()
    from at2_tune.bench import methods as bench_methods
    from at2_tune.bench.runs import run_job
    from at2_tune.databases import load_database

    if job.method in (*bench_methods.AT2, *bench_methods.RAY):
        import ray

        os.environ.setdefault("TUNE_WARN_THRESHOLD_S", "5")
        # Ctrl-C must stop a run, not end it early: Tune's own handler turns the first Ctrl-C
        # into a normal return with the results so far, which the harness then wrote as a
        # finished run (and a resume kept it)
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
        if not ray.is_initialized():
            from at2_tune.bench.harness import ctrl_c_deferred, terminate_handler_kept
            from at2_tune.bench.runs import SLOT_RESOURCE

            _RAY_STARTED = True  # before: an init cut short is shut down too
            with terminate_handler_kept(), ctrl_c_deferred():
                ray.init(num_cpus=max(2, job.concurrency), resources={SLOT_RESOURCE: 1},
                         include_dashboard=False, log_to_driver=False, configure_logging=False)
    import torch

    torch.set_num_threads(1)
    return run_job(job, load_database(job.database, data_dir), data_dir, fit_cache)


def _shutdown_ray() -> None:
    global _RAY_STARTED
    if _RAY_STARTED:
        import ray

        ray.shutdown()
        _RAY_STARTED = False


def write_summary(db, documents: list[dict[str, Any]], methods: list[str],
                  args: argparse.Namespace, plots: bool = True) -> dict[str, Any]:
    """Write summary.md and the plots; return the summary (the caller writes summary.json)."""
    from at2_tune.bench import report

    if args.protocol != "histories":
        summary = report.summarize(db, documents, methods, args.protocol, args.budget,
                                   args.concurrency)
        (args.out / "summary.md").write_text(report.render_markdown(summary))
    else:  # one table per prior size (protocol histories-K), as the grid protocols have one
        sizes = sorted({d["protocol"] for d in documents}, key=lambda p: int(p.split("-")[1]))
        parts = {size: report.summarize(db, [d for d in documents if d["protocol"] == size],
                                        methods, size, args.budget, args.concurrency)
                 for size in sizes}
        for size, part in parts.items():
            part["at2_decisions"] = _decision_sources(
                [d for d in documents if d["protocol"] == size and d["method"] == "at2"])
        summary = {"database": db.name, "protocol": "histories", "budget": args.budget,
                   "concurrency": args.concurrency, "history": _history_options(args),
                   "prior_sizes": parts}
        (args.out / "summary.md").write_text("\n".join(report.render_markdown(part)
                                                       for part in parts.values()))
    if plots:  # one set per protocol: a histories case of each prior size has its own runs
        for protocol in sorted({d["protocol"] for d in documents}):
            runs = [report.curves_of(db, d) for d in documents if d["protocol"] == protocol]
            folder = args.out / "plots" if args.protocol != "histories" else \
                args.out / "plots" / protocol
            report.write_plots(runs, methods, f"{db.name} {protocol}", folder)
    return summary
