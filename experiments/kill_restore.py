"""Reliability of freeze-thaw tuning under driver crashes: SIGKILL the Tune driver, restore, repeat.

    python -m experiments.kill_restore --concurrency 1,4 --kills 3 --budget 100 --out DIR

For each concurrency K, a replay tuning run (HyperRec, CIFAR100, AT2Searcher + AT2Scheduler
through ``tune.Tuner``) is started in a child process; after a random number of new results
(seeded) the driver's whole process group is killed with SIGKILL and the run is brought back
with ``Tuner.restore``, ``--kills`` times, then it runs to its end. The final state (the
searcher's, read back with ``Searcher.restore_from_dir``) must hold exactly ``--budget``
observations, none twice, every trial's epochs contiguous, never more than K trials running.
Prints one table row per K and writes ``DIR/summary.json``.

The same module is the driver (``python -m experiments.kill_restore driver ...``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

EXPERIMENT = "kill_restore"
PRIOR_TASKS = ("CIFAR10", "SUN397SUB1")
TEST_TASK = "CIFAR100"


# ---------------------------------------------------------------------- the driver (child process)
def _searcher(data_dir: str, budget: int, concurrency: int):
    from at2_tune.core.prior import PriorData
    from at2_tune.core.settings import AT2Settings, ModelSettings
    from at2_tune.databases import load_database
    from at2_tune.tune import AT2Searcher

    settings = AT2Settings(ModelSettings(n_inducing=32, offline_epochs=1, hidden_dim=8,
                                          feature_dim=4))
    prior = PriorData.from_database(load_database("hyperrec", data_dir), PRIOR_TASKS)
    return AT2Searcher(prior=prior, settings=settings, budget_epochs=budget,
                       max_concurrent=concurrency, fit_cache=None, metric="val_acc", mode="max")


def _progress_callback(progress_file: Path):
    from ray.tune import Callback
    from ray.tune.experiment import Trial

    class Progress(Callback):
        """Appends one line per result and per step: results seen, trials running (Tune's view)."""

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self._write({"result": [trial.trial_id, result.get("epoch")]})

        def on_step_end(self, iteration, trials, **info):
            running = sum(t.status == Trial.RUNNING for t in trials)
            self._write({"running": running})

        def _write(self, row: dict) -> None:
            with open(progress_file, "a") as handle:
                handle.write(json.dumps(row) + "\n")

    return Progress()


def run_driver(mode: str, storage: str, data_dir: str, budget: int, concurrency: int,
               seconds_per_epoch: float, out: str) -> None:
    """Run (``fresh``) or restore (``restore``) the tuning run; at its end write ``out``: the
    coordinator's trace and budget as the searcher saved them."""
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")  # Tune's default is ~10 s or more
    import ray
    from ray import tune

    from at2_tune.tune import AT2Scheduler
    from trainers.curve_trainable import make_replay_trainable

    ray.init(num_cpus=max(2, concurrency), include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    trainable = make_replay_trainable("hyperrec", TEST_TASK, seconds_per_epoch=seconds_per_epoch,
                                      data_dir=data_dir)
    experiment = os.path.join(storage, EXPERIMENT)
    if mode == "fresh":
        searcher = _searcher(data_dir, budget, concurrency)
        tuner = tune.Tuner(trainable, tune_config=tune.TuneConfig(
            search_alg=searcher, scheduler=AT2Scheduler(searcher), num_samples=1000,
            max_concurrent_trials=concurrency, reuse_actors=True),
            run_config=tune.RunConfig(name=EXPERIMENT, storage_path=storage, verbose=0,
                                      callbacks=[_progress_callback(Path(out).with_suffix(".progress"))]))
    else:
        tuner = tune.Tuner.restore(experiment, trainable=trainable, resume_unfinished=True)
    results = tuner.fit()
    final = _searcher(data_dir, budget, concurrency)
    final.restore_from_dir(experiment)
    coordinator = final.coordinator
    with open(out, "w") as handle:
        json.dump({"trace": [[r.trial_id, r.candidate, r.epoch] for r in coordinator.trace],
                   "epochs_spent": coordinator.epochs_spent, "budget": coordinator.budget_epochs,
                   "errors": len(results.errors)}, handle)


# ---------------------------------------------------------------------- the kill loop (parent)
def start_driver(mode: str, storage: Path, data_dir: Path, budget: int, concurrency: int,
                 seconds_per_epoch: float, out: Path) -> subprocess.Popen:
    """The driver in its own process group (killed as a whole, Ray's own processes included)."""
    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "experiments.kill_restore", "driver", mode, str(storage),
               str(data_dir), str(budget), str(concurrency), str(seconds_per_epoch), str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(command, cwd=root, start_new_session=True, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def results_seen(progress: Path) -> int:
    if not progress.is_file():
        return 0
    return sum('"result"' in line for line in progress.read_text().splitlines())


def kill_when(driver: subprocess.Popen, storage: Path, progress: Path, at_results: int,
              timeout_s: float = 300) -> bool:
    """SIGKILL the driver's process group once the experiment can be restored and ``at_results``
    results were seen in total; False when the run ended first."""
    from ray import tune

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if driver.poll() is not None:
            return False
        if results_seen(progress) >= at_results and tune.Tuner.can_restore(storage / EXPERIMENT):
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
            return True
        time.sleep(0.05)
    os.killpg(driver.pid, signal.SIGKILL)
    raise TimeoutError(f"the driver made no progress in {timeout_s:.0f} s")


def tune_state_readable(storage: Path) -> bool:
    """Whether Tune's newest experiment state file parses. Tune copies it to the storage path
    without an atomic rename, so a kill during the copy truncates it; ``Tuner.restore`` then
    silently starts the experiment over (an upstream limitation AT2 cannot repair)."""
    files = sorted((storage / EXPERIMENT).glob("experiment_state-*.json"))
    try:
        json.loads(files[-1].read_text())
        return True
    except (IndexError, ValueError):
        return False


def check(final: dict[str, Any], progress: Path, concurrency: int) -> dict[str, Any]:
    """The figures of one run: observations, repeats, gaps, overshoot, most trials running."""
    trace = [tuple(row) for row in final["trace"]]
    pairs = [(candidate, epoch) for _, candidate, epoch in trace]
    by_trial: dict[str, list[int]] = {}
    for trial_id, _, epoch in trace:
        by_trial.setdefault(trial_id, []).append(epoch)
    gaps = sum(epochs != list(range(1, len(epochs) + 1)) for epochs in by_trial.values())
    running = [json.loads(line)["running"] for line in progress.read_text().splitlines()
               if '"running"' in line]
    return {"observations": len(trace), "budget": final["budget"],
            "repeated": len(pairs) - len(set(pairs)),
            "lost": max(0, final["budget"] - len(trace)),
            "overshoot": max(0, len(trace) - final["budget"]),
            "non_contiguous_trials": gaps, "trials": len(by_trial),
            "max_running_seen_by_tune": max(running, default=0), "concurrency": concurrency,
            "errors": final["errors"]}


def run_case(concurrency: int, kills: int, budget: int, seconds_per_epoch: float,
             data_dir: Path, out: Path, rng: np.random.Generator) -> dict[str, Any]:
    storage = out / f"k{concurrency}"
    storage.mkdir(parents=True, exist_ok=True)
    final_json, progress = storage / "final.json", storage / "final.progress"
    survived, truncated, started = 0, 0, time.perf_counter()
    driver = start_driver("fresh", storage, data_dir, budget, concurrency, seconds_per_epoch, final_json)
    for _ in range(kills):
        at = results_seen(progress) + int(rng.integers(1, max(2, budget // (kills + 1))))
        if not kill_when(driver, storage, progress, at):
            break
        survived += 1
        truncated += not tune_state_readable(storage)
        driver = start_driver("restore", storage, data_dir, budget, concurrency,
                              seconds_per_epoch, final_json)
    _, stderr = driver.communicate(timeout=900)
    if driver.returncode != 0:
        raise RuntimeError(f"the driver failed (K={concurrency}):\n{stderr.decode()[-3000:]}")
    figures = check(json.loads(final_json.read_text()), progress, concurrency)
    return {**figures, "kills": survived, "tune_state_truncated": truncated,
            "wall_s": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "driver":
        mode, storage, data_dir, budget, concurrency, seconds, out = argv[1:8]
        run_driver(mode, storage, data_dir, int(budget), int(concurrency), float(seconds), out)
        return 0
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", default="1,4", help="comma-separated K values")
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--seconds-per-epoch", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("AT2_DATA_DIR"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.data_dir is None:
        parser.error("--data-dir (or $AT2_DATA_DIR) must name the folder of the HyperRec release")
    rng = np.random.default_rng(args.seed)
    rows = [run_case(int(k), args.kills, args.budget, args.seconds_per_epoch,
                     args.data_dir.resolve(), args.out.resolve(), rng)
            for k in args.concurrency.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(rows, indent=2))
    columns = ("concurrency", "kills", "tune_state_truncated", "observations", "budget", "repeated", "lost", "overshoot",
               "non_contiguous_trials", "max_running_seen_by_tune", "trials", "errors", "wall_s")
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(f"{row[c]:.0f}" if isinstance(row[c], float) else str(row[c]) for c in columns))
    bad = [r for r in rows if r["repeated"] or r["lost"] or r["overshoot"] or r["non_contiguous_trials"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
