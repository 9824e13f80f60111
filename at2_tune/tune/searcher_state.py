"""The files of ``AT2Searcher``'s saved state (no decision is made here).

Tune saves a searcher into its experiment folder (``searcher-state-<time>.pkl``, written by
``AT2Searcher.save`` with ``torch.save`` of tensors and JSON-able values; it is read back with
``weights_only=True``, so no code is unpickled) and copies the folder to the storage path file
by file. A driver killed during that copy leaves a truncated file; :func:`write_state` therefore
also writes a whole backup next to it, atomically, and :func:`newest_state` takes the newest
state that loads. AT2's recommendation is written beside them as JSON
(``at2_tune.recommendation``), for a reader without the searcher.
"""

from __future__ import annotations

import glob
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch

from at2_tune import paths
from at2_tune.errors import AT2Error
from at2_tune.recommendation import RECOMMENDATION_FILE

SEARCHER_STATE_VERSION = 4
BACKUP_FILE = "at2-searcher-state.backup.pt"
log = logging.getLogger(__name__)


def write_state(state: dict[str, Any], checkpoint_path: str | os.PathLike,
                recommendation: dict[str, Any] | None) -> None:
    """``state`` to ``checkpoint_path`` and, atomically, to :data:`BACKUP_FILE` next to it;
    ``recommendation`` (``None``: none yet) to :data:`RECOMMENDATION_FILE` there."""
    torch.save(state, checkpoint_path)
    folder = Path(checkpoint_path).parent
    paths.atomic_write(folder / BACKUP_FILE, lambda handle: torch.save(state, handle))
    if recommendation is not None:
        text = json.dumps(recommendation, indent=1, default=float)
        paths.atomic_write(folder / RECOMMENDATION_FILE,
                           lambda handle: handle.write(text.encode()))


def read_state(checkpoint_path: str | os.PathLike) -> dict[str, Any]:
    """The state saved at ``checkpoint_path``, of this version (else a clear error)."""
    return checked(torch.load(checkpoint_path, weights_only=True), checkpoint_path)


def newest_state(checkpoint_dir: str | os.PathLike, pattern: str) -> tuple[dict[str, Any], str]:
    """The newest state of ``checkpoint_dir`` that loads, among Tune's files (``pattern``, a
    glob) and the backup, and its file; unreadable (truncated) files are skipped with a
    warning."""
    files = glob.glob(os.path.join(checkpoint_dir, pattern))
    files.append(os.path.join(checkpoint_dir, BACKUP_FILE))
    states = []
    for path in files:
        try:
            states.append((torch.load(path, weights_only=True), path))
        except FileNotFoundError:
            continue
        except Exception as exc:  # noqa: BLE001 - a damaged copy: another one is whole
            log.warning("skipping unreadable AT2Searcher state %s (%s)", path, exc)
    if not states:
        raise AT2Error(f"no readable AT2Searcher state in {checkpoint_dir}; the experiment "
                       "cannot continue with its AT2 state: start a new run")
    state, path = max(states, key=lambda pair: tuple(pair[0].get("saved", (0, 0))))
    return checked(state, path), path


def checked(state: dict[str, Any], checkpoint_path: str | os.PathLike) -> dict[str, Any]:
    """``state`` if its version is :data:`SEARCHER_STATE_VERSION`, else a clear error."""
    if state.get("version") != SEARCHER_STATE_VERSION:
        raise AT2Error(f"{checkpoint_path}: AT2Searcher state version "
                       f"{state.get('version')!r} is not supported (expected "
                       f"{SEARCHER_STATE_VERSION}; states saved before at2-tune split its "
                       "settings into model and policy settings cannot continue: start "
                       "a new run)")
    return state
