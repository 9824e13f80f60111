"""Prior databases built by users from their own tuning history (``at2-tune prior``).

A database folder holds three files, no pickles:

* ``curves.npz``: one float64 array ``curves[task, config, epoch]`` of the metric as reported
  (``epoch`` index ``e`` = the value after ``e + 1`` epochs); NaN marks every cell that was
  never observed (a trial stopped early, or a configuration another task did not run). Missing
  cells are never filled in. Read with ``allow_pickle=False``.
* ``database.json``: the format version, the metric and its mode, the field that counts
  epochs, the search space (``SearchSpace.to_json``), the configurations (the config axis) and
  the tasks (the task axis: name, where it came from, trials).
* ``SHA256SUMS``: the SHA-256 of both files; a database whose files do not match is refused.

Tasks need not share configurations: the union of all tasks' configurations is the config
axis. AT2's task kernel is measured from the cells two tasks both observed; two tasks that
share at most one cell get the fixed unmatched distance (see
``at2_tune.model.task_statistics.UNMATCHED_DISTANCE``), so what transfers between them goes
through the hyperparameter kernel alone.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from at2_tune.databases.files import sha256_of
from at2_tune.errors import AT2Error, ChecksumError, DatabaseError, DatabaseNotFoundError

FORMAT = "at2-tune-prior-database"
VERSION = 1
CURVES_FILE = "curves.npz"
META_FILE = "database.json"
SUMS_FILE = "SHA256SUMS"


@dataclass(frozen=True)
class UserTask:
    """One task of a user database: its name, where its curves came from, how many trials."""

    name: str
    source: str
    trials: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "trials": self.trials}


@dataclass(frozen=True, eq=False)
class UserDatabase:
    """Learning curves of a user's earlier tuning runs (one task per run or experiment).

    Attributes:
        space: the ``search_spaces.SearchSpace`` the configurations belong to.
        metric, mode: the reported metric and whether higher (``max``) or lower is better.
        time_attr: the result field that counted epochs.
        tasks: the task axis.
        configs: the config axis (the union of the tasks' configurations).
        curves: float64 ``(n_tasks, n_configs, n_epochs)``; NaN = not observed.
    """

    space: Any
    metric: str
    mode: str
    time_attr: str
    tasks: tuple[UserTask, ...]
    configs: tuple[dict[str, Any], ...]
    curves: np.ndarray

    def __post_init__(self) -> None:
        if self.mode not in ("max", "min"):
            raise DatabaseError(f"mode {self.mode!r} must be 'max' or 'min'")
        expected = (len(self.tasks), len(self.configs))
        if self.curves.ndim != 3 or self.curves.shape[:2] != expected:
            raise DatabaseError(f"curves have shape {self.curves.shape}; expected "
                                f"({expected[0]} tasks, {expected[1]} configs, epochs)")
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise DatabaseError(f"task names repeat: {names}; every task needs its own name")

    @property
    def n_epochs(self) -> int:
        return self.curves.shape[2]

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tasks)

    def observed(self) -> np.ndarray:
        """``(n_tasks, n_configs, n_epochs)`` bool: cells with a value."""
        return ~np.isnan(self.curves)

    def with_task(self, task: UserTask, configs: Sequence[dict[str, Any]],
                  curves: np.ndarray) -> "UserDatabase":
        """A copy with one more task: ``curves`` ``(len(configs), epochs)`` (NaN: unobserved)."""
        from search_spaces.keys import config_key

        if task.name in self.task_names:
            raise AT2Error(f"task {task.name!r} is already in the database (tasks: "
                           f"{', '.join(self.task_names)}); give the new one another --task name")
        merged = list(self.configs)
        index = {config_key(c): i for i, c in enumerate(merged)}
        for config in configs:
            if config_key(config) not in index:
                index[config_key(config)] = len(merged)
                merged.append(dict(config))
        epochs = max(self.n_epochs, curves.shape[1])
        table = np.full((len(self.tasks) + 1, len(merged), epochs), np.nan)
        table[:-1, :len(self.configs), :self.n_epochs] = self.curves
        rows = [index[config_key(c)] for c in configs]
        table[-1, rows, :curves.shape[1]] = curves
        return UserDatabase(self.space, self.metric, self.mode, self.time_attr,
                            self.tasks + (task,), tuple(merged), table)

    def to_meta(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "metric": self.metric, "mode": self.mode,
                "time_attr": self.time_attr, "space": self.space.to_json(),
                "n_epochs": self.n_epochs, "tasks": [t.to_json() for t in self.tasks],
                "configs": list(self.configs)}


def write_user_database(db: UserDatabase, folder: str | os.PathLike,
                        replace: bool = False) -> Path:
    """Write ``db`` to ``folder`` (all files into a new folder beside it, then moved into
    place, so a crash leaves the old database or the new one, never a mix).

    Raises:
        AT2Error: ``folder`` exists and ``replace`` is false.
    """
    folder = Path(folder)
    if folder.exists() and not replace:
        raise AT2Error(f"{folder} already exists; choose a new --out folder, or add a task to "
                       "that database with `at2-tune prior add RUN_DIR --db FOLDER`")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        with open(staging / CURVES_FILE, "wb") as handle:
            np.savez(handle, curves=np.ascontiguousarray(db.curves, dtype=np.float64))
        (staging / META_FILE).write_text(json.dumps(db.to_meta(), indent=1, sort_keys=True))
        sums = "".join(f"{sha256_of(staging / name)}  {name}\n"
                       for name in (CURVES_FILE, META_FILE))
        (staging / SUMS_FILE).write_text(sums)
        old = folder.with_name(f".{folder.name}.old")
        if folder.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(folder, old)
        os.replace(staging, folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def load_user_database(folder: str | os.PathLike) -> UserDatabase:
    """Read and verify a database folder.

    Raises:
        DatabaseNotFoundError: the folder or one of its files is missing.
        ChecksumError: a file does not match ``SHA256SUMS`` (changed or truncated).
        DatabaseError: malformed contents (names the file and what is wrong).
    """
    from search_spaces import SearchSpace

    folder = Path(folder)
    if not folder.is_dir():
        raise DatabaseNotFoundError(f"prior database {folder} does not exist; build one with "
                                    "`at2-tune prior import EXPERIMENT_DIR... --out FOLDER`")
    _verify_sums(folder)
    meta = _read_meta(folder / META_FILE)
    with np.load(folder / CURVES_FILE, allow_pickle=False) as arrays:
        if "curves" not in arrays:
            raise DatabaseError(f"{folder / CURVES_FILE} has no 'curves' array")
        curves = np.array(arrays["curves"], dtype=np.float64)
    if np.isinf(curves).any():
        raise DatabaseError(f"{folder / CURVES_FILE} holds infinite values; only finite values "
                            "and NaN (unobserved) are allowed")
    try:
        tasks = tuple(UserTask(str(t["name"]), str(t["source"]), int(t["trials"]))
                      for t in meta["tasks"])
        space = SearchSpace.from_json(meta["space"])
        return UserDatabase(space, str(meta["metric"]), str(meta["mode"]),
                            str(meta["time_attr"]), tasks, tuple(meta["configs"]), curves)
    except (KeyError, TypeError, ValueError) as exc:
        raise DatabaseError(f"{folder / META_FILE} is malformed ({exc!r}); rebuild the "
                            "database with `at2-tune prior import`") from None


def _verify_sums(folder: Path) -> None:
    sums_path = folder / SUMS_FILE
    if not sums_path.is_file():
        raise DatabaseNotFoundError(f"{sums_path} is missing: the database cannot be verified; "
                                    "rebuild it with `at2-tune prior import`")
    expected: dict[str, str] = {}
    for line in sums_path.read_text().splitlines():
        digest, _, name = line.partition("  ")
        expected[name.strip()] = digest.strip()
    for name in (CURVES_FILE, META_FILE):
        path = folder / name
        if name not in expected:
            raise ChecksumError(f"{sums_path} lists no checksum for {name}; rebuild the "
                                "database with `at2-tune prior import`")
        if not path.is_file():
            raise DatabaseNotFoundError(f"{path} is missing; rebuild the database with "
                                        "`at2-tune prior import`")
        actual = sha256_of(path)
        if actual != expected[name]:
            raise ChecksumError(
                f"{path} has SHA-256 {actual}, but {SUMS_FILE} says {expected[name]}: the file "
                "was changed or truncated after it was written; restore it from a copy or "
                "rebuild the database with `at2-tune prior import`")


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DatabaseError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DatabaseError(f"{path} is not an at2-tune prior database (format "
                            f"{meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("version") != VERSION:
        raise DatabaseError(f"{path}: database version {meta.get('version')!r} is not "
                            f"supported (this at2-tune reads version {VERSION})")
    return meta
