"""What a Ray Tune user sees of the AT2 pair in one run: log lines and the scheduler's latency.

    OMP_NUM_THREADS=1 python -m experiments.adapter_latency --budget 80 --concurrency 2

Runs, in a child process as a user's script would, ``tune.run`` of the HyperRec replay trainable
(task CIFAR100) with ``AT2Searcher()`` (the HyperRec prior, defaults; the offline fit comes from
the fit cache when there is one) and ``AT2Scheduler``, at Tune's default verbosity with the
workers' output forwarded (``log_to_driver=True``, Ray's default). It prints one table row: the
lines the run printed (stdout and stderr together), the ``scheduler.on_trial_result`` latency
(median, 95th percentile, max over every result), the epochs observed and spent, and the wall
time. ``--keep-log FILE`` keeps what the run printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TASK = "CIFAR100"
METRIC = "val_acc"


def _child(args: argparse.Namespace) -> None:
    """The user's script: one tune.run; the timings go to ``args.timings`` as JSON."""
    import ray
    from ray import tune

    from at2_tune.tune import AT2Scheduler, AT2Searcher
    from trainers.curve_trainable import make_replay_trainable

    class TimedScheduler(AT2Scheduler):
        seconds: list[float] = []

        def on_trial_result(self, tune_controller, trial, result):
            started = time.perf_counter()
            try:
                return super().on_trial_result(tune_controller, trial, result)
            finally:
                TimedScheduler.seconds.append(time.perf_counter() - started)

    ray.init(num_cpus=args.concurrency + 1)
    started = time.perf_counter()
    searcher = AT2Searcher(budget_epochs=args.budget, data_dir=args.data_dir)
    with tempfile.TemporaryDirectory() as storage:
        tune.run(make_replay_trainable("hyperrec", TASK, data_dir=args.data_dir),
                 search_alg=searcher, scheduler=TimedScheduler(searcher), metric=METRIC,
                 mode="max", num_samples=100, max_concurrent_trials=args.concurrency,
                 reuse_actors=True, storage_path=storage)
    coordinator = searcher.coordinator
    Path(args.timings).write_text(json.dumps({
        "seconds": TimedScheduler.seconds, "wall_s": time.perf_counter() - started,
        "observed": coordinator.epochs_observed, "spent": coordinator.epochs_spent}))
    ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=int, default=80)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--keep-log", default=None, help="write what the run printed here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--timings", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        timings = Path(scratch) / "timings.json"
        command = [sys.executable, "-m", "experiments.adapter_latency", "--child",
                   "--timings", str(timings), "--budget", str(args.budget),
                   "--concurrency", str(args.concurrency)]
        if args.data_dir:
            command += ["--data-dir", str(Path(args.data_dir).resolve())]
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env=os.environ.copy())
        if args.keep_log:
            Path(args.keep_log).write_text(done.stdout)
        if done.returncode != 0 or not timings.is_file():
            print(done.stdout[-4000:], file=sys.stderr)
            print(f"the run failed (exit {done.returncode})", file=sys.stderr)
            return 1
        figures = json.loads(timings.read_text())
    seconds = np.array(figures["seconds"])
    print("| epochs observed / spent | log lines | on_trial_result median / p95 / max | wall |")
    print("|---|---|---|---|")
    print(f"| {figures['observed']} / {figures['spent']} | {len(done.stdout.splitlines())} | "
          f"{np.median(seconds):.3f} / {np.percentile(seconds, 95):.3f} / {seconds.max():.3f} s "
          f"({seconds.size} results) | {figures['wall_s']:.0f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
