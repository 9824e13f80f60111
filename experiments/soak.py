"""A long live run, watched: does the driver hold steady, and does the run's folder grow with the
checkpoints kept rather than with the epochs?

    OMP_NUM_THREADS=1 AT2_DATA_DIR=../shared/data python -m experiments.soak --out results/soak \\
        -- --dataset digits --image-size 16 --budget-epochs 200 --concurrency 2

Starts ``at2-tune tune`` (everything after ``--``, plus ``--out OUT/run``) as a child process
and samples, every ``--interval`` seconds, the driver's resident memory and open file
descriptors (``/proc/<pid>``) and the epochs reported so far (``OUT/run/trials``); writes
``OUT/soak.csv`` and ``OUT/soak.json`` and prints a table: the driver after the first
``--warmup`` epochs against its last sample, and the run folder's size against the checkpoints
it holds (Linux only).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from experiments.live_compare import split_tune_args


def driver_sample(pid: int) -> tuple[float, int] | None:
    """``(resident MB, open file descriptors)`` of process ``pid``; ``None`` once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        descriptors = len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    resident_kb = next(int(line.split()[1]) for line in status.splitlines()
                       if line.startswith("VmRSS:"))
    return resident_kb / 1024.0, descriptors


def epochs_reported(run: Path) -> int:
    """Results written so far to ``run/trials/*/metrics.jsonl`` (one per reported epoch)."""
    return sum(len(path.read_text().splitlines())
               for path in (run / "trials").glob("*/metrics.jsonl"))


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def checkpoints(experiment: Path) -> dict[str, list[Path]]:
    """Each trial folder of the experiment and the checkpoint folders it holds."""
    return {trial.name: sorted(trial.glob("checkpoint_*"))
            for trial in sorted(experiment.iterdir()) if trial.is_dir()
            and not trial.name.startswith(".")}


def summarize(samples: list[dict], warmup: int, experiment: Path) -> dict:
    """The driver after ``warmup`` epochs and when the last epoch was reported (later samples
    are of its shutdown), with its peak in between; the run folder and its checkpoints."""
    after = next((s for s in samples if s["epochs"] >= warmup), samples[0])
    final = max(s["epochs"] for s in samples)
    last = next(s for s in samples if s["epochs"] == final)
    between = [s for s in samples if after["seconds"] <= s["seconds"] <= last["seconds"]]
    held = checkpoints(experiment)
    checkpoint_bytes = sum(folder_bytes(c) for paths in held.values() for c in paths)
    return {
        "warmup_epochs": after["epochs"], "final_epochs": last["epochs"],
        "rss_mb": [after["rss_mb"], last["rss_mb"]],
        "rss_change": last["rss_mb"] / after["rss_mb"] - 1.0,
        "open_files": [after["open_files"], last["open_files"]],
        "open_files_change": last["open_files"] / after["open_files"] - 1.0,
        "peak_rss_mb": max(s["rss_mb"] for s in between),
        "peak_open_files": max(s["open_files"] for s in between),
        "trials": len(held), "checkpoints": sum(len(p) for p in held.values()),
        "most_checkpoints_per_trial": max((len(p) for p in held.values()), default=0),
        "checkpoint_bytes": checkpoint_bytes, "experiment_bytes": folder_bytes(experiment),
    }


def table(result: dict) -> str:
    mb = 1024.0 ** 2
    rows = [("driver resident memory (MB)", f"{result['rss_mb'][0]:.0f}",
             f"{result['rss_mb'][1]:.0f}", f"{100 * result['rss_change']:+.1f}%",
             f"{result['peak_rss_mb']:.0f}"),
            ("driver open files", str(result["open_files"][0]), str(result["open_files"][1]),
             f"{100 * result['open_files_change']:+.1f}%", str(result["peak_open_files"]))]
    lines = [f"| | after {result['warmup_epochs']} epochs | after {result['final_epochs']} "
             "epochs | change | peak in between |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    lines += ["", f"run folder: {result['experiment_bytes'] / mb:.0f} MB, of it "
              f"{result['checkpoint_bytes'] / mb:.0f} MB in {result['checkpoints']} checkpoints "
              f"of {result['trials']} trials (at most {result['most_checkpoints_per_trial']} "
              "per trial)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv, tune_args = split_tune_args(argv)
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    parser.add_argument("--warmup", type=int, default=20,
                        help="epochs after which the driver's baseline is taken (default 20)")
    args = parser.parse_args(argv)
    if "--out" in tune_args:
        parser.error("--out is set by the soak (OUT/run); leave it out after --")
    run = args.out / "run"
    args.out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    with open(args.out / "tune.log", "w") as log:
        driver = subprocess.Popen([sys.executable, "-m", "at2_tune.cli", "tune", *tune_args,
                                   "--out", str(run)], env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
        started, samples = time.monotonic(), []
        while driver.poll() is None:
            sample = driver_sample(driver.pid)
            if sample is not None:
                samples.append({"seconds": round(time.monotonic() - started, 1),
                                "epochs": epochs_reported(run), "rss_mb": round(sample[0], 1),
                                "open_files": sample[1]})
            time.sleep(args.interval)
    if driver.returncode != 0 or not samples:
        print(f"at2-tune tune exited {driver.returncode}; see {args.out / 'tune.log'}")
        return driver.returncode or 1
    with open(args.out / "soak.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(samples[0]))
        writer.writeheader()
        writer.writerows(samples)
    summary = json.loads((run / "summary.json").read_text())
    result = summarize(samples, args.warmup, Path(summary["experiment"]))
    result["wall_s"] = round(time.monotonic() - started, 1)
    (args.out / "soak.json").write_text(json.dumps(result, indent=1))
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
