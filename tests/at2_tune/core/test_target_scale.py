import numpy as np
import pytest

from at2_tune.core.target_scale import MIN_SCALE, AffineScale, fit_affine_scale


def test_no_observation_is_the_identity_and_one_observation_only_shifts():
    assert fit_affine_scale(np.array([]), np.array([]), 0.04) == AffineScale()
    one = fit_affine_scale(np.array([0.95]), np.array([0.4]), 0.04)
    assert one.scale == 1.0 and one.offset == pytest.approx(0.55)


def test_an_exact_affine_relation_is_recovered_without_shrinkage():
    rng = np.random.default_rng(0)
    reference = rng.uniform(0.1, 0.9, 40)
    fitted = fit_affine_scale(0.9 + 0.1 * reference, reference, 0.04, prior_strength=0.0)
    assert fitted.offset == pytest.approx(0.9) and fitted.scale == pytest.approx(0.1)
    shrunk = fit_affine_scale(0.9 + 0.1 * reference, reference, 0.04)
    assert 0.1 < shrunk.scale < 1.0  # pulled towards 1 by the pseudo-observations


def test_anticorrelated_values_keep_the_map_increasing():
    reference = np.linspace(0.1, 0.9, 20)
    assert fit_affine_scale(1.0 - reference, reference, 0.01).scale == MIN_SCALE


def test_mapping_round_trip():
    scale = AffineScale(offset=0.8, scale=0.2)
    values = np.array([0.8, 0.9, 1.0])
    np.testing.assert_allclose(scale.mean_from_model(scale.to_model(values)), values)
    np.testing.assert_allclose(scale.std_from_model(np.ones(3)), 0.2)


def test_the_maps_uncertainty_is_a_bayesian_linear_fits_by_hand():
    reference = np.array([0.2, 0.4, 0.6])
    values = np.array([0.5, 0.8, 0.9])
    fitted = fit_affine_scale(values, reference, reference_variance=0.05)
    # shrinkage: Sxy = 0.08, Sxx = 0.08, two pseudo-observations of variance 0.05
    scale = (0.08 + 0.1) / (0.08 + 0.1)
    assert fitted.scale == pytest.approx(scale)
    residuals = (values - values.mean()) - scale * (reference - 0.4)
    noise = (residuals @ residuals + 0.1 * scale ** 2) / (3 + 2)
    assert fitted.centre == pytest.approx(0.4)
    assert fitted.level_variance == pytest.approx(noise / 3)
    assert fitted.scale_variance == pytest.approx(noise / (0.08 + 0.1))
    far, near = fitted.map_variance(np.array([1.4, 0.4]))
    assert near == pytest.approx(noise / 3) and far == pytest.approx(noise / 3 + noise / 0.18)
    # ten times the observations of the same relation: a surer map
    many = fit_affine_scale(np.tile(values, 10), np.tile(reference, 10), 0.05)
    assert many.map_variance(1.4) < 0.2 * fitted.map_variance(1.4)
    assert AffineScale().map_variance(np.array([3.0])) == 0.0  # the identity knows nothing
