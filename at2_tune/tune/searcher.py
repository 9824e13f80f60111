"""``AT2Searcher``: the Ray Tune searcher that proposes configurations from the AT2 engine.

Use it together with :class:`~at2_tune.tune.scheduler.AT2Scheduler`; both share one
:class:`~at2_tune.core.coordinator.Coordinator`::

    searcher = AT2Searcher()                     # HyperRec space, HyperRec database as prior
    tune.run(trainable, search_alg=searcher, scheduler=AT2Scheduler(searcher),
             metric="val_acc", mode="max", num_samples=1000, reuse_actors=True)
"""

from __future__ import annotations

import copy
import dataclasses
import glob
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from ray.tune.search import Searcher

from at2_tune import paths
from at2_tune.core.coordinator import Coordinator, Finished, Start
from at2_tune.core.engine import AT2Engine
from at2_tune.core.offline_cache import FitCache, prepare_engine
from at2_tune.core.planner import Plan
from at2_tune.core.prior import PriorData
from at2_tune.core.settings import AT2Settings, with_objective
from at2_tune.core.threads import checked_thread_count, torch_threads
from at2_tune.core.transform import resolve_output_warp
from at2_tune.errors import AT2Error
from at2_tune.recommendation import RECOMMENDATION_FILE
from search_spaces.errors import SearchSpaceError
from search_spaces.keys import config_key, distinct

SEARCHER_STATE_VERSION = 4
BACKUP_FILE = "at2-searcher-state.backup.pt"
log = logging.getLogger(__name__)
_DEFAULT = "hyperrec"


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
                 prior: str | PriorData | None = _DEFAULT, settings: AT2Settings | None = None,
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
        self._space = _as_space(space)
        self._prior = prior
        self._points = [dict(p) for p in points_to_evaluate or ()]
        self.gp_threads = checked_thread_count(gp_threads)
        self._stop_epochs: int | None = None
        self._settings = with_objective(settings or AT2Settings(), objective)
        self._seed = seed
        self._candidates = list(candidates) if candidates is not None else None
        self._n_candidates = n_candidates
        self._max_epochs = max_epochs
        self._fit_cache = FitCache.coerce(fit_cache)
        self._data_dir = data_dir
        self._loaded_database = None
        self._scheduler = None  # the AT2Scheduler built with this searcher
        self._missing_checkpoints: set[tuple[str, int]] = set()  # warned of once each
        self._held_checkpoint: tuple[str, int, str] | None = None  # (trial, epoch, where)
        self._saves = 0
        self.time_attr = time_attr
        self.offline_fit_seconds: float | None = None
        self.offline_fit_outcome: str | None = None
        """How the engine was prepared: ``"no prior tasks"`` (nothing to fit offline), ``"not
        needed"`` (the GP takes no part yet), ``"cache hit"`` (a saved fit was loaded) or
        ``"fitted"``; ``None`` before the first suggestion."""
        self.coordinator = Coordinator(budget_epochs=budget_epochs, max_concurrent=max_concurrent,
                                       track_recommendations=track_recommendations)

    # ------------------------------------------------------------------ set-up
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
            self._stop_epochs = _stop_epochs(spec["stop"], self.time_attr)
        if config:
            self._take_param_space(config)
        return True

    def _take_param_space(self, config: dict) -> None:
        """Use Tune's ``param_space``, or check that it is the space given to the searcher."""
        from search_spaces import from_param_space

        given = from_param_space(config)
        if self._space is None:
            self._space = given
            if self._prior == _DEFAULT:
                self._prior = None  # the database prior only fits the HyperRec space
        elif given.parameters and not _same_space(given, self._space):
            raise ValueError(
                f"AT2Searcher was given the space {self._space.describe()}\nbut param_space "
                f"holds another one:\n{given.describe()}\nGive the search space in one place: "
                "AT2Searcher(space=...) or param_space (as with Ray's own searchers)")

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        self.coordinator.max_concurrent = max_concurrent
        return True

    def attach_scheduler(self, scheduler) -> None:
        """Called by :class:`AT2Scheduler`: results and trial ends reach the coordinator there,
        and it finds the checkpoints of the recommended model (``scheduler.checkpoint_of``)."""
        self._scheduler = scheduler

    def _resolved_space(self):
        if self._space is None and self._user_database() is not None:
            self._space = self._user_database().space
        if self._space is None:
            from search_spaces import HYPERREC_SPACE

            self._space = HYPERREC_SPACE
        return self._space

    def _user_database(self):
        """The user database of ``prior=FOLDER`` (loaded and verified once), else ``None``."""
        if isinstance(self._prior, PriorData) or self._prior in (None, _DEFAULT):
            return None
        if not isinstance(self._prior, (str, os.PathLike)):
            raise ValueError(f"prior={self._prior!r} is not supported; use 'hyperrec', the "
                             "folder of an `at2-tune prior import` database, a PriorData or None")
        if self._loaded_database is None:
            from at2_tune.databases.user import load_user_database

            self._loaded_database = load_user_database(self._prior)
        return self._loaded_database

    def _user_prior(self, space) -> PriorData:
        db = self._user_database()
        if self._metric and db.metric != self._metric:
            raise AT2Error(f"prior {self._prior} holds {db.metric!r}, but this run tunes "
                           f"{self._metric!r}; import the history with --metric "
                           f"{self._metric}, or tune the metric it holds")
        prior = PriorData.from_user_database(db)
        try:
            configs = tuple(space.validate(c) for c in prior.configs)
        except SearchSpaceError as exc:
            raise AT2Error(f"a configuration of the prior {self._prior} is not in this run's "
                           f"space {space.name!r}: {exc}; tune in a space that holds the "
                           "earlier runs' configurations") from None
        if self._candidates is None:
            self._candidates = distinct(list(configs) + self._space_candidates(space))
        prior = PriorData(prior.tasks, configs, prior.curves, prior.source)
        return prior if self._max_epochs is None else prior.with_epochs(self._max_epochs)

    def _resolved_prior(self, space) -> PriorData:
        prior = self._prior
        if isinstance(prior, PriorData):
            return prior
        if prior == _DEFAULT:
            if space.name != "hyperrec":
                raise ValueError(f"prior='hyperrec' needs the HyperRec space, not {space.name!r}; "
                                 "pass prior=None for a custom space (no transfer)")
            from at2_tune.databases import load_database

            db = load_database("hyperrec", self._data_dir)
            return PriorData.from_database(db, db.tasks, seed_profile=0)
        if prior is None:
            configs = self._candidates or self._space_candidates(space)
            return PriorData.empty(configs, self._epochs_without_prior())
        return self._user_prior(space)

    def _space_candidates(self, space) -> list[dict[str, Any]]:
        """``n_candidates`` distinct samples of ``space``, or all of it when it is finite and
        not larger (a space of choices only repeats samples)."""
        every = space.finite_configs(self._n_candidates)
        if every is not None:
            return every
        rng = np.random.default_rng(self._seed)
        configs = distinct(space.sample_many(rng, self._n_candidates))
        for _ in range(20):  # a discrete space larger than n_candidates: draw until distinct
            if len(configs) >= self._n_candidates:
                break
            configs = distinct(configs + space.sample_many(rng, self._n_candidates))
        return configs[:self._n_candidates]

    def _epochs_without_prior(self) -> int:
        epochs = self._max_epochs or self._stop_epochs
        if epochs is None:
            raise ValueError(
                "AT2Searcher without a prior needs the number of epochs a trial trains: pass "
                "AT2Searcher(max_epochs=N), or stop={" + repr(self.time_attr) + ": N} to "
                "tune.run / RunConfig (AT2's epoch axis and freeze-thaw decisions need it)")
        return epochs

    def _validated_points(self, space) -> list[dict[str, Any]]:
        """``points_to_evaluate`` in the space's canonical form."""
        try:
            return [space.validate(p) for p in self._points]
        except SearchSpaceError as exc:
            raise ValueError(f"a point of points_to_evaluate is not in the space "
                             f"{space.name!r}: {exc}") from None

    def _resolved_settings(self, prior: PriorData) -> AT2Settings:
        """The settings with ``output_warp="auto"`` resolved from the metric and mode: the
        log-error warp only for a metric to maximize whose prior values are all in [0, 1]."""
        settings = self._settings
        if settings.model.output_warp == "log_error" and self._mode == "min":
            raise ValueError(f"ModelSettings(output_warp='log_error') warps accuracies to "
                             f"maximize, but {self._metric!r} is tuned with mode='min'; use "
                             "output_warp='standardize' (or 'auto')")
        if settings.model.output_warp != "auto":
            return settings
        warp = "standardize" if self._mode == "min" else resolve_output_warp("auto", prior)
        return dataclasses.replace(settings, model=dataclasses.replace(settings.model,
                                                                       output_warp=warp))

    def _new_engine(self) -> AT2Engine:
        """An engine of this searcher's identity, not fitted yet."""
        self._check_metric()
        space = self._resolved_space()
        prior = self._resolved_prior(space)
        if self._max_epochs is not None and self._max_epochs != prior.n_epochs:
            raise ValueError(f"max_epochs={self._max_epochs} differs from the prior's "
                             f"{prior.n_epochs} epochs; the model's epoch axis is the prior's")
        points = self._validated_points(space)
        candidates = self._candidates
        if points:  # points_to_evaluate first, each once
            rest = prior.configs if candidates is None else candidates
            candidates = distinct(points + list(rest))
        engine = AT2Engine(space, prior, self._resolved_settings(prior), seed=self._seed,
                           candidates=candidates)
        if points and not self.coordinator.trials:
            keys = {config_key(c): i for i, c in enumerate(engine.candidates)}
            self.coordinator.first = [keys[config_key(p)] for p in points]
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
            started = time.perf_counter()
            with self.bounded_threads():
                needed = engine.needs_gp()
                reused = prepare_engine(engine, self._fit_cache)
            self.offline_fit_seconds = time.perf_counter() - started
            self.offline_fit_outcome = (
                "no prior tasks" if not engine.prior.n_tasks else
                ("cache hit" if reused else "fitted") if needed else "not needed")
            self.coordinator.attach(engine)
            with self.bounded_threads():
                plan = self.coordinator.plan()
            if plan is not None:
                log.info("AT2 %s", plan.describe())
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
                 "space": None if self._space is None else self._space.to_json(),
                 "saved": [time.time(), self._saves], "searcher": self._construction_state(),
                 "coordinator": self.coordinator.state_dict()}
        recommendation = self.recommendation()  # finds (and keeps) the held model's checkpoint
        state["held_checkpoint"] = None if self._held_checkpoint is None \
            else list(self._held_checkpoint)
        torch.save(state, checkpoint_path)
        paths.atomic_write(Path(checkpoint_path).with_name(BACKUP_FILE),
                           lambda handle: torch.save(state, handle))
        if recommendation is not None:
            text = json.dumps(recommendation, indent=1, default=float)
            paths.atomic_write(Path(checkpoint_path).with_name(RECOMMENDATION_FILE),
                               lambda handle: handle.write(text.encode()))

    def _construction_state(self) -> dict[str, Any]:
        """What builds this searcher's engine, so a searcher made with defaults restores it."""
        prior = self._prior
        if isinstance(prior, PriorData):
            prior = {"tasks": list(prior.tasks), "configs": list(prior.configs),
                     "curves": torch.as_tensor(prior.curves), "source": prior.source}
        elif prior is not None:
            prior = str(prior)
        return {"prior": prior, "settings": self._settings.to_json(), "seed": self._seed,
                "candidates": self._candidates, "n_candidates": self._n_candidates,
                "max_epochs": self._max_epochs, "stop_epochs": self._stop_epochs,
                "time_attr": self.time_attr, "points_to_evaluate": self._points,
                "data_dir": self._data_dir}

    def _load_construction(self, saved: dict[str, Any]) -> None:
        prior = saved["prior"]
        if isinstance(prior, dict):
            prior = PriorData(tuple(prior["tasks"]), tuple(prior["configs"]),
                              prior["curves"].numpy(), prior["source"])
        self._prior = prior
        self._settings = AT2Settings.from_json(saved["settings"])
        self._seed, self._candidates = saved["seed"], saved["candidates"]
        self._n_candidates, self._max_epochs = saved["n_candidates"], saved["max_epochs"]
        self._stop_epochs, self.time_attr = saved["stop_epochs"], saved["time_attr"]
        self._points, self._data_dir = saved["points_to_evaluate"], saved["data_dir"]

    # ------------------------------------------------------------------ the recommendation
    def recommendation(self) -> dict[str, Any] | None:
        """AT2's recommended model so far: ``{"trial_id", "config", "metric", "mode", "value",
        "epoch", "checkpoint", "epochs_spent"}``: the trial, the epoch of its best observed
        value (as the trial reported it) and the checkpoint it saved with that result (a path,
        or a URI on remote storage; ``None``, with a warning naming the fix, where Ray deleted
        it or the trainable saved none). ``None`` before the first observation. Reads the
        model, trains nothing."""
        engine = self.coordinator.engine
        if engine is None or not len(engine.observations) or \
                len(engine.failed) == engine.n_candidates:
            return None
        engine.condition()  # a no-op unless an observation arrived since the last decision
        candidate = engine.recommend()
        own = [o for o in engine.observations if o.candidate == candidate]
        trial_id = self.coordinator.trial_of(candidate)
        best = max(own, key=lambda o: o.value) if own else None
        value = None if best is None else (best.value if self._mode == "max" else -best.value)
        epoch = None if best is None else best.epoch
        return {"trial_id": trial_id, "config": copy.deepcopy(engine.candidates[candidate]),
                "metric": self._metric, "mode": self._mode, "value": value, "epoch": epoch,
                "checkpoint": self._checkpoint_of(trial_id, epoch),
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
            if (trial_id, epoch) not in self._missing_checkpoints:
                self._missing_checkpoints.add((trial_id, epoch))
                log.warning(why_not)
            return None
        held = self._held_checkpoint
        return held[2] if held is not None and held[:2] == (trial_id, epoch) else None

    def restore_from_dir(self, checkpoint_dir: str) -> None:
        """Restore the newest whole state of an experiment folder (Tune's files and backups);
        unreadable (truncated) files are skipped with a warning."""
        files = glob.glob(os.path.join(checkpoint_dir, self.CKPT_FILE_TMPL.format("*")))
        files.append(os.path.join(checkpoint_dir, BACKUP_FILE))
        states = []
        for path in files:
            try:
                states.append((torch.load(path, weights_only=True), path))
            except FileNotFoundError:
                continue
            except Exception as exc:  # noqa: BLE001 - a damaged copy: another one is whole
                log.warning("skipping unreadable AT2Searcher state %s (%s)", path, exc)
        if not states:
            raise AT2Error(f"no readable AT2Searcher state in {checkpoint_dir}; the experiment "
                           "cannot continue with its AT2 state: start a new run")
        state, path = max(states, key=lambda pair: tuple(pair[0].get("saved", (0, 0))))
        self._load(state, path)

    def restore(self, checkpoint_path: str) -> None:
        """Continue from :meth:`save`: the saved model state is loaded, nothing is refitted; a
        state of a different space, prior, candidates, settings or seed is a clear error."""
        self._load(torch.load(checkpoint_path, weights_only=True), checkpoint_path)

    def _load(self, state: dict[str, Any], checkpoint_path: str) -> None:
        if state.get("version") != SEARCHER_STATE_VERSION:
            raise AT2Error(f"{checkpoint_path}: AT2Searcher state version "
                           f"{state.get('version')!r} is not supported (expected "
                           f"{SEARCHER_STATE_VERSION}; states saved before at2-tune split its "
                           "settings into model and policy settings cannot continue: start "
                           "a new run)")
        self._metric, self._mode = state["metric"], state["mode"]
        self._load_construction(state["searcher"])  # the state alone rebuilds the engine
        if state["space"] is not None:
            from search_spaces import SearchSpace

            self._space = SearchSpace.from_json(state["space"])
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

