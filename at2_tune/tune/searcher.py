"""``AT2Searcher``: the Ray Tune searcher that proposes configurations from the AT2 engine.

Use it together with :class:`~at2_tune.tune.scheduler.AT2Scheduler`; both share one
:class:`~at2_tune.core.coordinator.Coordinator`::

    searcher = AT2Searcher()                     # HyperRec space, HyperRec database as prior
    tune.run(trainable, search_alg=searcher, scheduler=AT2Scheduler(searcher),
             metric="val_acc", mode="max", num_samples=1000, reuse_actors=True)
"""

from __future__ import annotations

import copy
import os
import time
from typing import Any, Sequence

import numpy as np
import torch
from ray.tune.search import Searcher

from at2_tune.core.coordinator import Coordinator
from at2_tune.core.engine import AT2Engine
from at2_tune.core.offline_cache import default_fit_cache, load_or_fit
from at2_tune.core.prior import PriorData
from at2_tune.core.settings import AT2Settings
from at2_tune.errors import AT2Error

SEARCHER_STATE_VERSION = 1
_DEFAULT = "hyperrec"


class AT2Searcher(Searcher):
    """Proposes configurations by AT2's acquisition; its coordinator also drives :class:`AT2Scheduler`.

    Args:
        space: a ``search_spaces.SearchSpace``; ``None``: the space Tune passes in
            ``param_space`` (``search_spaces.from_param_space``), else the HyperRec space.
        metric, mode: as in Tune (usually given to ``tune.run`` / ``TuneConfig`` instead).
        prior: ``"hyperrec"`` (the HyperRec database, all tasks), a ``PriorData``, or ``None``
            (no transfer). A database prior needs the HyperRec space.
        candidates: configurations to choose from; default: the prior's configurations, or
            ``n_candidates`` samples of the space when there is no prior.
        max_epochs: epochs per trial (default: the prior's epochs, or 75).
        budget_epochs: total epochs over all trials; ``None``: until ``num_samples`` trials.
        max_concurrent: ``k`` of the freeze-thaw rule (also set by Tune's
            ``max_concurrent_trials``).
        fit_cache: folder of saved offline fits (default ``~/.cache/at2-tune/fits``); ``False``
            disables it.
        time_attr: the result field that counts epochs.
    """

    def __init__(self, space=None, metric: str | None = None, mode: str | None = None, *,
                 prior: str | PriorData | None = _DEFAULT, settings: AT2Settings | None = None,
                 seed: int = 0, candidates: Sequence[dict[str, Any]] | None = None,
                 n_candidates: int = 100, max_epochs: int | None = None,
                 budget_epochs: int | None = None, max_concurrent: int | None = None,
                 fit_cache: str | os.PathLike | bool | None = None, data_dir: str | None = None,
                 time_attr: str = "training_iteration", track_recommendations: bool = False) -> None:
        if mode not in (None, "max", "min"):
            raise ValueError(f"mode={mode!r} is not supported; use 'max' or 'min'")
        super().__init__(metric=metric, mode=mode)
        self._space = space
        self._prior = prior
        self._settings = settings or AT2Settings()
        self._seed = seed
        self._candidates = list(candidates) if candidates is not None else None
        self._n_candidates = n_candidates
        self._max_epochs = max_epochs
        self._fit_cache = fit_cache
        self._data_dir = data_dir
        self.time_attr = time_attr
        self.offline_fit_seconds: float | None = None
        self.coordinator = Coordinator(budget_epochs=budget_epochs, max_concurrent=max_concurrent,
                                       track_recommendations=track_recommendations)
        self.coordinator.engine_factory = self._build_engine

    # ------------------------------------------------------------------ set-up
    def set_search_properties(self, metric: str | None, mode: str | None, config: dict,
                              **spec: Any) -> bool:
        if self.coordinator.engine is not None:
            return False  # the engine exists: its space and metric can no longer change
        if metric and not self._metric:
            self._metric = metric
        if mode and not self._mode:
            if mode not in ("max", "min"):
                raise ValueError(f"mode={mode!r} is not supported; use 'max' or 'min'")
            self._mode = mode
        if config and self._space is None:
            from search_spaces import from_param_space

            self._space = from_param_space(config)
            if self._prior == _DEFAULT:
                self._prior = None  # the database prior only fits the HyperRec space
        return True

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        self.coordinator.max_concurrent = max_concurrent
        return True

    def _resolved_space(self):
        if self._space is None:
            from search_spaces import HYPERREC_SPACE

            self._space = HYPERREC_SPACE
        return self._space

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
            configs = self._candidates or space.sample_many(np.random.default_rng(self._seed),
                                                            self._n_candidates)
            return PriorData.empty(configs, self._max_epochs or 75)
        raise ValueError(f"prior={prior!r} is not supported; use 'hyperrec', a PriorData or None")

    def _build_engine(self) -> AT2Engine:
        self._check_metric()
        space = self._resolved_space()
        prior = self._resolved_prior(space)
        if self._max_epochs is not None and self._max_epochs != prior.n_epochs:
            raise ValueError(f"max_epochs={self._max_epochs} differs from the prior's "
                             f"{prior.n_epochs} epochs; the model's epoch axis is the prior's")
        engine = AT2Engine(space, prior, self._settings, seed=self._seed,
                           candidates=self._candidates)
        started = time.perf_counter()
        if self._fit_cache is not False and prior.n_tasks:
            load_or_fit(engine, self._fit_cache or default_fit_cache())
        else:
            engine.fit_offline()
        engine.condition()
        self.offline_fit_seconds = time.perf_counter() - started
        return engine

    def _check_metric(self) -> None:
        if not self._metric or not self._mode:
            raise ValueError("AT2Searcher needs a metric and a mode: pass metric='val_acc', "
                             "mode='max' to tune.run / TuneConfig (or to AT2Searcher)")

    @property
    def engine(self) -> AT2Engine:
        self._check_metric()
        return self.coordinator.ensure_engine()

    # ------------------------------------------------------------------ Tune callbacks
    def suggest(self, trial_id: str) -> dict | str | None:
        engine = self.engine
        candidate = self.coordinator.suggest(trial_id)
        if candidate is None:
            return Searcher.FINISHED if self.coordinator.finished() and not self._paused_left() \
                else None
        return copy.deepcopy(engine.candidates[candidate])

    def _paused_left(self) -> bool:
        return any(r.status == "paused" for r in self.coordinator.trials.values())

    def metric_value(self, trial_id: str, result: dict) -> float:
        """The metric of ``result`` as a value to maximize; a clear error when it is missing."""
        if self._metric not in result:
            raise AT2Error(f"trial {trial_id} reported no {self._metric!r} (got "
                           f"{sorted(k for k in result if not k.startswith('config'))[:12]}); "
                           f"report it with tune.report({{{self._metric!r}: ...}})")
        value = float(result[self._metric])
        return value if self._mode == "max" else -value

    def epoch_of(self, result: dict) -> int:
        if self.time_attr not in result:
            raise AT2Error(f"result has no {self.time_attr!r}; set time_attr to the field that "
                           "counts epochs")
        return int(result[self.time_attr])

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self.coordinator.trials:
            self.coordinator.observe(trial_id, self.epoch_of(result),
                                     self.metric_value(trial_id, result))

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        if error:
            self.coordinator.on_failure(trial_id)
        else:
            self.coordinator.on_complete(trial_id)

    # ------------------------------------------------------------------ save / restore
    def save(self, checkpoint_path: str) -> None:
        state = {"version": SEARCHER_STATE_VERSION, "metric": self._metric, "mode": self._mode,
                 "space": None if self._space is None else self._space.to_json(),
                 "coordinator": self.coordinator.state_dict()}
        torch.save(state, checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        state = torch.load(checkpoint_path, weights_only=True)
        if state.get("version") != SEARCHER_STATE_VERSION:
            raise AT2Error(f"{checkpoint_path}: AT2Searcher state version "
                           f"{state.get('version')!r} is not supported (expected "
                           f"{SEARCHER_STATE_VERSION})")
        self._metric, self._mode = state["metric"], state["mode"]
        if state["space"] is not None:
            from search_spaces import SearchSpace

            self._space = SearchSpace.from_json(state["space"])
        self.coordinator.engine = None
        self.coordinator.load_state_dict(state["coordinator"])
