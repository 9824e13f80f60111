"""``AT2Scheduler``: carries out the freeze-thaw coordinator's decisions in Ray Tune.

Each result goes to the shared coordinator once (``Coordinator.on_result``), whose answer
(CONTINUE / PAUSE / STOP) is returned to Tune; each trial end (completed, stopped, failed) goes
to it once (``Coordinator.on_trial_end``). When Tune asks which trial to run, the scheduler asks
the coordinator's ``next_action`` and turns a ``Resume`` into the paused trial (a ``Start`` is
turned into a new trial by the searcher's ``suggest``). Once the coordinator is ``Finished``,
paused trials are stopped.

After ``Tuner.restore`` Tune brings every unfinished trial back as PENDING and would start them
all. Those in flight at the save (the coordinator still counts their next epoch) restart from
their checkpoints; those the coordinator holds as paused are set back to PAUSED when Tune adds
them, so they resume only when the coordinator picks them: slots and budget stay exact.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable

from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler
from ray.tune.search import Repeater
from ray.tune.trainable import FunctionTrainable, Trainable

from at2_tune.core.coordinator import Coordinator, Decision, Finished, Resume, TrialStatus
from at2_tune.databases.tune_import import AT2_RESULTS_FILE
from at2_tune.errors import AT2Error
from at2_tune.tune import held_checkpoint
from at2_tune.tune.searcher import AT2Searcher

log = logging.getLogger(__name__)


class AT2Scheduler(TrialScheduler):
    """Pass the same :class:`AT2Searcher` as ``search_alg``; they share its coordinator.

    Args:
        searcher: the run's searcher.
        on_decision: called after each result's decision as ``on_decision(coordinator,
            trial_id, epoch, value, decision)`` (e.g. a status line); it must be picklable,
            since Tune saves the scheduler with the experiment.
    """

    _supports_buffered_results = False

    def __init__(self, searcher: AT2Searcher,
                 on_decision: Callable[[Coordinator, str, int, float, Decision], None]
                 | None = None) -> None:
        super().__init__()
        if not isinstance(searcher, AT2Searcher):
            raise ValueError(f"AT2Scheduler needs the AT2Searcher of the run, got {searcher!r}; "
                             "use AT2Scheduler(searcher) with search_alg=searcher")
        self.searcher = searcher
        self.on_decision = on_decision
        self._unknown: set[str] = set()  # restored trials newer than the restored coordinator
        self._trials: dict[str, Trial] = {}  # every trial Tune added, to find its checkpoints
        searcher.attach_scheduler(self)
        _quiet_resume_warnings()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_trials"] = {}  # Tune's trials are Tune's to save (the Tuner pickles its config)
        return state

    @property
    def coordinator(self):
        return self.searcher.coordinator

    def set_search_properties(self, metric: str | None, mode: str | None, **spec) -> bool:
        self.searcher.set_search_properties(metric, mode, {}, **spec)
        return True

    # ------------------------------------------------------------------ trial events
    def on_trial_add(self, tune_controller, trial: Trial) -> None:
        _check_actor_reuse(tune_controller, trial)
        if _wraps_repeater(tune_controller):  # refused at the first trial, before any trains
            raise AT2Error("search_alg=Repeater(AT2Searcher(...)) is not supported: AT2 "
                           "trains each configuration in one trial, pausing and resuming it "
                           "epoch by epoch, so a repeated trial has no place in its decisions. "
                           "Pass search_alg=searcher without Repeater; to average over seeds, "
                           "report the seeds' mean from one trial")
        self._trials[trial.trial_id] = trial
        status = self.coordinator.status(trial.trial_id)
        if status is None and not self.coordinator.needs_reconcile:
            raise AT2Error(f"trial {trial.trial_id} was not created by AT2Searcher; "
                           "AT2Scheduler only schedules the searcher's trials")
        if status is None:  # started after the searcher's last saved state: stopped, unused
            self._unknown.add(trial.trial_id)
        if trial.status == Trial.PENDING and status in (None, TrialStatus.PAUSED, TrialStatus.DONE):
            trial.set_status(Trial.PAUSED)  # restored: wait for the coordinator (see module doc)

    def on_trial_result(self, tune_controller, trial: Trial, result: dict) -> str:
        with self.searcher.bounded_threads():
            return self._decide(trial, result)

    def _decide(self, trial: Trial, result: dict) -> str:
        if trial.trial_id in self._unknown:
            return TrialScheduler.STOP
        return self._observe(trial, result, self.searcher.epoch_of(result)).value

    def _observe(self, trial: Trial, result: dict, epoch: int) -> Decision:
        """Record ``result`` (``at2-result.jsonl``), give it to the coordinator, report the
        decision (``on_decision``) and return it."""
        _append_result(trial, result)
        value = self.searcher.metric_value(trial.trial_id, result)
        decision = self.coordinator.on_result(trial.trial_id, epoch, value)
        if self.on_decision is not None:
            self.on_decision(self.coordinator, trial.trial_id, epoch, value, decision)
        return decision

    def on_trial_error(self, tune_controller, trial: Trial) -> None:
        """A trial failed. Where Tune retries it (``FailureConfig(max_failures=N)``: a worker
        killed mid-epoch, a lost node) it stays in flight: Tune restores it from its last
        checkpoint and it reports the epoch it was training (counted once, in the budget
        already); epochs observed after that checkpoint are re-run, not counted again.
        Otherwise its configuration has failed for good."""
        if _retried_by_tune(trial):
            log.warning("trial %s failed (%d of at most %d failures); Tune restarts it from "
                        "its last checkpoint, and AT2 keeps its epoch in flight",
                        trial.trial_id, trial.run_metadata.num_failures, trial.max_failures)
            if trial.trial_id not in self._unknown:
                self.coordinator.on_trial_restarted(trial.trial_id)
            return
        self.coordinator.on_trial_end(trial.trial_id, failed=True)

    def on_trial_complete(self, tune_controller, trial: Trial, result: dict) -> None:
        """The trial ended; a result that Tune ended it on (a ``stop`` criterion, ``done=True``)
        reached no :meth:`on_trial_result`, so it is observed here (once)."""
        with self.searcher.bounded_threads():
            self._observe_last_result(trial, result)
        self.coordinator.on_trial_end(trial.trial_id)

    def _observe_last_result(self, trial: Trial, result: dict | None) -> None:
        if not result or trial.trial_id in self._unknown:
            return
        if self.searcher.metric not in result or self.searcher.time_attr not in result:
            return  # the trainable returned before reporting anything
        record = self.coordinator.trials.get(trial.trial_id)
        if record is None or not record.status.in_flight:
            return
        epoch = self.searcher.epoch_of(result)
        if epoch <= record.last_epoch:
            return  # observed already (Tune repeats the last result when a trainable returns)
        self._observe(trial, result, epoch)

    def on_trial_remove(self, tune_controller, trial: Trial) -> None:
        self.coordinator.on_trial_end(trial.trial_id)

    # ------------------------------------------------------------------ the models held
    def checkpoint_of(self, trial_id: str, epoch: int) -> tuple[str | None, str | None]:
        """``(where, why_not)``: the checkpoint ``trial_id`` saved at ``epoch`` (a path or a
        URI) and ``None``; ``None`` and why there is none (the fix included); or ``(None,
        None)`` while it may still be on its way (Tune registers a result's checkpoint after
        the result, and the experiment may be saved in between)."""
        trial = self._trials.get(trial_id)
        if trial is None:
            return None, None  # a trial of a run restored without it: nothing to look at
        epoch_of = self.searcher.epoch_of
        where = held_checkpoint.checkpoint_at(trial, epoch, epoch_of)
        if where is not None:
            return where, None
        newest = max(held_checkpoint.kept_epochs(trial, epoch_of), default=None)
        if trial.status == Trial.RUNNING and (newest is None or newest < epoch):
            return None, None
        return None, held_checkpoint.missing_checkpoint_message(
            trial, epoch, self.searcher.epoch_of, self.searcher.metric, self.searcher.mode)

    # ------------------------------------------------------------------ what runs next
    def choose_trial_to_run(self, tune_controller) -> Trial | None:
        with self.searcher.bounded_threads():
            return self._trial_to_run(tune_controller)

    def _trial_to_run(self, tune_controller) -> Trial | None:
        trials = tune_controller.get_trials()
        if self.coordinator.needs_reconcile:  # the first call after Tuner.restore: all are back
            self.coordinator.reconcile({t.trial_id for t in trials})
        self._release_ended(trials)
        paused = {t.trial_id: t for t in trials if t.status == Trial.PAUSED}
        for trial_id, trial in list(paused.items()):
            if trial_id in self._unknown or self.coordinator.status(trial_id) is TrialStatus.DONE:
                tune_controller.stop_trial(trial)  # restored, but stopped or unknown to AT2
                del paused[trial_id]
        for trial in trials:  # started by the coordinator (Start or Resume) and not running yet
            if trial.status == Trial.PENDING and self._in_flight(trial):
                return trial
        for trial in paused.values():
            if self._in_flight(trial):
                # paused by Tune, not by AT2: after Tuner.restore Tune replays a PAUSE it had
                # queued before the crash; the coordinator still counts the trial as running
                return trial
        if self.coordinator.engine is None:
            return None  # nothing was suggested yet
        if self.releasing():
            return None  # the freed slot's actor is not free yet: ask again at the next step
        if self.coordinator.can_start and tune_controller.search_alg.is_finished():
            self.coordinator.stop_starting()  # num_samples trials exist: only resumes from now
        action = self.coordinator.next_action()
        if isinstance(action, Resume):
            trial = paused.get(action.trial_id)
            if trial is None:
                return None  # Tune is still checkpointing it: ask again at the next step
            self.coordinator.resume(action)
            return trial
        if isinstance(action, Finished):
            for trial in paused.values():
                tune_controller.stop_trial(trial)
        return None

    def releasing(self) -> bool:
        """Whether Tune is still carrying out a pause or stop that AT2 decided: the trial
        saves its checkpoint and its actor is not released yet. AT2 then starts and resumes
        nothing: once the trial is paused, Tune hands its actor to the next trial
        (``reuse_actors=True``) instead of requesting a new actor that it cancels a moment
        later, which left CPUs counted as held in Ray's raylet after the run."""
        return any(trial.status == Trial.RUNNING and not self._in_flight(trial)
                   for trial in self._trials.values())

    def _release_ended(self, trials: list[Trial]) -> None:
        """Trials Tune ended without telling the scheduler (a failed actor reuse errors the
        trial directly): the coordinator releases their slots and epochs in flight."""
        for trial in trials:
            if trial.status in (Trial.ERROR, Trial.TERMINATED):
                status = self.coordinator.status(trial.trial_id)
                if status is not None and status is not TrialStatus.DONE:
                    self.coordinator.on_trial_end(trial.trial_id,
                                                  failed=trial.status == Trial.ERROR)

    def _in_flight(self, trial: Trial) -> bool:
        status = self.coordinator.status(trial.trial_id)
        return status is not None and status.in_flight

    def debug_string(self) -> str:
        coordinator = self.coordinator
        counts = {s: len(coordinator.trials_with(s)) for s in TrialStatus}
        budget = coordinator.budget_epochs
        return (f"AT2 freeze-thaw: {coordinator.epochs_spent}"
                f"{'/' + str(budget) if budget else ''} epochs, "
                f"{counts[TrialStatus.RUNNING] + counts[TrialStatus.PENDING]} running, "
                f"{counts[TrialStatus.PAUSED]} paused, {counts[TrialStatus.DONE]} done")


def _retried_by_tune(trial: Trial) -> bool:
    """Whether Tune calls ``on_trial_error`` for ``trial`` on its way to restoring it: it stops
    the failed actor first (the trial is ERROR then), and ``should_recover`` holds; for a final
    failure it calls the scheduler before it stops the trial (RUNNING or PENDING)."""
    return trial.status == Trial.ERROR and trial.should_recover()


def _check_actor_reuse(tune_controller, trial: Trial) -> None:
    """A class Trainable without ``reset_config`` cannot be reused: Tune would error every
    trial that gets a reused actor (freeze-thaw resumes trials all the time)."""
    controller = getattr(tune_controller, "__dict__", {}).get("_tune_controller", tune_controller)
    if not getattr(controller, "_reuse_actors", False):
        return
    trainable = trial.get_trainable_cls()
    if isinstance(trainable, type) and issubclass(trainable, Trainable) \
            and not issubclass(trainable, FunctionTrainable) \
            and trainable.reset_config is Trainable.reset_config:
        raise AT2Error(f"the class Trainable {trainable.__name__} has no reset_config, but "
                       "reuse_actors=True: Tune errors every trial it reuses an actor for. "
                       "Implement reset_config(self, new_config) (set up the new config and "
                       "return True), or pass reuse_actors=False")


def _wraps_repeater(tune_controller) -> bool:
    searcher = getattr(tune_controller, "search_alg", None)
    for _ in range(8):  # SearchGenerator -> ConcurrencyLimiter -> Repeater -> ...
        if searcher is None or isinstance(searcher, Repeater):
            return searcher is not None
        searcher = getattr(searcher, "searcher", None)
    return False


def _append_result(trial: Trial, result: dict) -> None:
    """Append ``result`` to the trial's ``at2-result.jsonl`` (what ``at2-tune prior import``
    reads), after repairing Tune's ``result.json`` from it where a resume lost rows."""
    folder = getattr(trial, "local_path", None)
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    _repair_result_json(Path(folder))
    with open(Path(folder) / AT2_RESULTS_FILE, "a") as handle:
        handle.write(json.dumps(result, default=repr) + "\n")


def _repair_result_json(folder: Path) -> None:
    """Give Tune's ``result.json`` in ``folder`` back the rows a resume took from it.

    When a paused trial resumes, Tune's ``JsonLoggerCallback`` replaces the local
    ``result.json`` with the storage path's copy, which lacks the rows written since the last
    sync; ``ResultGrid`` (``metrics_dataframe``) reads that file, so a user's results missed
    epochs (13 of 80 trials in 10 runs of ``experiments.result_grid_rows``). Called before
    Tune logs the trial's next result: where ``result.json`` holds fewer rows than the results
    AT2 recorded, it is rewritten in place with them (the same file: Tune's logger keeps it
    open for appending, and appends the next result after them)."""
    ours_path, theirs_path = folder / AT2_RESULTS_FILE, folder / "result.json"
    if not (ours_path.is_file() and theirs_path.is_file()):
        return
    ours = ours_path.read_text().splitlines()
    theirs = theirs_path.read_text().splitlines()
    if len(theirs) >= len(ours):
        return
    with open(theirs_path, "r+") as handle:  # in place: the logger's handle stays valid
        handle.seek(0)
        handle.write("\n".join(ours) + "\n")
        handle.truncate()


class _NoMissingRemoteLog(logging.Filter):
    """Drops Tune's ``Remote file not found: .../result.json`` warning. Tune's loggers log it
    whenever a trial restores before its folder reached the storage path, which under
    freeze-thaw is nearly every resume (63 of the 80 results of an 80-epoch run): noise, since
    nothing is lost that the AT2 pair does not record itself (``at2-result.jsonl``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Remote file not found")


def _quiet_resume_warnings() -> None:
    tune_loggers = logging.getLogger("ray.tune.logger.logger")
    if not any(isinstance(f, _NoMissingRemoteLog) for f in tune_loggers.filters):
        tune_loggers.addFilter(_NoMissingRemoteLog())
