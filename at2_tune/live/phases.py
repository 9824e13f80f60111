"""The phases of a live run and their times: what ``at2-tune tune`` spends before its first trial.

A :class:`PhaseClock` starts with the command; each phase is stamped when it ends and printed as
``phase: <what> in <s> s (<s> s since the start)``. The offline fit happens inside the searcher
when Tune asks for the first configuration, so :class:`FirstTrialPhases` (a Tune callback) stamps
it, with the searcher's own measurement, together with the first trial's start.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from ray import tune


class PhaseClock:
    """Stamps phases from its creation on; ``say`` prints each one."""

    def __init__(self, say: Callable[[str], None] = print) -> None:
        self.started = time.perf_counter()
        self.last = self.started
        self.say = say
        self.phases: list[dict[str, Any]] = []

    def stamp(self, what: str, seconds: float | None = None, detail: str = "") -> None:
        """Record that ``what`` ended now; it took ``seconds`` as measured by whoever ran it
        (a part of the current phase), else the time since the last stamp."""
        now = time.perf_counter()
        took = now - self.last if seconds is None else seconds
        if seconds is None:
            self.last = now
        self.phases.append({"phase": what, "seconds": round(took, 3),
                            "since_start_s": round(now - self.started, 3),
                            **({"detail": detail} if detail else {})})
        extra = f", {detail}" if detail else ""
        self.say(f"phase: {what} in {took:.1f} s{extra} ({now - self.started:.1f} s since the "
                 "start)")


class FirstTrialPhases(tune.Callback):
    """Stamps the searcher's offline fit and the first trial's start on the clock, once.

    Tune saves its callbacks with the experiment; a copy restored by ``--resume`` belongs to an
    earlier process's clock, so it is saved silent (the resumed run's phases end with Ray's
    start)."""

    def __init__(self, clock: PhaseClock, searcher=None) -> None:
        self.clock = clock
        self.searcher = searcher
        self.done = False

    def __getstate__(self) -> dict[str, Any]:
        return {"clock": None, "searcher": None, "done": True}

    def on_trial_start(self, iteration: int, trials: list, trial, **info) -> None:
        if self.done:
            return
        self.done = True
        fit_s = getattr(self.searcher, "offline_fit_seconds", None)
        if fit_s is not None:
            self.clock.stamp("offline fit", fit_s, self.searcher.offline_fit_outcome or "")
        plan = getattr(self.searcher, "plan", None)
        if plan is not None:
            self.clock.stamp("plan", plan.seconds, plan.describe())
        self.clock.stamp("first trial started")
