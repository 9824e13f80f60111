"""Where at2-tune keeps its caches and where it looks for data."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Callable

DATA_DIR_ENV = "AT2_DATA_DIR"
"""Environment variable naming a directory that holds the database release files."""
CACHE_DIR_ENV = "AT2_CACHE_DIR"
"""Environment variable overriding the user cache directory (default ``~/.cache/at2-tune``)."""
DATA_URL_ENV = "AT2_DATA_URL"
"""Environment variable overriding the base URL of the public release (for mirrors)."""


def cache_dir() -> Path:
    """The user cache: ``$AT2_CACHE_DIR``, else ``$XDG_CACHE_HOME/at2-tune``, else ``~/.cache/at2-tune``."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "at2-tune"


def cached_data_dir() -> Path:
    """Where ``at2-tune data fetch`` puts downloaded release files by default."""
    return cache_dir() / "data"


def converted_dir() -> Path:
    """Where the safe ``.npz`` + JSON conversions of the releases are kept."""
    return cache_dir() / "converted"


def atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write ``path`` through ``write(handle)`` into a temporary file beside it, then rename it
    into place: readers see the old file or the whole new one, never a part."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
