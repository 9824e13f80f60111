"""Priors shaped like a team's real tuning histories, cut from a learning-curve database.

A team's history is a set of Ray Tune experiments, one per earlier task, each random search with
ASHA over its own configurations: most curves stop after a few epochs, a few reach the last one,
and two tasks rarely share a configuration. :func:`history_database` builds such a prior from the
database's full curves:

* each prior task gets ``configs`` configurations of the grid, drawn at random per task
  (``overlap="independent"``) or disjoint across the tasks (``overlap="none"``, the
  continuous-space case);
* each task's trials run one after another, in the drawn order, and stop where Ray's
  ``ASHAScheduler`` (grace period 1, reduction factor 3, ``max_t`` = the database's epochs)
  would stop them (:func:`asha_stops`), or at the last epoch (``scheduler="fifo"``).

The result is a ``prior import`` database (``at2_tune.databases.user``): written with
:func:`write_history`, it is read back through the same loader as a user's.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from at2_tune.bench.methods import GRACE_PERIOD, REDUCTION_FACTOR  # the bench's own ASHA
from at2_tune.errors import AT2Error

OVERLAPS = ("independent", "none")
SCHEDULERS = ("asha", "fifo")


@dataclass(frozen=True)
class HistoryOptions:
    """How the history of each prior task is drawn (``at2-tune bench --history-*``)."""

    configs: int = 25
    overlap: str = "independent"
    scheduler: str = "asha"

    def __post_init__(self) -> None:
        if self.configs < 1:
            raise AT2Error(f"--history-configs {self.configs} must be at least 1")
        if self.overlap not in OVERLAPS:
            raise AT2Error(f"--history-overlap {self.overlap!r} is not one of "
                           f"{', '.join(OVERLAPS)}")
        if self.scheduler not in SCHEDULERS:
            raise AT2Error(f"--history-scheduler {self.scheduler!r} is not one of "
                           f"{', '.join(SCHEDULERS)}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def asha_rungs(max_t: int, grace_period: int = GRACE_PERIOD,
               reduction_factor: int = REDUCTION_FACTOR) -> list[int]:
    """The milestones of Ray's ``ASHAScheduler`` (one bracket), ascending: ``grace_period *
    reduction_factor ** k`` for ``k < int(log(max_t / grace_period) / log(rf) + 1)``."""
    count = int(np.log(max_t / grace_period) / np.log(reduction_factor) + 1)
    return [grace_period * reduction_factor ** k for k in range(count)]


def asha_stops(curves: np.ndarray, grace_period: int = GRACE_PERIOD,
               reduction_factor: int = REDUCTION_FACTOR) -> np.ndarray:
    """``(n,)`` epochs each trial trains when trials ``curves`` ``(n, E)`` (higher is better)
    run one after another under Ray's ``ASHAScheduler`` with ``max_t = E``.

    At each milestone a trial's value is compared with the values recorded there by the trials
    before it: below their ``1 - 1 / reduction_factor`` percentile, it stops; its value is
    recorded either way. A trial that reaches ``max_t`` stops there."""
    n_trials, n_epochs = curves.shape
    rungs = asha_rungs(n_epochs, grace_period, reduction_factor)
    recorded: dict[int, list[float]] = {milestone: [] for milestone in rungs}
    stops = np.full(n_trials, n_epochs)
    for trial in range(n_trials):
        for epoch in range(1, n_epochs + 1):
            if epoch >= n_epochs:
                break
            if epoch not in recorded:
                continue
            value = float(curves[trial, epoch - 1])
            earlier = recorded[epoch]
            cutoff = np.nanpercentile(earlier, (1 - 1 / reduction_factor) * 100) \
                if earlier else None
            earlier.append(value)
            if cutoff is not None and value < cutoff:
                stops[trial] = epoch
                break
    return stops


def draw_configs(n_configs: int, n_tasks: int, options: HistoryOptions,
                 rng: np.random.Generator) -> list[np.ndarray]:
    """Each prior task's configurations (grid indices, in trial order)."""
    if options.overlap == "none":
        if options.configs * n_tasks > n_configs:
            raise AT2Error(f"--history-overlap none needs {options.configs} x {n_tasks} tasks "
                           f"= {options.configs * n_tasks} distinct configurations, but the "
                           f"grid has {n_configs}; lower --history-configs or --prior-sizes, "
                           "or use --history-overlap independent")
        order = rng.permutation(n_configs)
        return [order[i * options.configs:(i + 1) * options.configs] for i in range(n_tasks)]
    if options.configs > n_configs:
        raise AT2Error(f"--history-configs {options.configs} exceeds the grid's {n_configs} "
                       "configurations")
    return [rng.choice(n_configs, size=options.configs, replace=False) for _ in range(n_tasks)]


def history_seed(database: str, test_task: str, train_tasks: Sequence[str], seed_profile: int,
                 options: HistoryOptions, draw_seed: int) -> list[int]:
    """The seed of a case's histories: the same case and options draw the same histories."""
    text = json.dumps([database, test_task, list(train_tasks), seed_profile, options.to_json(),
                       draw_seed])
    return [draw_seed, int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)]


@dataclass(frozen=True)
class History:
    """One prior task's trials in the order they ran: grid configurations and epochs trained."""

    task: str
    configs: np.ndarray
    stops: np.ndarray


def draw_histories(db, train_tasks: Sequence[str], seed_profile: int, options: HistoryOptions,
                   seed: Sequence[int]) -> list[History]:
    """Every prior task's history (module docstring), drawn from ``seed``."""
    rng = np.random.default_rng(list(seed))
    histories = []
    for task, configs in zip(train_tasks, draw_configs(db.n_configs, len(train_tasks), options,
                                                       rng)):
        curves = db.task_curves(task, seed_profile)[configs]
        stops = asha_stops(curves) if options.scheduler == "asha" else \
            np.full(len(configs), db.n_epochs)
        histories.append(History(task, np.asarray(configs), stops))
    return histories


def history_curves(db, histories: Sequence[History], seed_profile: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The ``(T, C', E)`` curves the histories observed (NaN where no trial ran) over the ``C'``
    grid configurations some history trained, and those configurations, in order of first
    appearance (task by task, trial by trial): the table of :func:`history_database`."""
    used = np.array(list(dict.fromkeys(int(c) for h in histories for c in h.configs)))
    column = {config: i for i, config in enumerate(used)}
    table = np.full((len(histories), len(used), db.n_epochs), np.nan)
    for row, history in enumerate(histories):
        curves = db.task_curves(history.task, seed_profile)
        for config, stop in zip(history.configs, history.stops):
            table[row, column[int(config)], :stop] = curves[config, :stop]
    return table, used


def history_database(db, train_tasks: Sequence[str], seed_profile: int,
                     options: HistoryOptions, seed: Sequence[int]):
    """The prior tasks' histories as a ``prior import`` database (``UserDatabase``) over the
    grid's configurations that some history trained (in order of first appearance, task by
    task and trial by trial, as ``at2-tune prior import`` orders the same histories' Tune
    experiments, :func:`write_tune_experiments`); NaN where no trial ran."""
    from at2_tune.databases.user import UserDatabase, UserTask
    from search_spaces import get_space

    histories = draw_histories(db, train_tasks, seed_profile, options, seed)
    table, used = history_curves(db, histories, seed_profile)
    tasks = tuple(UserTask(h.task, f"{db.name} history ({options.scheduler}, "
                                   f"{options.configs} trials)", options.configs)
                  for h in histories)
    return UserDatabase(get_space(db.space_name), "val_acc", "max", "training_iteration",
                        tasks, tuple(db.configs[i] for i in used), table)


def write_tune_experiments(db, histories: Sequence[History], seed_profile: int,
                           folder: Path) -> list[Path]:
    """The histories as the Ray Tune experiment folders a user would have left, one per prior
    task under ``folder``: a trial folder per trial with ``params.json`` (the config as
    ``space.to_param_space()`` samples it) and ``result.json`` (``val_acc`` and
    ``training_iteration`` per epoch it trained), for ``at2-tune prior import``."""
    from search_spaces import get_space

    space = get_space(db.space_name)
    experiments = []
    for history in histories:
        experiment = folder / history.task
        curves = db.task_curves(history.task, seed_profile)
        for number, (config, stop) in enumerate(zip(history.configs, history.stops)):
            trial = experiment / f"trial_{number:05d}"
            trial.mkdir(parents=True)
            (trial / "params.json").write_text(json.dumps(space.to_ray_sample(
                db.configs[int(config)])))
            rows = [{"val_acc": float(curves[config, epoch - 1]), "training_iteration": epoch}
                    for epoch in range(1, int(stop) + 1)]
            (trial / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
        experiments.append(experiment)
    return experiments


def write_history(db, train_tasks: Sequence[str], seed_profile: int, options: HistoryOptions,
                  seed: Sequence[int], folder: Path) -> Path:
    """Write the histories to ``folder`` (kept when it exists: the same case, the same files)."""
    from at2_tune.databases.user import write_user_database

    if not folder.exists():
        write_user_database(history_database(db, train_tasks, seed_profile, options, seed),
                            folder)
    return folder


def load_history_prior(folder: Path):
    """The histories as AT2's ``PriorData``, through the ``prior import`` loader."""
    from at2_tune.core.prior import PriorData
    from at2_tune.databases.user import load_user_database

    return PriorData.from_user_database(load_user_database(folder))


def case_history(db, job, folder: Path):
    """A bench job's prior tasks as histories: written to ``folder`` in the ``prior import``
    format and read back through its loader, as a user's history would be."""
    options = HistoryOptions(**{k: v for k, v in job.history.items() if k != "draw_seed"})
    seed = history_seed(db.name, job.test_task, job.train_tasks, job.seed_profile, options,
                        int(job.history.get("draw_seed", 0)))
    return load_history_prior(write_history(db, job.train_tasks, job.seed_profile, options,
                                            seed, folder))


def decision_sources(history, grid_configs: Sequence[dict[str, Any]],
                     trained: Sequence[tuple[int, int]]) -> dict[str, float]:
    """Where the decisions ``trained`` (``(grid config, epoch)`` per query) came from: the share
    of queries at a cell (configuration and epoch) some history observed, at a configuration
    some history trained but beyond the epochs it reached (the model's extrapolation along the
    curve), and at a configuration no history trained (the model's reach across
    configurations)."""
    observed = np.zeros((len(grid_configs), history.n_epochs), dtype=bool)
    ours, theirs = history.columns_on(grid_configs)
    observed[theirs] = history.observed.any(axis=0)[ours]
    trained_configs = observed.any(axis=1)
    counts = {"observed_cell": 0, "beyond_history": 0, "new_config": 0}
    for config, epoch in trained:
        if observed[config, epoch - 1]:
            counts["observed_cell"] += 1
        elif trained_configs[config]:
            counts["beyond_history"] += 1
        else:
            counts["new_config"] += 1
    total = max(len(trained), 1)
    return {name: count / total for name, count in counts.items()}
