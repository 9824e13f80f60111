"""Live side by side on a real dataset: ``at2-tune tune --method M --seed S`` for every method and
seed, one run after another, then ``at2-tune compare`` over all of them.

    OMP_NUM_THREADS=1 AT2_DATA_DIR=../shared/data python -m experiments.live_compare \\
        --methods at2,asha,optuna-warm --seeds 0,1,2 --out results/live-digits \\
        -- --dataset digits --image-size 16 --budget-epochs 24 --concurrency 2

Everything after ``--`` goes to every ``at2-tune tune`` run unchanged (the dataset, budget,
concurrency, resources). Runs one at a time (each uses the whole machine through its
``--concurrency`` trials). A run whose ``summary.json`` exists is skipped, so the benchmark can
be resumed; an AT2 run gets an empty fit cache of its own (``OUT/fits-<method>-<seed>``), so its
time to the first trial is that of a first run on a new machine. Prints the table of
``at2-tune compare`` and writes ``OUT/compare/``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path


def split_tune_args(argv: list[str] | None) -> tuple[list[str], list[str]]:
    """``(own, tune_args)``: the arguments before ``--`` and those after it (passed to every
    ``at2-tune tune`` run unchanged); ``argv=None``: the command line's."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--" not in argv:
        return argv, []
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1:]


def main(argv: list[str] | None = None) -> int:
    argv, tune_args = split_tune_args(argv)
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="at2,asha,optuna-warm")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if any(flag in tune_args for flag in ("--method", "--seed", "--out", "--fit-cache")):
        parser.error("--method, --seed, --out and --fit-cache are set per run; leave them out "
                     "of the arguments after --")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    folders = []
    for seed in seeds:
        for method in methods:
            folder = args.out / f"{method}-seed{seed}"
            folders.append(folder)
            if (folder / "summary.json").is_file():
                print(f"{folder}: done before, skipped", flush=True)
                continue
            command = [sys.executable, "-m", "at2_tune.cli", "tune", *tune_args, "--method",
                       method, "--seed", str(seed), "--out", str(folder),
                       "--fit-cache", str(args.out / f"fits-{method}-{seed}")]
            started = time.perf_counter()
            args.out.mkdir(parents=True, exist_ok=True)
            with open(args.out / f"{method}-seed{seed}.log", "w") as log:
                done = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT)
            print(f"{folder}: exit {done.returncode} in {time.perf_counter() - started:.0f} s",
                  flush=True)
            if done.returncode != 0:
                return done.returncode
    return subprocess.run([sys.executable, "-m", "at2_tune.cli", "compare", *map(str, folders),
                           "--out", str(args.out / "compare")], env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
