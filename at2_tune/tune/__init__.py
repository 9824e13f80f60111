"""Ray Tune adapters: :class:`AT2Searcher` and :class:`AT2Scheduler` (they import Ray)."""

from at2_tune.tune.scheduler import AT2Scheduler
from at2_tune.tune.searcher import AT2Searcher

__all__ = ["AT2Scheduler", "AT2Searcher"]
