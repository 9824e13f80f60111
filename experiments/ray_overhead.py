"""Ray Tune overhead per query: a replay through tune.run minus the pure loop, per query.

    python -m experiments.ray_overhead --budget 100

Both runs use the same seed, settings and budget (one trial at a time, ``reuse_actors=True``),
so they make the same queries; the difference of their wall times divided by the number of
queries is what Ray Tune (trial start/pause/resume, result plumbing) adds per query. Small model
settings keep the model's share of the time, and so the noise, low.
"""

from __future__ import annotations

import argparse
import sys
import time

from at2_tune.core.settings import AT2Settings, ModelSettings
from at2_tune.databases import load_database
from at2_tune.simulator import resolve_task, run_replay


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--pair", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    import ray

    from at2_tune.tune.ray_replay import run_replay_ray

    db = load_database("hyperrec", args.data_dir)
    task = resolve_task(db, pair=args.pair, budget=args.budget)
    settings = AT2Settings(ModelSettings(n_inducing=64, offline_epochs=2, online_steps=3))
    started = time.perf_counter()
    loop = run_replay(db, task, seed=args.seed, settings=settings)
    loop_s = time.perf_counter() - started
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        started = time.perf_counter()
        through_ray = run_replay_ray(db, task, seed=args.seed, settings=settings,
                                     data_dir=args.data_dir)
        ray_s = time.perf_counter() - started
    finally:
        ray.shutdown()
    same = [(r["config_id"], r["epoch"]) for r in loop["trace"]] == \
        [(r["config_id"], r["epoch"]) for r in through_ray["trace"]]
    queries = len(loop["trace"])
    pauses = sum(1 for a, b in zip(loop["trace"], loop["trace"][1:]) if a["config_id"] != b["config_id"])
    print(f"{'queries':<34}{queries}")
    print(f"{'switches between trials':<34}{pauses}")
    print(f"{'pure loop wall s':<34}{loop_s:.1f}")
    print(f"{'tune.run wall s (Ray running)':<34}{ray_s:.1f}")
    print(f"{'overhead per query s':<34}{(ray_s - loop_s) / queries:.3f}")
    print(f"{'same queries':<34}{same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
