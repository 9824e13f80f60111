"""Replay benchmark: AT2 vs its no-transfer ablation vs cheap baselines on the paper's pairs.

    python -m experiments.replay_benchmark --database hyperrec --pairs 0,1,2,3,4 --out results/bench

Prints one table per database: the recommended configuration's rank on the test task (0 = best
of 100) after 25, 50 and 100 queries, per pair and seed profile, and the mean; plus AT2's time
per pair and the peak memory of the worker processes. Writes ``rows.json`` (with each AT2
run's queried and recommended configurations) and ``rows.csv``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

CHECKPOINTS = (25, 50, 100)
METHODS = ("at2", "no-transfer", "zero-shot", "screening", "successive-halving")
BASELINE_SEEDS = 10


def _run_one(job: dict) -> dict:
    import torch

    torch.set_num_threads(job["threads"])
    from at2_tune import baselines
    from at2_tune.core.settings import AT2Settings
    from at2_tune.databases import load_database
    from at2_tune.replay import resolve_task, run_replay

    db = load_database(job["database"], job["data_dir"])
    task = resolve_task(db, pair=job["pair"], seed_profile=job["seed_profile"], budget=job["budget"])
    method = job["method"]
    started = time.perf_counter()
    timing, trace = {}, None
    if method in ("at2", "no-transfer", "reference"):
        settings = AT2Settings.reference() if method == "reference" else AT2Settings()
        settings = AT2Settings.from_json({**settings.to_json(), **job["overrides"]})
        if method == "no-transfer":
            task = dataclasses.replace(task, train_tasks=())
        result = run_replay(db, task, seed=job["seed"], settings=settings,
                            fit_cache=job["fit_cache"])
        ranks = [row["rank"] for row in result["trace"]]
        trace = {"configs": [row["config_id"] for row in result["trace"]],
                 "recommended": [row["recommended_config_id"] for row in result["trace"]],
                 "ranks": ranks}
        timing = result["timing"]
        touched = len({row["config_id"] for row in result["trace"]})
    else:
        runs = []
        for seed in range(1 if method == "zero-shot" else BASELINE_SEEDS):
            rng = np.random.default_rng(seed)
            if method == "zero-shot":
                recs = baselines.zero_shot(db, task)
            elif method == "screening":
                recs = baselines.one_epoch_screening(db, task, rng)
            else:
                recs = baselines.successive_halving(db, task, rng)
            ranks_all = db.ranks(task.test_task, task.seed_profile)
            runs.append([int(ranks_all[c]) for c in recs])
        ranks = np.mean(runs, axis=0).tolist()
        touched = None
    ranks = ranks + [ranks[-1]] * (task.budget - len(ranks))
    return {**{k: job[k] for k in ("database", "pair", "seed_profile", "method")},
            "test_task": task.test_task,
            **{f"rank@{q}": ranks[q - 1] for q in CHECKPOINTS if q <= task.budget},
            "offline_fit_s": timing.get("offline_fit_s"), "total_s": timing.get("total_s"),
            "wall_s": time.perf_counter() - started, "configs_touched": touched,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "trace": trace}


def _table(rows: list[dict], database: str, budget: int) -> str:
    checkpoints = [q for q in CHECKPOINTS if q <= budget]
    lines = [f"## {database}: rank of the recommendation (0 = best of 100), "
             f"per pair/seed profile and mean"]
    header = f"{'method':<20}{'queries':>8}  " + "".join(
        f"{'p%d/s%d' % (r['pair'], r['seed_profile']):>8}" for r in
        sorted({(r['pair'], r['seed_profile']): r for r in rows}.values(),
               key=lambda r: (r['pair'], r['seed_profile']))) + f"{'mean':>8}"
    lines.append(header)
    for method in METHODS + ("reference",):
        mine = sorted((r for r in rows if r["method"] == method),
                      key=lambda r: (r["pair"], r["seed_profile"]))
        if not mine:
            continue
        for q in checkpoints:
            values = [r[f"rank@{q}"] for r in mine]
            lines.append(f"{method:<20}{q:>8}  " + "".join(f"{v:>8.1f}" for v in values)
                         + f"{np.mean(values):>8.2f}")
    timed = [r for r in rows if r["total_s"] is not None]
    if timed:
        lines.append("")
        lines.append(f"{'method':<20}{'pair':>5}{'offline fit s':>15}{'total s':>10}"
                     f"{'configs touched':>17}{'peak RSS MB':>13}")
        for r in sorted(timed, key=lambda r: (r["method"], r["pair"], r["seed_profile"])):
            lines.append(f"{r['method']:<20}{r['pair']:>5}{r['offline_fit_s']:>15.1f}"
                         f"{r['total_s']:>10.1f}{r['configs_touched']:>17}{r['peak_rss_mb']:>13.0f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", action="append", choices=["hyperrec", "lcbench"])
    parser.add_argument("--pairs", default="0,1,2,3,4")
    parser.add_argument("--seed-profiles", default="0")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override an AT2Settings field (JSON value), e.g. --set beta=1.0 "
                             "or --set 'online_optimizer={\"name\": \"adam\", \"lr\": 0.003}'")
    parser.add_argument("--fit-cache", default=None, metavar="DIR",
                        help="reuse offline fits saved in DIR (and save new ones there); runs "
                             "that differ only in online settings then share one fit")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=Path("results/replay_benchmark"))
    args = parser.parse_args(argv)
    databases = args.database or ["hyperrec", "lcbench"]
    overrides = {}
    for item in args.set:
        field, _, value = item.partition("=")
        overrides[field] = json.loads(value)
    jobs = []
    for database in databases:
        profiles = [int(p) for p in args.seed_profiles.split(",")]
        if database == "lcbench":
            profiles = [0]
        for method in args.methods.split(","):
            for pair in (int(p) for p in args.pairs.split(",")):
                for profile in profiles:
                    jobs.append({"database": database, "pair": pair, "seed_profile": profile,
                                 "method": method, "budget": args.budget, "seed": args.seed,
                                 "data_dir": args.data_dir, "overrides": overrides,
                                 "fit_cache": args.fit_cache,
                                 "threads": max(1, 2 // args.jobs)})
    jobs.sort(key=lambda j: j["method"] not in ("at2", "no-transfer", "reference"))
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool, \
            open(args.out / "rows.jsonl", "w") as progress:
        futures = {pool.submit(_run_one, job): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                row = future.result()
            except Exception as exc:  # keep the other jobs' results
                print(f"FAILED {job['database']} pair {job['pair']} {job['method']}: {exc!r}",
                      file=sys.stderr)
                continue
            rows.append(row)
            progress.write(json.dumps(row) + "\n")
            progress.flush()
    if not rows:
        return 1
    (args.out / "rows.json").write_text(json.dumps(rows, indent=2))
    with open(args.out / "rows.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[k for k in rows[0] if k != "trace"],
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tables = [_table([r for r in rows if r["database"] == d], d, args.budget) for d in databases]
    report = "\n\n".join(tables)
    (args.out / "table.md").write_text(report + "\n")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
