"""Locating, verifying and fetching the release files of a database.

Resolution order for the directory that holds a release:
explicit ``data_dir`` argument > ``$AT2_DATA_DIR`` > the user cache (``~/.cache/at2-tune/data``)
> a download from the public release into the user cache. Every file's SHA-256 is checked against
the checksum pinned in :mod:`at2_tune.databases.registry` before anything is parsed.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from at2_tune import paths
from at2_tune.databases.registry import RELEASE_BASE_URL, DatabaseSpec, ReleaseFile
from at2_tune.errors import ChecksumError, DatabaseError, DatabaseNotFoundError

_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(data_dir: Path, release_file: ReleaseFile) -> Path:
    """Check that ``data_dir/release_file.local_path`` exists and matches its pinned checksum.

    Returns:
        The verified path.

    Raises:
        DatabaseNotFoundError: the file is missing.
        ChecksumError: the file's SHA-256 differs from the pinned one (truncated, corrupt, or
            not the public release).
    """
    path = Path(data_dir) / release_file.local_path
    if not path.is_file():
        raise DatabaseNotFoundError(
            f"{path}: file not found; fetch the release with `at2-tune data fetch "
            f"--data-dir {data_dir}` or point ${paths.DATA_DIR_ENV} at a folder that holds it.")
    actual = sha256_of(path)
    if actual != release_file.sha256:
        raise ChecksumError(
            f"{path}: SHA-256 is {actual} but the public release has {release_file.sha256} "
            f"({path.stat().st_size} bytes on disk); the file is truncated, corrupt or not the "
            f"release file: delete it and run `at2-tune data fetch --data-dir {data_dir}`.")
    return path


def _has_any(data_dir: Path, files: Iterable[ReleaseFile]) -> bool:
    return any((data_dir / f.local_path).exists() for f in files)


@dataclass(frozen=True)
class DataLocation:
    """The directory a release was found in, and why that one was chosen."""

    data_dir: Path
    source: str
    """``argument``, ``$AT2_DATA_DIR`` or ``cache``."""


def locate(spec: DatabaseSpec, data_dir: str | os.PathLike | None = None) -> DataLocation | None:
    """Find the directory that holds ``spec``'s release, without downloading.

    An explicit ``data_dir`` or ``$AT2_DATA_DIR`` is used as given (a missing file there is then
    reported by :func:`verify_file`, not silently replaced by another copy); the user cache is
    used if it holds any file of the release. ``None`` when nothing is found. Paths are made
    absolute, so they stay valid in worker processes that run in another directory.
    """
    if data_dir is not None:
        return DataLocation(Path(data_dir).expanduser().resolve(), "argument")
    if os.environ.get(paths.DATA_DIR_ENV):
        return DataLocation(Path(os.environ[paths.DATA_DIR_ENV]).expanduser().resolve(),
                            f"${paths.DATA_DIR_ENV}")
    cached = paths.cached_data_dir()
    if _has_any(cached, spec.files):
        return DataLocation(cached, "cache")
    return None


def verified_files(spec: DatabaseSpec, data_dir: str | os.PathLike | None = None,
                   download: bool = True) -> dict[str, Path]:
    """Paths of ``spec``'s configs, profiles and pairs files, each checked against its checksum.

    Follows the resolution order of this module; downloads into the user cache when no copy is
    found and ``download`` is true.
    """
    location = locate(spec, data_dir)
    if location is None:
        if not download:
            raise DatabaseNotFoundError(
                f"no copy of the {spec.name} release found: not in ${paths.DATA_DIR_ENV} (unset) "
                f"nor in the cache {paths.cached_data_dir()}; run `at2-tune data fetch {spec.name}`.")
        fetch(spec, paths.cached_data_dir())
        location = DataLocation(paths.cached_data_dir(), "cache")
    return {"configs": verify_file(location.data_dir, spec.configs),
            "profiles": verify_file(location.data_dir, spec.profiles),
            "pairs": verify_file(location.data_dir, spec.pairs)}


def release_url(release_file: ReleaseFile, base_url: str | None = None) -> str:
    """The public URL of ``release_file`` (``$AT2_DATA_URL`` overrides the base)."""
    base = base_url or os.environ.get(paths.DATA_URL_ENV) or RELEASE_BASE_URL
    return base.rstrip("/") + "/" + release_file.remote_path


def fetch(spec: DatabaseSpec, dest_dir: str | os.PathLike, base_url: str | None = None,
          progress: bool = True) -> list[Path]:
    """Download every file of ``spec`` that is missing or invalid in ``dest_dir``.

    Each download goes to a temporary file in the destination folder, is checked against the
    pinned checksum, and only then renamed into place: a failed or interrupted fetch leaves no
    partial file. A present file with a wrong checksum is kept as ``<name>.bad`` before it is
    replaced, so nothing on disk is lost.

    Returns:
        The paths of the verified files.
    """
    dest = Path(dest_dir).expanduser()
    fetched = []
    for release_file in spec.files:
        try:
            fetched.append(verify_file(dest, release_file))
            continue
        except ChecksumError:
            target = dest / release_file.local_path
            shutil.move(target, target.with_name(target.name + ".bad"))
        except DatabaseNotFoundError:
            pass
        fetched.append(_download(release_url(release_file, base_url), dest, release_file, progress))
    return fetched


def _download(url: str, dest: Path, release_file: ReleaseFile, progress: bool) -> Path:
    target = dest / release_file.local_path
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            _stream(url, out, release_file.local_path, progress)
        actual = sha256_of(tmp)
        if actual != release_file.sha256:
            raise ChecksumError(
                f"{url}: downloaded {tmp.stat().st_size} bytes with SHA-256 {actual}, expected "
                f"{release_file.sha256}; the download was truncated or the remote file changed. "
                "Nothing was written; try again, or set $AT2_DATA_URL to a mirror.")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _stream(url: str, out, label: str, progress: bool) -> None:
    from tqdm import tqdm

    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=label, file=sys.stderr,
                      disable=not progress, leave=False) as bar:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise DatabaseError(f"{url}: download failed ({exc}); check the network, or copy the "
                            f"release files into a folder and set ${paths.DATA_DIR_ENV} to it.") from exc
