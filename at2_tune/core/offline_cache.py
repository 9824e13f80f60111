"""Amortization: an offline fit on a set of prior tasks is saved once and reused by later runs.

A saved fit is the engine's state right after :meth:`AT2Engine.fit_offline` (model, optimizer,
task statistics and RNG states, as tensors and plain values; loaded with
``torch.load(weights_only=True)``), next to a JSON file describing it. The file name is a hash
of everything the fit depends on: the prior data's fingerprint, the candidates, the space, the
settings, the seed and the state format.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from at2_tune import paths

if TYPE_CHECKING:
    from at2_tune.core.engine import AT2Engine

log = logging.getLogger(__name__)


def default_fit_cache() -> Path:
    """``~/.cache/at2-tune/fits`` (follows ``$AT2_CACHE_DIR``)."""
    return paths.cache_dir() / "fits"


def fit_key(engine: "AT2Engine") -> str:
    """Hash of everything an offline fit depends on."""
    from at2_tune.core.engine import STATE_VERSION

    digest = hashlib.sha256()
    digest.update(json.dumps({"state_version": STATE_VERSION, "space": engine.space.name,
                              "settings": engine.settings.offline_json(), "seed": engine.seed,
                              "candidates": engine.candidates}, sort_keys=True).encode())
    digest.update(engine.raw_prior.fingerprint().encode())
    return digest.hexdigest()[:24]


def load_or_fit(engine: "AT2Engine", cache_dir: str | os.PathLike) -> bool:
    """Restore ``engine``'s offline fit from ``cache_dir``, or fit and save it there.

    Returns:
        True when a saved fit was reused.
    """
    directory = Path(cache_dir)
    key = fit_key(engine)
    state_path, meta_path = directory / f"{key}.pt", directory / f"{key}.json"
    if state_path.is_file() and meta_path.is_file():
        try:
            state = torch.load(state_path, weights_only=True)
            saved = type(engine.settings).from_json(state["settings"])
            if saved.offline_json() != engine.settings.offline_json():
                raise ValueError("the saved fit was made with different offline settings")
            # settings that only act online (beta, acquisition, ...) may differ from the saved ones
            engine.load_state_dict({**state, "settings": engine.settings.to_json()})
            return True
        except Exception as exc:  # a damaged cache file is derived data: refit
            log.warning("ignoring unreadable offline fit %s (%s); refitting", state_path, exc)
    started = time.perf_counter()
    engine.fit_offline()
    meta = {"key": key, "space": engine.space.name, "prior_tasks": list(engine.prior.tasks),
            "prior_source": engine.raw_prior.source, "prior_fingerprint": engine.raw_prior.fingerprint(),
            "seed": engine.seed, "settings": engine.settings.to_json(),
            "fit_seconds": time.perf_counter() - started,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    directory.mkdir(parents=True, exist_ok=True)
    _atomic_write(state_path, lambda handle: torch.save(engine.state_dict(), handle))
    _atomic_write(meta_path, lambda handle: handle.write(json.dumps(meta, indent=2).encode()))
    return False


def _atomic_write(path: Path, write) -> None:
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
