"""Staging folders of trials: the trainer's files outside Tune's trial folder, and their cleanup.

A trial stages its run (``run.json``, the metric logs, the checkpoint of the last epoch) in a
temporary folder and removes it when it returns. A trial whose process is killed (Tune stopping
a run after Ctrl-C, ``ray.kill``, a node's OOM killer) cannot remove it: a whole checkpoint
stays in the temporary folder. So each staging folder is named after the host and the process
that owns it, ``at2-trial-<host>-<pid>-<random>``, and :func:`remove_orphaned` removes the
folders of this host whose process has ended: every trial calls it before it stages, and
``at2-tune tune`` calls it after its run (when its trials' processes have ended).

No Ray imports.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

PREFIX = "at2-trial-"
_NAME = re.compile(rf"^{re.escape(PREFIX)}(?P<host>.+)-(?P<pid>\d+)-[A-Za-z0-9_]+$")


def _host() -> str:
    """This host's name as it appears in a staging folder's name (one token, no ``-``)."""
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists (another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_orphaned(folder: str | Path | None = None) -> list[Path]:
    """Remove the staging folders in ``folder`` (default: the temporary folder) whose owning
    process on this host has ended; returns the folders removed.

    Folders of other hosts (a temporary folder shared over the network), of live processes and
    named otherwise (older at2-tune versions, other tools) are kept. A folder that cannot be
    removed (another user's) is skipped.
    """
    folder = Path(folder if folder is not None else tempfile.gettempdir())
    host = _host()
    removed: list[Path] = []
    for path in sorted(folder.glob(f"{PREFIX}*")):
        match = _NAME.match(path.name)
        if (match is None or match["host"] != host or not path.is_dir()
                or _process_alive(int(match["pid"]))):
            continue
        try:
            shutil.rmtree(path)
        except OSError:
            continue
        removed.append(path)
    return removed


@contextlib.contextmanager
def staging_folder() -> Iterator[Path]:
    """A new staging folder of this process, removed on exit; orphaned ones are removed first."""
    remove_orphaned()
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{_host()}-{os.getpid()}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
