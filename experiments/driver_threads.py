"""The driver's offline fit beside K busy trial processes, with one torch thread and with torch's
default (one per core).

    python -m experiments.driver_threads --busy 0,1,2 --steps 100

A Ray Tune driver fits AT2's model while trials train on the same machine. Each busy process
here stands for a trial: a single-threaded torch matrix-multiply loop. The fit is the engine's
offline fit on the prior of HyperRec pair 0 (4 tasks) with the default settings, capped at
``--steps`` optimizer steps so that a row takes seconds, not minutes; the ratio between the two
thread counts is what to read. Do not pin OMP_NUM_THREADS here: the default row measures
torch's own default. Prints a table (wall seconds per fit, ratio default / one thread).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time

import torch

from at2_tune.core.engine import AT2Engine
from at2_tune.core.prior import PriorData
from at2_tune.core.settings import AT2Settings, ModelSettings
from at2_tune.core.threads import torch_threads
from at2_tune.databases import load_database
from at2_tune.simulator import resolve_task
from search_spaces import get_space


def _busy(stop) -> None:
    """A trial's stand-in: one thread of matrix multiplies until ``stop`` is set."""
    torch.set_num_threads(1)
    a = torch.randn(256, 256)
    while not stop.is_set():
        a = torch.tanh(a @ a)


def _fit_seconds(db, prior: PriorData, settings: AT2Settings, threads: int | None) -> float:
    engine = AT2Engine(get_space(db.space_name), prior, settings, seed=0)
    with torch_threads(threads):
        started = time.perf_counter()
        engine.fit_offline()
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--busy", default="0,1,2", help="numbers of busy processes, e.g. 0,1,2")
    parser.add_argument("--steps", type=int, default=100, help="offline optimizer steps per fit")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    db = load_database("hyperrec", args.data_dir)
    task = resolve_task(db, pair=0, budget=1)
    prior = PriorData.from_database(db, task.train_tasks, task.seed_profile)
    settings = AT2Settings(ModelSettings(offline_max_steps=args.steps))
    default = torch.get_num_threads()
    print(f"offline fit of {prior.n_tasks} HyperRec tasks, {args.steps} steps; torch's default "
          f"is {default} threads on this machine")
    print("| busy processes | 1 thread | default threads | default / 1 |")
    print("|---|---|---|---|")
    context = multiprocessing.get_context("spawn")
    for busy in (int(b) for b in args.busy.split(",")):
        stop = context.Event()
        workers = [context.Process(target=_busy, args=(stop,)) for _ in range(busy)]
        for worker in workers:
            worker.start()
        try:
            time.sleep(1.0 if busy else 0.0)  # let them reach their loops
            one = _fit_seconds(db, prior, settings, 1)
            many = _fit_seconds(db, prior, settings, None)
        finally:
            stop.set()
            for worker in workers:
                worker.join()
        print(f"| {busy} | {one:.1f} s | {many:.1f} s | {many / one:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
