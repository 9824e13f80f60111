"""Load a :class:`LearningCurveDatabase` by name: verify, convert once, then reuse the cache."""

from __future__ import annotations

import os
from typing import Any, Callable

from at2_tune import paths
from at2_tune.databases.convert import cache_key, parse_release, read_cache, write_cache
from at2_tune.databases.database import LearningCurveDatabase, TrainTestPair
from at2_tune.databases.files import verified_files
from at2_tune.databases.registry import get_spec
from at2_tune.errors import DatabaseError, SearchSpaceError


def _config_converter(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    from search_spaces import hyperrec, lcbench

    return {"hyperrec": hyperrec.from_database_config,
            "lcbench": lcbench.from_database_config}[name]


def load_database(name: str, data_dir: str | os.PathLike | None = None,
                  download: bool = True) -> LearningCurveDatabase:
    """Load database ``name`` (``hyperrec`` or ``lcbench``).

    The release files are looked up in ``data_dir``, else ``$AT2_DATA_DIR``, else the user
    cache, else downloaded (when ``download`` is true); each is checked against its pinned
    SHA-256 before use. The first load parses the files with a restricted unpickler and writes
    a safe ``.npz`` + JSON cache that later loads reuse.

    Raises:
        UnknownDatabaseError, DatabaseNotFoundError, ChecksumError, UnsafePickleError,
        DatabaseError: with a message naming the file or value and the fix.
    """
    spec = get_spec(name)
    files = verified_files(spec, data_dir, download=download)
    cache_dir = paths.converted_dir() / cache_key(spec)
    release = read_cache(cache_dir)
    if release is None:
        release = parse_release(spec, files)
        write_cache(release, cache_dir)
    convert = _config_converter(spec.name)
    try:
        configs = tuple(convert(raw) for raw in release.raw_configs)
    except SearchSpaceError as exc:
        raise DatabaseError(f"{files['configs']}: a configuration does not fit the "
                            f"{spec.name} search space: {exc}") from exc
    return LearningCurveDatabase(
        name=spec.name, tasks=release.tasks, configs=configs,
        raw_configs=release.raw_configs, curves=release.curves,
        pairs=tuple(TrainTestPair(train, test) for train, test in release.pairs),
        space_name=spec.name)
