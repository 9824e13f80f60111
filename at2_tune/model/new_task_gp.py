"""The new task's own curve GP: exact GP regression over (configuration, progress), fitted to the
new task's observations alone (no prior tasks).

Without prior tasks the multi-task GP (:mod:`at2_tune.model.gp`) has nothing to learn its
configuration features and curve shapes from, so its kernel stays at its initial values. This
model is AT2's GP with one task and exact inference, its kernel fitted by the marginal likelihood
of the new task's values:

.. math::
    k((x, t), (x', t')) = s_c\\, K_{epoch}(t, t')\\, K_c(x, x') + s_\\ell\\, K_\\ell(x, x')

``K_epoch`` the freeze-thaw epoch kernel (:class:`~at2_tune.model.epoch_kernel.EpochKernel`: curves
that rise and saturate), ``K_c`` and ``K_l`` Matern-5/2 kernels with one lengthscale per input
column over the configuration's features (:func:`configuration_features`): the first term is how
alike two configurations' learning curves are, the second how alike their levels are from the
first epoch on. A constant mean and Gaussian noise. Inputs: ``(n, d + 1)`` rows, the features
then the progress ``t = epoch / n_epochs``.

How far a curve can still rise is what the first epochs cannot tell: while every observation is
an early epoch, the marginal likelihood barely depends on ``s_c`` (the epoch kernel is near 0
there), so ``s_c`` stays where the fits start. It starts at :data:`CURVE_OUTPUTSCALE`, a rise over
training of several times the spread of the values observed so far, and both outputscales are
fitted on a log scale, so later fits can move them by orders of magnitude once the curves show
how far they rise.
"""

from __future__ import annotations

import math

import gpytorch
import torch
from gpytorch.constraints import GreaterThan, Positive
from gpytorch.kernels import MaternKernel, ScaleKernel
from linear_operator.utils.cholesky import psd_safe_cholesky

from at2_tune.model.epoch_kernel import EpochKernel

DTYPE = torch.float64
MIN_NOISE = 1e-4
"""Lower bound of the noise variance (standardized values): keeps the Cholesky factor stable."""
PREDICT_CHUNK = 8192
"""Rows predicted at a time (bounds the cross-covariance at ``PREDICT_CHUNK x n`` floats)."""
CURVE_OUTPUTSCALE = 100.0
"""Initial ``s_c`` (standardized values): with the epoch kernel's initial ``a = b = 1``
(``K_epoch(1, 1) = 1/3``), a curve's rise over training has a prior std of about 6 spreads of the
values observed. On HyperRec, a configuration's rise from its first epoch to its best value
has a root mean square of a median 8.6 times the spread of the first epochs across
configurations (tasks' quartiles 4-19 for the mean rise). The value was chosen on LCBench as
released, whose first value is the untrained network (7.0 there, quartiles 4-13); on its 50
trained epochs the rise is 1.3 spreads (quartiles 0.8-1.2 for the mean rise), and this start
was not chosen again for them. Started at GPyTorch's default (``s_c`` about 0.7, a rise of half
a spread), the policy took near-chance first epochs for the whole story and trained the first
configuration that rose (docs/benchmarks.md, "How far a curve can rise")."""
LEVEL_OUTPUTSCALE = math.log(2.0)
"""Initial ``s_l``: GPyTorch's default start (softplus of 0), kept."""


def log_scale_constraint() -> Positive:
    """A positive parameter stored as its logarithm: Adam's steps change it by a factor, not by
    an amount: one fit of ``at2_tune.core.models.NewTaskGPModel`` (60 Adam steps of 0.05, up to 3
    in the logarithm) can move an outputscale twentyfold either way (GPyTorch's softplus: by
    about 3 either way, from 100 to 97)."""
    return Positive(transform=torch.exp, inv_transform=torch.log)


def configuration_features(encodings: torch.Tensor, n_numeric: int,
                           categorical_sizes: tuple[int, ...]) -> torch.Tensor:
    """``(n, n_numeric + n_categorical)`` encodings (``surrogate.encode_configs``: numeric values
    in [0, 1], then categorical indices) -> ``(n, n_numeric + sum(categorical_sizes))``: the
    numeric values and a one-hot column per categorical choice."""
    parts = [encodings[:, :n_numeric].to(DTYPE)]
    for column, size in enumerate(categorical_sizes):
        index = encodings[:, n_numeric + column].round().long()
        parts.append(torch.nn.functional.one_hot(index, size).to(DTYPE))
    return torch.cat(parts, dim=1)


class NewTaskCurveGP(gpytorch.models.ExactGP):
    """Exact GP over ``(n, d + 1)`` rows (features, progress) of one task; see the module."""

    def __init__(self, train_x: torch.Tensor, train_y: torch.Tensor) -> None:
        likelihood = gpytorch.likelihoods.GaussianLikelihood(
            noise_constraint=GreaterThan(MIN_NOISE))
        super().__init__(train_x, train_y, likelihood)
        width = train_x.shape[1] - 1
        features = list(range(width))
        self.mean_module = gpytorch.means.ConstantMean()
        self.curve_kernel = ScaleKernel(
            EpochKernel(active_dims=[width])
            * MaternKernel(nu=2.5, ard_num_dims=width, active_dims=features),
            outputscale_constraint=log_scale_constraint())
        self.level_kernel = ScaleKernel(MaternKernel(nu=2.5, ard_num_dims=width,
                                                     active_dims=features),
                                        outputscale_constraint=log_scale_constraint())
        self.curve_kernel.outputscale = CURVE_OUTPUTSCALE
        self.level_kernel.outputscale = LEVEL_OUTPUTSCALE
        self.to(DTYPE)

    def kernel(self, x1: torch.Tensor, x2: torch.Tensor | None = None,
               diag: bool = False) -> torch.Tensor:
        """The covariance ``(n, m)`` of rows ``x1`` ``(n, d + 1)`` and ``x2`` (default ``x1``),
        dense; ``(n,)`` with ``diag``."""
        x2 = x1 if x2 is None else x2
        if diag:
            return self.curve_kernel(x1, x2, diag=True) + self.level_kernel(x1, x2, diag=True)
        return (self.curve_kernel(x1, x2) + self.level_kernel(x1, x2)).to_dense()

    def forward(self, x: torch.Tensor) -> gpytorch.distributions.MultivariateNormal:
        return gpytorch.distributions.MultivariateNormal(
            self.mean_module(x), self.curve_kernel(x) + self.level_kernel(x))

    def fit(self, steps: int, lr: float) -> None:
        """``steps`` Adam steps on the exact marginal likelihood of the training data, from the
        current hyperparameters; deterministic (no sampling). Few steps from the last fit's
        values, not the optimum: with a few dozen configurations the optimum shrinks the
        lengthscales until configurations look unrelated, and MAP with BoTorch's lengthscale
        prior made every unobserved configuration so uncertain that the policy screened 84 to
        99 of 100 configurations for one epoch (measured: docs/benchmarks.md)."""
        self.train()
        self.likelihood.train()
        optimizer = torch.optim.Adam(self.parameters(), lr=lr)
        mll = gpytorch.mlls.ExactMarginalLogLikelihood(self.likelihood, self)
        x, y = self.train_inputs[0], self.train_targets
        for _ in range(steps):
            optimizer.zero_grad()
            loss = -mll(self(x), y)
            loss.backward()
            optimizer.step()
        self.eval()
        self.likelihood.eval()

    @torch.no_grad()
    def predict(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and variance of the latent curve at ``rows`` ``(m, d + 1)``:
        ``(m,)`` each. Computed from one Cholesky factor of the training covariance and the
        cross-covariance, :data:`PREDICT_CHUNK` rows at a time: every candidate's whole curve
        is tens of thousands of rows, whose joint covariance is never needed."""
        x, y = self.train_inputs[0], self.train_targets
        noise = self.likelihood.noise.squeeze()
        factor = psd_safe_cholesky(self.kernel(x) + noise * torch.eye(x.shape[0], dtype=DTYPE))
        constant = self.mean_module.constant.squeeze()
        weights = torch.cholesky_solve((y - constant)[:, None], factor)
        means, variances = [], []
        for chunk in torch.split(rows, PREDICT_CHUNK):
            cross = self.kernel(chunk, x)  # (chunk, n)
            means.append(constant + (cross @ weights).squeeze(1))
            whitened = torch.linalg.solve_triangular(factor, cross.T, upper=False)
            variances.append(self.kernel(chunk, diag=True) - (whitened * whitened).sum(dim=0))
        return torch.cat(means), torch.cat(variances).clamp_min(0.0)
