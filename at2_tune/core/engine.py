"""The AT2 decision core: observations -> surrogate -> acquisition -> decision.

One engine tunes one target task. It knows a finite, growable list of candidate configurations;
a query trains one candidate for one more epoch (freeze-thaw). No Ray imports here: the Ray Tune
searcher and scheduler wrap this class.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from typing import Any, Sequence

import gpytorch
import numpy as np
import torch

from at2_tune.core.observations import ObservationStore
from at2_tune.core.prior import PriorData
from at2_tune.core.settings import AT2Settings
from at2_tune.core.target_scale import AffineScale, fit_affine_scale
from at2_tune.errors import AT2Error
from at2_tune.model.exact import set_optimal_variational_distribution
from at2_tune.model.fit import FitData, fit
from at2_tune.model.gp import AT2GP, ModelShape, stratified_inducing_points
from at2_tune.model.inputs import InputLayout
from at2_tune.model.task_statistics import UNMATCHED_DISTANCE, MatchedTaskStatistics

STATE_VERSION = 1
_DTYPE = torch.float64
_PREDICTION_CHUNK = 20_000
"""Points per prediction batch (bounds the memory of the cross-covariance with the inducing points)."""


@dataclass(frozen=True)
class Query:
    """Train ``candidate`` for epoch ``epoch`` (1-based); ``score`` is its acquisition value."""

    candidate: int
    epoch: int
    score: float


class AT2Engine:
    """Freeze-thaw AT2 over a list of candidate configurations of one target task.

    Args:
        space: the search space (``search_spaces.SearchSpace``) candidates belong to.
        prior: curves of prior tasks (``PriorData.empty`` for plain multi-fidelity BO).
        settings: model and protocol settings.
        seed: seeds every random choice (initial weights, inducing points, minibatches);
            ties between equal scores go to the lower candidate index.
        candidates: initial candidates (default: the prior grid's configurations).
    """

    def __init__(self, space, prior: PriorData, settings: AT2Settings | None = None,
                 seed: int = 0, candidates: Sequence[dict[str, Any]] | None = None) -> None:
        self.space = space
        self.settings = settings or AT2Settings()
        self.raw_prior = prior
        self.prior = prior.standardized() if self.settings.standardize_prior else prior
        self.seed = seed
        self.n_epochs = prior.n_epochs
        self.target_task = prior.n_tasks
        self.torch_generator = torch.Generator().manual_seed(seed)
        self.observations = ObservationStore(self.n_epochs)
        self.failed: set[int] = set()
        self._grid_index = {config_key(c): i for i, c in enumerate(prior.configs)}
        self.candidates: list[dict[str, Any]] = []
        self._candidate_cell: list[int | None] = []
        self._encoded = torch.zeros(0, space.n_numeric + space.n_categorical, dtype=_DTYPE)
        self.add_candidates(prior.configs if candidates is None else candidates)
        self.statistics = self._prior_statistics()
        self._unmatched = self._unmatched_distance()
        self._prior_x, self._prior_y = self._prior_rows()
        self.model, self.likelihood = self._build_model()
        self._natural = (gpytorch.optim.NGD(self.model.variational_parameters(), num_data=1,
                                            lr=self.settings.natural_lr)
                         if self.settings.natural_gradient else None)
        self._optimizer = self.settings.online_optimizer.build(self._parameters())
        self._fitted = False
        self._stale = True
        self._curves: tuple[np.ndarray, np.ndarray] | None = None
        self._scale = AffineScale()
        self._surprises: list[float] = []

    # ---------------------------------------------------------------- candidates
    def add_candidates(self, configs: Sequence[dict[str, Any]]) -> list[int]:
        """Append configurations (validated by the space); returns their candidate indices."""
        configs = [self.space.validate(c) for c in configs]
        if not configs:
            return []
        encoded = self._encode(configs)
        start = len(self.candidates)
        self.candidates.extend(configs)
        self._candidate_cell.extend(self._grid_index.get(config_key(c)) for c in configs)
        self._encoded = torch.cat([self._encoded, encoded])
        return list(range(start, len(self.candidates)))

    def _encode(self, configs: Sequence[dict[str, Any]]) -> torch.Tensor:
        """``(n, n_numeric + n_categorical)``: numeric encodings, then categorical indices."""
        numeric, categorical = self.space.encode_many(configs)
        return torch.cat([torch.as_tensor(numeric, dtype=_DTYPE),
                          torch.as_tensor(categorical, dtype=_DTYPE)], dim=1)

    @property
    def n_candidates(self) -> int:
        return len(self.candidates)

    # ---------------------------------------------------------------- observations
    def observe(self, candidate: int, epoch: int, value: float) -> None:
        """Record the target task's ``value`` of ``candidate`` after ``epoch`` epochs.

        Raises:
            AT2Error: unknown candidate, epoch outside 1..n_epochs, NaN/inf or non-numeric
                value, or a repeated (candidate, epoch).
        """
        observation = self.observations.check(candidate, epoch, value, self.n_candidates)
        if self._curves is not None and not self._stale:
            mean, std = self._curves[0][candidate, epoch - 1], self._curves[1][candidate, epoch - 1]
            self._surprises.append(float((observation.value - mean) / max(std, 1e-12)))
        self.observations.append(observation)
        cell = self._candidate_cell[candidate]
        if cell is not None:
            self.statistics.add(self.target_task, torch.tensor([cell * self.n_epochs + epoch - 1]),
                                torch.tensor([observation.value]))
        self._stale = True

    def mark_failed(self, candidate: int) -> None:
        """Never propose ``candidate`` again (its training crashed or diverged)."""
        if not 0 <= candidate < self.n_candidates:
            raise AT2Error(f"candidate {candidate} does not exist; candidates are 0..{self.n_candidates - 1}")
        self.failed.add(candidate)

    def next_epoch(self, candidate: int) -> int:
        return self.observations.next_epoch(candidate)

    # ---------------------------------------------------------------- decisions
    def score(self, candidates: Sequence[int], epochs: Sequence[int]) -> np.ndarray:
        """Acquisition value of training each candidate for its given next epoch: ``(k,)``.

        ``settings.acquisition == "next_epoch"``: UCB ``mean + beta * std`` of that epoch.
        ``"best_future"``: the highest UCB over that epoch and every later one, in one batch of
        ``k * n_epochs`` predictions.
        """
        if self.settings.acquisition == "next_epoch":
            mean, std = self.predict(candidates, epochs)
            return mean + self.settings.beta * std
        mean, std = self.curve_posterior()
        candidates = np.asarray(candidates, dtype=np.int64)
        if self.settings.acquisition == "best_future":
            value = mean[candidates] + self.settings.beta * std[candidates]
        else:
            value = _expected_improvement(mean[candidates], std[candidates],
                                          float(mean[self._recommendable()].max()))
        future = np.arange(1, self.n_epochs + 1)[None, :] >= np.asarray(epochs)[:, None]
        return np.where(future, value, -np.inf).max(axis=1)

    def predict(self, candidates: Sequence[int], epochs: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the latent curve at each pair: ``(k,)`` each."""
        self._refresh()
        mean, std = self._predict(torch.as_tensor(list(candidates), dtype=torch.long),
                                  torch.as_tensor(list(epochs), dtype=_DTYPE))
        return mean, std * self.calibration()

    def curve_posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of every candidate's whole curve.

        Returns:
            two ``(n_candidates, n_epochs)`` arrays, computed once per model state (the
            acquisition and the recommendation of one query share them).
        """
        self._refresh()
        if self._curves is None or self._curves[0].shape[0] != self.n_candidates:
            epochs = torch.arange(1, self.n_epochs + 1, dtype=_DTYPE)
            chunk = max(1, _PREDICTION_CHUNK // self.n_epochs)
            parts = [self._predict(torch.arange(start, min(start + chunk, self.n_candidates))
                                   .repeat_interleave(self.n_epochs),
                                   epochs.repeat(min(chunk, self.n_candidates - start)))
                     for start in range(0, self.n_candidates, chunk)]
            shape = (self.n_candidates, self.n_epochs)
            self._curves = (np.concatenate([m for m, _ in parts]).reshape(shape),
                            np.concatenate([s for _, s in parts]).reshape(shape))
        return self._curves[0], self._curves[1] * self.calibration()

    def calibration(self) -> float:
        """Factor on the model's standard deviations: the root mean square of the standardized
        errors of its predictions of the values observed since (at least 1; 1 without
        ``settings.calibrate``). A model that transfers a wrong curve shape is confidently wrong;
        this keeps its uncertainty honest, so the acquisition explores again."""
        if not self.settings.calibrate or not self._surprises:
            return 1.0
        return max(1.0, float(np.sqrt(np.mean(np.square(self._surprises)))))

    def _predict(self, candidates: torch.Tensor, epochs: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        rows = self.model.layout.rows(self._encoded[candidates],
                                      torch.full_like(epochs, self.target_task),
                                      epochs / self.n_epochs)
        self.model.eval()
        with torch.no_grad():
            posterior = self.model(rows)
            mean, variance = posterior.mean, posterior.variance
        return (self._scale.mean_from_model(mean.numpy()),
                self._scale.std_from_model(variance.clamp_min(0.0).sqrt().numpy()))

    def open_candidates(self) -> list[int]:
        """Candidates that have epochs left and did not fail."""
        return [c for c in range(self.n_candidates)
                if c not in self.failed and self.next_epoch(c) <= self.n_epochs]

    def next_query(self) -> Query | None:
        """The (candidate, next epoch) with the highest acquisition value; ``None`` when nothing is left."""
        ranked = self.ranked_queries(limit=1)
        return ranked[0] if ranked else None

    def ranked_queries(self, candidates: Sequence[int] | None = None,
                       limit: int | None = None) -> list[Query]:
        """Open candidates' next epochs ranked by acquisition value, best first (ties: lower index first).

        Args:
            candidates: restrict to these (default: every open candidate).
            limit: return at most this many.
        """
        open_ = set(self.open_candidates())
        chosen = [c for c in (range(self.n_candidates) if candidates is None else candidates)
                  if c in open_]
        if not chosen:
            return []
        epochs = [self.next_epoch(c) for c in chosen]
        scores = self.score(chosen, epochs)
        order = np.argsort(-scores, kind="stable")[:limit]
        return [Query(chosen[i], epochs[i], float(scores[i])) for i in order]

    def recommend(self) -> int:
        """The candidate whose best predicted value over all epochs is highest."""
        candidates = self._recommendable()
        mean, _ = self.curve_posterior()
        best_over_epochs = mean[candidates].max(axis=1)
        return int(candidates[int(np.argmax(best_over_epochs))])

    def _recommendable(self) -> list[int]:
        candidates = [c for c in range(self.n_candidates) if c not in self.failed]
        if self.settings.recommend_from == "observed":
            observed = {o.candidate for o in self.observations}
            candidates = [c for c in candidates if c in observed] or candidates
        if not candidates:
            raise AT2Error("every candidate failed; there is nothing to recommend")
        return candidates

    # ---------------------------------------------------------------- model
    def _parameters(self) -> list[torch.nn.Parameter]:
        """What the first-order optimizers move (q(u) too unless natural gradients do)."""
        model = self.model.hyperparameters() if self.settings.natural_gradient \
            else self.model.parameters()
        return list(model) + list(self.likelihood.parameters())

    def _prior_statistics(self) -> MatchedTaskStatistics:
        n_tasks = self.prior.n_tasks + 1
        n_cells = self.prior.n_configs * self.n_epochs
        values = torch.zeros(n_tasks, n_cells, dtype=torch.float64)
        observed = torch.zeros(n_tasks, n_cells, dtype=torch.bool)
        values[: self.prior.n_tasks] = torch.as_tensor(self.prior.curves).reshape(self.prior.n_tasks, n_cells)
        observed[: self.prior.n_tasks] = True
        return MatchedTaskStatistics.from_table(values, observed)

    def _unmatched_distance(self) -> float:
        choice = self.settings.unmatched_distance
        if choice != "mean":
            return float(choice)
        if self.prior.n_tasks < 2:
            return UNMATCHED_DISTANCE
        distances = self.statistics.distances()[: self.prior.n_tasks, : self.prior.n_tasks]
        off_diagonal = ~torch.eye(self.prior.n_tasks, dtype=torch.bool)
        return float(distances[off_diagonal].mean())

    def _prior_rows(self) -> tuple[torch.Tensor, torch.Tensor]:
        n_tasks, n_configs, n_epochs = self.prior.curves.shape
        if n_tasks == 0:
            width = self._encoded.shape[1] + 2
            return torch.zeros(0, width, dtype=_DTYPE), torch.zeros(0, dtype=_DTYPE)
        grid = self._encode(self.prior.configs)
        task = torch.arange(n_tasks).repeat_interleave(n_configs * n_epochs)
        config = torch.arange(n_configs).repeat_interleave(n_epochs).repeat(n_tasks)
        epoch = torch.arange(1, n_epochs + 1).repeat(n_tasks * n_configs)
        layout = InputLayout(self.space.n_numeric, self.space.n_categorical)
        rows = layout.rows(grid[config], task.to(_DTYPE), epoch.to(_DTYPE) / n_epochs)
        return rows, torch.as_tensor(self.prior.curves, dtype=_DTYPE).reshape(-1)

    def _build_model(self) -> tuple[AT2GP, gpytorch.likelihoods.GaussianLikelihood]:
        s = self.settings
        shape = ModelShape(self.space.n_numeric,
                           tuple(len(c) for c in self.space.categorical_choices),
                           self.prior.n_tasks + 1, s.n_inducing, s.embedding_dim,
                           s.hidden_dim, s.feature_dim)
        if self.prior.n_tasks:
            pool, share = self._prior_x, s.target_inducing_share
        else:  # no prior: place every inducing point on the target task's candidates
            epochs = torch.arange(1, self.n_epochs + 1, dtype=_DTYPE).repeat(self.n_candidates)
            pool = shape.layout.rows(self._encoded.repeat_interleave(self.n_epochs, 0),
                                     torch.zeros_like(epochs), epochs / self.n_epochs)
            share = 1.0
        inducing = stratified_inducing_points(pool, s.n_inducing, self.target_task, share,
                                              self.torch_generator, shape.layout.task_column)
        init_seed = int(torch.randint(2**62, (1,), generator=self.torch_generator))
        with torch.random.fork_rng(devices=[]):  # layers draw their initial weights globally
            torch.manual_seed(init_seed)
            model = AT2GP(shape, inducing, natural=s.natural_gradient).to(_DTYPE)
            model.initialize_variational_distribution()
        likelihood = gpytorch.likelihoods.GaussianLikelihood().to(_DTYPE)
        return model, likelihood

    def _target_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.observations.to_json()
        if not rows:
            return self._prior_x[:0], self._prior_y[:0]
        table = torch.tensor(rows, dtype=_DTYPE)
        candidates = table[:, 0].long()
        epochs = table[:, 1]
        x = self.model.layout.rows(self._encoded[candidates],
                                   torch.full_like(epochs, self.target_task), epochs / self.n_epochs)
        return x, torch.as_tensor(self._scale.to_model(table[:, 2].numpy()))

    def _fit_scale(self) -> AffineScale:
        """The new task's affine map onto the prior scale, from its observations of grid configs."""
        if not self.settings.scale_target or not self.prior.n_tasks:
            return AffineScale()
        matched = [(cell, o.epoch, o.value) for o in self.observations
                   if (cell := self._candidate_cell[o.candidate]) is not None]
        if not matched:
            return AffineScale()
        cells, epochs, values = (np.array(column) for column in zip(*matched))
        reference = self.prior.curves[:, cells, epochs - 1].mean(axis=0)
        return fit_affine_scale(values, reference, float(self.prior.curves.var()))

    def _fit_data(self) -> FitData:
        target_x, target_y = self._target_data()
        return FitData(self._prior_x, self._prior_y, target_x, target_y)

    def fit_offline(self) -> None:
        """Fit the model on the prior tasks (once; no-op without prior tasks)."""
        if self._fitted:
            return
        self.model.task_kernel.set_statistics(self.statistics, self._unmatched)
        if self.prior.n_tasks:
            data = self._fit_data()
            steps = self.settings.offline_epochs * math.ceil(data.n_data / self.settings.batch_size)
            optimizer = self.settings.offline_optimizer.build(self._parameters())
            fit(self.model, self.likelihood, data, steps, self.settings.batch_size,
                self.settings.offline_optimizer, self.torch_generator, optimizer=optimizer,
                natural_optimizer=self._natural)
        self._fitted = True

    def _refresh(self) -> None:
        self.fit_offline()
        if not self._stale:
            return
        self.model.task_kernel.set_statistics(self.statistics, self._unmatched)
        s = self.settings
        self._scale = self._fit_scale()
        data = self._fit_data()
        if len(self.observations):
            steps = math.ceil(s.online_epochs * data.n_data / s.batch_size) if s.online_epochs > 0 \
                else s.online_steps
            if steps:
                fit(self.model, self.likelihood, data, steps, s.batch_size, s.online_optimizer,
                    self.torch_generator, optimizer=self._optimizer, natural_optimizer=self._natural)
        if s.online_update == "exact" and data.n_data:
            set_optimal_variational_distribution(self.model, self.likelihood,
                                                 torch.cat([data.pool_x, data.always_x]),
                                                 torch.cat([data.pool_y, data.always_y]),
                                                 offset_task=self.target_task)
        self._stale = False
        self._curves = None

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: tensors and JSON-able values, no pickled code."""
        return {"version": STATE_VERSION, "settings": self.settings.to_json(), "seed": self.seed,
                "candidates": list(self.candidates),
                "observations": self.observations.to_json(), "failed": sorted(self.failed),
                "fitted": self._fitted, "stale": self._stale,
                "model": self.model.state_dict(), "likelihood": self.likelihood.state_dict(),
                "optimizer": self._optimizer.state_dict(),
                "statistics": self.statistics.state_dict(),
                "torch_rng": self.torch_generator.get_state(), "surprises": list(self._surprises)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` into an engine built with the same space and prior."""
        state = copy.deepcopy(state)  # optimizers keep loaded tensors: never share them with the caller
        if state.get("version") != STATE_VERSION:
            raise AT2Error(f"engine state version {state.get('version')!r} is not supported "
                           f"(this at2-tune writes version {STATE_VERSION})")
        if AT2Settings.from_json(state["settings"]) != self.settings:
            raise AT2Error("the saved engine state was made with different settings; build the "
                           "engine with the settings stored in the state")
        known = len(self.candidates)
        self.add_candidates(state["candidates"][known:])
        self.observations = ObservationStore.from_json(state["observations"], self.n_epochs)
        self.failed = set(state["failed"])
        self.statistics.load_state_dict(state["statistics"])
        self.model.load_state_dict(state["model"])
        self.likelihood.load_state_dict(state["likelihood"])
        self._optimizer.load_state_dict(state["optimizer"])
        self.torch_generator.set_state(state["torch_rng"])
        self._fitted, self._stale = bool(state["fitted"]), bool(state["stale"])
        self._curves = None
        self._scale = self._fit_scale()
        self._surprises = [float(z) for z in state.get("surprises", [])]


def config_key(config: dict[str, Any]) -> str:
    """A key equal for equal configurations, nested ones included (key order does not matter)."""
    return json.dumps(config, sort_keys=True, default=repr)


def _expected_improvement(mean: np.ndarray, std: np.ndarray, incumbent: float) -> np.ndarray:
    """``E[max(0, f - incumbent)]`` for ``f ~ N(mean, std^2)``, elementwise."""
    mean_t, std_t = torch.as_tensor(mean), torch.as_tensor(std).clamp_min(1e-12)
    z = (mean_t - incumbent) / std_t
    normal = torch.distributions.Normal(torch.zeros(()), torch.ones(()))
    improvement = (mean_t - incumbent) * torch.special.ndtr(z) + std_t * normal.log_prob(z).exp()
    return improvement.numpy()
