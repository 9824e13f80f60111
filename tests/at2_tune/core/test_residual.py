"""The per-configuration residual correction against hand-computed GP conditioning."""

import numpy as np

from at2_tune.core import residual
from at2_tune.core.posterior import CurvePosterior


def test_unobserved_candidates_keep_the_transfer_posterior():
    posterior = CurvePosterior(np.zeros((3, 4)), np.ones((3, 4)))
    corrected = residual.correct_observed(posterior, np.array([1]), np.array([2]), np.array([0.5]))
    np.testing.assert_array_equal(corrected.mean[[0, 2]], 0.0)
    np.testing.assert_array_equal(corrected.std[[0, 2]], 1.0)


def test_one_residual_shifts_the_curve_by_the_gp_posterior_mean():
    mean = np.tile(np.array([0.1, 0.2, 0.3, 0.4]), (2, 1))
    posterior = CurvePosterior(mean, np.full((2, 4), 0.5))
    corrected = residual.correct_observed(posterior, np.array([0]), np.array([2]), np.array([0.6]))
    r = 0.6 - 0.2  # variance = r^2 (one residual)
    t = np.arange(1, 5) / 4
    correlation = residual.LEVEL + (1 - residual.LEVEL) * np.exp(-np.abs(t - 0.5) / residual.LENGTH)
    shift = correlation * r / (1 + residual.NOISE_SHARE)
    np.testing.assert_allclose(corrected.mean[0], mean[0] + shift)
    np.testing.assert_allclose(corrected.std[0], 0.5 * np.sqrt(1 - correlation ** 2 / (1 + residual.NOISE_SHARE)))
    np.testing.assert_array_equal(corrected.mean[1], mean[1])


def test_a_curve_with_fewer_than_min_epochs_observed_keeps_its_transfer_posterior():
    rng = np.random.default_rng(1)
    posterior = CurvePosterior(rng.normal(size=(3, 5)), np.full((3, 5), 0.5))
    candidates, epochs = np.array([0, 2, 0, 1, 1, 1]), np.array([1, 1, 2, 1, 2, 3])
    values = rng.normal(size=6)
    corrected = residual.correct_observed(posterior, candidates, epochs, values, min_epochs=2)
    np.testing.assert_array_equal(corrected.mean[2], posterior.mean[2])  # one epoch: untouched
    np.testing.assert_array_equal(corrected.std[2], posterior.std[2])
    # the others as if candidate 2 had never been observed (its residual takes no part)
    without = residual.correct_observed(posterior, candidates[[0, 2, 3, 4, 5]],
                                        epochs[[0, 2, 3, 4, 5]], values[[0, 2, 3, 4, 5]])
    np.testing.assert_allclose(corrected.mean, without.mean)
    np.testing.assert_allclose(corrected.std, without.std)
    assert not np.allclose(corrected.mean[:2], posterior.mean[:2])  # two epochs: corrected
    all_of_them = residual.correct_observed(posterior, candidates, epochs, values, min_epochs=1)
    assert not np.allclose(all_of_them.mean[2], posterior.mean[2])
    alone = residual.correct_observed(posterior, np.array([2]), np.array([1]), np.array([0.3]),
                                      min_epochs=2)
    np.testing.assert_array_equal(alone.mean, posterior.mean)  # nothing left to correct on


def test_a_fully_observed_curve_is_reproduced_up_to_the_noise():
    rng = np.random.default_rng(0)
    posterior = CurvePosterior(np.zeros((2, 10)), np.full((2, 10), 0.3))
    observed = 1.0 + 0.3 * np.sin(np.arange(10))
    other = rng.normal(0.0, 0.1, 3)
    corrected = residual.correct_observed(posterior, np.array([0] * 10 + [1] * 3),
                                          np.array(list(range(1, 11)) + [1, 2, 3]),
                                          np.concatenate([observed, other]))
    assert np.abs(corrected.mean[0] - observed).max() < 0.1
    assert corrected.std[0].max() < 0.3 * 0.5


def _hand_covariance(curves):
    """Leave-one-task-out residual covariance, one loop per task/config/epoch pair."""
    n_tasks, n_configs, n_epochs = curves.shape
    rows = []
    for task in range(n_tasks):
        reference = np.delete(curves, task, axis=0).mean(axis=0)
        slope, offset = np.polyfit(reference.ravel(), curves[task].ravel(), 1)
        rows.extend(curves[task] - (offset + slope * reference))
    rows = np.array(rows)
    return np.array([[np.mean(rows[:, e] * rows[:, f]) for f in range(n_epochs)]
                     for e in range(n_epochs)])


def test_prior_residual_covariance_equals_a_hand_computation():
    curves = np.random.default_rng(3).normal(size=(4, 6, 5))
    covariance = residual.prior_residual_covariance(curves, np.ones(curves.shape, bool))
    np.testing.assert_allclose(covariance, _hand_covariance(curves), rtol=1e-6, atol=1e-9)


def test_prior_residual_covariance_averages_only_observed_pairs():
    rng = np.random.default_rng(4)
    curves = rng.normal(size=(5, 8, 3))
    observed = np.ones(curves.shape, bool)
    observed[0, :, 2] = False  # task 0 never reached epoch 3
    full = residual.prior_residual_covariance(curves, np.ones(curves.shape, bool))
    partial = residual.prior_residual_covariance(np.where(observed, curves, np.nan), observed)
    assert np.isfinite(partial).all()
    assert not np.allclose(full, partial)
    assert np.linalg.eigvalsh(partial).min() > 0


def test_prior_residual_covariance_needs_three_tasks():
    curves = np.zeros((2, 4, 3))
    assert residual.prior_residual_covariance(curves, np.ones(curves.shape, bool)) is None


def test_a_residual_uncorrelated_with_later_epochs_moves_only_its_own_epoch():
    covariance = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.8], [0.0, 0.8, 1.0]])
    posterior = CurvePosterior(np.zeros((1, 3)), np.ones((1, 3)))
    kernel = residual.ResidualKernel(covariance, np.zeros(3))
    first = residual.correct_observed(posterior, np.array([0]), np.array([1]), np.array([0.5]),
                                      kernel)
    np.testing.assert_allclose(first.mean[0], [0.5, 0.0, 0.0])
    np.testing.assert_allclose(first.std[0], [0.0, 1.0, 1.0], atol=1e-12)
    second = residual.correct_observed(posterior, np.array([0]), np.array([2]), np.array([0.5]),
                                       kernel)
    np.testing.assert_allclose(second.mean[0], [0.0, 0.5, 0.4])
    np.testing.assert_allclose(second.std[0], [1.0, 0.0, 0.6], atol=1e-12)


def test_only_the_shape_of_the_prior_covariance_matters_not_its_scale():
    covariance = np.array([[2.0, 0.3, 0.1], [0.3, 1.0, 0.6], [0.1, 0.6, 0.5]])
    posterior = CurvePosterior(np.zeros((2, 3)), np.ones((2, 3)))
    args = (posterior, np.array([0, 0, 1]), np.array([1, 2, 3]), np.array([0.4, 0.1, -0.2]))
    noise = np.array([0.1, 0.2, 0.05])
    small = residual.correct_observed(*args, residual.ResidualKernel(covariance, noise))
    large = residual.correct_observed(*args, residual.ResidualKernel(10 * covariance, 10 * noise))
    np.testing.assert_allclose(small.mean, large.mean)
    np.testing.assert_allclose(small.std, large.std, atol=1e-6)
    # candidate 1 seen at epoch 3 only: the usual GP conditioning with this covariance
    np.testing.assert_allclose(small.mean[1], covariance[:, 2] / (covariance[2, 2] + 0.05) * -0.2)
    assert (small.std > 0).all()  # the noise is separated: an observed epoch keeps some std


def test_fixed_kernel_with_prior_noise_by_hand():
    covariance = np.array([[4.0, 1.0, 0.5], [1.0, 2.0, 1.5], [0.5, 1.5, 1.55]])
    kernel = residual.fixed_kernel_with_prior_noise(covariance)
    assert kernel.noise.shape == (3,)
    # neighbours' mean covariance: epoch 1 -> 1.0, epoch 2 -> (1.0 + 1.5) / 2, epoch 3 -> 1.5
    shares = [(4.0 - 1.0) / 1.0, (2.0 - 1.25) / 1.25, residual.NOISE_SHARE]  # (1.55-1.5)/1.5 < 5%
    t = np.arange(1, 4) / 3
    fixed = residual.LEVEL + (1 - residual.LEVEL) * np.exp(-np.abs(t[:, None] - t) / residual.LENGTH)
    np.testing.assert_allclose(kernel.signal, fixed)
    np.testing.assert_allclose(kernel.noise, shares)
