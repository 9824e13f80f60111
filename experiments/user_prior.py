"""Does a prior imported from the user's own Tune experiments help AT2 on a related new task?

    python -m experiments.user_prior --out DIR [--history-tasks 3] [--test-tasks 4]
        [--seeds 0,1] [--budget 40]

1. History: for each of ``--history-tasks`` tasks, a real Ray Tune experiment (random search
   + ASHA, so some trials stop early) of a function trainable whose learning curve is a
   formula over a small custom space (learning rate, width, optimizer); each task has its own
   best learning rate.
2. Import: ``at2-tune prior import`` of those experiment folders (partially observed curves,
   configurations differ between tasks).
3. New tasks (best learning rates drawn from the same family, never seen): AT2 with the
   imported prior, AT2 without a prior, and Ray's random search + ASHA, each through
   ``tune.Tuner`` with the same epoch budget.

Reported per method: the true final accuracy of the recommended configuration (the formula
without noise at the last epoch), its regret to the best configuration of the space, and its
normalized regret (regret / (best - worst of 20000 samples of the space)), mean and standard
error over test tasks x seeds, and the paired difference over test tasks. Writes
``DIR/results.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

MAX_EPOCHS = 20
METRIC = "acc"


def param_space() -> dict[str, Any]:
    from ray import tune

    return {"lr": tune.loguniform(1e-4, 1e-1), "width": tune.uniform(0.0, 1.0),
            "optimizer": tune.choice(["adam", "sgd"])}


def true_curve(config: dict[str, Any], log_optimum: float,
               epochs: int = MAX_EPOCHS) -> np.ndarray:
    """Accuracy after each epoch ``(epochs,)`` of ``config`` on the task whose best learning
    rate is ``10 ** log_optimum``: the peak falls with the squared log-distance to it; wider
    models rise faster and a little higher; adam helps a little."""
    distance = math.log10(config["lr"]) - log_optimum
    peak = 0.92 - 0.09 * distance ** 2 + 0.04 * config["width"] \
        + (0.02 if config["optimizer"] == "adam" else 0.0)
    rate = 0.08 + 0.5 * config["width"] * (1.0 if distance < 0.5 else 0.5)
    steps = np.arange(1, epochs + 1)
    return np.clip(peak, 0.05, 0.99) * (1.0 - np.exp(-rate * steps))


def observed_curve(config: dict[str, Any], log_optimum: float, noise_seed: int) -> np.ndarray:
    """:func:`true_curve` plus seeded evaluation noise (std 0.005)."""
    text = json.dumps([round(config["lr"], 12), round(config["width"], 12), config["optimizer"]])
    key = zlib.crc32(text.encode())
    rng = np.random.default_rng([noise_seed, key])
    return np.clip(true_curve(config, log_optimum) + rng.normal(0, 0.005, MAX_EPOCHS), 0, 1)


def formula_trainable(config: dict[str, Any], log_optimum: float, noise_seed: int) -> None:
    """Reports ``acc`` per epoch with a checkpoint; resumes after its checkpoint's epoch."""
    from ray import tune

    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            start = json.loads((Path(folder) / "epoch.json").read_text())["epoch"]
    curve = observed_curve(config, log_optimum, noise_seed)
    for epoch in range(start + 1, MAX_EPOCHS + 1):
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "epoch.json").write_text(json.dumps({"epoch": epoch}))
            tune.report({METRIC: float(curve[epoch - 1]), "epoch": epoch},
                        checkpoint=tune.Checkpoint.from_directory(folder))


def _trainable(log_optimum: float, noise_seed: int):
    from ray import tune

    return tune.with_resources(tune.with_parameters(formula_trainable, log_optimum=log_optimum,
                                                    noise_seed=noise_seed), {"cpu": 1})


# ---------------------------------------------------------------------- history and import
def run_history(folder: Path, log_optimum: float, seed: int, samples: int = 20) -> Path:
    """A Tune experiment (random search + ASHA) on one history task; returns its folder."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator

    name = f"history_{seed}"
    tune.Tuner(
        _trainable(log_optimum, noise_seed=1000 + seed), param_space=param_space(),
        tune_config=tune.TuneConfig(
            metric=METRIC, mode="max", num_samples=samples,
            search_alg=BasicVariantGenerator(random_state=seed),
            scheduler=ASHAScheduler(max_t=MAX_EPOCHS, grace_period=2, reduction_factor=3)),
        run_config=tune.RunConfig(name=name, storage_path=str(folder), verbose=0)).fit()
    return folder / name


def import_history(experiments: list[Path], out: Path) -> Path:
    from at2_tune.databases.tune_import import ImportedTask, build_database, \
        read_tune_experiment
    from at2_tune.databases.user import write_user_database

    tasks = [ImportedTask(p.name, str(p), read_tune_experiment(p, METRIC)) for p in experiments]
    db = build_database(tasks, METRIC, "max", "training_iteration")
    return write_user_database(db, out, replace=True)


# ---------------------------------------------------------------------- tuning the new task
def tune_at2(log_optimum: float, seed: int, budget: int, prior: str | None,
             storage: Path) -> dict[str, Any]:
    from ray import tune

    from at2_tune.tune import AT2Scheduler, AT2Searcher

    searcher = AT2Searcher(prior=prior, seed=seed, max_epochs=MAX_EPOCHS, budget_epochs=budget,
                           fit_cache=None, n_candidates=100)
    started = time.perf_counter()
    tune.Tuner(
        _trainable(log_optimum, noise_seed=seed), param_space=param_space(),
        tune_config=tune.TuneConfig(metric=METRIC, mode="max", search_alg=searcher,
                                    scheduler=AT2Scheduler(searcher), num_samples=1000,
                                    reuse_actors=True),
        run_config=tune.RunConfig(name=f"at2_{prior is not None}_{seed}",
                                  storage_path=str(storage), verbose=0)).fit()
    coordinator = searcher.coordinator
    engine = coordinator.engine
    engine.condition()
    config = engine.candidates[engine.recommend()]
    return {"config": config, "epochs": coordinator.epochs_spent,
            "touched": len(coordinator.trials), "wall_s": time.perf_counter() - started}


def tune_asha(log_optimum: float, seed: int, budget: int, storage: Path) -> dict[str, Any]:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator

    from at2_tune.tune.budget import EpochBudgetStopper

    stopper = EpochBudgetStopper(budget, keep=(METRIC,))
    started = time.perf_counter()
    results = tune.Tuner(
        _trainable(log_optimum, noise_seed=seed), param_space=param_space(),
        tune_config=tune.TuneConfig(
            metric=METRIC, mode="max", num_samples=1000,
            search_alg=BasicVariantGenerator(random_state=seed, max_concurrent=1),
            scheduler=ASHAScheduler(max_t=MAX_EPOCHS, grace_period=1, reduction_factor=3)),
        run_config=tune.RunConfig(name=f"asha_{seed}", storage_path=str(storage), verbose=0,
                                  stop=stopper)).fit()
    best: dict[str, float] = {}
    for record in stopper.records:
        best[record.trial_id] = max(best.get(record.trial_id, -1.0), record.result[METRIC])
    configs = {r.metrics["trial_id"]: r.config for r in results}
    trial = max(best, key=best.get)
    return {"config": configs[trial], "epochs": stopper.spent, "touched": len(best),
            "wall_s": time.perf_counter() - started}


# ---------------------------------------------------------------------- scoring
def space_reference(log_optimum: float, seed: int = 0, count: int = 20000) -> tuple[float, float]:
    """Best and worst true final accuracy over ``count`` samples of the space."""
    rng = np.random.default_rng(seed)
    finals = [true_curve({"lr": float(10 ** rng.uniform(-4, -1)), "width": float(w),
                          "optimizer": o}, log_optimum)[-1]
              for w, o in zip(rng.uniform(0, 1, count), rng.choice(["adam", "sgd"], count))]
    return float(np.max(finals)), float(np.min(finals))


def score(config: dict[str, Any], log_optimum: float) -> dict[str, float]:
    best, worst = space_reference(log_optimum)
    final = float(true_curve(config, log_optimum)[-1])
    return {"final": final, "regret": best - final,
            "normalized_regret": (best - final) / (best - worst)}


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        stats = {"runs": len(mine)}
        for key in ("final", "regret", "normalized_regret", "touched", "epochs", "wall_s"):
            values = np.array([r[key] for r in mine], dtype=float)
            stats[key] = float(values.mean())
            stats[f"{key}_se"] = float(values.std(ddof=1) / math.sqrt(len(values))) \
                if len(values) > 1 else 0.0
        out[method] = stats
    return out


def paired_difference(rows: list[dict[str, Any]], a: str, b: str,
                      key: str = "normalized_regret") -> tuple[float, float]:
    """Mean and standard error of ``a - b`` over the test tasks, each task's seeds averaged
    first (AT2 with a prior can make the same decisions for every seed, so tasks, not runs,
    are the independent cases)."""
    tasks = sorted({r["task"] for r in rows})
    diffs = np.array([np.mean([r[key] for r in rows if r["task"] == t and r["method"] == a])
                      - np.mean([r[key] for r in rows if r["task"] == t and r["method"] == b])
                      for t in tasks])
    se = float(diffs.std(ddof=1) / math.sqrt(len(diffs))) if len(diffs) > 1 else 0.0
    return float(diffs.mean()), se


def markdown(summary: dict[str, dict[str, float]]) -> str:
    lines = ["| method | runs | final acc | regret | normalized regret | configs touched |",
             "| --- | --- | --- | --- | --- | --- |"]
    for method, s in summary.items():
        lines.append(f"| {method} | {s['runs']} | {s['final']:.4f} ± {s['final_se']:.4f} | "
                     f"{s['regret']:.4f} ± {s['regret_se']:.4f} | {s['normalized_regret']:.3f} "
                     f"± {s['normalized_regret_se']:.3f} | {s['touched']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--history-tasks", type=int, default=3)
    parser.add_argument("--test-tasks", type=int, default=4)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--budget", type=int, default=40)
    args = parser.parse_args(argv)
    import ray

    seeds = [int(s) for s in args.seeds.split(",")]
    rng = np.random.default_rng(12345)
    history_optima = rng.uniform(-3.0, -1.5, args.history_tasks)
    test_optima = rng.uniform(-3.0, -1.5, args.test_tasks)
    args.out.mkdir(parents=True, exist_ok=True)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    started = time.perf_counter()
    try:
        experiments = [run_history(args.out / "history", float(o), seed=1000 + i)
                       for i, o in enumerate(history_optima)]
        db = import_history(experiments, args.out / "prior-db")
        rows = []
        for task, optimum in enumerate(test_optima):
            for seed in seeds:
                runs = {"at2 + user prior": tune_at2(optimum, seed, args.budget, str(db),
                                                     args.out / "runs"),
                        "at2 (no prior)": tune_at2(optimum, seed, args.budget, None,
                                                   args.out / "runs"),
                        "random + asha": tune_asha(optimum, seed, args.budget, args.out / "runs")}
                for method, run in runs.items():
                    rows.append({"method": method, "task": task, "seed": seed,
                                 "log_optimum": float(optimum), **run,
                                 **score(run["config"], float(optimum))})
                    print(f"task {task} seed {seed} {method}: final {rows[-1]['final']:.4f}, "
                          f"normalized regret {rows[-1]['normalized_regret']:.3f}", flush=True)
    finally:
        ray.shutdown()
    summary = summarize(rows)
    diff = paired_difference(rows, "at2 + user prior", "at2 (no prior)")
    versus_asha = paired_difference(rows, "at2 + user prior", "random + asha")
    document = {"budget": args.budget, "max_epochs": MAX_EPOCHS,
                "history_log_optima": history_optima.tolist(),
                "test_log_optima": test_optima.tolist(), "seeds": seeds, "rows": rows,
                "summary": summary, "paired_prior_minus_no_prior": diff,
                "paired_prior_minus_random_asha": versus_asha,
                "wall_s": time.perf_counter() - started}
    (args.out / "results.json").write_text(json.dumps(document, indent=1, default=str))
    print(markdown(summary))
    print(f"paired normalized regret over test tasks: prior - no prior {diff[0]:+.3f} ± "
          f"{diff[1]:.3f}; prior - random + asha {versus_asha[0]:+.3f} ± {versus_asha[1]:.3f}")


if __name__ == "__main__":
    main()
