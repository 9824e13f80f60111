"""The output transform: log-error warp, prior standardization, the new task's affine map."""

import numpy as np
import pytest

from at2_tune.core.prior import PriorData
from at2_tune.core.transform import LOG_ERROR_EPS, OutputTransform, resolve_output_warp
from at2_tune.errors import AT2Error


def _prior() -> PriorData:
    curves = np.array([[[0.1, 0.5, 0.8], [0.2, 0.3, 0.4]],
                       [[0.5, 0.9, 0.95], [0.6, 0.7, 0.9]]])
    return PriorData(("a", "b"), ({"x": 0.0}, {"x": 1.0}), curves)


def test_log_error_warp_stretches_the_top_and_round_trips():
    transform = OutputTransform(_prior(), standardize_prior=False, scale_target=False, warp="log_error")
    values = np.array([0.0, 0.8, 0.84, 1.0])
    warped = transform.warp(values)
    np.testing.assert_allclose(warped, -np.log(1 + LOG_ERROR_EPS - values))
    assert warped[2] - warped[1] > 4 * (0.84 - 0.80)  # top differences grow
    np.testing.assert_allclose(transform.unwarp(warped), values)
    np.testing.assert_allclose(transform.prior.curves, -np.log(1 + LOG_ERROR_EPS - _prior().curves))


def test_warp_refuses_values_outside_0_1_with_the_value_and_the_fix():
    transform = OutputTransform(_prior(), standardize_prior=True, scale_target=True, warp="log_error")
    with pytest.raises(AT2Error, match=r"value 87\.5 is outside \[0, 1\].*output_warp='standardize'"):
        transform.target_to_model(np.array([0.5, 87.5]))
    with pytest.raises(AT2Error, match="prior task value 1.5"):
        OutputTransform(PriorData(("a",), ({"x": 0.0},), np.array([[[0.5, 1.5]]])), True, True,
                        warp="log_error")


def test_without_warp_values_pass_through():
    transform = OutputTransform(_prior(), standardize_prior=False, scale_target=False, warp="none")
    np.testing.assert_array_equal(transform.warp(np.array([3.0, -1.0])), [3.0, -1.0])
    np.testing.assert_array_equal(transform.prior.curves, _prior().curves)


def test_prior_tasks_share_mean_and_spread_after_the_warp():
    transform = OutputTransform(_prior(), standardize_prior=True, scale_target=True, warp="log_error")
    flat = transform.prior.curves.reshape(2, -1)
    np.testing.assert_allclose(flat.mean(axis=1), flat.mean(axis=1)[0])
    np.testing.assert_allclose(flat.std(axis=1), flat.std(axis=1)[0])


def test_one_matched_observation_sets_the_level_at_scale_one():
    transform = OutputTransform(_prior(), standardize_prior=True, scale_target=True, warp="log_error")
    transform.fit_target(np.array([0]), np.array([2]), np.array([0.9]))
    reference = transform.prior.curves[:, 0, 1].mean()
    assert transform.target.scale == pytest.approx(1.0)
    assert transform.target_to_model(np.array([0.9]))[0] == pytest.approx(reference)
    np.testing.assert_allclose(transform.mean_from_model(np.array([reference])), transform.warp(0.9))


def test_auto_warps_only_priors_of_fractions():
    assert resolve_output_warp("auto", _prior()) == "log_error"
    loss = PriorData(("a",), ({"x": 0.0}, {"x": 1.0}), np.array([[[2.5, 1.2], [np.nan, 0.4]]]))
    assert resolve_output_warp("auto", loss) == "standardize"
    negated = PriorData(("a",), ({"x": 0.0},), -np.array([[[0.9, 0.5]]]))  # a mode="min" prior
    assert resolve_output_warp("auto", negated) == "standardize"
    assert resolve_output_warp("auto", PriorData.empty([{"x": 0.0}], 3)) == "standardize"
    assert resolve_output_warp("none", loss) == "none"
    with pytest.raises(AT2Error, match="output_warp='log' is not one of"):
        resolve_output_warp("log", loss)


def test_standardize_without_prior_gives_the_new_tasks_values_mean_0_and_spread_1():
    transform = OutputTransform(PriorData.empty([{"x": 0.0}, {"x": 1.0}], 3), True, True,
                                warp="auto")
    losses = -np.array([812.0, 640.0, 455.0, 390.0])  # a loss of any scale, negated to maximize
    transform.fit_target(np.array([0, 0, 1, 1]), np.array([1, 2, 1, 2]), losses, all_values=losses)
    model = transform.target_to_model(losses)
    assert transform.warp_name == "standardize"
    assert model.mean() == pytest.approx(0.0, abs=1e-12) and model.std() == pytest.approx(1.0)
    np.testing.assert_allclose(transform.mean_from_model(model), losses)  # back as reported
    transform.fit_target(np.array([0]), np.array([1]), losses[:1], all_values=losses[:1])
    assert transform.target.scale == 1.0 and transform.target_to_model(losses[:1])[0] == 0.0


def test_standardize_with_unmatched_prior_puts_the_new_task_on_the_priors_level_and_spread():
    loss = PriorData(("a", "b"), ({"x": 0.0}, {"x": 1.0}),
                     np.array([[[2.5, 1.2, 1.0], [2.0, 0.9, 0.6]], [[3.0, 2.0, 1.5], [np.nan] * 3]]))
    transform = OutputTransform(loss, standardize_prior=True, scale_target=True, warp="auto")
    values = np.array([10.0, 20.0, 30.0])  # configurations no prior task ran: nothing matched
    transform.fit_target(np.zeros(0, int), np.zeros(0, int), np.zeros(0), all_values=values)
    observed = transform.prior.curves[transform.prior.observed]
    model = transform.target_to_model(values)
    assert model.mean() == pytest.approx(observed.mean())
    assert model.std() == pytest.approx(observed.std())


def test_predictive_std_holds_the_unknown_level_until_the_map_is_fitted():
    """Two prior tasks of levels 0.55 and 0.75 and spreads 0.2 and 0.1 (no warp): before the new
    task's first matched value, a model value ``f`` is task a's ``0.55 + 4/3 (f - 0.65)`` or task
    b's ``0.75 + 2/3 (f - 0.65)`` with equal chances; the spread of two draws, 3 times their mean
    square for a new one."""
    curves = np.array([[[0.35, 0.75]], [[0.65, 0.85]]])
    transform = OutputTransform(PriorData(("a", "b"), ({"x": 0.0},), curves),
                                standardize_prior=True, scale_target=True, warp="none")
    mean, std = np.array([0.65, 0.95]), np.array([0.1, 0.0])
    a = 0.55 + 4 / 3 * (mean - 0.65)
    b = 0.75 + 2 / 3 * (mean - 0.65)
    by_hand = np.sqrt(3 * ((a - b) / 2) ** 2 + (16 / 9 + 4 / 9) / 2 * std ** 2)
    assert not transform.target_known
    np.testing.assert_allclose(transform.predictive_std(mean, std), by_hand, rtol=1e-12,
                               atol=1e-15)
    assert by_hand[1] == pytest.approx(0.0)  # at f = 0.95 both tasks map to 0.95
    transform.fit_target(np.array([0]), np.array([1]), np.array([0.6]))
    assert transform.target_known
    # one matched value at reference r: scale 1, residual variance 2 v / 3 (two pseudo-residuals
    # of the prior's variance v), level variance 2 v / 3, scale variance (2 v / 3) / (2 v)
    v = float(np.nanvar(transform.prior.curves))
    r = float(transform.prior.curves[:, 0, 0].mean())
    assert transform.target.scale == pytest.approx(1.0)
    np.testing.assert_allclose(transform.predictive_std(mean, std),
                               np.sqrt(std ** 2 + 2 * v / 3 + (mean - r) ** 2 / 3), rtol=1e-12)
