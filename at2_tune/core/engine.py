"""The AT2 decision core of one target task: candidates, observations, a posterior, a policy.

Each decision goes one way:

1. :meth:`AT2Engine.observe` records a value of the new task (and hands it to the policy);
2. :meth:`AT2Engine.condition` conditions the posterior source on every value so far (once per
   batch of observations): the transfer posterior (``at2_tune.core.transfer``) or the GP
   (``at2_tune.core.models``), residual-corrected as the policy asks;
3. :meth:`AT2Engine.ranked_queries` asks the policy (``at2_tune.core.policies``) to order the open
   candidates on that posterior, and :meth:`AT2Engine.recommend` asks it what to use now.

The queries read the conditioned posterior without changing it and refuse to answer from one
that has not seen every observation. A query trains one candidate for one more epoch
(freeze-thaw). No Ray imports here: the coordinator and the Ray Tune adapters wrap this class.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, Collection, Sequence

import numpy as np
import torch

from at2_tune.core.models import (Evidence, GPCurveModel, NewTaskGPModel,
                                  ResidualCorrected)
from at2_tune.core.observations import ObservationStore
from at2_tune.core.planner import Plan
from at2_tune.core.policies import Query, Situation, queries_in_order, situation_of
from at2_tune.core.policy_registry import build_policy
from at2_tune.core.posterior import CurvePosterior
from at2_tune.core.prior import PriorData
from at2_tune.core.settings import AT2Settings
from at2_tune.core.surrogate import DTYPE, AT2Surrogate, encode_configs
from at2_tune.core.transfer import TransferPosterior
from at2_tune.errors import AT2Error
from search_spaces import config_key

STATE_VERSION = 4

_IDENTITY_WORDS = {"space": "the search space", "prior": "the prior tasks' data",
                   "candidates": "the candidate configurations",
                   "offline_settings": "the model settings (AT2Settings.model)",
                   "seed": "the seed", "format": "the state format"}
"""What each field of ``AT2Engine.identity()`` is, in an identity-mismatch error."""


class AT2Engine:
    """Freeze-thaw AT2 over a list of candidate configurations of one target task.

    Args:
        space: the search space (``search_spaces.SearchSpace``) candidates belong to.
        prior: curves of prior tasks (``PriorData.empty`` for plain multi-fidelity BO).
        settings: model and policy settings.
        seed: seeds every random choice (initial weights, inducing points, minibatches).
        candidates: initial candidates (default: the prior grid's configurations).
    """

    def __init__(self, space, prior: PriorData, settings: AT2Settings | None = None,
                 seed: int = 0, candidates: Sequence[dict[str, Any]] | None = None) -> None:
        self.space = space
        self.settings = settings or AT2Settings()
        self.raw_prior = prior
        self.seed = seed
        self.n_epochs = prior.n_epochs
        self.torch_generator = torch.Generator().manual_seed(seed)
        self.observations = ObservationStore(self.n_epochs)
        self.failed: set[int] = set()
        self._grid_index = {config_key(c): i for i, c in enumerate(prior.configs)}
        self.candidates: list[dict[str, Any]] = []
        self._candidate_cell: list[int | None] = []
        self._encoded = torch.zeros(0, space.n_numeric + space.n_categorical, dtype=DTYPE)
        self.add_candidates(prior.configs if candidates is None else candidates)
        self._identity = self._compute_identity()
        self.surrogate = AT2Surrogate(space, prior, self.settings.model, self.torch_generator,
                                      self._encoded)
        self.policy = build_policy(self.settings.policy, prior.n_tasks, seed)
        self.posterior_source = self._posterior_source()
        self._prior_trained: np.ndarray | None = None
        self._stale = True
        self._conditioned_cells: list[int | None] | None = None

    def _posterior_source(self):
        """The model the policy decides on: the transfer posterior, the multi-task GP or the new
        task's own GP, residual-corrected if the policy asks."""
        gp = GPCurveModel(self.surrogate)
        if self.policy.decides_on == "transfer":
            model = TransferPosterior(self.surrogate.transform, gp)
        elif self.policy.decides_on == "new_task_gp":
            model = NewTaskGPModel(self.surrogate, self.space.n_numeric,
                                   tuple(len(c) for c in self.space.categorical_choices),
                                   self.n_epochs)
        else:
            model = gp
        if self.policy.residual_correction:
            model = ResidualCorrected(model, self.surrogate, self.settings.policy.residual_min_epochs)
        return model

    # ---------------------------------------------------------------- identity
    def _compute_identity(self) -> dict[str, Any]:
        return {"format": STATE_VERSION, "space": _digest(_space_json(self.space)),
                "prior": self.raw_prior.fingerprint(), "candidates": _digest(self.candidates),
                "offline_settings": _digest(self.settings.offline_json()), "seed": self.seed}

    def identity(self) -> dict[str, Any]:
        """What this tuning state belongs to: digests of the space's JSON, the prior tasks'
        data, the initial candidates and the model settings, the seed and the state format.
        Equal identities share an offline fit; a saved state loads only into an equal one."""
        return dict(self._identity)

    def identity_key(self) -> str:
        """A short hash of :meth:`identity` (the name of the offline fit in a ``FitCache``)."""
        return _digest(self._identity)[:24]

    def check_identity(self, saved: dict[str, Any], what: str = "the saved state") -> None:
        """Raise a clear error naming what differs when ``saved`` is not this engine's identity."""
        mine = self.identity()
        differ = sorted(k for k in mine.keys() | saved.keys() if mine.get(k) != saved.get(k))
        if differ:
            details = "; ".join(_IDENTITY_WORDS.get(k, k) if k not in ("seed", "format")
                                else f"{_IDENTITY_WORDS[k]} (saved {saved.get(k)!r}, here "
                                     f"{mine.get(k)!r})" for k in differ)
            raise AT2Error(f"{what} belongs to a different tuning run; these differ: {details}."
                           " Build the engine with the space, prior, candidates, model "
                           "settings and seed it was saved with, or start a new run")

    @property
    def prior(self) -> PriorData:
        """The prior tasks as the model sees them (standardized by default)."""
        return self.surrogate.prior

    # ---------------------------------------------------------------- candidates
    def add_candidates(self, configs: Sequence[dict[str, Any]]) -> list[int]:
        """Append configurations (validated by the space); returns their candidate indices.

        Raises:
            AT2Error: a configuration repeats (in ``configs`` or among the candidates): its
                observations would be one grid cell observed twice.
        """
        configs = [self.space.validate(c) for c in configs]
        if not configs:
            return []
        keys = [config_key(c) for c in self.candidates + configs]
        if len(set(keys)) != len(keys):
            repeated = next(c for c, k in zip(self.candidates + configs, keys)
                            if keys.count(k) > 1)
            raise AT2Error(f"candidate configuration {repeated} is given more than once; pass "
                           "each candidate once (search_spaces.keys.distinct drops repeats)")
        start = len(self.candidates)
        self.candidates.extend(configs)
        self._candidate_cell.extend(self._grid_index.get(config_key(c)) for c in configs)
        self._encoded = torch.cat([self._encoded, encode_configs(self.space, configs)])
        self._stale = True
        return list(range(start, len(self.candidates)))

    @property
    def n_candidates(self) -> int:
        return len(self.candidates)

    # ---------------------------------------------------------------- observations
    def observe(self, candidate: int, epoch: int, value: float) -> None:
        """Record the target task's ``value`` of ``candidate`` after ``epoch`` epochs; the model
        sees it at the next :meth:`condition`.

        Raises:
            AT2Error: unknown candidate, epoch outside 1..n_epochs, NaN/inf or non-numeric
                value, or a repeated (candidate, epoch).
        """
        observation = self.observations.check(candidate, epoch, value, self.n_candidates)
        warped = float(self.surrogate.transform.warp(observation.value))  # checks the range too
        self.observations.append(observation)
        self.policy.observe(observation.candidate, observation.epoch, observation.value)
        cell = self._candidate_cell[candidate]
        if cell is not None:
            self.surrogate.observe_cells([cell * self.n_epochs + epoch - 1], [warped])
        self._stale = True

    def mark_failed(self, candidate: int) -> None:
        """Never propose ``candidate`` again (its training crashed or diverged)."""
        if not 0 <= candidate < self.n_candidates:
            raise AT2Error(f"candidate {candidate} does not exist; candidates are 0..{self.n_candidates - 1}")
        self.failed.add(candidate)

    def next_epoch(self, candidate: int) -> int:
        return self.observations.next_epoch(candidate)

    # ---------------------------------------------------------------- state changes
    def needs_gp(self) -> bool:
        """Whether the GP takes part in the posterior of the candidates the policy reads now
        (:meth:`scope_cells`). Under the default policy with the full HyperRec or LCBench grid
        as prior it does not, also next to candidates off the grid, until fewer than
        ``leaders`` grid candidates are open (or one off the grid was observed): nothing is
        fitted until then."""
        return self.posterior_source.needs_gp(self.scope_cells())

    def scope_cells(self) -> list[int | None]:
        """The grid cells of the candidates whose posterior the policy reads now
        (``Policy.posterior_scope``; every candidate's by default)."""
        scope = self.policy.posterior_scope(self.situation())
        if scope is None:
            return list(self._candidate_cell)
        return [self._candidate_cell[c] for c in scope]

    def plan(self, budget_epochs: int, concurrency: int) -> Plan | None:
        """Let the policy plan how to spend ``budget_epochs`` on ``concurrency`` slots from the
        prior tasks (``planned``: ``at2_tune.core.planner``; once per budget and slots). Returns
        the plan, ``None`` for a policy that does not plan or a prior it cannot replay."""
        planner = getattr(self.policy, "plan", None)
        if planner is None:
            return None
        before = self.policy.planned_for
        plan = planner(self.raw_prior.curves, self._candidate_cell, budget_epochs, concurrency)
        if self.policy.planned_for != before:
            self._stale = True  # the candidates whose posterior the policy reads changed
        return plan

    def fit_offline(self) -> None:
        """Fit the GP on the prior tasks (once; no-op without prior tasks)."""
        self.surrogate.fit_offline()

    def condition(self) -> None:
        """Condition the posterior source on every observation recorded so far (the GP is
        fitted offline first if it takes part and was not); a no-op when nothing changed."""
        cells = self.scope_cells()
        if self._stale or cells != self._conditioned_cells:  # a failure may widen the scope
            self.posterior_source.condition(self.evidence(), cells)
            self._stale, self._conditioned_cells = False, cells

    def evidence(self) -> Evidence:
        """Every observation so far, with every candidate's encoding and grid configuration."""
        rows = self.observations.to_json()
        return Evidence(self._encoded, tuple(self._candidate_cell),
                        np.array([r[0] for r in rows], dtype=np.int64),
                        np.array([r[1] for r in rows], dtype=np.int64),
                        np.array([r[2] for r in rows], dtype=float))

    # ---------------------------------------------------------------- queries (pure)
    def posterior(self) -> CurvePosterior:
        """Posterior of every candidate's whole curve, ``(n_candidates, n_epochs)`` mean and std."""
        if self._stale:
            raise AT2Error("the model has not seen every observation: call engine.condition() "
                           "after observe() and before asking for queries or recommendations")
        return self.posterior_source.posterior()

    def predict(self, candidates: Sequence[int], epochs: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the latent curve at each pair: ``(k,)`` each."""
        posterior = self.posterior()
        rows, columns = np.asarray(candidates), np.asarray(epochs) - 1
        mean = posterior.mean[rows, columns]
        if np.isnan(mean).any():
            missing = sorted({int(r) for r in np.atleast_1d(rows)[np.isnan(np.atleast_1d(mean))]})
            raise AT2Error(f"candidates {missing[:5]} have no posterior yet: no prior task "
                           "observed them and the policy has not needed the GP for them, so it "
                           "is not fitted; call engine.fit_offline() and then "
                           "engine.posterior_source.condition(engine.evidence()) to predict "
                           "them")
        return mean, posterior.std[rows, columns]

    def open_candidates(self) -> list[int]:
        """Candidates that have epochs left and did not fail."""
        return self.situation().open.tolist()

    def situation(self, closed: Collection[int] = ()) -> Situation:
        """What the policy orders: the open candidates (not those ``closed``), their next
        epochs, and more."""
        return situation_of(self.observations.next_epochs(self.n_candidates), self.failed,
                            self.n_epochs, self._trained_by_prior(), self._best_observed(),
                            closed)

    def _best_observed(self) -> float | None:
        """The best value observed on a candidate that did not fail, warped onto the
        posterior's scale (``None`` before any)."""
        values = [o.value for o in self.observations if o.candidate not in self.failed]
        return float(self.surrogate.transform.warp(max(values))) if values else None

    def _trained_by_prior(self) -> np.ndarray:
        """``(n_candidates,)`` bool: candidates some prior task trained. It depends on the prior
        and the candidates alone, so it is computed once per candidate list (not per decision:
        the prior's mask is tasks x configurations x epochs)."""
        if self._prior_trained is None or len(self._prior_trained) != self.n_candidates:
            prior_trained = self.prior.observed.any(axis=(0, 2))
            self._prior_trained = np.array([cell is not None and bool(prior_trained[cell])
                                            for cell in self._candidate_cell], dtype=bool)
        return self._prior_trained

    def ranked_queries(self, limit: int | None = None,
                       closed: Collection[int] = ()) -> list[Query]:
        """Open candidates' next epochs in the policy's order, the next to train first.

        Args:
            limit: return at most this many.
            closed: candidates that cannot train though they have epochs left (their trial
                ended, or they have none and no trial can start): the policy does not order
                them.
        """
        situation = self.situation(closed)
        if not situation.open.size:
            return []
        return queries_in_order(self.policy.order(self.posterior(), situation), self.next_epoch,
                                limit)

    def next_query(self) -> Query | None:
        """The policy's next (candidate, epoch); ``None`` when nothing is left."""
        ranked = self.ranked_queries(limit=1)
        return ranked[0] if ranked else None

    def recommend(self) -> int:
        """The configuration to use now (the policy's recommender; never a failed one)."""
        eligible = [c for c in range(self.n_candidates) if c not in self.failed]
        return self.policy.recommend(self.posterior(), eligible)

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: tensors and JSON-able values, no pickled code."""
        return {"version": STATE_VERSION, "identity": self.identity(),
                "settings": self.settings.to_json(), "seed": self.seed,
                "candidates": list(self.candidates),
                "observations": self.observations.to_json(), "failed": sorted(self.failed),
                "policy": self.policy.state_dict(),
                "surrogate": self.surrogate.state_dict(), "stale": self._stale,
                "torch_rng": self.torch_generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` into an engine built with the same space and prior."""
        state = copy.deepcopy(state)  # optimizers keep loaded tensors: never share them with the caller
        if state.get("version") != STATE_VERSION:
            raise AT2Error(f"engine state version {state.get('version')!r} is not supported "
                           f"(this at2-tune writes version {STATE_VERSION})")
        self.check_identity(state["identity"])
        if AT2Settings.from_json(state["settings"]) != self.settings:
            raise AT2Error("the saved engine state was made with different settings; build the "
                           "engine with the settings stored in the state")
        known = len(self.candidates)
        self.add_candidates(state["candidates"][known:])
        self.observations = ObservationStore.from_json(state["observations"], self.n_epochs)
        self.failed = set(state["failed"])
        self._restore_policy(state["policy"])
        self.surrogate.load_state_dict(state["surrogate"])
        self.torch_generator.set_state(state["torch_rng"])
        self._stale = True
        if not state["stale"]:  # the saved model is conditioned already: only the queries' caches
            self._recompute_posterior()

    def _restore_policy(self, saved: dict[str, Any]) -> None:
        """A fresh policy that has observed every observation, with the saved policy state when
        it is this policy's (a ``FitCache`` fit is shared by runs of other policies)."""
        self.policy = build_policy(self.settings.policy, self.raw_prior.n_tasks, self.seed)
        for observation in self.observations:
            self.policy.observe(observation.candidate, observation.epoch, observation.value)
        if saved.get("name") == self.policy.name:
            self.policy.load_state_dict(saved)

    def _recompute_posterior(self) -> None:
        """The posterior of the restored model, conditioning nothing again (the GP's state was
        saved conditioned)."""
        cells = self.scope_cells()
        self.posterior_source.restore(self.evidence(), cells)
        self._stale, self._conditioned_cells = False, cells


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=repr).encode()).hexdigest()


def _space_json(space) -> Any:
    try:
        return space.to_json()
    except ValueError:  # a constant JSON cannot hold exactly: its repr still tells spaces apart
        return {"name": space.name, "repr": repr(space)}
