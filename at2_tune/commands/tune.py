"""``at2-tune tune``: tune an image dataset live with AT2 on Ray (local or a cluster).

Trials train ResNet34/50 configurations of the HyperRec space with ``trainers/``; AT2Searcher
and AT2Scheduler decide which configuration trains its next epoch (trials pause and resume
from their checkpoints) until the epoch budget is spent. With ``--method`` another tuner runs
the same trainable on the same budget instead (``at2-tune compare`` puts runs side by side).
Writes ``OUT/summary.json``, ``OUT/trials/<trial_id>/metrics.jsonl`` and ``OUT/curves.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from at2_tune.live.methods import METHODS
    from trainers.cli import add_data_arguments

    parser = subparsers.add_parser(
        "tune", help="tune a dataset live with AT2 (or another --method) on Ray",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(parser)
    parser.add_argument("--method", default="at2", metavar="{" + ",".join(METHODS) + "}",
                        help="the tuner (default at2). All train the same trainable with the "
                             "same budget, concurrency and resources: at2 (freeze-thaw AT2), "
                             "top3 and portfolio (transfer baselines from --prior, "
                             "freeze-thaw), asha, random, bohb, optuna (Ray Tune's own), "
                             "optuna-warm (Optuna started from the prior's 5 best)")
    parser.add_argument("--objective", default="model", choices=("model", "configuration"),
                        help="at2: what the run is for, and what its budget planner plans for: "
                             "model (default), the best model trained within the budget; "
                             "configuration (the AT2 paper's), a configuration to train again "
                             "to its end, judged by its full-training value")
    parser.add_argument("--epochs", type=int, default=75,
                        help="epochs per trial (default 75; with a prior: the prior's epochs)")
    parser.add_argument("--budget-epochs", type=int, required=True, metavar="N",
                        help="total epochs over all trials")
    parser.add_argument("--concurrency", type=int, default=1, metavar="K",
                        help="trials training at the same time (default 1)")
    parser.add_argument("--max-failures", type=int, default=1, metavar="N",
                        help="restarts of a failed trial from its last checkpoint (a worker "
                             "killed mid-epoch, a lost node; default 1)")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0, metavar="C")
    parser.add_argument("--gpus-per-trial", type=float, default=None, metavar="G",
                        help="default: 1 when the cluster has GPUs, else 0")
    parser.add_argument("--prior", default="hyperrec", metavar="hyperrec|none|DB_DIR",
                        help="learning curves AT2 transfers from: the HyperRec database "
                             "(default), none, or a database of at2-tune prior import/add")
    parser.add_argument("--samples", type=int, default=None, metavar="S",
                        help="configurations sampled from the space next to the prior's "
                             "(default 50 with a prior, 100 without)")
    parser.add_argument("--address", default=None, metavar="auto|HOST:PORT",
                        help="a running Ray cluster (default: start Ray on this machine)")
    parser.add_argument("--storage", default=None, metavar="PATH",
                        help="Tune's storage path: a folder, or s3:// gs:// on shared "
                             "storage (default: OUT/ray)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run from --storage (same options)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda")
    parser.add_argument("--small-input-stem", action="store_true",
                        help="3x3 stride-1 ResNet stem without max-pool, for 32-64 px images")
    parser.add_argument("--fit-cache", default=None, metavar="DIR",
                        help="folder of AT2's offline fits (default ~/.cache/at2-tune/fits)")
    parser.add_argument("--data-dir", default=None,
                        help="folder of the HyperRec release (default $AT2_DATA_DIR)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from at2_tune.live import LiveOptions, run_live
    from trainers.cli import data_spec

    options = LiveOptions(
        data=data_spec(args), out=args.out, budget_epochs=args.budget_epochs,
        epochs=args.epochs, concurrency=args.concurrency, cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial, prior=args.prior, samples=args.samples,
        address=args.address, storage=args.storage, resume=args.resume, seed=args.seed,
        device=args.device, small_input_stem=args.small_input_stem, fit_cache=args.fit_cache,
        data_dir=args.data_dir, method=args.method, objective=args.objective,
        max_failures=args.max_failures)
    run_live(options)
    return 0
