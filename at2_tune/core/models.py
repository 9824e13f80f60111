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
* :class:`ResidualCorrected`: any model with each observed curve corrected by its own residuals.
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
