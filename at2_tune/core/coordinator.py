"""The freeze-thaw coordinator: the one decision maker of a tuning run (no Ray imports).

It owns the trials of one run and every decision about them; the Ray Tune searcher and
scheduler (``at2_tune.tune``) and the local replay simulator (``at2_tune.simulator``) only carry its
decisions out. Two calls make every decision:

* :meth:`Coordinator.on_result` observes one epoch's value of a trial and answers
  :class:`Decision` ``CONTINUE`` (train its next epoch), ``PAUSE`` (checkpoint and free the slot)
  or ``STOP`` (never train it again);
* :meth:`Coordinator.next_action` is asked once per free slot and answers :class:`Start` (a new
  trial of a candidate), :class:`Resume` (a paused trial), :data:`WAIT` (nothing to do now) or
  :data:`FINISHED` (nothing will ever be needed again). The executor carries a ``Start`` out
  with :meth:`~Coordinator.start` and a ``Resume`` with :meth:`~Coordinator.resume`.

Every decision comes from one ranking: the engine's policy order of the next epoch of every
open candidate, running, paused or not started. With ``k`` slots a running trial continues while
its candidate is among the top ``k``; a free slot goes to the best candidate that is not running.
The epoch budget counts every epoch reported and every epoch in flight (one per running or
starting trial), so it is never exceeded. With one slot this makes exactly the queries of
``engine.next_query()`` in a loop.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Collection, Protocol, Sequence

from at2_tune.errors import AT2Error

log = logging.getLogger(__name__)

COORDINATOR_STATE_VERSION = 2


class Query(Protocol):
    candidate: int
    epoch: int


class DecisionCore(Protocol):
    """What the coordinator asks of the decision core (``at2_tune.core.engine.AT2Engine``)."""

    candidates: Sequence[dict[str, Any]]
    failed: set[int]
    n_epochs: int

    def observe(self, candidate: int, epoch: int, value: float) -> None: ...

    def mark_failed(self, candidate: int) -> None: ...

    def condition(self) -> None: ...

    def ranked_queries(self, limit: int | None = None, closed: Collection[int] = ()) -> list[Query]: ...

    def next_epoch(self, candidate: int) -> int: ...

    def recommend(self) -> int: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class Decision(str, Enum):
    """What a trial does after a result."""

    CONTINUE = "CONTINUE"
    PAUSE = "PAUSE"
    STOP = "STOP"


class TrialStatus(str, Enum):
    """Where a trial stands; ``PENDING`` and ``RUNNING`` trials hold a slot and owe one epoch."""

    PENDING = "pending"  # started, no result yet
    RUNNING = "running"  # training its next epoch
    PAUSED = "paused"  # checkpointed after its last epoch; may resume
    DONE = "done"  # finished, stopped or failed: never trains again

    @property
    def in_flight(self) -> bool:
        return self in (TrialStatus.PENDING, TrialStatus.RUNNING)


@dataclass(frozen=True)
class Start:
    """Start a new trial training ``candidate`` from its first epoch."""

    candidate: int


@dataclass(frozen=True)
class Resume:
    """Resume the paused trial ``trial_id`` from its checkpoint."""

    trial_id: str


@dataclass(frozen=True)
class Wait:
    """Nothing to start or resume now (slots taken, or the budget is held by running trials)."""


@dataclass(frozen=True)
class Finished:
    """Nothing will ever be started or resumed again (budget spent or no candidate left)."""


WAIT, FINISHED = Wait(), Finished()
Action = Start | Resume | Wait | Finished


class TrialEpochError(AT2Error):
    """A trial reported an epoch that is not its next one."""


@dataclass
class TrialRecord:
    """What the coordinator knows of one trial."""

    candidate: int
    status: TrialStatus = TrialStatus.PENDING
    last_epoch: int = 0
    catching_up: bool = False
    """Restored from a saved state, or restarted by the executor after a failure: the trial
    may first re-run epochs the coordinator has already observed (its checkpoint can be
    older than the coordinator's state)."""


@dataclass
class TraceRow:
    """One observation, in arrival order, with the recommendation after it."""

    trial_id: str
    candidate: int
    epoch: int
    value: float
    recommended: int | None


@dataclass(frozen=True)
class Recommendation:
    """The recommended configuration and the model of it that the run holds: the trial that
    trained it, the epoch of its best value observed (the first, on ties) and that value (on
    the maximized scale, as observed); epoch and value are ``None`` when the recommended
    configuration has no value observed yet (a policy may recommend by prediction), and the
    trial too when none was started for it."""

    candidate: int
    trial_id: str | None
    epoch: int | None
    value: float | None


@dataclass
class Coordinator:
    """Trials, budget and decisions of one freeze-thaw tuning run.

    Args:
        engine: the AT2 engine of the target task (attach it later with :meth:`attach` when it
            can only be built once the search space is known, as in Ray Tune).
        budget_epochs: total epochs allowed over all trials; ``None``: no limit.
        max_concurrent: slots ``k``; ``None``: as many as the executor offers (the top-``k``
            rule then uses the number of trials holding a slot).
        track_recommendations: compute the recommendation after every observation (trace).
    """

    engine: DecisionCore | None = None
    budget_epochs: int | None = None
    max_concurrent: int | None = None
    track_recommendations: bool = False
    trials: dict[str, TrialRecord] = field(default_factory=dict)
    trace: list[TraceRow] = field(default_factory=list)
    epochs_spent: int = 0
    needs_reconcile: bool = False
    """Set by :meth:`load_state_dict` until :meth:`reconcile`."""
    can_start: bool = True
    """False once the executor cannot start new trials (Tune's ``num_samples`` is used up):
    free slots then only resume paused trials."""
    first: list[int] = field(default_factory=list)
    """Candidates started before the ranking decides, in this order (Ray's
    ``points_to_evaluate``); each starts once, then the ranking decides about it too."""
    _planned: Start | Resume | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.budget_epochs is not None and self.budget_epochs < 1:
            raise AT2Error(f"budget_epochs={self.budget_epochs} must be at least 1 epoch "
                           "(or None for no limit)")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise AT2Error(f"max_concurrent={self.max_concurrent} must be at least 1 slot "
                           "(or None for as many as the executor offers)")

    # ---------------------------------------------------------------- set-up
    def attach(self, engine: DecisionCore) -> None:
        """Give the coordinator its engine (once)."""
        if self.engine is not None and self.engine is not engine:
            raise AT2Error("the coordinator already has an engine; build a new coordinator "
                           "for a new tuning run")
        self.engine = engine

    def _engine(self) -> DecisionCore:
        if self.engine is None:
            raise AT2Error("the coordinator has no engine yet: with Ray Tune the searcher builds "
                           "it once Tune passes metric, mode and space; pass metric/mode to "
                           "tune.run or TuneConfig")
        return self.engine

    # ---------------------------------------------------------------- queries
    def status(self, trial_id: str) -> TrialStatus | None:
        """The trial's status, ``None`` for a trial this coordinator did not start."""
        record = self.trials.get(trial_id)
        return None if record is None else record.status

    def trial_of(self, candidate: int | None) -> str | None:
        """The trial that trains ``candidate`` (each candidate has at most one), else ``None``."""
        return next((t for t, r in self.trials.items() if r.candidate == candidate), None)

    def recommendation(self) -> Recommendation | None:
        """The engine's recommendation now and where its model is (:class:`Recommendation`);
        ``None`` before the first observation or when every candidate failed. The one
        recommendation of a run: the searcher's ``recommendation()``, the live summary and the
        status line read it. Conditions the engine if an observation arrived since the last
        decision (a no-op otherwise); trains nothing."""
        engine = self.engine
        if engine is None or not self.trace or len(engine.failed) == len(engine.candidates):
            return None
        engine.condition()
        candidate = engine.recommend()
        rows = [row for row in self.trace if row.candidate == candidate]
        if not rows:
            return Recommendation(candidate, self.trial_of(candidate), None, None)
        best = max(rows, key=lambda row: row.value)  # ties: the earliest
        return Recommendation(candidate, best.trial_id, best.epoch, best.value)

    def trials_with(self, status: TrialStatus) -> list[str]:
        return [t for t, r in self.trials.items() if r.status is status]

    @property
    def in_flight(self) -> int:
        """Trials holding a slot (running or starting): each owes one epoch to the budget."""
        return sum(r.status.in_flight for r in self.trials.values())

    @property
    def epochs_observed(self) -> int:
        """Observations recorded by the engine (reported epochs that were usable)."""
        return len(self.trace)

    def budget_left(self) -> float:
        """Epochs neither spent nor in flight (``inf`` without a budget)."""
        return self._budget_left(self.in_flight)

    def _budget_left(self, in_flight: int) -> float:
        if self.budget_epochs is None:
            return math.inf
        return self.budget_epochs - self.epochs_spent - in_flight

    def _slots(self) -> int:
        return self.max_concurrent or max(1, self.in_flight)

    def ranking(self, limit: int | None = None) -> list[Query]:
        """Every open candidate's next epoch in the policy's order, the next to train first.
        Not ranked: a candidate whose trial ended (its epochs continue only in that trial), and
        one without a trial once the executor cannot start any (:meth:`stop_starting`)."""
        engine = self._engine()
        engine.condition()  # a no-op unless something was observed since the last decision
        return engine.ranked_queries(limit=limit, closed=self._closed())

    def _closed(self) -> set[int]:
        closed = {r.candidate for r in self.trials.values() if r.status is TrialStatus.DONE}
        if not self.can_start:
            started = {r.candidate for r in self.trials.values()}
            closed |= set(range(len(self._engine().candidates))) - started
        return closed

    # ---------------------------------------------------------------- decisions
    def next_action(self) -> Action:
        """What a free slot does now. Asking again before the action is carried out (or before
        anything changes) returns the same action without recomputing it."""
        if self._planned is None:
            action = self._decide()
            if isinstance(action, (Start, Resume)):
                self._planned = action
            return action
        return self._planned

    def plan(self):
        """Let the engine plan for this run's budget and slots (a no-op without a budget, for
        an engine that does not plan, and once planned); returns the engine's plan or ``None``.
        Called before the first decision."""
        planner = getattr(self._engine(), "plan", None)
        if planner is None or self.budget_epochs is None:
            return None
        return planner(self.budget_epochs, self.max_concurrent or 1)

    def _decide(self) -> Action:
        self.plan()
        flying = self.in_flight
        nothing_now = FINISHED if flying == 0 else WAIT
        if self._budget_left(flying) < 1:
            return nothing_now  # a running trial that fails gives its epoch back: wait for it
        if self.max_concurrent is not None and flying >= self.max_concurrent:
            return WAIT
        trial_of = {r.candidate: (t, r.status) for t, r in self.trials.items()}
        failed = self._engine().failed
        for candidate in self.first if self.can_start else ():
            if candidate not in trial_of and candidate not in failed:
                return Start(candidate)
        for query in self.ranking():
            trial_id, status = trial_of.get(query.candidate, (None, None))
            if trial_id is None:
                if self.can_start:
                    return Start(query.candidate)
                continue
            if status is TrialStatus.PAUSED:
                return Resume(trial_id)
            # running or starting
        return nothing_now

    def start(self, trial_id: str, action: Start) -> dict[str, Any]:
        """Carry out a :class:`Start` as trial ``trial_id``; returns the candidate's configuration."""
        self._consume(action)
        if trial_id in self.trials:
            raise AT2Error(f"trial id {trial_id!r} is already used; every trial needs a new id")
        self.trials[trial_id] = TrialRecord(action.candidate)
        return dict(self._engine().candidates[action.candidate])

    def resume(self, action: Resume) -> None:
        """Carry out a :class:`Resume`: the trial trains its next epoch from now on."""
        self._consume(action)
        self.trials[action.trial_id].status = TrialStatus.RUNNING

    def _consume(self, action: Start | Resume) -> None:
        if action != self._planned:
            raise AT2Error(f"{action} is not the coordinator's current action "
                           f"({self._planned}); ask next_action() and carry out what it returns")
        self._planned = None

    def on_result(self, trial_id: str, epoch: int, value: float) -> Decision:
        """Record the trial's value after ``epoch`` epochs and decide what it does next.

        A non-finite value marks the candidate failed (never proposed again) and stops the
        trial. Every reported epoch counts against the budget, usable or not.

        Raises:
            TrialEpochError: ``epoch`` is not the trial's next epoch (the epoch still counts).
        """
        record = self._record(trial_id)
        engine = self._engine()
        self._planned = None  # the ranking changes: recompute the next action
        expected = record.last_epoch + 1
        if record.catching_up and epoch != expected:
            return self._catch_up(trial_id, record, epoch)  # counted before the restore
        record.catching_up = False
        self.epochs_spent += 1
        if record.status is TrialStatus.DONE:
            log.warning("trial %s reported epoch %d after it was stopped; the value is not "
                        "used", trial_id, epoch)
            return Decision.STOP
        slots = self._slots() if record.status.in_flight else self._slots() + 1
        if epoch > expected:
            record.status = TrialStatus.DONE
            raise TrialEpochError(
                f"trial {trial_id} reported epoch {epoch}, but its next epoch is {expected}: "
                "AT2 observes every epoch. Report once per epoch, or, for a trainable that "
                "reports every k-th epoch, count the reports instead: "
                "AT2Searcher(time_attr='training_iteration') with max_epochs = the number of "
                "reports")
        if epoch < expected:
            record.status = TrialStatus.DONE
            raise TrialEpochError(
                f"trial {trial_id} reported epoch {epoch} again (its next epoch is {expected}): "
                "the trainable restarted from scratch; it must continue from its checkpoint "
                "(load tune.get_checkpoint() and report epochs last+1, last+2, ...)")
        record.last_epoch = epoch
        if not math.isfinite(value):
            log.warning("trial %s reported %s at epoch %d: its configuration is recorded as "
                        "failed and not proposed again", trial_id, value, epoch)
            engine.mark_failed(record.candidate)
            return self._stop(record)
        engine.observe(record.candidate, epoch, value)
        engine.condition()
        recommended = engine.recommend() if self.track_recommendations else None
        self.trace.append(TraceRow(trial_id, record.candidate, epoch, float(value), recommended))
        if engine.next_epoch(record.candidate) > engine.n_epochs:
            return self._stop(record)
        record.status = TrialStatus.PAUSED  # its slot is free while it is not decided
        if self.budget_left() < 1:
            # spent, unless a trial still in flight fails and gives its epoch back
            return Decision.PAUSE if self.in_flight else self._stop(record)
        leaders = {q.candidate for q in self.ranking(limit=slots)}
        if record.candidate in leaders:
            record.status = TrialStatus.RUNNING
            return Decision.CONTINUE
        return Decision.PAUSE

    def stop_starting(self) -> None:
        """The executor cannot start new trials any more: from now on free slots only resume."""
        self.can_start = False
        if isinstance(self._planned, Start):
            self._planned = None

    def _catch_up(self, trial_id: str, record: TrialRecord, epoch: int) -> Decision:
        """A restored trial re-runs an epoch observed before the restore (CONTINUE, the value is
        not used), or it skipped epochs whose values the saved state does not hold (STOP: its
        candidate is closed, the observations stay)."""
        if epoch <= record.last_epoch:
            record.status = TrialStatus.RUNNING
            return Decision.CONTINUE
        log.warning("trial %s resumed at epoch %d but the restored state ends at epoch %d; "
                    "the trial is stopped", trial_id, epoch, record.last_epoch)
        return self._stop(record)

    def reconcile(self, executor_trials: set[str]) -> list[str]:
        """After a restore: forget the trials the executor did not bring back (a starting trial's
        candidate can start again; a trial with observations is closed). Returns their ids."""
        missing = [t for t, r in self.trials.items()
                   if t not in executor_trials and r.status is not TrialStatus.DONE]
        for trial_id in missing:
            if self.trials[trial_id].last_epoch == 0:
                del self.trials[trial_id]
            else:
                self.trials[trial_id].status = TrialStatus.DONE
        self._planned = None
        self.needs_reconcile = False
        return missing

    def on_trial_restarted(self, trial_id: str) -> None:
        """The executor restarts the trial from its last checkpoint after a failure (a worker
        killed mid-epoch). It stays as it was (its epoch in flight too); epochs it re-runs up
        to the last one observed are continued, neither counted nor used again."""
        record = self._record(trial_id)
        if record.status is not TrialStatus.DONE:
            record.catching_up = True

    def on_trial_end(self, trial_id: str, failed: bool = False) -> None:
        """The trial will not run again (completed, removed, or ``failed``: then its candidate
        is never proposed again). Its epoch in flight, if any, goes back to the budget."""
        record = self.trials.get(trial_id)
        if record is None or record.status is TrialStatus.DONE and not failed:
            return
        if failed:
            self._engine().mark_failed(record.candidate)
        record.status = TrialStatus.DONE
        self._planned = None

    def _stop(self, record: TrialRecord) -> Decision:
        record.status = TrialStatus.DONE
        return Decision.STOP

    def _record(self, trial_id: str) -> TrialRecord:
        try:
            return self.trials[trial_id]
        except KeyError:
            raise AT2Error(f"trial {trial_id!r} was not started by this coordinator; with Ray "
                           "Tune use AT2Scheduler(searcher) together with that AT2Searcher") from None

    # ---------------------------------------------------------------- state
    def __getstate__(self) -> dict[str, Any]:
        """Pickling (Tune pickles searcher and scheduler) leaves the model out; the searcher's
        ``restore`` brings it back from its checkpoint."""
        state = self.__dict__.copy()
        state["engine"] = None
        return state

    def state_dict(self) -> dict[str, Any]:
        """Trials, trace, budget and the engine's state (tensors and JSON-able values)."""
        return {"version": COORDINATOR_STATE_VERSION,
                "engine": None if self.engine is None else self.engine.state_dict(),
                "trials": {t: [r.candidate, r.status.value, r.last_epoch]
                           for t, r in self.trials.items()},
                "trace": [[r.trial_id, r.candidate, r.epoch, r.value, r.recommended]
                          for r in self.trace],
                "epochs_spent": self.epochs_spent, "budget_epochs": self.budget_epochs,
                "max_concurrent": self.max_concurrent, "first": list(self.first),
                "track_recommendations": self.track_recommendations}

    def load_state_dict(self, state: dict[str, Any], engine: DecisionCore | None = None) -> None:
        """Continue from :meth:`state_dict`; ``engine`` is a fresh engine of the same tuning
        identity (it gets the saved engine state, without refitting).

        Every trial keeps its status: trials in flight when the state was saved still hold
        their slot and owe their next epoch (Ray Tune restarts them from their checkpoints), so
        the restored coordinator makes the same decisions as the saved one would have. A
        restored trial may first re-run epochs already observed (its checkpoint can be older
        than this state; Tune saves the two apart): those are not observed nor counted again.
        Call :meth:`reconcile` once the executor has brought its trials back.
        """
        if state.get("version") != COORDINATOR_STATE_VERSION:
            raise AT2Error(f"coordinator state version {state.get('version')!r} is not "
                           f"supported (this at2-tune writes version {COORDINATOR_STATE_VERSION})")
        if state["engine"] is not None:
            if engine is None:
                raise AT2Error("the saved state holds an engine: pass a fresh engine of the "
                               "same space, prior, candidates and settings to load it into")
            engine.load_state_dict(state["engine"])
            engine.condition()
            self.engine = engine
        self.trials = {}
        for trial_id, (candidate, status, last_epoch) in state["trials"].items():
            status = TrialStatus(status)
            restored = status is not TrialStatus.DONE  # a starting one's checkpoint can be
            # newer too: its first epoch reported and checkpointed after this state was saved
            self.trials[trial_id] = TrialRecord(candidate, status, last_epoch, catching_up=restored)
        self.trace = [TraceRow(*row) for row in state["trace"]]
        self.epochs_spent = int(state["epochs_spent"])
        self.budget_epochs, self.max_concurrent = state["budget_epochs"], state["max_concurrent"]
        self.track_recommendations = bool(state["track_recommendations"])
        self.first = [int(c) for c in state.get("first", ())]
        self._planned = None
        self.needs_reconcile = True
