"""Parse a verified release once into a safe cache: ``curves.npz`` + ``meta.json``.

The cache lives in ``~/.cache/at2-tune/converted/<name>-<key>/`` where the key is derived from
the pinned checksums of the source files and the cache format version, so a cache can only be
reused for exactly the files it was built from. A cache directory is built under a temporary
name and renamed into place in one step: a failed conversion leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from at2_tune.databases.registry import DatabaseSpec
from at2_tune.databases.safe_pickle import safe_load_file
from at2_tune.errors import DatabaseError

log = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = 2
"""2: LCBench's curves hold its 50 trained epochs (1 kept the release's 52 values)."""
_CURVES_FILE = "curves.npz"
_META_FILE = "meta.json"


@dataclass(frozen=True)
class ConvertedRelease:
    """The content of a release in plain types: what the cache stores."""

    tasks: tuple[str, ...]
    raw_configs: tuple[dict[str, Any], ...]
    curves: np.ndarray
    """float64 ``[seed, task, config, epoch]``."""
    pairs: tuple[tuple[tuple[str, ...], str], ...]


def parse_release(spec: DatabaseSpec, files: Mapping[str, Path]) -> ConvertedRelease:
    """Parse verified release files (``configs``, ``profiles``, ``pairs``) with the safe unpickler."""
    raw_configs = _parse_configs(spec, files["configs"])
    tasks, curves = _parse_profiles(spec, files["profiles"], n_configs=len(raw_configs))
    pairs = _parse_pairs(spec, files["pairs"], tasks)
    return ConvertedRelease(tasks, raw_configs, curves, pairs)


def _parse_configs(spec: DatabaseSpec, path: Path) -> tuple[dict[str, Any], ...]:
    configs = safe_load_file(path)
    if not isinstance(configs, Mapping) or sorted(configs) != list(range(len(configs))):
        raise DatabaseError(f"{path}: expected a dict from config ids 0..N-1 to configurations")
    if len(configs) != spec.n_configs:
        raise DatabaseError(f"{path}: holds {len(configs)} configurations, the {spec.name} "
                            f"release has {spec.n_configs}")
    return tuple(dict(configs[i]) for i in range(len(configs)))


def _parse_profiles(spec: DatabaseSpec, path: Path, n_configs: int) -> tuple[tuple[str, ...], np.ndarray]:
    profiles = safe_load_file(path)
    if not isinstance(profiles, Mapping) or sorted(profiles) != list(range(spec.n_seeds)):
        found = sorted(profiles) if isinstance(profiles, Mapping) else type(profiles).__name__
        raise DatabaseError(f"{path}: expected seed profiles 0..{spec.n_seeds - 1}, found {found}")
    tasks = tuple(sorted(profiles[0]))
    curves = np.full((spec.n_seeds, len(tasks), n_configs, spec.n_epochs), np.nan)
    for seed, by_task in profiles.items():
        if tuple(sorted(by_task)) != tasks:
            raise DatabaseError(f"{path}: seed profile {seed} has tasks {sorted(by_task)}, "
                                f"profile 0 has {list(tasks)}")
        for t, task in enumerate(tasks):
            for config_id, values in by_task[task].items():
                curve = np.asarray(values, dtype=np.float64)
                if not 0 <= config_id < n_configs or curve.shape != (spec.values_per_curve,):
                    raise DatabaseError(
                        f"{path}: profile {seed}, task {task!r}, config {config_id!r} has "
                        f"{curve.shape} values; expected config ids 0..{n_configs - 1} "
                        f"with {spec.values_per_curve} values each")
                curves[seed, t, config_id] = curve[spec.first_epoch:
                                                   spec.first_epoch + spec.n_epochs]
    if len(tasks) != spec.n_tasks or np.isnan(curves).any() or not np.isfinite(curves).all():
        raise DatabaseError(f"{path}: expected {spec.n_tasks} tasks with finite curves for every "
                            f"config; found {len(tasks)} tasks, "
                            f"{int((~np.isfinite(curves)).sum())} missing or non-finite values")
    return tasks, curves


def _parse_pairs(spec: DatabaseSpec, path: Path, tasks: tuple[str, ...]) -> tuple:
    try:
        entries = json.loads(path.read_text())[spec.release_name]
        pairs = tuple((tuple(train.split(",")), test) for train, test in entries)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DatabaseError(f"{path}: expected {{{spec.release_name!r}: [[\"T1,T2,...\", \"TEST\"], "
                            f"...]}} ({type(exc).__name__}: {exc})") from exc
    unknown = sorted({t for train, test in pairs for t in (*train, test)} - set(tasks))
    if unknown:
        raise DatabaseError(f"{path}: pairs name tasks {unknown} that {spec.name} does not have")
    return pairs


def cache_key(spec: DatabaseSpec) -> str:
    """Directory name of ``spec``'s converted cache (depends on the pinned checksums)."""
    digest = hashlib.sha256(f"v{CACHE_FORMAT_VERSION}".encode())
    for release_file in spec.files:
        digest.update(release_file.sha256.encode())
    return f"{spec.name}-v{CACHE_FORMAT_VERSION}-{digest.hexdigest()[:16]}"


def write_cache(release: ConvertedRelease, directory: Path) -> None:
    """Write ``release`` to ``directory`` atomically (nothing is left behind on failure)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    try:
        buffer = io.BytesIO()
        np.savez(buffer, curves=release.curves)
        (tmp / _CURVES_FILE).write_bytes(buffer.getvalue())
        meta = {"format_version": CACHE_FORMAT_VERSION, "tasks": list(release.tasks),
                "raw_configs": list(release.raw_configs),
                "pairs": [[list(train), test] for train, test in release.pairs],
                "curves_sha256": hashlib.sha256(buffer.getvalue()).hexdigest()}
        (tmp / _META_FILE).write_text(json.dumps(meta))
        try:
            os.rename(tmp, directory)
        except OSError:  # another process finished the same conversion first
            if not (directory / _META_FILE).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_cache(directory: Path) -> ConvertedRelease | None:
    """The release cached in ``directory``, or ``None`` when there is no valid cache.

    A damaged cache (it is derived data) is removed with a warning so that it gets rebuilt.
    """
    if not (directory / _META_FILE).is_file():
        return None
    try:
        meta = json.loads((directory / _META_FILE).read_text())
        data = (directory / _CURVES_FILE).read_bytes()
        if meta["format_version"] != CACHE_FORMAT_VERSION or \
                hashlib.sha256(data).hexdigest() != meta["curves_sha256"]:
            raise ValueError("checksum or format version mismatch")
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            curves = npz["curves"]
        return ConvertedRelease(tuple(meta["tasks"]), tuple(meta["raw_configs"]), curves,
                                tuple((tuple(train), test) for train, test in meta["pairs"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("removing damaged database cache %s (%s); it will be rebuilt", directory, exc)
        shutil.rmtree(directory, ignore_errors=True)
        return None
