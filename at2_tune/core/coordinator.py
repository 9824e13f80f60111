"""Freeze-thaw bookkeeping shared by the Ray Tune searcher and scheduler (no Ray imports).

The coordinator owns the :class:`~at2_tune.core.engine.AT2Engine` and maps trials to candidates
(one trial per candidate: resuming a trial continues the same candidate). Every decision comes
from one ranking: the acquisition value of the next epoch of every open candidate, whether it
is running, paused, or not started yet. With ``k`` concurrent slots,

* a running trial CONTINUEs while its candidate is among the top ``k``, else it PAUSEs;
* a free slot goes to the best candidate that is not running: a paused trial (resumed) or a
  new one (the searcher suggests it);
* a trial STOPs at the last epoch, when the epoch budget is spent, or when it failed.

With one slot this makes exactly the queries of the pure replay loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable

from at2_tune.core.engine import AT2Engine, Query
from at2_tune.errors import AT2Error

COORDINATOR_STATE_VERSION = 1


class Decision(str, Enum):
    CONTINUE = "CONTINUE"
    PAUSE = "PAUSE"
    STOP = "STOP"


@dataclass
class TrialRecord:
    """What the coordinator knows of one trial."""

    candidate: int
    status: str = "pending"  # pending | running | paused | done
    last_epoch: int = 0


@dataclass
class TraceRow:
    """One observation, in arrival order, with the recommendation after it."""

    trial_id: str
    candidate: int
    epoch: int
    value: float
    recommended: int | None


@dataclass
class Coordinator:
    """Shared state of one freeze-thaw tuning run.

    Args:
        engine_factory: builds the engine once the search space is known (late binding, as
            Tune passes metric, mode and space to the searcher after construction).
        budget_epochs: total epochs (queries) allowed; ``None``: no limit.
        max_concurrent: slots ``k`` of the top-k rule; ``None``: the number of running trials.
        track_recommendations: compute the recommendation after every observation (trace).
    """

    engine_factory: Callable[..., AT2Engine] | None = None
    budget_epochs: int | None = None
    max_concurrent: int | None = None
    track_recommendations: bool = False
    engine: AT2Engine | None = None
    trials: dict[str, TrialRecord] = field(default_factory=dict)
    trace: list[TraceRow] = field(default_factory=list)
    epochs_observed: int = 0

    # ---------------------------------------------------------------- engine
    def ensure_engine(self, **context: Any) -> AT2Engine:
        """The engine, built by ``engine_factory(**context)`` on first use."""
        if self.engine is None:
            if self.engine_factory is None:
                raise AT2Error("the coordinator has no engine and no engine_factory to build one")
            self.engine = self.engine_factory(**context)
        return self.engine

    def _engine(self) -> AT2Engine:
        if self.engine is None:
            raise AT2Error("the search space is not set yet: Tune calls set_search_properties "
                           "before the first trial; pass metric/mode to tune.run or TuneConfig")
        return self.engine

    # ---------------------------------------------------------------- budget
    def _in_flight(self, excluding: str | None = None) -> int:
        return sum(1 for trial_id, record in self.trials.items()
                   if record.status in ("running", "pending") and trial_id != excluding)

    def budget_left(self, excluding: str | None = None) -> float:
        """Epochs not yet observed nor in flight (``inf`` without a budget)."""
        if self.budget_epochs is None:
            return math.inf
        return self.budget_epochs - self.epochs_observed - self._in_flight(excluding)

    def _active_trials(self) -> list[TrialRecord]:
        """Trials that hold a slot: running, or suggested and waiting to start."""
        return [r for r in self.trials.values() if r.status in ("running", "pending")]

    def slots(self) -> int:
        return self.max_concurrent or max(1, len(self._active_trials()))

    # ---------------------------------------------------------------- ranking
    def _trial_of(self, candidate: int) -> str | None:
        for trial_id, record in self.trials.items():
            if record.candidate == candidate and record.status != "done":
                return trial_id
        return None

    def ranking(self, limit: int | None = None) -> list[Query]:
        """Every open candidate's next epoch, best acquisition value first."""
        engine = self._engine()
        engine.condition()  # a no-op unless something was observed since the last decision
        return engine.ranked_queries(limit=limit)

    def next_start(self) -> tuple[str | None, Query | None]:
        """The best candidate that is not running: ``(paused trial id or None, its query)``."""
        busy = {r.candidate for r in self._active_trials()}
        for query in self.ranking():
            if query.candidate in busy:
                continue
            return self._trial_of(query.candidate), query
        return None, None

    # ---------------------------------------------------------------- trial lifecycle
    def suggest(self, trial_id: str) -> int | None:
        """The candidate a new trial should train, or ``None``: a new trial is already waiting
        to start, all slots are taken, the budget is spent, or a paused trial ranks higher
        (it resumes first)."""
        statuses = [r.status for r in self.trials.values()]
        if "pending" in statuses:
            return None
        if self.max_concurrent is not None and statuses.count("running") >= self.max_concurrent:
            return None
        if self.budget_left() < 1:
            return None
        paused_trial, query = self.next_start()
        if query is None or paused_trial is not None:
            return None
        self.trials[trial_id] = TrialRecord(query.candidate)
        return query.candidate

    def observe(self, trial_id: str, epoch: int, value: float) -> bool:
        """Record a result once (the searcher and the scheduler both see every result).

        Returns:
            False when this (trial, epoch) was already recorded.
        """
        record = self._record(trial_id)
        engine = self._engine()
        if epoch in engine.observations.epochs_of(record.candidate):
            return False
        record.status = "running"
        record.last_epoch = epoch
        engine.observe(record.candidate, epoch, value)
        engine.condition()
        self.epochs_observed += 1
        recommended = engine.recommend() if self.track_recommendations else None
        self.trace.append(TraceRow(trial_id, record.candidate, epoch, float(value), recommended))
        return True

    def finished(self) -> bool:
        """True when no new trial will ever be needed (budget spent or nothing left to start)."""
        engine = self._engine()
        started = {r.candidate for r in self.trials.values()}
        unstarted = [c for c in engine.open_candidates() if c not in started]
        return self.budget_left() < 1 or not unstarted

    def resume_choice(self, paused_trial_ids: list[str]) -> str | None:
        """Among ``paused_trial_ids``, the one to resume now (``None``: start a new one first)."""
        if self.budget_left() < 1 or not paused_trial_ids:
            return None
        if self.max_concurrent is not None and len(self._active_trials()) >= self.max_concurrent:
            return None  # every slot is taken (e.g. by a new trial suggested just before)
        paused_trial, _ = self.next_start()
        if paused_trial not in paused_trial_ids:
            return None
        self.trials[paused_trial].status = "running"  # its next epoch is in flight from now on
        return paused_trial

    def on_result(self, trial_id: str, epoch: int, value: float) -> Decision:
        """Observe ``value`` at ``epoch`` of ``trial_id`` and decide what the trial does next."""
        self.observe(trial_id, epoch, value)
        record = self._record(trial_id)
        engine = self._engine()
        if engine.next_epoch(record.candidate) > engine.n_epochs:
            return self._finish(record, Decision.STOP)
        if self.budget_left(excluding=trial_id) < 1:
            return self._finish(record, Decision.STOP)
        top = {q.candidate for q in self.ranking(limit=self.slots())}
        if record.candidate in top:
            return Decision.CONTINUE
        record.status = "paused"
        return Decision.PAUSE

    def on_failure(self, trial_id: str) -> None:
        """The trial crashed or reported an unusable value: never propose its candidate again."""
        record = self.trials.get(trial_id)
        if record is None:
            return
        self._engine().mark_failed(record.candidate)
        record.status = "done"

    def on_complete(self, trial_id: str) -> None:
        record = self.trials.get(trial_id)
        if record is not None:
            record.status = "done"

    def _finish(self, record: TrialRecord, decision: Decision) -> Decision:
        record.status = "done"
        return decision

    def _record(self, trial_id: str) -> TrialRecord:
        try:
            return self.trials[trial_id]
        except KeyError:
            raise AT2Error(f"trial {trial_id!r} was not suggested by the AT2 searcher; use "
                           "AT2Scheduler together with AT2Searcher (sharing one coordinator)") from None

    # ---------------------------------------------------------------- state
    def __getstate__(self) -> dict[str, Any]:
        """Pickling (Tune pickles searcher and scheduler) leaves the model out; the searcher's
        ``restore`` brings it back from its checkpoint."""
        state = self.__dict__.copy()
        state["engine"] = None
        return state

    def state_dict(self) -> dict[str, Any]:
        return {"version": COORDINATOR_STATE_VERSION,
                "engine": None if self.engine is None else self.engine.state_dict(),
                "trials": {t: [r.candidate, r.status, r.last_epoch] for t, r in self.trials.items()},
                "trace": [[r.trial_id, r.candidate, r.epoch, r.value, r.recommended] for r in self.trace],
                "epochs_observed": self.epochs_observed, "budget_epochs": self.budget_epochs,
                "max_concurrent": self.max_concurrent}

    def load_state_dict(self, state: dict[str, Any], **context: Any) -> None:
        if state.get("version") != COORDINATOR_STATE_VERSION:
            raise AT2Error(f"coordinator state version {state.get('version')!r} is not supported "
                           f"(this at2-tune writes version {COORDINATOR_STATE_VERSION})")
        if state["engine"] is not None:
            engine = self.ensure_engine(**context)
            engine.load_state_dict(state["engine"])
            engine.condition()
        self.trials = {t: TrialRecord(c, s, e) for t, (c, s, e) in state["trials"].items()}
        # trials that were in flight when the state was saved restart from their checkpoints
        for record in self.trials.values():
            if record.status in ("running", "pending"):
                record.status = "paused" if record.last_epoch else "pending"
        self.trace = [TraceRow(*row) for row in state["trace"]]
        self.epochs_observed = int(state["epochs_observed"])
        self.budget_epochs, self.max_concurrent = state["budget_epochs"], state["max_concurrent"]
