"""``at2-tune replay``: tune a database task by replaying its learning curves."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from at2_tune.errors import AT2Error


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay", help="replay tuning on HyperRec/LCBench (the AT2 paper's protocol)",
        description=__doc__)
    parser.add_argument("--backend", choices=["ray", "local"], default="ray",
                        help="ray: trials through tune.run with AT2Searcher + AT2Scheduler "
                             "(default); local: the same coordinator on simulated slots")
    parser.add_argument("--concurrency", type=int, default=1, metavar="K",
                        help="concurrent trials (default 1); with --backend local, K simulated "
                             "slots with deterministic simulated epoch durations")
    parser.add_argument("--seconds-per-epoch", type=float, default=0.0,
                        help="simulated training time per epoch with --backend ray")
    parser.add_argument("--database", choices=["hyperrec", "lcbench"], default="hyperrec")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--pair", type=int, help="one of the paper's train/test pairs (0-4)")
    which.add_argument("--test-task", help="the task to tune (with --train-tasks)")
    parser.add_argument("--train-tasks", default="",
                        help="comma-separated prior tasks (with --test-task); empty: no transfer")
    parser.add_argument("--seed-profile", type=int, default=0)
    parser.add_argument("--budget", type=int, default=100, help="queries (epochs of training)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference", action="store_true",
                        help="the AT2 paper's fitting protocol (slow: about an hour per pair)")
    parser.add_argument("--no-transfer", action="store_true", help="ignore the prior tasks")
    parser.add_argument("--inducing", type=int, default=None, metavar="M",
                        help="number of inducing points (default: the settings' value)")
    parser.add_argument("--offline-epochs", type=int, default=None, metavar="N",
                        help="passes over the prior data in the offline fit")
    parser.add_argument("--online-steps", type=int, default=None, metavar="N",
                        help="optimizer steps after each query")
    parser.add_argument("--fit-cache", type=Path, default=None, metavar="DIR",
                        help="folder of saved offline fits (default: ~/.cache/at2-tune/fits)")
    parser.add_argument("--no-fit-cache", action="store_true",
                        help="always fit offline, save nothing")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, required=True, help="folder for results.json and trace.csv")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from at2_tune.core.offline_cache import FitCache
    from at2_tune.core.settings import AT2Settings
    from at2_tune.databases import load_database
    from at2_tune.simulator import resolve_task, run_replay, write_results

    db = load_database(args.database, args.data_dir)
    train_tasks = [t for t in args.train_tasks.split(",") if t]
    try:
        task = resolve_task(db, pair=args.pair, train_tasks=train_tasks, test_task=args.test_task,
                            seed_profile=args.seed_profile, budget=args.budget)
    except ValueError as exc:
        raise AT2Error(str(exc)) from None
    if args.concurrency < 1:
        raise AT2Error(f"--concurrency {args.concurrency} must be at least 1 trial at a time")
    if args.no_transfer:
        task = dataclasses.replace(task, train_tasks=())
    settings = AT2Settings.reference() if args.reference else AT2Settings()
    overrides = {"n_inducing": args.inducing, "offline_epochs": args.offline_epochs,
                 "online_steps": args.online_steps}
    settings = dataclasses.replace(settings, model=dataclasses.replace(
        settings.model, **{k: v for k, v in overrides.items() if v is not None}))
    print(f"tuning {task.test_task} of {task.database} (prior: {', '.join(task.train_tasks) or 'none'}; "
          f"{task.budget} queries)")

    def show(row: dict) -> None:
        if row["query"] == 1 or row["query"] % 10 == 0:
            print(f"query {row['query']:>4}: config {row['config_id']:>3} epoch {row['epoch']:>3} "
                  f"value {row['value']:.4f} | recommended {row['recommended_config_id']:>3} "
                  f"rank {row['rank']:>3} regret {row['regret']:.4f}"
                  + (f" | {row['wall_s']:.1f} s" if row["wall_s"] is not None else ""), flush=True)

    fit_cache = None if args.no_fit_cache else FitCache(args.fit_cache)
    if args.backend == "ray":
        # The model update runs inside the scheduler's on_trial_result (~0.5 s per epoch on 2
        # cores) by design; keep Tune from printing a slowness warning for every result.
        os.environ.setdefault("TUNE_WARN_THRESHOLD_S", "5")
        from at2_tune.tune.ray_replay import run_replay_ray

        results = run_replay_ray(db, task, seed=args.seed, settings=settings,
                                 concurrency=args.concurrency,
                                 seconds_per_epoch=args.seconds_per_epoch,
                                 fit_cache=fit_cache, on_query=show,
                                 data_dir=str(args.data_dir) if args.data_dir else None)
    else:
        results = run_replay(db, task, seed=args.seed, settings=settings, on_query=show,
                             fit_cache=fit_cache, concurrency=args.concurrency)
    path = write_results(results, args.out)
    print(f"wrote {path}")
    return 0
