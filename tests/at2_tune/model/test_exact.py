"""The closed-form q(u): optimal for the ELBO, and the exact GP posterior when Z = X."""

import dataclasses

import gpytorch
import pytest
import torch

from at2_tune.model.exact import set_optimal_variational_distribution
from at2_tune.model.fit import weighted_elbo_loss
from at2_tune.model.gp import AT2GP, ModelShape

SHAPE = ModelShape(n_numeric=3, categorical_sizes=(2,), n_tasks=2, n_inducing=12,
                   hidden_dim=8, feature_dim=4)


def _rows(n: int, generator: torch.Generator) -> torch.Tensor:
    x = torch.rand(n, SHAPE.layout.width, generator=generator, dtype=torch.float64)
    x[:, 3] = torch.randint(2, (n,), generator=generator).double()  # categorical index
    x[:, 4] = torch.randint(2, (n,), generator=generator).double()  # task index
    x[:, 5] = 0.05 + 0.95 * x[:, 5]  # progress in (0, 1]
    return x


def _model(inducing: torch.Tensor):
    shape = dataclasses.replace(SHAPE, n_inducing=inducing.shape[0])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = AT2GP(shape, inducing.clone()).double()
        model.initialize_variational_distribution()
    likelihood = gpytorch.likelihoods.GaussianLikelihood().double()
    likelihood.noise = 0.05
    model.mean_module.constants.data = torch.tensor([0.3, -0.2], dtype=torch.float64)
    return model, likelihood


@pytest.fixture
def data():
    generator = torch.Generator().manual_seed(1)
    x = _rows(40, generator)
    y = torch.sin(4 * x[:, 0]) * x[:, 5] + 0.3 * x[:, 4] + 0.05 * torch.randn(40, generator=generator, dtype=torch.float64)
    return x, y, generator


def test_closed_form_q_u_is_a_stationary_point_of_the_elbo(data):
    x, y, generator = data
    model, likelihood = _model(_rows(SHAPE.n_inducing, generator))
    set_optimal_variational_distribution(model, likelihood, x, y)
    model.train()
    likelihood.train()
    loss = weighted_elbo_loss(model, likelihood, x, y, torch.ones_like(y), y.numel())
    variational = list(model.variational_parameters())
    gradients = torch.autograd.grad(loss, variational)
    assert max(g.abs().max().item() for g in gradients) < 1e-6
    # and it beats where the prior initialization started
    fresh, _ = _model(model.variational_strategy.inducing_points.detach())
    fresh.train()
    assert loss < weighted_elbo_loss(fresh, likelihood, x, y, torch.ones_like(y), y.numel())


def test_inducing_points_on_the_data_give_the_exact_gp_posterior(data):
    x, y, generator = data
    model, likelihood = _model(x)
    set_optimal_variational_distribution(model, likelihood, x, y)
    test = _rows(7, generator)
    with torch.no_grad():
        predicted = model(test).mean
        k_xx = model.covar_module(x).to_dense()
        k_tx = model.covar_module(test, x).to_dense()
        residual = y - model.mean_module(x)
        exact = model.mean_module(test) + k_tx @ torch.linalg.solve(
            k_xx + likelihood.noise * torch.eye(x.shape[0], dtype=x.dtype), residual)
    # equal up to the 1e-6 jitter GPyTorch adds to K_uu
    torch.testing.assert_close(predicted, exact, rtol=1e-4, atol=1e-4)
