"""The AT2 surrogate: the GP, its offline fit on the prior tasks, and conditioning on the new task.

State changes and queries are apart: :meth:`AT2Surrogate.fit_offline` and
:meth:`AT2Surrogate.condition` change the model; :meth:`AT2Surrogate.curve_posterior` only reads
it. With ``online_update="exact"`` and no online gradient steps (the default), conditioning
keeps the kernel hyperparameters of the offline fit, so the prior tasks enter through a cached
:class:`~at2_tune.model.exact.PriorSummary` and a query costs the same with 4 or 26 prior tasks.
"""

from __future__ import annotations

import math

import gpytorch
import numpy as np
import torch

from at2_tune.core.posterior import CurvePosterior
from at2_tune.core.prior import PriorData
from at2_tune.core.settings import ModelSettings
from at2_tune.core.transform import OutputTransform
from at2_tune.model.exact import PriorSummary, inducing_cholesky, set_optimal_variational_distribution
from at2_tune.model.fit import FitData, fit
from at2_tune.model.gp import AT2GP, ModelShape, stratified_inducing_points
from at2_tune.model.task_statistics import UNMATCHED_DISTANCE, MatchedTaskStatistics

DTYPE = torch.float64
PREDICTION_CHUNK = 20_000
"""Points per prediction batch (bounds the memory of the cross-covariance with the inducing points)."""


class AT2Surrogate:
    """The GP over (configuration, task, epoch) rows; prior tasks are ``0..T-1``, the new task ``T``.

    Args:
        space: the search space (its encoding sizes fix the hyperparameter kernel).
        prior: the prior tasks' curves on their own scales.
        settings: model settings.
        generator: the torch RNG of every random choice (inducing points, minibatches).
        candidate_encodings: ``(n, d)`` encoded candidates (inducing points are placed on them
            when there is no prior task).
    """

    def __init__(self, space, prior: PriorData, settings: ModelSettings, generator: torch.Generator,
                 candidate_encodings: torch.Tensor) -> None:
        self.settings = settings
        self.generator = generator
        self.transform = OutputTransform(prior, settings.standardize_prior, settings.scale_target,
                                         settings.output_warp)
        self.prior = self.transform.prior
        self.n_epochs = prior.n_epochs
        self.target_task = prior.n_tasks
        self.shape = ModelShape(space.n_numeric, tuple(len(c) for c in space.categorical_choices),
                                prior.n_tasks + 1, settings.n_inducing, settings.embedding_dim,
                                settings.hidden_dim, settings.feature_dim)
        self.layout = self.shape.layout
        self.grid_encodings = encode_configs(space, prior.configs)
        self.statistics = self._prior_statistics()
        self.unmatched = self._unmatched_distance()
        self._candidate_encodings = candidate_encodings
        self._gp: tuple | None = None
        """``(model, likelihood, online optimizer)``, built on first use (:attr:`built`)."""
        self.fitted = False
        self._version = 0
        """Bumped whenever the hyperparameters change (invalidates the caches below)."""
        self._summary: PriorSummary | None = None
        self._candidate_cache: tuple | None = None

    # ---------------------------------------------------------------- rows
    def rows(self, encodings: torch.Tensor, task: int | torch.Tensor,
             epochs: torch.Tensor) -> torch.Tensor:
        """Input rows ``(n, width)`` of encoded configs ``(n, d)`` at 1-based ``epochs`` ``(n,)``."""
        epochs = torch.as_tensor(epochs, dtype=DTYPE)
        tasks = torch.as_tensor(task, dtype=DTYPE).expand_as(epochs)
        return self.layout.rows(encodings, tasks, epochs / self.n_epochs)

    def _grid_rows(self) -> torch.Tensor:
        """``(n_configs * n_epochs, width)``: the grid's cells, config-major (task column 0)."""
        epochs = torch.arange(1, self.n_epochs + 1, dtype=DTYPE).repeat(self.prior.n_configs)
        return self.rows(self.grid_encodings.repeat_interleave(self.n_epochs, 0), 0, epochs)

    def _prior_rows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The prior tasks' observed cells: rows ``(n_observed, width)`` and values
        ``(n_observed,)``, task-major then config-major (every cell of every task when the prior
        is fully observed; unobserved cells are left out, never filled in)."""
        grid = self._grid_rows()
        n_tasks = self.prior.n_tasks
        rows = grid.repeat(n_tasks, 1)
        rows[:, self.layout.task_column] = torch.arange(n_tasks, dtype=DTYPE).repeat_interleave(grid.shape[0])
        observed = torch.as_tensor(self.prior.observed).reshape(-1)
        return rows[observed], torch.as_tensor(self.prior.curves, dtype=DTYPE).reshape(-1)[observed]

    def _prior_table(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The prior tasks' values ``(T, n_grid)`` (0 where unobserved) and bool mask."""
        shape = (self.prior.n_tasks, self.prior.n_configs * self.n_epochs)
        observed = torch.as_tensor(self.prior.observed).reshape(shape)
        values = torch.as_tensor(self.prior.curves, dtype=DTYPE).reshape(shape)
        return torch.where(observed, values, 0.0), observed

    # ---------------------------------------------------------------- build
    def _prior_statistics(self) -> MatchedTaskStatistics:
        """Matched-cell statistics of the prior tasks' observed cells (the new task, last, has
        none yet)."""
        n_tasks = self.prior.n_tasks + 1
        n_cells = self.prior.n_configs * self.n_epochs
        values = torch.zeros(n_tasks, n_cells, dtype=DTYPE)
        observed = torch.zeros(n_tasks, n_cells, dtype=torch.bool)
        values[: self.prior.n_tasks], observed[: self.prior.n_tasks] = self._prior_table()
        return MatchedTaskStatistics.from_table(values, observed)

    def _unmatched_distance(self) -> float:
        """The task distance of pairs of tasks sharing at most one observed cell.

        That is the new task with every prior task before it has observations, and, with a
        partially observed prior, a pair of prior tasks whose observed cells barely overlap (e.g.
        tasks run on different configurations): such a pair's distance is not measured, it is
        this value (:meth:`MatchedTaskStatistics.distances`). ``settings.unmatched_distance`` is
        a number, or ``"mean"``: the mean distance of the pairs of prior tasks that do share
        cells (:data:`UNMATCHED_DISTANCE` when no pair does).
        """
        choice = self.settings.unmatched_distance
        if choice != "mean":
            return float(choice)
        n_tasks = self.prior.n_tasks
        if n_tasks < 2:
            return UNMATCHED_DISTANCE
        distances = self.statistics.distances()[:n_tasks, :n_tasks]
        shared = self.statistics.counts[:n_tasks, :n_tasks] > 1
        measured = shared & ~torch.eye(n_tasks, dtype=torch.bool)
        return float(distances[measured].mean()) if measured.any() else UNMATCHED_DISTANCE

    @property
    def built(self) -> bool:
        """Whether the GPyTorch model exists. It is built when first used (a fit, a
        conditioning, a prediction, loading a saved model): with a prior whose tasks observed
        every candidate the default policy reads the prior tasks alone, and the model is never
        built. Its random draws come from ``generator`` when it is built, so a run gets the
        same model whenever that happens (the generator draws nothing else before)."""
        return self._gp is not None

    def _built_gp(self) -> tuple:
        if self._gp is None:
            model, likelihood = self._build_model(self._candidate_encodings)
            optimizer = self.settings.online_optimizer.build(
                self._online_parameters(model, likelihood))
            self._gp = (model, likelihood, optimizer)
        return self._gp

    @property
    def model(self) -> AT2GP:
        return self._built_gp()[0]

    @property
    def likelihood(self) -> gpytorch.likelihoods.GaussianLikelihood:
        return self._built_gp()[1]

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self._built_gp()[2]

    def _build_model(self, candidate_encodings: torch.Tensor):
        s = self.settings
        if self.prior.n_tasks:
            pool, share = self._prior_rows()[0], s.target_inducing_share
        else:  # no prior: place every inducing point on the new task's candidates
            epochs = torch.arange(1, self.n_epochs + 1, dtype=DTYPE).repeat(candidate_encodings.shape[0])
            pool = self.rows(candidate_encodings.repeat_interleave(self.n_epochs, 0), 0, epochs)
            share = 1.0
        inducing = stratified_inducing_points(pool, s.n_inducing, self.target_task, share,
                                              self.generator, self.layout.task_column)
        init_seed = int(torch.randint(2**62, (1,), generator=self.generator))
        with torch.random.fork_rng(devices=[]):  # layers draw their initial weights globally
            torch.manual_seed(init_seed)
            model = AT2GP(self.shape, inducing).to(DTYPE)
            model.initialize_variational_distribution()
        likelihood = gpytorch.likelihoods.GaussianLikelihood().to(DTYPE)
        return model, likelihood

    def _online_parameters(self, model: AT2GP, likelihood) -> list[torch.nn.Parameter]:
        """What online gradient steps move: the hyperparameters only when the exact update sets
        q(u) afterwards (steps on q(u) would be overwritten), everything otherwise."""
        moved = model.hyperparameters() if self.settings.online_update == "exact" \
            else model.parameters()
        return list(moved) + list(likelihood.parameters())

    # ---------------------------------------------------------------- state changes
    def fit_offline(self) -> None:
        """Fit the model on the prior tasks (once; no-op without prior tasks)."""
        if self.fitted:
            return
        self.model.task_kernel.set_statistics(self.statistics, self.unmatched)
        if self.prior.n_tasks:
            x, y = self._prior_rows()
            data = FitData(x, y, x[:0], y[:0])
            s = self.settings
            steps = min(s.offline_epochs * math.ceil(data.n_data / s.batch_size),
                        s.offline_max_steps)
            optimizer = s.offline_optimizer.build(list(self.model.parameters())
                                                  + list(self.likelihood.parameters()))
            fit(self.model, self.likelihood, data, steps, s.batch_size, s.offline_optimizer,
                self.generator, optimizer=optimizer)
        self.fitted = True
        self._hyperparameters_changed()

    def _hyperparameters_changed(self) -> None:
        self._version += 1
        self._summary = None

    def observe_cells(self, cells: list[int], values: list[float]) -> None:
        """Add the new task's values at grid ``cells`` (``config * n_epochs + epoch - 1``) to the
        matched-cell statistics the task kernel is measured from."""
        if cells:
            self.statistics.add(self.target_task, torch.tensor(cells), torch.tensor(values, dtype=DTYPE))

    def condition(self, encodings: torch.Tensor, epochs: torch.Tensor, values: np.ndarray,
                  grid_configs: list[int | None]) -> None:
        """Condition on all of the new task's observations (this replaces earlier conditioning).

        Args:
            encodings: ``(n, d)`` the observed candidates' encodings.
            epochs: ``(n,)`` 1-based epochs.
            values: ``(n,)`` observed values on the new task's scale.
            grid_configs: per observation, its grid configuration index (``None`` off the grid);
                matched observations fit the output transform's affine map.
        """
        self.fit_offline()
        s = self.settings
        self.model.task_kernel.set_statistics(self.statistics, self.unmatched)
        self.fit_transform(epochs, values, grid_configs)
        target_x = self.rows(encodings, self.target_task, epochs)
        target_y = torch.as_tensor(self.transform.target_to_model(np.asarray(values, dtype=float)),
                                   dtype=DTYPE)
        prior_x, prior_y = self._prior_rows() if len(values) and s.online_gradient else (None, None)
        if prior_x is not None:
            data = FitData(prior_x, prior_y, target_x, target_y)
            steps = math.ceil(s.online_epochs * data.n_data / s.batch_size) if s.online_epochs > 0 \
                else s.online_steps
            fit(self.model, self.likelihood, data, steps, s.batch_size, s.online_optimizer,
                self.generator, optimizer=self.optimizer)
            self._hyperparameters_changed()
        if s.online_update == "exact":
            self._condition_exact(target_x, target_y)

    def fit_transform(self, epochs: torch.Tensor, values: np.ndarray,
                      grid_configs: list[int | None]) -> None:
        """Fit the output transform's affine map on the observations of grid configurations."""
        matched = [(g, int(e), v) for g, e, v in zip(grid_configs, epochs.tolist(), values)
                   if g is not None]
        cells, matched_epochs, matched_values = (np.array(column) for column in zip(*matched)) \
            if matched else (np.zeros(0, int), np.zeros(0, int), np.zeros(0))
        self.transform.fit_target(cells, matched_epochs, matched_values, all_values=values)

    def _condition_exact(self, target_x: torch.Tensor, target_y: torch.Tensor) -> None:
        constants = self.model.mean_module.constants
        with torch.no_grad():  # the exact update owns the new task's level: start from the prior's
            constants[self.target_task] = constants[: self.target_task].mean() if self.target_task else 0.0
        set_optimal_variational_distribution(self.model, self.likelihood, target_x, target_y,
                                             offset_task=self.target_task,
                                             prior=self.prior_summary())

    def prior_summary(self) -> PriorSummary | None:
        """The prior tasks' summary for the current hyperparameters (cached until they change)."""
        if not self.prior.n_tasks:
            return None
        if self._summary is None:
            values, observed = self._prior_table()
            self._summary = PriorSummary.compute(self.model, self._grid_rows(), values, observed)
        return self._summary

    # ---------------------------------------------------------------- queries
    @torch.no_grad()
    def curve_posterior(self, encodings: torch.Tensor) -> CurvePosterior:
        """Posterior of the whole curves of configurations ``(n, d)`` on the new task's scale.

        The cross-covariance with the inducing points is ``B_* * c`` with ``B_* = s K_epoch
        K_hyper`` (cached while the hyperparameters are fixed) and ``c`` the new task's
        correlation with each inducing point's task, so a query costs two ``(n E, M) x (M, M)``
        products. Predictions match GPyTorch's variational posterior (tested).
        """
        n = encodings.shape[0]
        shared, prior_variance = self._candidate_kernel(encodings)
        strategy = self.model.variational_strategy
        inducing = strategy.inducing_points
        tasks = inducing[:, self.layout.task_column].round().long()
        correlation = self.model.task_kernel.task_covariance()[self.target_task, tasks]
        cross = shared * correlation[None, :]  # (n E, M)
        weights, correction = self._whitened_posterior()
        mean = self.model.mean_module.constants[self.target_task] + cross @ weights
        variance = prior_variance + ((cross @ correction) * cross).sum(dim=1)
        shape = (n, self.n_epochs)
        std = variance.clamp_min(0.0).sqrt()
        return CurvePosterior(self.transform.mean_from_model(mean.reshape(shape).numpy()),
                              self.transform.std_from_model(std.reshape(shape).numpy()))

    @torch.no_grad()
    def prior_task_means(self, encodings: torch.Tensor) -> np.ndarray:
        """The posterior mean curve of configurations ``(n, d)`` on each prior task, on the
        model's scale: ``(T, n, n_epochs)``.

        What the prior tasks' curves would be at configurations they did not run, from the
        GP's fit of those very tasks: comparable with their observed (standardized) curves,
        unlike the new task's own posterior before it has observations (the task kernel then
        only knows the new task's distance to the prior tasks, and its mean sits on another
        level; ``AT2Engine`` averages these instead). Same cost as :meth:`curve_posterior`'s
        mean, for all tasks at once.
        """
        n_tasks = self.target_task
        shared, _ = self._candidate_kernel(encodings)
        strategy = self.model.variational_strategy
        tasks = strategy.inducing_points[:, self.layout.task_column].round().long()
        correlation = self.model.task_kernel.task_covariance()[:n_tasks][:, tasks]  # (T, M)
        chol_uu = inducing_cholesky(self.model)
        weights = torch.linalg.solve_triangular(
            chol_uu.T, strategy._variational_distribution.variational_mean[:, None],
            upper=True)[:, 0]  # K_uu^{-1/2}^T m
        means = self.model.mean_module.constants[:n_tasks][None, :] + \
            shared @ (correlation.T * weights[:, None])  # (n E, T)
        return means.T.reshape(n_tasks, encodings.shape[0], self.n_epochs).numpy()

    def _whitened_posterior(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(M,)`` ``K_uu^{-1/2}^T m`` and ``(M, M)`` ``K_uu^{-1/2}^T (S - I) K_uu^{-1/2}``: what
        q(u) adds to a prior mean and covariance, for cross-covariances ``k`` with the inducing
        points (``mean += k @ weights``, ``variance += k^T correction k``)."""
        chol_uu = inducing_cholesky(self.model)
        distribution = self.model.variational_strategy._variational_distribution
        inverse_chol = torch.linalg.solve_triangular(chol_uu, torch.eye(chol_uu.shape[0],
                                                                        dtype=DTYPE), upper=False)
        weights = inverse_chol.T @ distribution.variational_mean  # K_uu^{-1/2}^T m
        root = distribution.chol_variational_covar.T @ inverse_chol  # S^{1/2}^T L^{-1}
        return weights, root.T @ root - inverse_chol.T @ inverse_chol

    @torch.no_grad()
    def prior_task_variance(self, encodings: torch.Tensor,
                            rows: np.ndarray | None = None) -> np.ndarray:
        """``(n, n_epochs)``: how far an observed value of a prior task at configurations ``(n,
        d)`` (only those of ``rows``, indices into ``encodings``, when given: ``(len(rows),
        n_epochs)``) may lie from :meth:`prior_task_means`, on the model's scale: the GP's posterior
        variance of each prior task's latent curve there, averaged over the prior tasks, plus the
        likelihood's noise (an observed value is noisy, a latent curve is not).

        This is the uncertainty of an imputation: where no prior task trained a configuration,
        its value on each prior task is the GP's guess across configurations, and the transfer
        posterior adds this variance to the prior tasks' spread (``at2_tune.core.transfer``).
        The mean over tasks ``j`` of ``k_jj - k_j^T (K_uu^-1 - K_uu^-1 S K_uu^-1) k_j`` with
        ``k_j = B_* c_j`` is one product: ``B_*`` times the whitened correction weighted
        elementwise by ``mean_j c_j c_j^T``, so it costs what :meth:`curve_posterior`'s
        variance costs, however many prior tasks there are.
        """
        n_tasks = self.target_task
        if not n_tasks:
            raise ValueError("prior_task_variance needs prior tasks")
        shared, prior_variance = self._candidate_kernel(encodings)  # cached for all of them
        if rows is not None:
            cells = (torch.as_tensor(rows, dtype=torch.long)[:, None] * self.n_epochs
                     + torch.arange(self.n_epochs)).reshape(-1)
            shared, prior_variance = shared[cells], prior_variance[cells]
        tasks = self.model.variational_strategy.inducing_points[
            :, self.layout.task_column].round().long()
        covariance = self.model.task_kernel.task_covariance()
        correlation = covariance[:n_tasks][:, tasks]  # (T, M)
        _, correction = self._whitened_posterior()
        weighted = correction * (correlation.T @ correlation) / n_tasks
        latent = prior_variance * covariance.diagonal()[:n_tasks].mean() + \
            ((shared @ weighted) * shared).sum(dim=1)
        variance = latent.clamp_min(0.0) + self.likelihood.noise.reshape(())
        return variance.reshape(-1, self.n_epochs).numpy()

    def _candidate_kernel(self, encodings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``B_*`` ``(n E, M)`` and the prior variances ``(n E,)`` of every epoch of ``encodings``."""
        key = (self._version, encodings.shape[0])
        if self._candidate_cache is None or self._candidate_cache[0] != key \
                or not torch.equal(self._candidate_cache[1], encodings):
            epochs = torch.arange(1, self.n_epochs + 1, dtype=DTYPE).repeat(encodings.shape[0])
            rows = self.rows(encodings.repeat_interleave(self.n_epochs, 0), self.target_task, epochs)
            inducing = self.model.variational_strategy.inducing_points
            scale = self.model.covar_module.outputscale
            parts, variances = [], []
            for start in range(0, rows.shape[0], PREDICTION_CHUNK):
                chunk = rows[start: start + PREDICTION_CHUNK]
                parts.append(scale * self.model.epoch_kernel(chunk, inducing).to_dense()
                             * self.model.hyper_kernel(chunk, inducing).to_dense())
                variances.append(scale * self.model.epoch_kernel(chunk, diag=True)
                                 * self.model.hyper_kernel(chunk, diag=True))
            self._candidate_cache = (key, encodings.clone(), torch.cat(parts), torch.cat(variances))
        return self._candidate_cache[2], self._candidate_cache[3]

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict:
        """The model's state (``None`` for a model not built yet: nothing to save), the task
        statistics and whether the offline fit was done."""
        built = self.built
        return {"model": self.model.state_dict() if built else None,
                "likelihood": self.likelihood.state_dict() if built else None,
                "optimizer": self.optimizer.state_dict() if built else None,
                "statistics": self.statistics.state_dict(), "fitted": self.fitted}

    def load_state_dict(self, state: dict) -> None:
        if state["model"] is None:  # saved before the model was built: build it when used
            self._gp = None
        else:
            self.model.load_state_dict(state["model"])
            self.likelihood.load_state_dict(state["likelihood"])
            self.optimizer.load_state_dict(state["optimizer"])
        self.statistics.load_state_dict(state["statistics"])
        self.fitted = bool(state["fitted"])
        self._hyperparameters_changed()


def encode_configs(space, configs) -> torch.Tensor:
    """``(n, n_numeric + n_categorical)``: numeric encodings, then categorical indices."""
    numeric, categorical = space.encode_many(configs)
    return torch.cat([torch.as_tensor(numeric, dtype=DTYPE),
                      torch.as_tensor(categorical, dtype=DTYPE)], dim=1)

