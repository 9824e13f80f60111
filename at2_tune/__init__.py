"""at2-tune: AT2 transfer + multi-fidelity hyperparameter tuning for Ray Tune.

``from at2_tune import AT2Searcher, AT2Scheduler`` imports Ray on first use only, so the
decision core (``at2_tune.core``) and the databases work without Ray.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["AT2Scheduler", "AT2Searcher", "AT2Settings", "ModelSettings", "PolicySettings",
           "__version__", "load_recommendation"]


def __getattr__(name: str) -> Any:
    if name in ("AT2Searcher", "AT2Scheduler"):
        from at2_tune import tune

        return getattr(tune, name)
    if name in ("AT2Settings", "ModelSettings", "PolicySettings"):
        from at2_tune.core import settings

        return getattr(settings, name)
    if name == "load_recommendation":
        from at2_tune.recommendation import load_recommendation

        return load_recommendation
    raise AttributeError(f"module 'at2_tune' has no attribute {name!r}")
