"""``AT2Scheduler``: freeze-thaw CONTINUE / PAUSE / STOP decisions for Ray Tune.

At every epoch result the shared coordinator ranks, in one batch, the next epoch of every
running trial, every paused trial and every candidate not started yet by AT2's acquisition; the
top ``k`` (``k`` = concurrency) keep running, the others pause. A free slot resumes the best paused
trial, unless a new candidate ranks higher (then the searcher suggests it). Trials stop at
their last epoch, when the epoch budget is spent, when they fail or report NaN.
"""

from __future__ import annotations

import logging
import math

from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from at2_tune.core.coordinator import Decision
from at2_tune.errors import AT2Error
from at2_tune.tune.searcher import AT2Searcher

log = logging.getLogger(__name__)


class AT2Scheduler(TrialScheduler):
    """Pass the same :class:`AT2Searcher` as ``search_alg``; they share its coordinator."""

    _supports_buffered_results = False

    def __init__(self, searcher: AT2Searcher) -> None:
        super().__init__()
        if not isinstance(searcher, AT2Searcher):
            raise ValueError(f"AT2Scheduler needs the AT2Searcher of the run, got {searcher!r}; "
                             "use AT2Scheduler(searcher) with search_alg=searcher")
        self.searcher = searcher

    @property
    def coordinator(self):
        return self.searcher.coordinator

    def set_search_properties(self, metric: str | None, mode: str | None, **spec) -> bool:
        self.searcher.set_search_properties(metric, mode, {})
        return True

    def on_trial_add(self, tune_controller, trial: Trial) -> None:
        if trial.trial_id not in self.coordinator.trials:
            raise AT2Error(f"trial {trial.trial_id} was not created by AT2Searcher; "
                           "AT2Scheduler only schedules the searcher's trials")

    def on_trial_error(self, tune_controller, trial: Trial) -> None:
        self.coordinator.on_failure(trial.trial_id)

    def on_trial_result(self, tune_controller, trial: Trial, result: dict) -> str:
        value = self.searcher.metric_value(trial.trial_id, result)
        epoch = self.searcher.epoch_of(result)
        if not math.isfinite(value):
            log.warning("trial %s reported %s=%s at epoch %d: recorded as failed, its "
                        "configuration is not proposed again", trial.trial_id,
                        self.searcher.metric, value, epoch)
            self.coordinator.on_failure(trial.trial_id)
            return TrialScheduler.STOP
        decision = self.coordinator.on_result(trial.trial_id, epoch, value)
        if decision is Decision.STOP and self.coordinator.budget_left() < 1:
            self._stop_paused(tune_controller)
        return decision.value

    def on_trial_complete(self, tune_controller, trial: Trial, result: dict) -> None:
        self.coordinator.on_complete(trial.trial_id)

    def on_trial_remove(self, tune_controller, trial: Trial) -> None:
        self.coordinator.on_complete(trial.trial_id)

    def choose_trial_to_run(self, tune_controller) -> Trial | None:
        trials = tune_controller.get_trials()
        for trial in trials:
            if trial.status == Trial.PENDING:
                return trial
        paused = {t.trial_id: t for t in trials if t.status == Trial.PAUSED}
        if not paused:
            return None
        if self.coordinator.budget_left() < 1:
            self._stop_paused(tune_controller)
            return None
        choice = self.coordinator.resume_choice(list(paused))
        return paused.get(choice) if choice else None

    def _stop_paused(self, tune_controller) -> None:
        for trial in tune_controller.get_trials():
            if trial.status == Trial.PAUSED:
                tune_controller.stop_trial(trial)

    def debug_string(self) -> str:
        records = self.coordinator.trials.values()
        counts = {s: sum(r.status == s for r in records) for s in ("running", "paused", "done")}
        budget = self.coordinator.budget_epochs
        return (f"AT2 freeze-thaw: {self.coordinator.epochs_observed}"
                f"{'/' + str(budget) if budget else ''} epochs, {counts['running']} running, "
                f"{counts['paused']} paused, {counts['done']} done")
