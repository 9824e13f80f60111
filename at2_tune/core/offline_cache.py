"""Amortization: an offline fit on a set of prior tasks is saved once and reused by later runs.

A saved fit is the engine's state right after :meth:`AT2Engine.fit_offline` (model, optimizer,
task statistics and RNG states, as tensors and plain values; loaded with
``torch.load(weights_only=True)``), next to a JSON file describing it. The file name is the
engine's identity key (``AT2Engine.identity``): a hash of the space's JSON, the prior data's
fingerprint, the candidates, the offline settings, the seed and the state format.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class FitCache:
    """A folder of saved offline fits. Everywhere in at2-tune, ``fit_cache=None`` means no cache
    and a ``FitCache`` (or a folder path) means that cache; ``FitCache()`` is the default folder.

    Args:
        directory: the folder; ``None``: :func:`default_fit_cache`, resolved when used.
    """

    directory: Path | None = None

    @classmethod
    def coerce(cls, value: "FitCache | str | os.PathLike | None") -> "FitCache | None":
        """``None`` stays ``None``; a path becomes ``FitCache(path)``."""
        if value is None or isinstance(value, FitCache):
            return value
        if isinstance(value, (str, os.PathLike)):
            return cls(Path(value))
        raise TypeError(f"fit_cache={value!r} is not supported; pass None (no cache), "
                        "FitCache() (the default folder) or a folder path")

    @property
    def path(self) -> Path:
        return Path(self.directory) if self.directory is not None else default_fit_cache()

    def load_or_fit(self, engine: "AT2Engine") -> bool:
        """Restore ``engine``'s offline fit from the folder, or fit and save it there.

        The file name is ``engine.identity_key()``: fits are shared by engines of equal identity
        (settings that act only online may differ).

        Returns:
            True when a saved fit was reused.
        """
        directory = self.path
        key = engine.identity_key()
        state_path, meta_path = directory / f"{key}.pt", directory / f"{key}.json"
        if state_path.is_file() and meta_path.is_file():
            try:
                state = torch.load(state_path, weights_only=True)
                # the policy settings may differ from the saved ones (they share the fit)
                engine.load_state_dict({**state, "settings": engine.settings.to_json()})
                return True
            except Exception as exc:  # a damaged cache file is derived data: refit
                log.warning("ignoring unreadable offline fit %s (%s); refitting", state_path, exc)
        started = time.perf_counter()
        engine.fit_offline()
        meta = {"key": key, "identity": engine.identity(), "space": engine.space.name,
                "prior_tasks": list(engine.prior.tasks), "prior_source": engine.raw_prior.source,
                "seed": engine.seed, "settings": engine.settings.to_json(),
                "fit_seconds": time.perf_counter() - started,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        directory.mkdir(parents=True, exist_ok=True)
        paths.atomic_write(state_path, lambda handle: torch.save(engine.state_dict(), handle))
        paths.atomic_write(meta_path, lambda handle: handle.write(json.dumps(meta, indent=2).encode()))
        return False


def prepare_engine(engine: "AT2Engine", fit_cache: FitCache | None) -> str:
    """Fit ``engine`` offline (through ``fit_cache`` when given and there are prior tasks) and
    condition it; returns what was done: ``"cache hit"`` (a saved fit reused), ``"fitted"``,
    ``"not needed"`` or ``"no prior tasks"``.

    When the GP takes no part in the posterior (``AT2Engine.needs_gp`` is False: a full grid
    such as HyperRec's or LCBench's under the default policy, or a planned model-free schedule:
    plan first) nothing is fitted now; the GP is fitted the first time a candidate needs it."""
    needed = engine.needs_gp()
    reused = False
    if needed:
        if fit_cache is not None and engine.prior.n_tasks:
            reused = fit_cache.load_or_fit(engine)
        else:
            engine.fit_offline()
    engine.condition()
    if not engine.prior.n_tasks:
        return "no prior tasks"
    return ("cache hit" if reused else "fitted") if needed else "not needed"
