"""The coordinator's K-slot simulator: a coordinator's decisions carried out on simulated slots.

A trial's epoch reveals the next value of its configuration's curve after a deterministic
simulated duration (:class:`Timing`: optionally equal for every configuration, and with a cost
each time a trial starts or resumes, as through Ray Tune). The replay benchmark (``at2_tune.simulator``), the baselines
(``at2_tune.bench.baselines``) and AT2's planner (``at2_tune.core.planner``) all run through it.
"""

from __future__ import annotations

import functools
import heapq
from dataclasses import dataclass
from typing import Callable

import numpy as np

from at2_tune.core.coordinator import Coordinator, Decision, Finished, Resume, Start, TraceRow
from at2_tune.errors import AT2Error


@functools.lru_cache(maxsize=65536)
def epoch_seconds(seed: int, candidate: int) -> float:
    """Simulated duration of one epoch: fixed per configuration (some train faster than
    others), between about 0.5 and 2 time units, the same for every run with ``seed``."""
    return float(np.exp(0.35 * np.random.default_rng([seed, candidate]).standard_normal()))


@dataclass(frozen=True)
class Timing:
    """How long a simulated trial's epoch takes.

    Attributes:
        start_cost: time a trial spends before its epoch each time it starts or resumes (in the
            units of :func:`epoch_seconds`, about one per epoch; 0: switching trials is free).
            Ray Tune restores a paused trial from its checkpoint on a new or reused actor, while
            a trial told to continue goes straight on: with epochs of 0.2 s that took about 3
            epochs' time (docs/benchmarks.md); on GPUs, where an epoch takes minutes and a
            restore seconds, a small fraction of one.
        equal_epochs: every epoch takes 1 (Syne Tune's tabulated simulator; Ray Tune with
            ``--seconds-per-epoch``) instead of :func:`epoch_seconds`.
    """

    start_cost: float = 0.0
    equal_epochs: bool = False

    def __post_init__(self) -> None:
        if not self.start_cost >= 0.0:
            raise AT2Error(f"start_cost={self.start_cost!r} must be a number >= 0 (simulated "
                           "time a trial spends starting or resuming; 0: free)")

    def epoch(self, seed: int, candidate: int, switching: bool) -> float:
        """Time of ``candidate``'s next epoch; ``switching``: the trial starts or resumes."""
        duration = 1.0 if self.equal_epochs else epoch_seconds(seed, candidate)
        return duration + (self.start_cost if switching else 0.0)


def simulate(coordinator: Coordinator, curves: np.ndarray, concurrency: int, seed: int = 0,
             on_observation: Callable[[TraceRow, float], None] | None = None,
             max_observations: int | None = None, timing: Timing = Timing()) -> float:
    """Carry out ``coordinator``'s decisions on ``concurrency`` simulated slots until it is
    finished, or until it has observed ``max_observations`` epochs (for a coordinator without
    a budget, which would train every epoch of every candidate); a trial's epoch ``e`` of
    candidate ``c`` reveals ``curves[c, e - 1]`` after the time ``timing`` gives it (default:
    :func:`epoch_seconds`, switching trials free). Deterministic: simultaneous events go in start
    order. ``on_observation(row, time)``: called after each observation with its trace row and
    the simulated time.

    Returns:
        The simulated time at the end.
    """
    coordinator.max_concurrent = concurrency
    clock, started = 0.0, 0
    running: list[tuple[float, int, str]] = []  # (finish time, start order, trial id)

    def schedule(trial_id: str, switching: bool = False) -> None:
        nonlocal started
        record = coordinator.trials[trial_id]
        duration = timing.epoch(seed, record.candidate, switching)
        heapq.heappush(running, (clock + duration, started, trial_id))
        started += 1

    while True:
        action = coordinator.next_action()
        while isinstance(action, (Start, Resume)):
            if isinstance(action, Start):
                trial_id = f"trial_{len(coordinator.trials):05d}"
                coordinator.start(trial_id, action)
            else:
                trial_id = action.trial_id
                coordinator.resume(action)
            schedule(trial_id, switching=True)
            action = coordinator.next_action()
        if not running:
            if isinstance(action, Finished):
                return clock
            raise AT2Error(f"the coordinator waits ({action}) with no trial running")
        clock, _, trial_id = heapq.heappop(running)
        record = coordinator.trials[trial_id]
        epoch = record.last_epoch + 1
        observed = len(coordinator.trace)
        value = float(curves[record.candidate, epoch - 1])
        decision = coordinator.on_result(trial_id, epoch, value)
        if on_observation is not None and len(coordinator.trace) > observed:
            on_observation(coordinator.trace[-1], clock)
        if max_observations is not None and len(coordinator.trace) >= max_observations:
            return clock
        if decision is Decision.CONTINUE:
            schedule(trial_id)
