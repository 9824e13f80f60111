"""Syne Tune's DyHPO on the databases' tasks, each alone: the no-prior comparison's model-based
freeze-thaw baseline (issue 38), run in a measurement-only environment.

DyHPO (Wistuba et al. 2022) is a deep-kernel GP over (configuration, epoch) that resumes, one
step at a time, the trial with the highest expected improvement at its next epoch over the best
value observed at that epoch. Syne Tune 0.13.0 is not a dependency of at2-tune: it runs in a
throwaway virtual environment, from files this module exports in at2-tune's own environment.

    # 1. in at2-tune's environment: the curves (.npz) and configurations (.json) of a database
    python -m experiments.dyhpo_syne_tune export --database lcbench --out /tmp/dyhpo
    # 2. in a throwaway environment (syne-tune 0.13.0 needs pandas < 3 and scikit-learn):
    python3.11 -m venv /tmp/syne && /tmp/syne/bin/pip install "syne-tune[gpsearchers]==0.13.0" \\
        "pandas==2.2.3" "scikit-learn==1.5.2"
    OMP_NUM_THREADS=1 /tmp/syne/bin/python experiments/dyhpo_syne_tune.py run \\
        --database lcbench --dir /tmp/dyhpo --budget 200 --seeds 0,1 --out /tmp/dyhpo/lcbench.jsonl
    # (--workers 4: four trials at a time, for the comparison with 4 slots)
    # 3. in at2-tune's environment: DyHPO's column beside AT2 and the schedules
    python -m experiments.no_prior --database lcbench --budget 50,100,200 \\
        --dyhpo /tmp/dyhpo/lcbench.jsonl

Each run is DyHPO with its defaults (6 random configurations first; pauses after epoch 1 and
then every 2 epochs) on one task's curves (seed profile 0), restricted to the database's
configurations, one worker (``--workers``: more), in Syne Tune's tabulated simulator (``BlackboxTabular``,
``UserBlackboxBackend`` with checkpointing: a resumed trial goes on from its paused epoch).
Every epoch takes one time unit of the simulator's clock, so with several workers the trials
report in step. Every reported epoch is recorded in order until the budget is spent; the file
has one JSON line per run: ``{"database", "task", "seed", "budget", "workers",
"observations": [[config, epoch, value], ...], "seconds"}`` (no ``"workers"``: one). DyHPO does not know the budget, so the first B observations of a longer
run are the run with budget B (checked on one task of each database): one run of 200 epochs
serves B = 50, 100 and 200. On LCBench's 50 epochs DyHPO can start all 100 configurations
within 200 epochs (72 in the first 100 on APSFailure, seed 1), and Syne Tune 0.13.0 then fails
(``ValueError`` in ``generate_candidates_en_bulk``: no configuration left to start); there, runs
of ``--budget 100`` serve B = 50 and 100.

The configuration space given to DyHPO is the project's (``search_spaces``): log-scaled where
the project samples on a log scale, derived ratios (``max_lr``, ``eta_min``) log-uniform over
their encoded interval, and a parameter that is inactive in a configuration (HyperRec's nested
choices) set to the middle of its range, so the active choices tell the configurations apart.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

METRIC, RESOURCE, ELAPSED, MAX_EPOCHS = "value", "epoch", "elapsed", "epochs"


# ------------------------------------------------------- at2-tune's side (export, read back)
def domain_specs(space) -> dict[str, list[Any]]:
    """``{name: spec}`` of a project ``SearchSpace``: ``["choice", [choices]]``, or
    ``[kind, low, high, log]`` with kind ``"float"`` or ``"int"``."""
    from search_spaces.params import Categorical, Float, Integer, Ratio

    specs: dict[str, list[Any]] = {}
    for param in space.parameters:
        if isinstance(param, Categorical):
            specs[param.name] = ["choice", list(param.choices)]
        elif isinstance(param, Ratio):
            specs[param.name] = ["float", param.encode_low, param.encode_high, True]
        elif isinstance(param, (Integer, Float)):
            kind = "int" if isinstance(param, Integer) else "float"
            specs[param.name] = [kind, param.low, param.high, bool(param.log)]
        else:
            raise TypeError(f"no Syne Tune domain for {param!r}")
    return specs


def export(database: str, data_dir: str | None, out: Path) -> list[Path]:
    """Write ``OUT/<database>.npz`` (``curves`` ``(tasks, configurations, epochs)`` of seed
    profile 0, ``tasks``) and ``OUT/<database>.json`` (the space and the configurations)."""
    from at2_tune.databases import load_database
    from search_spaces.registry import get_space

    db = load_database(database, data_dir)
    out.mkdir(parents=True, exist_ok=True)
    curves = np.stack([db.task_curves(task, 0) for task in db.tasks])
    arrays, meta = out / f"{database}.npz", out / f"{database}.json"
    np.savez(arrays, curves=curves, tasks=np.array(db.tasks, dtype=str))
    meta.write_text(json.dumps({"space": domain_specs(get_space(db.space_name)),
                                "configs": [dict(c) for c in db.configs]}, indent=1))
    return [arrays, meta]


def read_runs(path: Path, database: str, curves_of, budget: int,
              workers: int = 1) -> dict[str, list[list[float]]]:
    """``{task: [values of each seed's run, in the order observed]}``: the first ``budget``
    epochs of the runs of ``database`` with ``workers`` workers in the JSON-lines file
    ``path``, sorted by seed. Where a
    (task, seed) was run more than once (a longer budget appended later), its longest run counts:
    a shorter one is its prefix.

    ``curves_of(task)`` gives the task's ``(configurations, epochs)`` curves; every observation
    must be the next epoch of its configuration and equal the curve's value there.

    Raises:
        ValueError: a run shorter than ``budget``, an epoch out of order, or a value that is
            not the database's (the file is from another database or seed profile).
    """
    longest: dict[tuple[str, int], tuple[int, dict[str, Any]]] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        run = json.loads(line)
        key = (run["task"], int(run["seed"]))
        if run["database"] == database and run.get("workers", 1) == workers and (
                key not in longest
                or len(run["observations"]) > len(longest[key][1]["observations"])):
            longest[key] = (number, run)
    runs: dict[str, list[list[float]]] = {}
    for (task, seed), (number, run) in sorted(longest.items(), key=lambda item: item[0][1]):
        where = f"{path} line {number} ({task}, seed {seed})"
        observations = run["observations"]
        if len(observations) < budget:
            raise ValueError(f"{where}: {len(observations)} epochs observed, fewer than the "
                             f"budget {budget}; run DyHPO with --budget {budget} or more")
        runs.setdefault(task, []).append(
            _checked_values(where, observations[:budget], curves_of(task)))
    return runs


def _checked_values(where: str, observations: Iterable[list], curves: np.ndarray) -> list[float]:
    trained: dict[int, int] = {}
    values = []
    for config, epoch, value in observations:
        config, epoch = int(config), int(epoch)
        if epoch != trained.get(config, 0) + 1:
            raise ValueError(f"{where}: configuration {config} reported epoch {epoch} after "
                             f"epoch {trained.get(config, 0)}; every epoch must be observed "
                             "once, in order")
        if value != curves[config, epoch - 1]:
            raise ValueError(f"{where}: configuration {config} epoch {epoch} has value {value}, "
                             f"the database {curves[config, epoch - 1]}: wrong database or "
                             "seed profile")
        trained[config] = epoch
        values.append(float(value))
    return values


# ------------------------------------------------------------- Syne Tune's side (run)
def neutral_value(spec: list[Any]) -> Any:
    """The value of an inactive parameter: the middle of its (log-)range, or the first choice."""
    if spec[0] == "choice":
        return spec[1][0]
    kind, low, high, log = spec
    middle = math.sqrt(low * high) if log else (low + high) / 2
    return round(middle) if kind == "int" else float(middle)


def complete_configs(space: Mapping[str, list[Any]],
                     configs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every configuration with a value for every parameter (inactive ones: :func:`neutral_value`);
    raises ``ValueError`` when two become equal."""
    complete = []
    for config in configs:
        values = {name: config.get(name) for name in space}
        complete.append({name: neutral_value(space[name]) if value is None else value
                         for name, value in values.items()})
    keys = {tuple(c.values()) for c in complete}
    if len(keys) != len(complete):
        raise ValueError("two configurations are equal once inactive parameters are filled in")
    return complete


def run_dyhpo(space: Mapping[str, list[Any]], configs: list[dict[str, Any]], curves: np.ndarray,
              seed: int, budget: int, workers: int = 1) -> tuple[list[list[Any]], float]:
    """One DyHPO run on ``curves`` ``(configurations, epochs)`` with ``workers`` trials at a
    time; returns the first ``budget`` observations ``[config, epoch, value]`` and the seconds
    it took."""
    import pandas as pd
    from syne_tune import Tuner
    from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback
    from syne_tune.blackbox_repository.blackbox_tabular import BlackboxTabular
    from syne_tune.blackbox_repository.simulated_tabular_backend import (
        UserBlackboxBackend,
    )
    from syne_tune.config_space import choice, lograndint, loguniform, randint, uniform
    from syne_tune.optimizer.baselines import DyHPO
    from syne_tune.tuner_callback import TunerCallback

    def domain(spec):
        if spec[0] == "choice":
            return choice(list(spec[1]))
        kind, low, high, log = spec
        if kind == "int":
            return (lograndint if log else randint)(low, high)
        return (loguniform if log else uniform)(low, high)

    names = list(space)
    n_configs, n_epochs = curves.shape
    config_space = {name: domain(spec) for name, spec in space.items()}
    evaluations = np.empty((n_configs, 1, n_epochs, 2))
    evaluations[:, 0, :, 0] = curves
    evaluations[:, 0, :, 1] = np.arange(1, n_epochs + 1)  # one time unit per epoch
    blackbox = BlackboxTabular(
        hyperparameters=pd.DataFrame(configs, columns=names), configuration_space=config_space,
        fidelity_space={RESOURCE: randint(1, n_epochs)}, objectives_evaluations=evaluations,
        fidelity_values=np.arange(1, n_epochs + 1), objectives_names=[METRIC, ELAPSED])
    backend = UserBlackboxBackend(blackbox=blackbox, elapsed_time_attr=ELAPSED,
                                  max_resource_attr=MAX_EPOCHS, seed=0,
                                  support_checkpointing=True)
    config_id = {tuple(c[n] for n in names): i for i, c in enumerate(configs)}
    observations: list[list[Any]] = []

    class Recorder(TunerCallback):
        def on_trial_result(self, trial, status, result, decision):
            key = tuple(trial.config[n] for n in names)
            observations.append([config_id[key], int(result[RESOURCE]), float(result[METRIC])])

    scheduler = DyHPO(dict(config_space, **{MAX_EPOCHS: n_epochs}), metric=METRIC, mode="max",
                      resource_attr=RESOURCE, max_resource_attr=MAX_EPOCHS, random_seed=seed,
                      search_options={"restrict_configurations": [
                          dict(c, **{MAX_EPOCHS: n_epochs}) for c in configs]})
    tuner = Tuner(trial_backend=backend, scheduler=scheduler,
                  stop_criterion=lambda status: len(observations) >= budget, n_workers=workers,
                  sleep_time=0, callbacks=[SimulatorCallback(), Recorder()], save_tuner=False,
                  results_update_interval=1e9, print_update_interval=1e9,
                  tuner_name=f"dyhpo-{seed}")
    started = time.time()
    try:
        tuner.run()
    finally:
        shutil.rmtree(tuner.tuner_path, ignore_errors=True)  # Syne Tune's own result files
    if len(observations) < budget:
        raise RuntimeError(f"DyHPO stopped after {len(observations)} of {budget} epochs")
    return observations[:budget], time.time() - started


def run(database: str, directory: Path, budget: int, seeds: list[int], tasks: list[str] | None,
        out: Path, workers: int = 1) -> None:
    """Append a line to ``out`` per (task, seed) not in it yet (an interrupted run resumes)."""
    import logging

    logging.getLogger("syne_tune").setLevel(logging.ERROR)
    with np.load(directory / f"{database}.npz", allow_pickle=False) as arrays:
        curves, names = arrays["curves"], [str(t) for t in arrays["tasks"]]
    meta = json.loads((directory / f"{database}.json").read_text())
    space = meta["space"]
    configs = complete_configs(space, meta["configs"])
    done = set()
    if out.exists():
        done = {(r["task"], r["seed"]) for r in map(json.loads, out.read_text().splitlines())
                if r["database"] == database and r["budget"] >= budget
                and r.get("workers", 1) == workers}
    for task in tasks or names:
        for seed in seeds:
            if (task, seed) in done:
                continue
            observations, seconds = run_dyhpo(space, configs, curves[names.index(task)], seed,
                                              budget, workers)
            line = {"database": database, "task": task, "seed": seed, "budget": budget,
                    "workers": workers, "observations": observations, "seconds": seconds}
            with out.open("a") as file:
                file.write(json.dumps(line) + "\n")
            print(f"{database} {task} seed {seed}: {seconds:.1f} s, "
                  f"{len({o[0] for o in observations})} configurations", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    exporting = commands.add_parser("export", help="at2-tune's environment: write the files")
    exporting.add_argument("--database", choices=["hyperrec", "lcbench"], required=True)
    exporting.add_argument("--data-dir", default=None)
    exporting.add_argument("--out", type=Path, required=True)
    running = commands.add_parser("run", help="Syne Tune's environment: run DyHPO")
    running.add_argument("--database", choices=["hyperrec", "lcbench"], required=True)
    running.add_argument("--dir", type=Path, required=True, help="the export's --out")
    running.add_argument("--budget", type=int, default=200)
    running.add_argument("--seeds", default="0,1")
    running.add_argument("--tasks", default=None, help="comma-separated (default: every task)")
    running.add_argument("--out", type=Path, required=True, help="JSON lines, appended to")
    running.add_argument("--workers", type=int, default=1, help="trials at a time")
    args = parser.parse_args(argv)
    if args.command == "export":
        for path in export(args.database, args.data_dir, args.out):
            print(path)
    else:
        run(args.database, args.dir, args.budget, [int(s) for s in args.seeds.split(",")],
            args.tasks.split(",") if args.tasks else None, args.out, args.workers)


if __name__ == "__main__":
    main()
