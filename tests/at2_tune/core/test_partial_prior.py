"""Partially observed priors: NaN marks the (task, config, epoch) cells a prior task never saw.

The partial prior below is the synthetic prior (3 tasks, 30 configs, 12 epochs) with
- task 0 early-stopped after epoch 3 on configs 0..9,
- task 1 never run on configs 20..29,
- no task past epoch 4 on config 29.
"""

import copy

import gpytorch
import numpy as np
import pytest
import torch

import synthetic_prior as synthetic
from at2_tune.core.engine import AT2Engine
from at2_tune.core.prior import PriorData, mean_over_tasks
from at2_tune.core.target_scale import fit_affine_scale
from at2_tune.core.transform import OutputTransform
from at2_tune.errors import AT2Error
from at2_tune.model.exact import PriorSummary, set_optimal_variational_distribution
from at2_tune.model.gp import AT2GP, ModelShape

CONFIGS = synthetic.toy_configs()
N_EPOCHS = synthetic.N_EPOCHS
HAND_COUNTS = np.array([[262, 150, 262],
                        [150, 240, 240],
                        [262, 240, 352]])
"""Matched cells: task 0 sees 360 - 10 * 9 - 8, task 1 20 * 12, task 2 360 - 8; tasks 0 and 1
share configs 0..9 at epochs 1..3 and configs 10..19 whole; every cell of task 0 is in task 2."""
TARGET_PAIRS = [(3, 1), (3, 2), (7, 1), (12, 1), (12, 2), (12, 3)]


def _partial_prior() -> PriorData:
    full = synthetic.toy_prior(configs=CONFIGS)
    curves = full.curves.copy()
    curves[0, :10, 3:] = np.nan
    curves[1, 20:] = np.nan
    curves[:, 29, 4:] = np.nan
    return PriorData(full.tasks, full.configs, curves, "toy partial")


def _engine(settings, prior=None) -> AT2Engine:
    return AT2Engine(synthetic.TOY_SPACE, _partial_prior() if prior is None else prior, settings,
                     seed=0)


def _conditioned(settings) -> AT2Engine:
    engine = _engine(settings)
    target = synthetic.toy_target(CONFIGS)
    for candidate, epoch in TARGET_PAIRS:
        engine.observe(candidate, epoch, float(target[candidate, epoch - 1]))
    engine.condition()
    return engine


@pytest.fixture(scope="module")
def conditioned(frozen_settings) -> AT2Engine:
    return _conditioned(frozen_settings)


# ---------------------------------------------------------------- PriorData
def test_observed_mask_and_matched_counts_follow_the_nan_cells():
    prior = _partial_prior()
    np.testing.assert_array_equal(prior.observed, ~np.isnan(prior.curves))
    assert not prior.fully_observed and synthetic.toy_prior(configs=CONFIGS).fully_observed
    np.testing.assert_array_equal(prior.matched_counts(), HAND_COUNTS)


def test_standardized_uses_each_tasks_observed_cells_and_keeps_nan():
    prior = _partial_prior()
    means = np.array([prior.curves[t][prior.observed[t]].mean() for t in range(3)])
    stds = np.array([prior.curves[t][prior.observed[t]].std() for t in range(3)])
    expected = (prior.curves - means[:, None, None]) / stds[:, None, None] * stds.mean() \
        + means.mean()
    standardized = prior.standardized().curves
    np.testing.assert_array_equal(np.isnan(standardized), ~prior.observed)
    np.testing.assert_allclose(standardized[prior.observed], expected[prior.observed],
                               rtol=1e-12, atol=0)
    for t in range(3):  # every task now has the average mean and spread on its own cells
        assert standardized[t][prior.observed[t]].mean() == pytest.approx(means.mean(), abs=1e-12)
        assert standardized[t][prior.observed[t]].std() == pytest.approx(stds.mean(), abs=1e-12)


def test_full_prior_standardization_and_task_mean_are_bit_for_bit_the_old_formulas():
    prior = synthetic.toy_prior(configs=CONFIGS)
    flat = prior.curves.reshape(3, -1)
    mean, spread = flat.mean(axis=1)[:, None, None], flat.std(axis=1)[:, None, None]
    old = (prior.curves - mean) / spread * spread.mean() + mean.mean()
    np.testing.assert_array_equal(prior.standardized().curves, old)
    average, count = mean_over_tasks(prior.curves, prior.observed)
    np.testing.assert_array_equal(average, prior.curves.mean(axis=0))
    assert (count == 3).all()


def test_a_task_without_any_observed_cell_is_refused_by_name():
    curves = _partial_prior().curves.copy()
    curves[1] = np.nan
    with pytest.raises(AT2Error, match=r"prior task 'toy1' has no observed value.*drop it"):
        PriorData(("toy0", "toy1", "toy2"), tuple(CONFIGS), curves)


@pytest.mark.parametrize("curves, message", [
    (np.zeros((3, 30)), r"shape \(3, 30\); expected 3 dimensions"),
    (np.zeros((3, 29, 12)), r"3 tasks and 30 configs"),
    (np.full((3, 30, 12), np.inf), r"infinite value; mark unobserved cells with NaN"),
])
def test_malformed_prior_curves_are_refused(curves, message):
    with pytest.raises(AT2Error, match=message):
        PriorData(("toy0", "toy1", "toy2"), tuple(CONFIGS), curves)


# ---------------------------------------------------------------- transform
def test_target_map_uses_the_tasks_that_observed_each_cell_and_drops_unobserved_cells():
    prior = _partial_prior()
    transform = OutputTransform(prior, standardize_prior=True, scale_target=True, warp="log_error")
    curves = transform.prior.curves
    np.testing.assert_array_equal(np.isnan(curves), ~prior.observed)  # NaN through the warp
    # (config 0, epoch 5): tasks 1 and 2 only; (12, 2): all three; (29, 9): none
    values = np.array([0.62, 0.55, 0.7])
    transform.fit_target(np.array([0, 12, 29]), np.array([5, 2, 9]), values)
    reference = np.array([(curves[1, 0, 4] + curves[2, 0, 4]) / 2, curves[:, 12, 1].mean()])
    expected = fit_affine_scale(transform.warp(values[:2]), reference,
                                float(curves[prior.observed].var()))
    assert transform.target.offset == pytest.approx(expected.offset, abs=1e-12)
    assert transform.target.scale == pytest.approx(expected.scale, abs=1e-12)
    transform.fit_target(np.array([29]), np.array([9]), np.array([0.7]))  # nothing matched
    assert (transform.target.offset, transform.target.scale) == (0.0, 1.0)


# ---------------------------------------------------------------- surrogate
def test_prior_rows_hold_exactly_the_observed_cells(frozen_settings):
    surrogate = _engine(frozen_settings).surrogate
    observed = surrogate.prior.observed
    rows, values = surrogate._prior_rows()
    assert rows.shape[0] == values.shape[0] == HAND_COUNTS.trace() == observed.sum()
    assert not torch.isnan(values).any()
    task, config, epoch = np.nonzero(observed)
    layout = surrogate.layout
    np.testing.assert_array_equal(rows[:, layout.task_column].numpy(), task)
    np.testing.assert_allclose(rows[:, layout.progress_column].numpy(), (epoch + 1) / N_EPOCHS)
    np.testing.assert_array_equal(rows[:, layout.config_columns].numpy(),
                                  surrogate.grid_encodings[config].numpy())
    np.testing.assert_array_equal(values.numpy(), surrogate.prior.curves[observed])


def test_task_statistics_count_and_measure_matched_cells_only(frozen_settings):
    surrogate = _engine(frozen_settings).surrogate
    statistics = surrogate.statistics
    np.testing.assert_array_equal(statistics.counts[:3, :3].numpy(), HAND_COUNTS)
    assert statistics.counts[3].sum() == 0  # the new task: nothing yet
    curves = surrogate.prior.curves
    both = surrogate.prior.observed[0] & surrogate.prior.observed[1]
    x0, x1 = curves[0][both], curves[1][both]
    by_hand = np.mean(((x0 - x0.mean()) - (x1 - x1.mean())) ** 2)
    assert float(statistics.distances()[0, 1]) == pytest.approx(by_hand, rel=1e-10)


def test_inducing_points_start_on_observed_cells(frozen_settings):
    surrogate = _engine(frozen_settings).surrogate
    inducing = surrogate.model.variational_strategy.inducing_points.detach()
    layout = surrogate.layout
    same = (inducing[:, None, layout.config_columns] == surrogate.grid_encodings[None]).all(-1)
    assert (same.sum(1) == 1).all()
    config = same.int().argmax(1).numpy()
    epoch = (inducing[:, layout.progress_column] * N_EPOCHS).round().long().numpy() - 1
    task = inducing[:, layout.task_column].round().long().numpy()
    observed = surrogate.prior.observed
    on_prior = task < surrogate.target_task
    assert on_prior.sum() == 29 and (~on_prior).sum() == 3  # 10% of 32 on the new task
    assert observed[task[on_prior], config[on_prior], epoch[on_prior]].all()
    assert observed[:, config[~on_prior], epoch[~on_prior]].any(axis=0).all()


def test_pairs_sharing_no_cell_get_the_mean_distance_of_the_measured_pairs(frozen_settings):
    full = synthetic.toy_prior(configs=CONFIGS)
    curves = full.curves.copy()
    curves[0, 15:] = np.nan  # tasks 0 and 1 ran disjoint halves of the grid
    curves[1, :15] = np.nan
    surrogate = _engine(frozen_settings, PriorData(full.tasks, full.configs, curves)).surrogate
    distances = surrogate.statistics.distances()
    assert float(surrogate.statistics.counts[0, 1]) == 0
    expected = float(distances[0, 2] + distances[1, 2]) / 2
    assert surrogate.unmatched == pytest.approx(expected, rel=1e-12)
    kernel = surrogate.model.task_kernel
    kernel.set_statistics(surrogate.statistics, surrogate.unmatched)
    assert float(kernel.distances[0, 1]) == pytest.approx(expected, rel=1e-6)  # float32 buffer
    assert float(kernel.distances[0, 2]) == pytest.approx(float(distances[0, 2]), rel=1e-6)


# ---------------------------------------------------------------- engine
def test_conditioned_engine_on_a_partial_prior_corrects_observed_curves_by_hand(conditioned):
    """The default protocol by hand: every candidate's transfer posterior is the prior tasks'
    copula average and spread (all of configs 3, 7 and 12 observed by >= 2 prior tasks); the
    curves of 3 and 12 (>= 2 observed epochs) are then conditioned on their residuals, that of
    7 (1 epoch) is not; the leaders' round robin and the best observed value decide."""
    from at2_tune.core import residual
    from at2_tune.core.prior import copula_average
    from at2_tune.core.spread import pooled_spread, spread_error_scale, spread_over_tasks

    posterior = conditioned.posterior()
    prior, transform = conditioned.prior, conditioned.surrogate.transform
    copula, count = copula_average(prior.curves, prior.observed)
    assert (count[[3, 7, 12]] >= 2).all()
    deviation = spread_over_tasks(prior.curves, prior.observed)
    spread = np.where(np.isnan(deviation), pooled_spread(prior.curves, prior.observed), deviation)
    transfer_mean = transform.mean_from_model(copula)  # NaN at config 29 after epoch 4
    transfer_std = np.sqrt((abs(transform.target.scale)
                            * spread_error_scale(prior.curves, prior.observed) * spread) ** 2
                           + transform.target.map_variance(copula))
    untouched = [c for c in range(29) if c not in (3, 12)]  # 29's guessed cells add the GP's
    np.testing.assert_allclose(posterior.std[untouched], transfer_std[untouched], rtol=1e-12)
    np.testing.assert_allclose(posterior.mean[7], transfer_mean[7], rtol=0, atol=1e-12)
    # the residual GP of each corrected curve: signal = the fixed epoch correlation, noise =
    # each epoch's share measured on the prior, variance = mean squared residual of all kept
    target = synthetic.toy_target(CONFIGS)
    kept = [(c, e) for c, e in TARGET_PAIRS if c != 7]
    residuals = {(c, e): float(transform.warp(target[c, e - 1]) - transfer_mean[c, e - 1])
                 for c, e in kept}
    kernel = residual.fixed_kernel_with_prior_noise(
        residual.prior_residual_covariance(prior.curves, prior.observed))
    progress = np.arange(1, N_EPOCHS + 1) / N_EPOCHS
    signal = residual.LEVEL + (1 - residual.LEVEL) * np.exp(
        -np.abs(progress[:, None] - progress[None, :]) / residual.LENGTH)
    np.testing.assert_allclose(kernel.signal, signal, rtol=1e-12)
    scale = np.mean(np.square(list(residuals.values())))  # signal's diagonal is 1
    for candidate in (3, 12):
        columns = np.array([e - 1 for c, e in kept if c == candidate])
        r = np.array([residuals[candidate, e + 1] for e in columns])
        gram = scale * (signal[np.ix_(columns, columns)] + np.diag(kernel.noise[columns]))
        cross = scale * signal[:, columns]
        mean = transfer_mean[candidate] + cross @ np.linalg.solve(gram, r)
        explained = np.einsum("ij,ji->i", cross, np.linalg.solve(gram, cross.T)) / scale
        std = transfer_std[candidate] * np.sqrt(np.clip(1 - explained, 0, 1))
        np.testing.assert_allclose(posterior.mean[candidate], mean, rtol=0, atol=1e-10)
        np.testing.assert_allclose(posterior.std[candidate], std, rtol=1e-10, atol=1e-12)
        assert np.abs(mean - transfer_mean[candidate]).max() > 1e-2  # a real correction
    # leaders: the 4 best peaks of the mean curves, none trained yet: the first trains epoch 1
    leaders = np.argsort(-posterior.mean.max(axis=1), kind="stable")[:4]
    assert not set(leaders) & {3, 7, 12}
    query = conditioned.next_query()
    assert (query.candidate, query.epoch) == (int(leaders[0]), 1)
    # recommendation: the best observed value, 0.677 (config 3, epoch 2) > 0.651 (12, epoch 3)
    assert max(TARGET_PAIRS, key=lambda pair: target[pair[0], pair[1] - 1]) == (3, 2)
    assert conditioned.recommend() == 3


def test_online_gradient_steps_fit_the_observed_prior_cells_only(fast_settings, monkeypatch):
    """``online_steps=2``: one online fit of 2 steps, on exactly the prior's 854 observed cells
    (pool) and the 6 target observations on the model's scale (every batch), built by hand."""
    from at2_tune.core import surrogate as surrogate_module

    engine = _engine(fast_settings)
    engine.fit_offline()
    surrogate = engine.surrogate
    moving = list(surrogate.model.hyperparameters()) + list(surrogate.likelihood.parameters())
    before = [p.detach().clone() for p in moving]
    fits = []
    real_fit = surrogate_module.fit

    def recording_fit(model, likelihood, data, steps, *args, **kwargs):
        fits.append((data, steps))
        return real_fit(model, likelihood, data, steps, *args, **kwargs)

    monkeypatch.setattr(surrogate_module, "fit", recording_fit)
    target = synthetic.toy_target(CONFIGS)
    for candidate, epoch in TARGET_PAIRS:
        engine.observe(candidate, epoch, float(target[candidate, epoch - 1]))
    engine.condition()
    assert [steps for _, steps in fits] == [2]
    data = fits[0][0]
    layout, prior = surrogate.layout, engine.prior
    task, config, epoch = np.nonzero(prior.observed)
    assert task.size == HAND_COUNTS.trace() == 854
    np.testing.assert_array_equal(data.pool_x[:, layout.task_column].numpy(), task)
    np.testing.assert_allclose(data.pool_x[:, layout.progress_column].numpy(),
                               (epoch + 1) / N_EPOCHS)
    np.testing.assert_array_equal(data.pool_x[:, layout.config_columns].numpy(),
                                  surrogate.grid_encodings[config].numpy())
    np.testing.assert_array_equal(data.pool_y.numpy(), prior.curves[task, config, epoch])
    candidates, epochs = np.array(TARGET_PAIRS).T
    np.testing.assert_array_equal(data.always_x[:, layout.task_column].numpy(), 3)
    np.testing.assert_allclose(data.always_x[:, layout.progress_column].numpy(), epochs / N_EPOCHS)
    np.testing.assert_array_equal(data.always_x[:, layout.config_columns].numpy(),
                                  surrogate.grid_encodings[candidates].numpy())
    # the target's map: least squares on the prior mean (all 3 tasks observed these cells)
    warped = surrogate.transform.warp(target[candidates, epochs - 1])
    assert prior.observed[:, candidates, epochs - 1].all()
    scale = fit_affine_scale(warped, prior.curves[:, candidates, epochs - 1].mean(axis=0),
                             float(prior.curves[prior.observed].var()))
    np.testing.assert_allclose(data.always_y.numpy(), (warped - scale.offset) / scale.scale,
                               rtol=1e-12)
    # the steps moved every hyperparameter (Adam, lr 0.01: about 0.01 per step)
    for old, new in zip(before, moving):
        assert float((new.detach() - old).abs().max()) > 1e-3
    posterior = engine.posterior()
    assert np.isfinite(posterior.mean).all() and np.isfinite(posterior.std).all()
    assert surrogate._version == 2  # the offline fit, then one online fit


def test_prior_quantile_mean_scores_observed_and_imputed_cells_on_one_scale(conditioned):
    from at2_tune.core.prior import copula_average, copula_imputed_average

    assert conditioned.policy.decides_on == "transfer"  # the default: the transfer posterior
    posterior = conditioned.posterior()
    encodings = conditioned.evidence().encodings
    per_task = conditioned.surrogate.prior_task_means(encodings)  # (T, 30, E)
    transform = conditioned.surrogate.transform
    prior = conditioned.prior
    copula, count = copula_average(prior.curves, prior.observed)
    imputed = copula_imputed_average(per_task, prior.curves, prior.observed)
    expected = transform.mean_from_model(np.where(count > 0, copula, imputed))
    unobserved = [c for c in range(30) if c not in {3, 7, 12}]  # no residual correction there
    np.testing.assert_allclose(posterior.mean[unobserved], expected[unobserved], rtol=0,
                               atol=1e-12)
    assert (count[29, 4:] == 0).all() and (count[29, :4] > 0).all()  # config 29: both kinds
    # an imputed cell is ranked among the observed ones: not above the best observed cell
    assert posterior.mean[29, 4:].max() <= transform.mean_from_model(np.nanmax(copula)) + 1e-12


def test_the_prior_spread_is_the_cells_own_where_two_tasks_observed_it_else_the_epochs(
        conditioned):
    posterior = conditioned.posterior()
    transform = conditioned.surrogate.transform
    deviation, error_scale, pooled = conditioned.posterior_source.base.spread
    target = transform.target
    scale = abs(target.scale)
    mapped = target.map_variance((posterior.mean - target.offset) / target.scale)  # (30, E)
    # config 29 after epoch 4: no task observed it, the epoch's pooled spread and the GP's
    # uncertainty of its guess there
    encodings = conditioned.evidence().encodings
    guess = conditioned.surrogate.prior_task_variance(encodings[29:30])[0]
    np.testing.assert_allclose(
        posterior.std[29, 4:],
        np.sqrt(scale ** 2 * ((error_scale * pooled[4:]) ** 2 + guess[4:]) + mapped[29, 4:]),
        rtol=1e-12)
    assert (guess[4:] > 0).all()
    # config 29 up to epoch 4 and (config 0, epoch 5): tasks observed them, their spread alone
    spread = np.where(np.isnan(deviation[29, :4]), pooled[:4], deviation[29, :4])
    np.testing.assert_allclose(posterior.std[29, :4],
                               np.sqrt((scale * error_scale * spread) ** 2 + mapped[29, :4]),
                               rtol=1e-12)
    assert np.isfinite(deviation[0, 4])
    assert posterior.std[0, 4] == pytest.approx(
        np.sqrt((scale * error_scale * deviation[0, 4]) ** 2 + mapped[0, 4]), rel=1e-12)


def test_prior_task_means_are_the_gps_posterior_means_at_the_prior_tasks(conditioned):
    surrogate = conditioned.surrogate
    encodings = conditioned.evidence().encodings[:4]
    per_task = surrogate.prior_task_means(encodings)
    assert per_task.shape == (surrogate.prior.n_tasks, 4, N_EPOCHS)
    epochs = torch.arange(1, N_EPOCHS + 1, dtype=torch.float64).repeat(4)
    surrogate.model.eval()
    for task in range(surrogate.prior.n_tasks):
        rows = surrogate.rows(encodings.repeat_interleave(N_EPOCHS, 0), task, epochs)
        with torch.no_grad():
            expected = surrogate.model(rows).mean.reshape(4, N_EPOCHS).numpy()
        np.testing.assert_allclose(per_task[task], expected, rtol=1e-9, atol=1e-9)


def test_prior_task_variance_is_the_gps_predictive_variance_averaged_over_the_prior_tasks(
        conditioned):
    surrogate = conditioned.surrogate
    encodings = conditioned.evidence().encodings[25:29]
    variance = surrogate.prior_task_variance(encodings)
    assert variance.shape == (4, N_EPOCHS)
    epochs = torch.arange(1, N_EPOCHS + 1, dtype=torch.float64).repeat(4)
    surrogate.model.eval()
    surrogate.likelihood.eval()
    expected = np.zeros((4, N_EPOCHS))
    for task in range(surrogate.prior.n_tasks):  # GPyTorch's predictive variance, task by task
        rows = surrogate.rows(encodings.repeat_interleave(N_EPOCHS, 0), task, epochs)
        with torch.no_grad():
            predictive = surrogate.likelihood(surrogate.model(rows))
        expected += predictive.variance.reshape(4, N_EPOCHS).numpy() / surrogate.prior.n_tasks
    # GPyTorch adds its 1e-6 jitter to the predictive variance
    np.testing.assert_allclose(variance, expected, rtol=1e-7, atol=1.5e-6)
    noise = float(surrogate.likelihood.noise)
    assert (variance > noise).all()  # the latent curves are uncertain too


def test_cached_partial_prior_summary_equals_the_exact_update_over_observed_rows(conditioned):
    engine = copy.deepcopy(conditioned)
    surrogate = engine.surrogate
    summary = surrogate.prior_summary()
    assert summary.roots.shape[0] == 3 and sorted(summary.groups.tolist()) == [0, 1, 2]
    distribution = surrogate.model.variational_strategy._variational_distribution
    cached = _q_u(distribution)
    constants = surrogate.model.mean_module.constants
    cached_constant = float(constants[surrogate.target_task].detach())
    evidence = engine.evidence()
    epochs, values = torch.as_tensor(evidence.epochs, dtype=torch.float64), evidence.values
    target_x = surrogate.rows(evidence.encodings[evidence.candidates], surrogate.target_task,
                              epochs)
    target_y = torch.as_tensor(surrogate.transform.target_to_model(values))
    prior_x, prior_y = surrogate._prior_rows()
    with torch.no_grad():
        constants[surrogate.target_task] = constants[: surrogate.target_task].mean()
    set_optimal_variational_distribution(surrogate.model, surrogate.likelihood,
                                         torch.cat([prior_x, target_x]),
                                         torch.cat([prior_y, target_y]),
                                         offset_task=surrogate.target_task)
    for exact, fast in zip(_q_u(distribution), cached):
        torch.testing.assert_close(exact, fast, rtol=0, atol=1e-8)
    assert float(constants[surrogate.target_task].detach()) == pytest.approx(cached_constant,
                                                                             abs=1e-8)


# ---------------------------------------------------------------- PriorSummary
SHAPE = ModelShape(n_numeric=3, categorical_sizes=(2,), n_tasks=3, n_inducing=10,
                   hidden_dim=8, feature_dim=4)


def _grid(n_configs: int, n_epochs: int, generator: torch.Generator) -> torch.Tensor:
    """``(n_configs * n_epochs, width)`` config-major grid rows (task column 0)."""
    configs = torch.rand(n_configs, 4, generator=generator, dtype=torch.float64)
    configs[:, 3] = torch.randint(2, (n_configs,), generator=generator).double()
    progress = torch.arange(1, n_epochs + 1, dtype=torch.float64).repeat(n_configs) / n_epochs
    return SHAPE.layout.rows(configs.repeat_interleave(n_epochs, 0),
                             torch.zeros(n_configs * n_epochs), progress)


def _small_model(generator: torch.Generator, grid: torch.Tensor):
    inducing = grid[torch.randperm(grid.shape[0], generator=generator)[: SHAPE.n_inducing]].clone()
    inducing[:, SHAPE.layout.task_column] = torch.tensor([0, 1, 2] * 3 + [2], dtype=torch.float64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = AT2GP(SHAPE, inducing).double()
        model.initialize_variational_distribution()
    model.task_kernel.distances = torch.tensor([[0.0, 0.2, 0.4], [0.2, 0.0, 0.3],
                                                [0.4, 0.3, 0.0]])
    model.mean_module.constants.data = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)
    likelihood = gpytorch.likelihoods.GaussianLikelihood().double()
    likelihood.noise = 0.05
    return model, likelihood


def _q_u(distribution) -> tuple[torch.Tensor, torch.Tensor]:
    """q(u)'s whitened mean ``(M,)`` and covariance ``(M, M)``."""
    chol = distribution.chol_variational_covar.detach()
    return distribution.variational_mean.detach().clone(), chol @ chol.T


@pytest.fixture
def masked_problem():
    generator = torch.Generator().manual_seed(3)
    grid = _grid(8, 5, generator)
    curves = torch.sin(3 * grid[None, :, 0] + torch.arange(2.0)[:, None]) * grid[None, :, 5] \
        + 0.05 * torch.randn(2, grid.shape[0], generator=generator, dtype=torch.float64)
    observed = torch.rand(2, grid.shape[0], generator=generator) < 0.6
    target = grid[:6].clone()
    target[:, SHAPE.layout.task_column] = 2.0
    target_y = 0.4 * torch.arange(6, dtype=torch.float64) / 6
    return grid, torch.where(observed, curves, torch.nan), observed, target, target_y, generator


def _observed_rows(grid, curves, observed) -> tuple[torch.Tensor, torch.Tensor]:
    rows = grid.repeat(curves.shape[0], 1)
    rows[:, SHAPE.layout.task_column] = torch.arange(2.0).repeat_interleave(grid.shape[0])
    mask = observed.reshape(-1)
    return rows[mask], curves.reshape(-1)[mask]


def test_masked_prior_summary_equals_the_exact_update_over_observed_rows(masked_problem):
    grid, curves, observed, target, target_y, generator = masked_problem
    model, likelihood = _small_model(generator, grid)
    summary = PriorSummary.compute(model, grid, curves, observed)
    assert summary.roots.shape == (2, 10, 10) and summary.groups.numel() == 2
    default = PriorSummary.compute(model, grid, curves)  # the mask defaults to the non-NaN cells
    assert torch.equal(default.roots, summary.roots)
    assert torch.equal(default.projected, summary.projected)
    distribution = model.variational_strategy._variational_distribution
    constants = model.mean_module.constants
    set_optimal_variational_distribution(model, likelihood, target, target_y, offset_task=2,
                                         prior=summary)
    fast, fast_constant = _q_u(distribution), float(constants[2].detach())
    with torch.no_grad():
        constants[2] = 0.1
    prior_x, prior_y = _observed_rows(grid, curves, observed)
    set_optimal_variational_distribution(model, likelihood, torch.cat([prior_x, target]),
                                         torch.cat([prior_y, target_y]), offset_task=2)
    for exact, cached in zip(_q_u(distribution), fast):
        torch.testing.assert_close(exact, cached, rtol=0, atol=1e-8)
    assert float(constants[2].detach()) == pytest.approx(fast_constant, abs=1e-8)
    # the mask matters: every cell observed (the same values elsewhere) gives another q(u)
    with torch.no_grad():
        constants[2] = 0.1
    filled = torch.where(observed, curves, 0.0)
    everything = PriorSummary.compute(model, grid, filled, torch.ones_like(observed))
    assert everything.roots.shape[0] == 1
    set_optimal_variational_distribution(model, likelihood, target, target_y, offset_task=2,
                                         prior=everything)
    assert (distribution.variational_mean.detach() - fast[0]).abs().max() > 1e-3


def test_a_nan_marked_observed_is_refused(masked_problem):
    grid, curves, observed, _, _, generator = masked_problem
    model, _ = _small_model(generator, grid)
    with pytest.raises(AT2Error, match="marked observed is NaN"):
        PriorSummary.compute(model, grid, curves, torch.ones_like(observed))


# ---------------------------------------------------------------- full priors
def test_full_prior_rows_and_summary_keep_the_full_grid_path(frozen_settings):
    prior = synthetic.toy_prior(configs=CONFIGS)
    surrogate = _engine(frozen_settings, prior).surrogate
    rows, values = surrogate._prior_rows()
    grid = surrogate._grid_rows()
    old_rows = grid.repeat(3, 1)
    old_rows[:, surrogate.layout.task_column] = torch.arange(3.0).repeat_interleave(grid.shape[0])
    assert torch.equal(rows, old_rows)
    assert torch.equal(values, torch.as_tensor(surrogate.prior.curves).reshape(-1))
    summary = surrogate.prior_summary()
    assert summary.roots.shape[0] == 1 and summary.groups.tolist() == [0, 0, 0]


def test_unobserved_candidates_wait_for_the_prior_observed_ones(leaders_settings):
    full = synthetic.toy_prior(configs=CONFIGS)
    curves = full.curves.copy()
    curves[:, 25:] = np.nan  # no prior task ran configs 25..29
    prior = PriorData(full.tasks, full.configs, curves, "toy, 5 unrun")
    engine = AT2Engine(synthetic.TOY_SPACE, prior, leaders_settings, seed=0)
    engine.condition()
    # configs 25..29 wait behind the prior-observed ones: nobody reads them, nothing is fitted
    assert not engine.needs_gp() and not engine.surrogate.fitted
    contenders = engine.policy.contenders(engine.situation())
    assert contenders.tolist() == list(range(25))
    target = synthetic.toy_target(CONFIGS)
    for _ in range(15):
        query = engine.next_query()
        assert query.candidate < 25
        value = float(target[query.candidate, query.epoch - 1])
        engine.observe(query.candidate, query.epoch, value)
        engine.condition()
    # fewer than `leaders` (4) prior-observed candidates: every candidate contends
    few = AT2Engine(synthetic.TOY_SPACE, prior, leaders_settings, seed=0, candidates=CONFIGS[22:])
    few.condition()
    assert few.policy.contenders(few.situation()).tolist() == list(range(8))
    assert few.needs_gp() and few.surrogate.fitted  # unrun ones contend: the GP imputes them
    assert not np.isnan(few.posterior().mean).any()
