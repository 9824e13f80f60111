"""What an AT2 run is built from, resolved without Ray: the search space, the prior, the
candidates, the settings, and from them the decision core.

``AT2Searcher`` (``at2_tune.tune``) keeps one :class:`RunSetup`, fills in what Tune passes (the
``param_space``, a ``stop`` criterion) and builds its engine from it on the first suggestion;
``TransferBaselineSearcher`` builds a model-free core from the same resolved inputs
(:meth:`RunSetup.inputs`). The saved searcher state holds it (:meth:`RunSetup.to_state`), so a
searcher made with defaults restores the same engine.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from at2_tune.core.engine import AT2Engine
from at2_tune.core.prior import PriorData
from at2_tune.core.settings import AT2Settings
from at2_tune.core.transform import resolve_output_warp
from at2_tune.errors import AT2Error
from search_spaces.errors import SearchSpaceError
from search_spaces.keys import config_key, distinct

DEFAULT_PRIOR = "hyperrec"
"""The prior of a run that names none: the HyperRec database, all its tasks."""


@dataclass(frozen=True)
class RunInputs:
    """The resolved inputs of a decision core: the space, the prior (its epochs are the
    trials'), the candidates (``None``: the prior's configurations) and the points to start
    before the model decides (``points_to_evaluate``, validated)."""

    space: Any
    prior: PriorData
    candidates: list[dict[str, Any]] | None
    points: list[dict[str, Any]]


@dataclass
class RunSetup:
    """What the user asked for (see ``AT2Searcher``'s arguments of the same names).

    ``stop_epochs``: ``N`` of a ``stop={time_attr: N}`` criterion, the trials' epochs when
    neither a prior nor ``max_epochs`` says. ``time_attr`` only names the field in errors."""

    space: Any = None
    prior: str | os.PathLike | PriorData | None = DEFAULT_PRIOR
    settings: AT2Settings = field(default_factory=AT2Settings)
    seed: int = 0
    candidates: list[dict[str, Any]] | None = None
    n_candidates: int = 100
    max_epochs: int | None = None
    stop_epochs: int | None = None
    time_attr: str = "training_iteration"
    points: list[dict[str, Any]] = field(default_factory=list)
    data_dir: str | None = None
    _user_database: Any = field(default=None, repr=False, compare=False)

    # ---------------------------------------------------------------- the parts
    def resolved_space(self):
        """The space given, else the user database's, else the HyperRec space (kept)."""
        if self.space is None and self.user_database() is not None:
            self.space = self.user_database().space
        if self.space is None:
            from search_spaces import HYPERREC_SPACE

            self.space = HYPERREC_SPACE
        return self.space

    def user_database(self):
        """The user database of ``prior=FOLDER`` (loaded and verified once), else ``None``."""
        if isinstance(self.prior, PriorData) or self.prior in (None, DEFAULT_PRIOR):
            return None
        if not isinstance(self.prior, (str, os.PathLike)):
            raise ValueError(f"prior={self.prior!r} is not supported; use 'hyperrec', the "
                             "folder of an `at2-tune prior import` database, a PriorData or None")
        if self._user_database is None:
            from at2_tune.databases.user import load_user_database

            self._user_database = load_user_database(self.prior)
        return self._user_database

    def resolved_prior(self, space, metric: str | None = None) -> PriorData:
        """The prior's curves over configurations of ``space``; ``metric``: the one the run
        tunes, which a user database must hold."""
        prior = self.prior
        if isinstance(prior, PriorData):
            return prior
        if prior == DEFAULT_PRIOR:
            if space.name != "hyperrec":
                raise ValueError(f"prior='hyperrec' needs the HyperRec space, not {space.name!r}; "
                                 "pass prior=None for a custom space (no transfer)")
            from at2_tune.databases import load_database

            db = load_database("hyperrec", self.data_dir)
            return PriorData.from_database(db, db.tasks, seed_profile=0)
        if prior is None:
            configs = self.candidates or self.space_candidates(space)
            return PriorData.empty(configs, self.epochs_without_prior())
        return self._user_prior(space, metric)

    def _user_prior(self, space, metric: str | None) -> PriorData:
        db = self.user_database()
        if metric and db.metric != metric:
            raise AT2Error(f"prior {self.prior} holds {db.metric!r}, but this run tunes "
                           f"{metric!r}; import the history with --metric {metric}, or tune "
                           "the metric it holds")
        prior = PriorData.from_user_database(db)
        try:
            configs = tuple(space.validate(c) for c in prior.configs)
        except SearchSpaceError as exc:
            raise AT2Error(f"a configuration of the prior {self.prior} is not in this run's "
                           f"space {space.name!r}: {exc}; tune in a space that holds the "
                           "earlier runs' configurations") from None
        if self.candidates is None:
            self.candidates = distinct(list(configs) + self.space_candidates(space))
        prior = PriorData(prior.tasks, configs, prior.curves, prior.source)
        return prior if self.max_epochs is None else prior.with_epochs(self.max_epochs)

    def space_candidates(self, space) -> list[dict[str, Any]]:
        """``n_candidates`` distinct samples of ``space``, or all of it when it is finite and
        not larger (a space of choices only repeats samples)."""
        every = space.finite_configs(self.n_candidates)
        if every is not None:
            return every
        rng = np.random.default_rng(self.seed)
        configs = distinct(space.sample_many(rng, self.n_candidates))
        for _ in range(20):  # a discrete space larger than n_candidates: draw until distinct
            if len(configs) >= self.n_candidates:
                break
            configs = distinct(configs + space.sample_many(rng, self.n_candidates))
        return configs[:self.n_candidates]

    def epochs_without_prior(self) -> int:
        epochs = self.max_epochs or self.stop_epochs
        if epochs is None:
            raise ValueError(
                "AT2Searcher without a prior needs the number of epochs a trial trains: pass "
                "AT2Searcher(max_epochs=N), or stop={" + repr(self.time_attr) + ": N} to "
                "tune.run / RunConfig (AT2's epoch axis and freeze-thaw decisions need it)")
        return epochs

    def validated_points(self, space) -> list[dict[str, Any]]:
        """``points`` (``points_to_evaluate``) in the space's canonical form."""
        try:
            return [space.validate(p) for p in self.points]
        except SearchSpaceError as exc:
            raise ValueError(f"a point of points_to_evaluate is not in the space "
                             f"{space.name!r}: {exc}") from None

    def resolved_settings(self, prior: PriorData, metric: str | None,
                          mode: str | None) -> AT2Settings:
        """The settings with ``output_warp="auto"`` resolved from the metric and mode: the
        log-error warp only for a metric to maximize whose prior values are all in [0, 1]."""
        settings = self.settings
        if settings.model.output_warp == "log_error" and mode == "min":
            raise ValueError(f"ModelSettings(output_warp='log_error') warps accuracies to "
                             f"maximize, but {metric!r} is tuned with mode='min'; use "
                             "output_warp='standardize' (or 'auto')")
        if settings.model.output_warp != "auto":
            return settings
        warp = "standardize" if mode == "min" else resolve_output_warp("auto", prior)
        return dataclasses.replace(settings, model=dataclasses.replace(settings.model,
                                                                       output_warp=warp))

    # ---------------------------------------------------------------- the whole
    def inputs(self, metric: str | None = None) -> RunInputs:
        """The space, the prior, the candidates and the points to start first, resolved and
        checked against each other."""
        space = self.resolved_space()
        prior = self.resolved_prior(space, metric)
        if self.max_epochs is not None and self.max_epochs != prior.n_epochs:
            raise ValueError(f"max_epochs={self.max_epochs} differs from the prior's "
                             f"{prior.n_epochs} epochs; the model's epoch axis is the prior's")
        return RunInputs(space, prior, self.candidates, self.validated_points(space))

    def new_engine(self, metric: str | None, mode: str | None) -> tuple[AT2Engine, list[int]]:
        """An engine of this setup, not fitted yet, and the candidates to start first (the
        points to evaluate, each once, before the model decides)."""
        inputs = self.inputs(metric)
        candidates = inputs.candidates
        if inputs.points:  # points_to_evaluate first, each once
            rest = inputs.prior.configs if candidates is None else candidates
            candidates = distinct(inputs.points + list(rest))
        engine = AT2Engine(inputs.space, inputs.prior,
                           self.resolved_settings(inputs.prior, metric, mode), seed=self.seed,
                           candidates=candidates)
        keys = {config_key(c): i for i, c in enumerate(engine.candidates)}
        return engine, [keys[config_key(p)] for p in inputs.points]

    # ---------------------------------------------------------------- state
    def to_state(self) -> dict[str, Any]:
        """What builds the engine, as tensors and JSON-able values (a prior given as
        ``PriorData`` is kept whole: nothing else can rebuild it)."""
        import torch

        prior = self.prior
        if isinstance(prior, PriorData):
            prior = {"tasks": list(prior.tasks), "configs": list(prior.configs),
                     "curves": torch.as_tensor(prior.curves), "source": prior.source}
        elif prior is not None:
            prior = str(prior)
        return {"prior": prior, "settings": self.settings.to_json(), "seed": self.seed,
                "candidates": self.candidates, "n_candidates": self.n_candidates,
                "max_epochs": self.max_epochs, "stop_epochs": self.stop_epochs,
                "time_attr": self.time_attr, "points_to_evaluate": self.points,
                "data_dir": self.data_dir}

    @classmethod
    def from_state(cls, saved: dict[str, Any]) -> RunSetup:
        """The setup :meth:`to_state` saved (the space is saved apart, with the searcher)."""
        prior = saved["prior"]
        if isinstance(prior, dict):
            prior = PriorData(tuple(prior["tasks"]), tuple(prior["configs"]),
                              prior["curves"].numpy(), prior["source"])
        return cls(prior=prior, settings=AT2Settings.from_json(saved["settings"]),
                   seed=saved["seed"], candidates=saved["candidates"],
                   n_candidates=saved["n_candidates"], max_epochs=saved["max_epochs"],
                   stop_epochs=saved["stop_epochs"], time_attr=saved["time_attr"],
                   points=saved["points_to_evaluate"], data_dir=saved["data_dir"])
