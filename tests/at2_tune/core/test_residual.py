"""The per-configuration residual correction against hand-computed GP conditioning."""

import numpy as np

from at2_tune.core import residual
from at2_tune.core.acquisition import CurvePosterior


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
