"""Curve models: conditioned on the new task's observations, they give a :class:`CurvePosterior`.

Every model has the same two steps, state change and query apart:

* ``condition(evidence)`` takes every observation of the new task so far (:class:`Evidence`);
* ``restore(evidence)`` recomputes the posterior of a model whose GP state was loaded already
  conditioned on ``evidence`` (conditioning nothing again);
* ``posterior(candidates=None, epochs=None)`` reads the conditioned model and changes nothing.

``needs_gp(cells)`` tells whether the multi-task GP takes part in the posterior of candidates on
those grid cells (then it is fitted offline before the first ``condition``). The models:

* :class:`GPCurveModel`: the multi-task GP (``at2_tune.core.surrogate``) alone;
* ``at2_tune.core.transfer.TransferPosterior``: the prior tasks' average and spread, with the GP
  only for what the prior tasks did not observe;
* :class:`ResidualCorrected`: any model with each observed curve corrected by its own residuals;
* :class:`NewTaskGPModel`: the new task's own exact GP, fitted to its observations alone (the
  ``no_prior`` policy's: without prior tasks the multi-task GP has nothing to be fitted on).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np
import torch

from at2_tune.core import residual
from at2_tune.core.posterior import CurvePosterior
from at2_tune.core.surrogate import DTYPE, AT2Surrogate
from at2_tune.errors import AT2Error
from at2_tune.model.new_task_gp import NewTaskCurveGP, configuration_features


@dataclass(frozen=True)
class Evidence:
    """The new task's observations and the candidates they are about.

    Attributes:
        encodings: ``(n, d)`` every candidate's encoding (``surrogate.encode_configs``).
        cells: ``(n,)`` each candidate's prior grid configuration, ``None`` off the grid.
        candidates: ``(k,)`` the candidate of each observation, in arrival order.
        epochs: ``(k,)`` their 1-based epochs.
        values: ``(k,)`` their values on the new task's own scale.
    """

    encodings: torch.Tensor
    cells: tuple[int | None, ...]
    candidates: np.ndarray
    epochs: np.ndarray
    values: np.ndarray

    @property
    def observed_cells(self) -> list[int | None]:
        """``(k,)`` the grid configuration of each observation's candidate."""
        return [self.cells[c] for c in self.candidates]


class CurveModel(Protocol):
    def needs_gp(self, cells: Sequence[int | None]) -> bool: ...

    def condition(self, evidence: Evidence, cells: Sequence[int | None] | None = None) -> None:
        """``cells``: the grid cells of the candidates whose posterior will be read (default
        all); a model may leave the others uncomputed (NaN)."""

    def restore(self, evidence: Evidence, cells: Sequence[int | None] | None = None) -> None: ...

    def posterior(self, candidates=None, epochs=None) -> CurvePosterior: ...


class _Conditioned:
    """The query half of a model: :meth:`posterior` reads what ``condition`` stored."""

    _posterior: CurvePosterior | None = None

    def posterior(self, candidates=None, epochs=None) -> CurvePosterior:
        """The posterior of ``candidates`` (indices; default all) at 1-based ``epochs``."""
        if self._posterior is None:
            raise AT2Error("the model is not conditioned: call condition() first")
        if candidates is None and epochs is None:
            return self._posterior
        return self._posterior.select(candidates, epochs)


class GPCurveModel(_Conditioned):
    """The multi-task GP's posterior of the new task's curves."""

    def __init__(self, surrogate: AT2Surrogate) -> None:
        self.surrogate = surrogate

    def needs_gp(self, cells) -> bool:
        return True

    def condition(self, evidence: Evidence, cells=None) -> None:
        """Fit offline if not done, then condition the GP on every observation (the GP gives
        every candidate's posterior: ``cells`` changes nothing)."""
        self.surrogate.condition(evidence.encodings[torch.as_tensor(evidence.candidates,
                                                                    dtype=torch.long)],
                                 torch.as_tensor(evidence.epochs, dtype=DTYPE),
                                 evidence.values, evidence.observed_cells)
        self._posterior = self.surrogate.curve_posterior(evidence.encodings)

    def restore(self, evidence: Evidence, cells=None) -> None:
        self.fit_transform(evidence)
        self._posterior = self.surrogate.curve_posterior(evidence.encodings)

    def fit_transform(self, evidence: Evidence) -> None:
        """Fit only the output transform (the new task's scale) on the observations."""
        self.surrogate.fit_transform(torch.as_tensor(evidence.epochs, dtype=DTYPE),
                                     evidence.values, evidence.observed_cells)

    @property
    def moves_online(self) -> bool:
        """Whether conditioning moves the GP's hyperparameters (online gradient steps)."""
        return bool(self.surrogate.settings.online_gradient)

    def prior_task_means(self, encodings: torch.Tensor) -> np.ndarray:
        """``(T, n, E)`` the GP's mean curves of every prior task at the encoded configurations
        ``(n, d)`` (on the model's scale)."""
        return self.surrogate.prior_task_means(encodings)

    def prior_task_variance(self, encodings: torch.Tensor,
                            rows: np.ndarray | None = None) -> np.ndarray:
        """``(n, E)`` (``(len(rows), E)``) the variance of a prior task's observed value around
        :meth:`prior_task_means` (``AT2Surrogate.prior_task_variance``, the model's scale)."""
        return self.surrogate.prior_task_variance(encodings, rows)


class ResidualCorrected(_Conditioned):
    """``base``'s posterior with each observed curve conditioned on its own residuals
    (``at2_tune.core.residual``), once ``min_epochs`` of its epochs are observed; the residual
    kernel's noise shares are measured on the prior tasks (the fixed kernel without them)."""

    def __init__(self, base, surrogate: AT2Surrogate, min_epochs: int) -> None:
        self.base = base
        self.surrogate = surrogate
        self.min_epochs = min_epochs

    @functools.cached_property
    def kernel(self) -> residual.ResidualKernel | None:
        """It depends on the prior alone, so it is computed once."""
        prior = self.surrogate.prior
        return residual.prior_noise_kernel(prior.curves, prior.observed)

    def needs_gp(self, cells) -> bool:
        return self.base.needs_gp(cells)

    def condition(self, evidence: Evidence, cells=None) -> None:
        self.base.condition(evidence, cells)
        self._correct(evidence)

    def restore(self, evidence: Evidence, cells=None) -> None:
        self.base.restore(evidence, cells)
        self._correct(evidence)

    def _correct(self, evidence: Evidence) -> None:
        self._posterior = residual.correct_observed(
            self.base.posterior(), np.asarray(evidence.candidates, dtype=np.int64),
            np.asarray(evidence.epochs, dtype=np.int64),
            self.surrogate.transform.warp(evidence.values), self.kernel, self.min_epochs)


class NewTaskGPModel(_Conditioned):
    """The new task's curves from its own observations alone: an exact GP over (configuration,
    progress) (``at2_tune.model.new_task_gp``) on the warped values (``OutputTransform.warp``),
    standardized by their mean and spread; the posterior is on the warped scale.

    The kernel's hyperparameters are fitted by the marginal likelihood (``NewTaskCurveGP.fit``:
    :data:`FIT_STEPS` Adam steps from the last fit's values) when the observations first reach
    :data:`FIRST_FIT` and then whenever they have doubled or grown by :data:`REFIT_EVERY` since
    the last fit, so a run of 200 epochs fits about a dozen times; in between the GP is only
    conditioned on the new values. Fitting depends on the observations alone, in arrival
    order (not on how they were batched), so :meth:`restore` replays the fits and gives the
    same posterior."""

    FIRST_FIT = 3
    REFIT_EVERY = 20
    FIT_STEPS = 60
    LEARNING_RATE = 0.05

    def __init__(self, surrogate: AT2Surrogate, n_numeric: int,
                 categorical_sizes: tuple[int, ...], n_epochs: int) -> None:
        self.surrogate = surrogate
        self.n_numeric, self.categorical_sizes = n_numeric, tuple(categorical_sizes)
        self.n_epochs = n_epochs
        self.gp: NewTaskCurveGP | None = None
        self.fitted_at = 0

    def needs_gp(self, cells) -> bool:
        return False  # the multi-task GP takes no part

    def condition(self, evidence: Evidence, cells=None) -> None:
        """Fit at every fit point (:meth:`fit_points`) not fitted yet, on the observations
        up to it, then condition on all: the hyperparameters depend on the observations
        alone, however they were batched between decisions."""
        n = len(evidence.values)
        for point in self.fit_points(n):
            if point > self.fitted_at:
                self._update(evidence, point, predict=False)
        self._update(evidence, n)

    def restore(self, evidence: Evidence, cells=None) -> None:
        self.gp, self.fitted_at = None, 0
        self.condition(evidence)

    @classmethod
    def due(cls, n: int, fitted_at: int) -> bool:
        """Whether ``n`` observations call for a fit after one at ``fitted_at`` (0: none)."""
        if n < cls.FIRST_FIT:
            return False
        return fitted_at == 0 or n >= 2 * fitted_at or n - fitted_at >= cls.REFIT_EVERY

    @classmethod
    def fit_points(cls, n: int) -> list[int]:
        """The observation counts, up to ``n``, at which the hyperparameters were fitted."""
        points, last = [], 0
        for count in range(1, n + 1):
            if cls.due(count, last):
                points.append(count)
                last = count
        return points

    def _update(self, evidence: Evidence, n: int, predict: bool = True) -> None:
        """Condition on the first ``n`` observations (fitting first if :meth:`due`); with
        ``predict``, compute every candidate's posterior curve."""
        if n == 0:
            self._posterior = CurvePosterior.uninformed(evidence.encodings.shape[0],
                                                        self.n_epochs)
            return
        features = configuration_features(evidence.encodings, self.n_numeric,
                                          self.categorical_sizes)
        candidates = torch.as_tensor(evidence.candidates[:n], dtype=torch.long)
        progress = torch.as_tensor(evidence.epochs[:n], dtype=torch.float64) / self.n_epochs
        x = torch.cat([features[candidates], progress[:, None]], dim=1)
        warped = self.surrogate.transform.warp(evidence.values[:n])
        centre = float(warped.mean())
        spread = float(warped.std()) if n > 1 and warped.std() > 0 else 1.0
        y = torch.as_tensor((warped - centre) / spread, dtype=torch.float64)
        if self.gp is None:
            self.gp = NewTaskCurveGP(x, y)
        else:
            self.gp.set_train_data(x, y, strict=False)
        if self.due(n, self.fitted_at):
            self.gp.fit(self.FIT_STEPS, self.LEARNING_RATE)
            self.fitted_at = n
        if not predict:
            return
        mean, variance = self.gp.predict(self._curve_rows(features))
        shape = (features.shape[0], self.n_epochs)
        self._posterior = CurvePosterior(centre + spread * mean.reshape(shape).numpy(),
                                         spread * variance.sqrt().reshape(shape).numpy())

    def _curve_rows(self, features: torch.Tensor) -> torch.Tensor:
        """``(n E, d + 1)``: every candidate's row at every epoch (candidate-major)."""
        progress = torch.arange(1, self.n_epochs + 1, dtype=torch.float64) / self.n_epochs
        n = features.shape[0]
        return torch.cat([features.repeat_interleave(self.n_epochs, dim=0),
                          progress.repeat(n)[:, None]], dim=1)
