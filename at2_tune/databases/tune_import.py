"""Read past tuning runs into a :class:`~at2_tune.databases.user.UserDatabase`.

Two sources:

* a Ray Tune experiment folder (``storage_path/name``): every trial folder's ``params.json``
  (its config) and ``result.json`` (one JSON result per line, as Tune's default JSON logger
  writes them), plus ``at2-result.jsonl`` where the AT2 pair wrote one (see
  :data:`AT2_RESULTS_FILE`); nothing else is read, in particular no ``.pkl`` file;
* a finished ``at2-tune tune`` output folder: ``summary.json`` (the trials' configs) and
  ``trials/<trial_id>/metrics.jsonl``.

A trial's curve holds the metric at every epoch it reported (the first report of an epoch
counts); epochs it never reached stay unobserved (NaN), never filled in.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from at2_tune.databases.user import UserDatabase, UserTask
from at2_tune.errors import AT2Error
from search_spaces.errors import SearchSpaceError

PARAMS_FILE = "params.json"
RESULTS_FILE = "result.json"
AT2_RESULTS_FILE = "at2-result.jsonl"
"""Every result of a trial as ``AT2Scheduler`` received it, one JSON line each, appended in the
trial's folder. Tune's ``result.json`` loses the rows written since its last upload whenever a
paused trial resumes (its JSON logger copies the storage copy over the local file); this file
is never replaced, so an import of a freeze-thaw run sees every epoch."""
LOG_RANGE = 20.0
"""An inferred numeric range of positive values spanning at least this factor is log-scaled."""


@dataclass
class TrialCurve:
    """One trial: its configuration and its metric per epoch (``{epoch: value}``)."""

    trial: str
    config: dict[str, Any]
    values: dict[int, float] = field(default_factory=dict)


@dataclass
class ImportedTask:
    name: str
    source: str
    trials: list[TrialCurve]


# ---------------------------------------------------------------------- reading
def _json_lines(path: Path) -> Iterable[dict[str, Any]]:
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # the last line of a run that was killed while writing
        if isinstance(row, dict):
            yield row


def _curve_of(rows: Iterable[dict[str, Any]], metric: str, time_attr: str,
              where: str) -> dict[int, float]:
    values: dict[int, float] = {}
    for row in rows:
        epoch, value = row.get(time_attr), row.get(metric)
        if epoch is None or value is None:
            continue
        if isinstance(epoch, bool) or not isinstance(epoch, (int, float)) or epoch != int(epoch) \
                or epoch < 1:
            raise AT2Error(f"{where}: {time_attr}={epoch!r} is not an epoch number >= 1; pass "
                           "--time-attr with the result field that counts epochs")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise AT2Error(f"{where}: {metric}={value!r} is not a number; pass --metric with a "
                           "numeric result field")
        if math.isfinite(value):
            values.setdefault(int(epoch), float(value))
    return values


def read_tune_experiment(folder: str | Path, metric: str,
                         time_attr: str = "training_iteration") -> list[TrialCurve]:
    """Every trial of a Tune experiment folder.

    Raises:
        AT2Error: no trial folder, or no trial reported ``metric`` (names the fields seen).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise AT2Error(f"experiment folder {folder} does not exist; pass the folder Tune wrote "
                       "(storage_path/experiment name)")
    trial_dirs = sorted(p.parent for p in folder.glob(f"*/{PARAMS_FILE}")
                        if (p.parent / RESULTS_FILE).is_file())
    if not trial_dirs:
        raise AT2Error(f"{folder} holds no trial folders with {PARAMS_FILE} and {RESULTS_FILE}; "
                       "pass a Ray Tune experiment folder (storage_path/name) written with "
                       "Tune's default JSON logger")
    trials, seen = [], set()
    for trial_dir in trial_dirs:
        config = json.loads((trial_dir / PARAMS_FILE).read_text())
        rows = list(_json_lines(trial_dir / RESULTS_FILE))
        if (trial_dir / AT2_RESULTS_FILE).is_file():  # complete where result.json lost rows
            rows = list(_json_lines(trial_dir / AT2_RESULTS_FILE)) + rows
        for row in rows[:1]:
            seen.update(row)
        trials.append(TrialCurve(trial_dir.name, config,
                                 _curve_of(rows, metric, time_attr, str(trial_dir))))
    if not any(t.values for t in trials):
        fields = ", ".join(sorted(k for k in seen if k != "config")[:20])
        raise AT2Error(f"no trial of {folder} reported {metric!r} with {time_attr!r}; fields "
                       f"seen: {fields}; pass --metric (and --time-attr) accordingly")
    return trials


def read_at2_run(folder: str | Path, metric: str = "val_top1") -> tuple[dict, list[TrialCurve]]:
    """The summary and the trials of a finished ``at2-tune tune`` output folder."""
    folder = Path(folder)
    summary_path = folder / "summary.json"
    if not summary_path.is_file():
        raise AT2Error(f"{folder} has no summary.json: pass the --out folder of a finished "
                       "`at2-tune tune` run (or finish it with --resume first)")
    summary = json.loads(summary_path.read_text())
    trials = []
    for trial in summary["trials"]:
        path = folder / "trials" / trial["trial_id"] / "metrics.jsonl"
        rows = _json_lines(path) if path.is_file() else []
        values = _curve_of(rows, metric, "training_iteration", str(path))
        values = {e: v for e, v in values.items() if e <= trial["epochs"]}
        trials.append(TrialCurve(trial["trial_id"], trial["config"], values))
    return summary, trials


# ---------------------------------------------------------------------- building
def infer_space(configs: Sequence[dict[str, Any]], name: str = "imported"):
    """A search space that holds ``configs``: per parameter path, a categorical over the
    values seen (strings, booleans), an integer or float range ``[min, max]`` (log-scaled
    when positive and spanning >= 20x); a value that never changes is a constant."""
    from search_spaces import Categorical, Float, Integer, SearchSpace
    from search_spaces.paths import flatten

    flats = [flatten(c) for c in configs]
    keys = sorted({k for flat in flats for k in flat})
    partial = [k for k in keys if any(k not in flat for flat in flats)]
    if partial:
        raise AT2Error(f"parameter(s) {', '.join(partial)} appear in some trials only (a "
                       "conditional space); write the space with search_spaces and pass it "
                       "as --space FILE.json (SearchSpace.to_json)")
    parameters, constants = [], {}
    for key in keys:
        values = [flat[key] for flat in flats]
        distinct = sorted(set(values), key=repr)
        if len(distinct) == 1:
            constants[key] = distinct[0]
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            low, high = min(values), max(values)
            log = low > 0 and high / low >= LOG_RANGE
            if all(isinstance(v, int) for v in values):
                parameters.append(Integer(key, int(low), int(high), log=log))
            else:
                parameters.append(Float(key, float(low), float(high), log=log))
        else:
            parameters.append(Categorical(key, tuple(distinct)))
    return SearchSpace(name, parameters, constants)


def resolve_space(choice: str | None, configs: Sequence[dict[str, Any]]):
    """``--space``: ``hyperrec``/``lcbench``, a ``SearchSpace.to_json`` file, or ``None``
    (HyperRec when every config is a HyperRec config, else :func:`infer_space`)."""
    from search_spaces import HYPERREC_SPACE, SearchSpace, get_space

    if choice is None:
        try:
            for config in configs:
                HYPERREC_SPACE.validate(config)
            return HYPERREC_SPACE
        except SearchSpaceError:  # not a HyperRec history
            return infer_space(configs)
    if choice in ("hyperrec", "lcbench"):
        return get_space(choice)
    path = Path(choice)
    if not path.is_file():
        raise AT2Error(f"--space {choice!r} is neither 'hyperrec', 'lcbench' nor a JSON file "
                       "written with SearchSpace.to_json()")
    return SearchSpace.from_json(json.loads(path.read_text()))


def _canonical(space, config: dict[str, Any], where: str) -> dict[str, Any]:
    """``config`` in the space's vocabulary: as it is, or as ``space.to_param_space()``
    samples it (a user's random search over the space's Ray form, e.g. HyperRec's nested
    sampling keys)."""
    try:
        return space.validate(config)
    except SearchSpaceError as exc:
        try:
            return space.validate(space.from_ray_config(config))
        except (SearchSpaceError, KeyError, TypeError, ValueError, AttributeError):
            raise AT2Error(f"{where}: its config is not in the space {space.name!r}: "
                           f"{exc}") from None


def build_database(tasks: Sequence[ImportedTask], metric: str, mode: str, time_attr: str,
                   space=None) -> UserDatabase:
    """One task per imported run; the config axis is the union of every task's configs."""
    from search_spaces.keys import config_key

    if mode not in ("max", "min"):
        raise AT2Error(f"--mode {mode!r} must be 'max' or 'min'")
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise AT2Error(f"task names repeat ({', '.join(names)}); give each experiment its "
                       "own --task name (comma-separated, in order)")
    all_configs = [trial.config for task in tasks for trial in task.trials]
    space = resolve_space(space, all_configs) if not hasattr(space, "validate") else space
    canonical: dict[str, dict[str, Any]] = {}
    for task in tasks:
        for trial in task.trials:
            trial.config = _canonical(space, trial.config,
                                      f"{task.source}, trial {trial.trial}")
            canonical.setdefault(config_key(trial.config), trial.config)
    configs = list(canonical.values())
    index = {key: i for i, key in enumerate(canonical)}
    epochs = max((max(t.values) for task in tasks for t in task.trials if t.values), default=0)
    if epochs < 1:
        raise AT2Error("no trial reported any epoch; nothing to import")
    curves = np.full((len(tasks), len(configs), epochs), np.nan)
    for row, task in enumerate(tasks):
        for trial in task.trials:
            column = index[config_key(trial.config)]
            for epoch, value in trial.values.items():
                if np.isnan(curves[row, column, epoch - 1]):  # a repeated config: first trial
                    curves[row, column, epoch - 1] = value
    empty = [t.name for t, c in zip(tasks, curves) if np.isnan(c).all()]
    if empty:
        raise AT2Error(f"task(s) {', '.join(empty)} have no observed value; drop them or pass "
                       "the --metric they report")
    return UserDatabase(space, metric, mode, time_attr,
                        tuple(UserTask(t.name, t.source, len(t.trials)) for t in tasks),
                        tuple(configs), curves)


def coverage_rows(db: UserDatabase) -> list[dict[str, Any]]:
    """Per task: configurations run, epochs reached, share of its trials' epochs observed."""
    rows = []
    observed = db.observed()
    for task, cells in zip(db.tasks, observed):
        run = cells.any(axis=1)
        reached = cells.sum(axis=1)[run]
        rows.append({"task": task.name, "source": task.source, "trials": task.trials,
                     "configs": int(run.sum()), "epochs_max": int(reached.max(initial=0)),
                     "epochs_mean": float(reached.mean()) if reached.size else 0.0,
                     "coverage": float(cells[run].mean()) if run.any() else 0.0})
    return rows


def shared_configs(db: UserDatabase) -> np.ndarray:
    """``(n_tasks, n_tasks)`` number of configurations each pair of tasks both ran."""
    run = db.observed().any(axis=2).astype(np.int64)
    return run @ run.T
