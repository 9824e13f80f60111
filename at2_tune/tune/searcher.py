"""``AT2Searcher``: the Ray Tune searcher that proposes configurations from the AT2 engine.

Use it together with :class:`~at2_tune.tune.scheduler.AT2Scheduler`; both share one
:class:`~at2_tune.core.coordinator.Coordinator`::

    searcher = AT2Searcher()                     # HyperRec space, HyperRec database as prior
    tune.run(trainable, search_alg=searcher, scheduler=AT2Scheduler(searcher),
             metric="val_acc", mode="max", num_samples=1000, reuse_actors=True)
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from typing import Any, Sequence

from ray.tune.search import Searcher

from at2_tune.core.coordinator import Coordinator, Finished, Start
from at2_tune.core.engine import AT2Engine
from at2_tune.core.offline_cache import FitCache, prepare_engine
from at2_tune.core.planner import Plan
from at2_tune.core.prior import PriorData
from at2_tune.core.settings import AT2Settings, with_objective
from at2_tune.core.setup import DEFAULT_PRIOR, RunSetup
from at2_tune.core.threads import checked_thread_count, torch_threads
from at2_tune.errors import AT2Error
from at2_tune.tune.searcher_state import (
    SEARCHER_STATE_VERSION,
    newest_state,
    read_state,
    write_state,
)

log = logging.getLogger(__name__)


class AT2Searcher(Searcher):
    """Turns the coordinator's ``Start`` decisions into Tune trials; :class:`AT2Scheduler`
    (required, built with this searcher) carries out every other decision and reports every
    result and trial end to the shared coordinator, once.

    Args:
        space: a ``search_spaces.SearchSpace`` or a Ray Tune ``param_space`` dict; ``None``:
            the space Tune passes in ``param_space``, else the HyperRec space. A space given
            here and a different one in ``param_space`` is an error, as in Ray's searchers.
        metric, mode: as in Tune (usually given to ``tune.run`` / ``TuneConfig`` instead).
        prior: ``"hyperrec"`` (the HyperRec database, all tasks), the folder of a database
            built with ``at2-tune prior import`` (its curves may be partially observed; its
            configurations must lie in the space, which defaults to the database's own), a
            ``PriorData``, or ``None`` (no transfer). The HyperRec prior needs the HyperRec
            space.
        candidates: configurations to choose from; default: the prior's configurations (with
            a database folder: plus ``n_candidates`` samples of the space), or
            ``n_candidates`` distinct samples of the space when there is no prior (every
            configuration, when the space is finite and holds at most ``n_candidates``).
        points_to_evaluate: configurations started first, in this order (as in Ray's
            searchers); the model decides everything after their first epochs.
        max_epochs: epochs per trial; default: the prior's epochs, or a ``stop=
            {time_attr: N}`` criterion's ``N``. Required without a prior and such a stop.
        budget_epochs: total epochs over all trials; ``None``: until ``num_samples`` trials.
        max_concurrent: slots ``k`` of the freeze-thaw rule (also set by Tune's
            ``max_concurrent_trials``).
        fit_cache: where offline fits are saved and reused: a ``FitCache`` (default
            ``FitCache()``, i.e. ``~/.cache/at2-tune/fits``) or a folder; ``None``: no cache.
        time_attr: the result field that counts epochs.
        objective: what the run is for, and what the budget planner plans for
            (``at2_tune.core.planner``): ``"model"`` (the default), the best model trained
            within ``budget_epochs`` (Tune's ``get_best_result``); ``"configuration"`` (the AT2
            paper's), a configuration you will train again to its end, judged by its
            full-training value. ``None``: the one ``settings`` name.
        gp_threads: torch threads of the model's work in the driver (the offline fit, every
            decision); ``None`` keeps torch's setting. The trials' processes share the machine:
            torch's default of one thread per core oversubscribes it
            (``experiments.driver_threads``).
    """

    def __init__(self, space=None, metric: str | None = None, mode: str | None = None, *,
                 prior: str | PriorData | None = DEFAULT_PRIOR, settings: AT2Settings | None = None,
                 seed: int = 0, candidates: Sequence[dict[str, Any]] | None = None,
                 n_candidates: int = 100, max_epochs: int | None = None,
                 budget_epochs: int | None = None, max_concurrent: int | None = None,
                 fit_cache: FitCache | str | os.PathLike | None = FitCache(),
                 data_dir: str | None = None, time_attr: str = "training_iteration",
                 track_recommendations: bool = False,
                 points_to_evaluate: Sequence[dict[str, Any]] | None = None,
                 objective: str | None = None, gp_threads: int | None = 1) -> None:
        if mode not in (None, "max", "min"):
            raise ValueError(f"mode={mode!r} is not supported; use 'max' or 'min'")
        super().__init__(metric=metric, mode=mode)
        self.setup = RunSetup(
            space=_as_space(space), prior=prior,
            settings=with_objective(settings or AT2Settings(), objective), seed=seed,
            candidates=list(candidates) if candidates is not None else None,
            n_candidates=n_candidates, max_epochs=max_epochs, time_attr=time_attr,
            points=[dict(p) for p in points_to_evaluate or ()], data_dir=data_dir)
        """What the engine is built from (``at2_tune.core.setup``), completed by what Tune
        passes."""
        self.gp_threads = checked_thread_count(gp_threads)
        self._fit_cache = FitCache.coerce(fit_cache)
        self._scheduler = None  # the AT2Scheduler built with this searcher
        self._missing_checkpoints: set[tuple[str, int]] = set()  # warned of once each
        self._held_checkpoint: tuple[str, int, str] | None = None  # (trial, epoch, where)
        self._saves = 0
        self.offline_fit_seconds: float | None = None
        self.offline_fit_outcome: str | None = None
        """How the engine was prepared: ``"no prior tasks"`` (nothing to fit offline), ``"not
        needed"`` (the GP takes no part yet), ``"cache hit"`` (a saved fit was loaded) or
        ``"fitted"``; ``None`` before the first suggestion."""
        self.coordinator = Coordinator(budget_epochs=budget_epochs, max_concurrent=max_concurrent,
                                       track_recommendations=track_recommendations)

    # ------------------------------------------------------------------ set-up
    @property
    def time_attr(self) -> str:
        """The result field that counts epochs."""
        return self.setup.time_attr

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict,
                              **spec: Any) -> bool:
        if self.coordinator.engine is not None:
            return False  # the engine exists: its space and metric can no longer change
        if metric and self._metric and metric != self._metric:
            raise ValueError(f"AT2Searcher(metric={self._metric!r}) but Tune tunes "
                             f"metric={metric!r}; give the metric in one place (TuneConfig or "
                             "tune.run), or the same one in both")
        if mode and self._mode and mode != self._mode:
            raise ValueError(f"AT2Searcher(mode={self._mode!r}) but Tune tunes mode={mode!r}; "
                             "give the mode in one place (TuneConfig or tune.run), or the same "
                             "one in both")
        if mode and mode not in ("max", "min"):
            raise ValueError(f"mode={mode!r} is not supported; use 'max' or 'min'")
        self._metric, self._mode = self._metric or metric, self._mode or mode
        if "stop" in spec:
            self.setup.stop_epochs = _stop_epochs(spec["stop"], self.time_attr)
        if config:
            self._take_param_space(config)
        return True

    def _take_param_space(self, config: dict) -> None:
        """Use Tune's ``param_space``, or check that it is the space given to the searcher."""
        from search_spaces import from_param_space

        given = from_param_space(config)
        if self.setup.space is None:
            self.setup.space = given
            if self.setup.prior == DEFAULT_PRIOR:
                self.setup.prior = None  # the database prior only fits the HyperRec space
        elif given.parameters and not _same_space(given, self.setup.space):
            raise ValueError(
                f"AT2Searcher was given the space {self.setup.space.describe()}\nbut param_space "
                f"holds another one:\n{given.describe()}\nGive the search space in one place: "
                "AT2Searcher(space=...) or param_space (as with Ray's own searchers)")

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        self.coordinator.max_concurrent = max_concurrent
        return True

    def attach_scheduler(self, scheduler) -> None:
        """Called by :class:`AT2Scheduler`: results and trial ends reach the coordinator there,
        and it finds the checkpoints of the recommended model (``scheduler.checkpoint_of``)."""
        self._scheduler = scheduler

    def _new_engine(self) -> AT2Engine:
        """An engine of this searcher's setup, not fitted yet."""
        self._check_metric()
        engine, first = self.setup.new_engine(self._metric, self._mode)
        if first and not self.coordinator.trials:
            self.coordinator.first = first
        return engine

    def _check_metric(self) -> None:
        if not self._metric or not self._mode:
            raise ValueError("AT2Searcher needs a metric and a mode: pass metric='val_acc', "
                             "mode='max' to tune.run / TuneConfig (or to AT2Searcher)")

    @property
    def engine(self) -> AT2Engine:
        """The engine (built, fitted offline and conditioned on first use)."""
        if self.coordinator.engine is None:
            engine = self._new_engine()
            self.coordinator.attach(engine)
            with self.bounded_threads():  # the plan first: a model-free schedule reads no
                plan = self.coordinator.plan()  # posterior, so nothing is fitted for it
            if plan is not None:
                log.info("AT2 %s", plan.describe())
            started = time.perf_counter()
            with self.bounded_threads():
                self.offline_fit_outcome = prepare_engine(engine, self._fit_cache)
            self.offline_fit_seconds = time.perf_counter() - started
        return self.coordinator.engine

    @property
    def plan(self) -> Plan | None:
        """The budget planner's choice (``at2_tune.core.planner``), made when the engine is
        built (and restored with it); ``None`` before, and without a budget, a prior of at
        least two tasks or a planning policy."""
        engine = self.coordinator.engine
        return None if engine is None else getattr(engine.policy, "current_plan", None)

    # ------------------------------------------------------------------ Tune callbacks
    def suggest(self, trial_id: str) -> dict | str | None:
        """The configuration of a new trial when the coordinator's next action is ``Start``;
        ``FINISHED`` when nothing will ever start again; else ``None`` (ask again later)."""
        if self._scheduler is None:
            raise AT2Error("AT2Searcher makes freeze-thaw decisions with its scheduler: pass "
                           "scheduler=AT2Scheduler(searcher) next to search_alg=searcher")
        self.engine  # noqa: B018 (builds the engine on the first call)
        if self._scheduler.releasing():
            return None  # a trial is still pausing or stopping: its actor is the next one's
        with self.bounded_threads():
            action = self.coordinator.next_action()
        if isinstance(action, Start):
            return copy.deepcopy(self.coordinator.start(trial_id, action))
        return Searcher.FINISHED if isinstance(action, Finished) else None

    def bounded_threads(self):
        """The context the model's work runs in: ``gp_threads`` torch threads."""
        return torch_threads(getattr(self, "gp_threads", 1))

    def metric_value(self, trial_id: str, result: dict) -> float:
        """The metric of ``result`` as a value to maximize; a clear error when it is missing."""
        if self._metric not in result:
            raise AT2Error(f"trial {trial_id} reported no {self._metric!r} (got "
                           f"{sorted(k for k in result if not k.startswith('config'))[:12]}); "
                           f"report it with tune.report({{{self._metric!r}: ...}})")
        reported = result[self._metric]
        try:
            value = float(reported)
        except (TypeError, ValueError):
            raise AT2Error(f"trial {trial_id} reported {self._metric}={reported!r}, which is not "
                           "a number; report a float") from None
        surrogate = getattr(self.coordinator.engine, "surrogate", None)  # None: no model
        if surrogate is not None and surrogate.transform.warp_name == "log_error" \
                and not 0.0 <= value <= 1.0 and math.isfinite(value):
            raise AT2Error(f"trial {trial_id} reported {self._metric}={reported!r}, outside "
                           "[0, 1]; the log-error warp (chosen for accuracies) needs fractions: "
                           "report accuracy as a fraction, or pass AT2Searcher(settings="
                           "AT2Settings(ModelSettings(output_warp='standardize'))) for a metric with other "
                           "bounds")
        return value if self._mode == "max" else -value

    def epoch_of(self, result: dict) -> int:
        if self.time_attr not in result:
            raise AT2Error(f"result has no {self.time_attr!r}; set time_attr to the field that "
                           "counts epochs")
        return int(result[self.time_attr])

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Nothing: :class:`AT2Scheduler` reports every result to the coordinator."""

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        """Nothing: :class:`AT2Scheduler` reports every trial end (failures included)."""

    # ------------------------------------------------------------------ save / restore
    def save(self, checkpoint_path: str) -> None:
        """Write the state to ``checkpoint_path`` and, atomically, to a backup next to it.

        Tune copies its experiment folder to the storage path file by file, so a driver killed
        during the copy leaves a truncated file there; the backup is a second, whole copy
        (at most one of the two is being copied at any time). :meth:`restore_from_dir` takes
        the newest state that loads.
        """
        self._saves += 1
        state = {"version": SEARCHER_STATE_VERSION, "metric": self._metric, "mode": self._mode,
                 "space": None if self.setup.space is None else self.setup.space.to_json(),
                 "saved": [time.time(), self._saves], "searcher": self._construction_state(),
                 "coordinator": self.coordinator.state_dict()}
        recommendation = self.recommendation()  # finds (and keeps) the held model's checkpoint
        state["held_checkpoint"] = None if self._held_checkpoint is None \
            else list(self._held_checkpoint)
        write_state(state, checkpoint_path, recommendation)

    def _construction_state(self) -> dict[str, Any]:
        """What builds this searcher's engine, so a searcher made with defaults restores it."""
        return self.setup.to_state()

    def _load_construction(self, saved: dict[str, Any]) -> None:
        self.setup = RunSetup.from_state(saved)

    # ------------------------------------------------------------------ the recommendation
    def recommendation(self) -> dict[str, Any] | None:
        """AT2's recommended model so far: ``{"trial_id", "config", "metric", "mode", "value",
        "epoch", "checkpoint", "epochs_spent"}``: the trial, the epoch of its best observed
        value (as the trial reported it) and the checkpoint it saved with that result (a path,
        or a URI on remote storage; ``None``, with a warning naming the fix, where Ray deleted
        it or the trainable saved none). ``None`` before the first observation. Reads the
        model, trains nothing."""
        held = self.coordinator.recommendation()
        if held is None:
            return None
        value = None if held.value is None else held.value if self._mode == "max" else -held.value
        return {"trial_id": held.trial_id,
                "config": copy.deepcopy(self.coordinator.engine.candidates[held.candidate]),
                "metric": self._metric, "mode": self._mode, "value": value, "epoch": held.epoch,
                "checkpoint": self._checkpoint_of(held.trial_id, held.epoch),
                "epochs_spent": self.coordinator.epochs_spent}

    def _checkpoint_of(self, trial_id: str | None, epoch: int | None) -> str | None:
        """The checkpoint of ``trial_id`` at ``epoch`` that Ray keeps, found through the
        scheduler (which sees Tune's trials) or, in a searcher restored after the run, as the
        saved state named it; a missing one is warned of once."""
        if trial_id is None or epoch is None:
            return None
        where, why_not = (None, None) if self._scheduler is None \
            else self._scheduler.checkpoint_of(trial_id, epoch)
        if where is not None:
            self._held_checkpoint = (trial_id, epoch, where)
            return where
        if why_not is not None:
            held = self._held_checkpoint
            if held is not None and held[:2] == (trial_id, epoch):
                self._held_checkpoint = None  # Ray deleted it since: never name it again
            if (trial_id, epoch) not in self._missing_checkpoints:
                self._missing_checkpoints.add((trial_id, epoch))
                log.warning(why_not)
            return None
        held = self._held_checkpoint
        return held[2] if held is not None and held[:2] == (trial_id, epoch) else None

    def restore_from_dir(self, checkpoint_dir: str) -> None:
        """Restore the newest whole state of an experiment folder (Tune's files and backups);
        unreadable (truncated) files are skipped with a warning."""
        self._load(newest_state(checkpoint_dir, self.CKPT_FILE_TMPL.format("*"))[0])

    def restore(self, checkpoint_path: str) -> None:
        """Continue from :meth:`save`: the saved model state is loaded, nothing is refitted; a
        state of a different space, prior, candidates, settings or seed is a clear error."""
        self._load(read_state(checkpoint_path))

    def _load(self, state: dict[str, Any]) -> None:
        self._metric, self._mode = state["metric"], state["mode"]
        self._load_construction(state["searcher"])  # the state alone rebuilds the engine
        if state["space"] is not None:
            from search_spaces import SearchSpace

            self.setup.space = SearchSpace.from_json(state["space"])
        engine = self._new_engine() if state["coordinator"]["engine"] is not None else None
        self.coordinator.engine = None
        self.coordinator.load_state_dict(state["coordinator"], engine=engine)
        self._saves = int(state["saved"][1])
        held = state.get("held_checkpoint")  # absent in states saved before it was kept
        self._held_checkpoint = None if held is None else (held[0], int(held[1]), held[2])


def _as_space(space):
    """``space`` as a ``SearchSpace``: a Ray Tune ``param_space`` dict is converted."""
    from collections.abc import Mapping

    from search_spaces import SearchSpace, from_param_space

    if space is None or isinstance(space, SearchSpace):
        return space
    if isinstance(space, Mapping):
        return from_param_space(space)
    raise ValueError(f"AT2Searcher(space={space!r}): expected a search_spaces.SearchSpace or a "
                     "Ray Tune param_space dict such as {'lr': tune.loguniform(1e-4, 1e-1)}")


def _stop_epochs(stop: Any, time_attr: str) -> int | None:
    """``N`` of a ``stop={time_attr: N}`` criterion (Tune's dict form), else ``None``."""
    if isinstance(stop, dict) and isinstance(stop.get(time_attr), (int, float)) \
            and not isinstance(stop.get(time_attr), bool) and stop[time_attr] >= 1:
        return int(stop[time_attr])
    return None


def _same_space(a, b) -> bool:
    """The same parameters and constants (the names of the two spaces aside)."""
    from search_spaces.serialization import exact_key

    return (exact_key(a.parameters) == exact_key(b.parameters)
            and exact_key(a.constants) == exact_key(b.constants))

