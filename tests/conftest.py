"""Shared test set-up: an isolated cache, one temporary folder for Ray and its workers, and
the release data from $AT2_DATA_DIR."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from at2_tune import paths


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory):
    """Point the user cache at a temporary folder for the whole session (never ~/.cache)."""
    saved = {key: os.environ.get(key) for key in (paths.CACHE_DIR_ENV, paths.DATA_DIR_ENV)}
    os.environ[paths.CACHE_DIR_ENV] = str(tmp_path_factory.mktemp("at2-cache"))
    if saved[paths.DATA_DIR_ENV]:  # resolve a relative path once, before any test changes dir
        os.environ[paths.DATA_DIR_ENV] = str(Path(saved[paths.DATA_DIR_ENV]).resolve())
    yield Path(os.environ[paths.CACHE_DIR_ENV])
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session", autouse=True)
def ray_temp_dir():
    """Ray's session folders (logs, sockets, spilled objects: 8 MB per session, left in /tmp/ray
    otherwise) and the temporary files of every process the suite starts (the trainers'
    checkpoint staging folders, which a SIGKILLed trial cannot remove) go to one folder,
    removed when the session ends. Short, under /tmp: Ray's socket paths must stay < 108
    bytes."""
    folder = tempfile.mkdtemp(prefix="at2r", dir="/tmp")
    saved = {key: os.environ.get(key) for key in ("RAY_TMPDIR", "TMPDIR")}
    os.environ["RAY_TMPDIR"] = os.environ["TMPDIR"] = folder  # read by Ray and child processes
    yield Path(folder)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def release_dir() -> Path:
    """The folder holding the public HyperRec/LCBench release (``$AT2_DATA_DIR``)."""
    value = os.environ.get(paths.DATA_DIR_ENV)
    if not value:
        pytest.skip(f"${paths.DATA_DIR_ENV} is not set: run `AT2_DATA_DIR=../shared/data make test`")
    path = Path(value)
    assert (path / "hyperrec" / "profiles.pkl").is_file(), f"${paths.DATA_DIR_ENV}={path} has no release"
    return path


@pytest.fixture(scope="session")
def hyperrec(release_dir):
    from at2_tune.databases import load_database

    return load_database("hyperrec", release_dir)


@pytest.fixture(scope="session")
def lcbench(release_dir):
    from at2_tune.databases import load_database

    return load_database("lcbench", release_dir)


@pytest.fixture(scope="session")
def lcbench_as_released(lcbench, release_dir):
    """LCBench with the release's 52 values per curve, read from its file: the network
    evaluated before training (at chance on every task) first, then the 50 epochs the
    ``lcbench`` database keeps, and the last one again."""
    import numpy as np

    from at2_tune.databases import LearningCurveDatabase
    from at2_tune.databases.safe_pickle import safe_load_file

    profiles = safe_load_file(release_dir / "lcbench" / "profiles.pkl")[0]
    curves = np.array([[profiles[task][config] for config in range(lcbench.n_configs)]
                       for task in lcbench.tasks], dtype=np.float64)[None]
    return LearningCurveDatabase(name="lcbench", tasks=lcbench.tasks, configs=lcbench.configs,
                                 raw_configs=lcbench.raw_configs, curves=curves,
                                 pairs=lcbench.pairs, space_name=lcbench.space_name)
