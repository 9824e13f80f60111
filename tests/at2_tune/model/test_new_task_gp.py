"""The new task's own curve GP: features, prediction against GPyTorch's, the MAP fit."""

import gpytorch
import numpy as np
import pytest
import torch

from at2_tune.model import new_task_gp
from at2_tune.model.new_task_gp import DTYPE, NewTaskCurveGP, configuration_features


def test_features_are_the_numeric_values_then_one_hot_choices():
    encodings = torch.tensor([[0.25, 0.0, 1.0, 2.0], [0.5, 1.0, 0.0, 0.0]])
    features = configuration_features(encodings, n_numeric=2, categorical_sizes=(2, 3))
    np.testing.assert_array_equal(features.numpy(), [[0.25, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0],
                                                     [0.5, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0]])
    assert features.dtype == DTYPE


def _data(n=24, seed=0, noise=0.05):
    """Curves ``(x_0 - 0.5)(1 - exp(-4 t))`` with noise, standardized by the first 24 rows'
    mean and spread (the model sees standardized values)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, generator=generator, dtype=DTYPE)
    x[:, 2] = torch.randint(1, 11, (n,), generator=generator).to(DTYPE) / 10  # progress
    y = (x[:, 0] - 0.5) * (1 - torch.exp(-4 * x[:, 2])) + noise * torch.randn(
        n, generator=generator, dtype=DTYPE)
    return x, (y - y[:24].mean()) / y[:24].std()


def test_predict_equals_gpytorchs_exact_posterior(monkeypatch):
    x, y = _data()
    gp = NewTaskCurveGP(x, y)
    gp.eval()
    rows = torch.rand(7, 3, generator=torch.Generator().manual_seed(1), dtype=DTYPE)
    mean, variance = gp.predict(rows)
    with torch.no_grad(), gpytorch.settings.fast_computations(False, False, False):
        reference = gp(rows)
    np.testing.assert_allclose(mean.numpy(), reference.mean.numpy(), atol=1e-6)
    np.testing.assert_allclose(variance.numpy(), reference.variance.numpy(), atol=1e-6)
    # in chunks: the same values
    monkeypatch.setattr(new_task_gp, "PREDICT_CHUNK", 3)
    chunked = gp.predict(rows)
    np.testing.assert_allclose(chunked[0].numpy(), mean.numpy(), atol=1e-12)
    np.testing.assert_allclose(chunked[1].numpy(), variance.numpy(), atol=1e-12)


def test_the_fit_raises_the_marginal_likelihood_and_is_deterministic():
    x, y = _data()
    fits = []
    for _ in range(2):
        gp = NewTaskCurveGP(x, y)
        mll = gpytorch.mlls.ExactMarginalLogLikelihood(gp.likelihood, gp)
        gp.train()
        before = float(mll(gp(x), y))
        gp.fit(steps=60, lr=0.05)
        gp.train()
        after = float(mll(gp(x), y))
        fits.append((before, after, [p.detach().clone() for p in gp.parameters()]))
    assert fits[0][1] > fits[0][0] + 0.1
    for first, second in zip(fits[0][2], fits[1][2]):
        torch.testing.assert_close(first, second, rtol=0, atol=0)



def test_the_fitted_gp_is_calibrated_on_new_points_of_the_same_function():
    x, y = _data(n=224, seed=3)
    gp = NewTaskCurveGP(x[:24], y[:24])
    gp.fit(steps=60, lr=0.05)
    mean, variance = gp.predict(x[24:])
    z = (y[24:] - mean) / (variance + gp.likelihood.noise.detach()).sqrt()
    coverage = float((z.abs() < 1.645).double().mean())
    assert 0.8 <= coverage <= 1.0, coverage
    assert 0.3 <= float(z.abs().median()) <= 1.0


def test_before_any_curve_rises_a_rise_of_several_spreads_is_expected_and_fits_shrink_it():
    generator = torch.Generator().manual_seed(0)
    features = torch.rand(20, 2, generator=generator, dtype=DTYPE)

    def standardized_levels(rows):
        y = torch.sin(6 * rows[:, 0]) + 0.1 * torch.randn(rows.shape[0], generator=generator,
                                                           dtype=DTYPE)
        return (y - y.mean()) / y.std()

    # 20 configurations at their first of 50 epochs: nothing says how far they rise
    first = torch.cat([features, torch.full((20, 1), 0.02, dtype=DTYPE)], dim=1)
    gp = NewTaskCurveGP(first, standardized_levels(first))
    gp.fit(steps=60, lr=0.05)
    _, late = gp.predict(torch.cat([features, torch.ones(20, 1, dtype=DTYPE)], dim=1))
    _, early = gp.predict(first)
    assert float(late.sqrt().median()) > 3.0  # spreads of the values seen (softplus start: 0.4)
    assert float(early.sqrt().median()) < 0.2
    # the same configurations observed flat to their end: two fits bring the rise down
    progress = torch.arange(1, 6, dtype=DTYPE) / 5
    flat = torch.cat([features.repeat_interleave(5, 0), progress.repeat(20)[:, None]], dim=1)
    gp = NewTaskCurveGP(flat, standardized_levels(flat))
    assert float(gp.curve_kernel.outputscale) == pytest.approx(new_task_gp.CURVE_OUTPUTSCALE)
    gp.fit(steps=60, lr=0.05)
    gp.fit(steps=60, lr=0.05)
    assert float(gp.curve_kernel.outputscale) < new_task_gp.CURVE_OUTPUTSCALE / 10
