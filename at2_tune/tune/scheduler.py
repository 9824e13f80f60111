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

from typing import Callable

from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from at2_tune.core.coordinator import Coordinator, Decision, Finished, Resume, TrialStatus
from at2_tune.errors import AT2Error
from at2_tune.tune.searcher import AT2Searcher


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
        searcher.attach_scheduler()

    @property
    def coordinator(self):
        return self.searcher.coordinator

    def set_search_properties(self, metric: str | None, mode: str | None, **spec) -> bool:
        self.searcher.set_search_properties(metric, mode, {})
        return True

    # ------------------------------------------------------------------ trial events
    def on_trial_add(self, tune_controller, trial: Trial) -> None:
        status = self.coordinator.status(trial.trial_id)
        if status is None and not self.coordinator.needs_reconcile:
            raise AT2Error(f"trial {trial.trial_id} was not created by AT2Searcher; "
                           "AT2Scheduler only schedules the searcher's trials")
        if status is None:  # started after the searcher's last saved state: stopped, unused
            self._unknown.add(trial.trial_id)
        if trial.status == Trial.PENDING and status in (None, TrialStatus.PAUSED, TrialStatus.DONE):
            trial.set_status(Trial.PAUSED)  # restored: wait for the coordinator (see module doc)

    def on_trial_result(self, tune_controller, trial: Trial, result: dict) -> str:
        if trial.trial_id in self._unknown:
            return TrialScheduler.STOP
        value = self.searcher.metric_value(trial.trial_id, result)
        epoch = self.searcher.epoch_of(result)
        decision = self.coordinator.on_result(trial.trial_id, epoch, value)
        if self.on_decision is not None:
            self.on_decision(self.coordinator, trial.trial_id, epoch, value, decision)
        return decision.value

    def on_trial_error(self, tune_controller, trial: Trial) -> None:
        self.coordinator.on_trial_end(trial.trial_id, failed=True)

    def on_trial_complete(self, tune_controller, trial: Trial, result: dict) -> None:
        self.coordinator.on_trial_end(trial.trial_id)

    def on_trial_remove(self, tune_controller, trial: Trial) -> None:
        self.coordinator.on_trial_end(trial.trial_id)

    # ------------------------------------------------------------------ what runs next
    def choose_trial_to_run(self, tune_controller) -> Trial | None:
        trials = tune_controller.get_trials()
        if self.coordinator.needs_reconcile:  # the first call after Tuner.restore: all are back
            self.coordinator.reconcile({t.trial_id for t in trials})
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
