"""Acquisition functions against hand-made posteriors (no model, no data release)."""

import numpy as np
import pytest
from scipy import stats

from at2_tune.core import acquisition as acq

# 3 candidates x 4 epochs
MEAN = np.array([[0.1, 0.3, 0.5, 0.6],
                 [0.2, 0.4, 0.45, 0.4],
                 [0.0, 0.1, 0.2, 0.3]])
STD = np.array([[0.1, 0.1, 0.2, 0.3],
                [0.05, 0.05, 0.05, 0.05],
                [0.5, 0.5, 0.5, 0.5]])
POSTERIOR = acq.CurvePosterior(MEAN, STD)


def test_next_epoch_ucb_reads_the_next_epoch_only():
    score = acq.NextEpochUCB(beta=2.0)(POSTERIOR, np.array([0, 1, 2]), np.array([1, 3, 4]))
    np.testing.assert_allclose(score, [0.1 + 0.2, 0.45 + 0.1, 0.3 + 1.0])


def test_best_future_ucb_is_the_best_ucb_from_the_next_epoch_on():
    score = acq.BestFutureUCB(beta=1.0)(POSTERIOR, np.array([0, 1, 1]), np.array([1, 1, 4]))
    np.testing.assert_allclose(score, [0.9, 0.5, 0.45])


def test_expected_improvement_matches_the_closed_form():
    mean, std, incumbent = np.array([0.5, 0.2]), np.array([0.1, 0.3]), 0.45
    z = (mean - incumbent) / std
    expected = (mean - incumbent) * stats.norm.cdf(z) + std * stats.norm.pdf(z)
    np.testing.assert_allclose(acq.expected_improvement(mean, std, incumbent), expected, rtol=1e-10)
    score = acq.BestFutureEI(incumbent=0.45)(POSTERIOR, np.array([1]), np.array([4]))
    np.testing.assert_allclose(score, acq.expected_improvement(np.array([0.4]), np.array([0.05]), 0.45))


def test_best_value_distribution_takes_the_peak_of_the_mean_curve():
    mean, std = acq.best_value_distribution(POSTERIOR)
    np.testing.assert_allclose(mean, [0.6, 0.45, 0.3])
    np.testing.assert_allclose(std, [0.3, 0.05, 0.5])


def test_leaders_round_robin_trains_the_least_trained_of_the_top_k():
    # predicted best values: 0.6, 0.45, 0.3 (see MEAN); a 4th candidate predicted 0.5
    mean = np.vstack([MEAN, [0.1, 0.2, 0.3, 0.5]])
    posterior = acq.CurvePosterior(mean, np.vstack([STD, np.full(4, 0.1)]))
    rule = acq.LeadersRoundRobin(contenders=(0, 1, 2, 3), trained_epochs=np.array([2, 0, 0, 1]), k=2)
    score = rule(posterior, np.array([0, 1, 2, 3]), np.array([3, 1, 1, 2]))
    # leaders are 0 (0.6) and 3 (0.5); 3 has fewer epochs, so it goes first
    assert list(np.argsort(-score, kind="stable")) == [3, 0, 1, 2]
    equal = acq.LeadersRoundRobin((0, 1, 2, 3), np.array([1, 0, 0, 1]), k=2)(
        posterior, np.array([0, 3]), np.array([2, 2]))
    assert equal[0] > equal[1]  # same epochs: the more promising leader first


def test_leaders_are_taken_among_contenders_only():
    rule = acq.LeadersRoundRobin(contenders=(1, 2), trained_epochs=np.zeros(3, dtype=int), k=1)
    score = rule(POSTERIOR, np.array([0, 1, 2]), np.array([1, 1, 1]))
    assert np.argmax(score) == 1  # candidate 0 (the best) failed: not a contender


def test_random_horizon_pi_reads_the_epoch_horizon_epochs_ahead_capped_at_the_last():
    rule = acq.RandomHorizonPI(horizon=2, threshold=0.35)
    score = rule(POSTERIOR, np.array([0, 1, 2]), np.array([1, 3, 4]))
    # candidate 0 has 0 epochs: epoch 2; 1 has 2: epoch 4; 2 has 3: epoch 5 -> the last (4)
    np.testing.assert_allclose(score, stats.norm.cdf([(0.3 - 0.35) / 0.1, (0.4 - 0.35) / 0.05,
                                                      (0.3 - 0.35) / 0.5]), rtol=1e-10)


def test_random_horizon_pi_draws_ifbos_horizon_and_threshold():
    draws = [acq.RandomHorizonPI.draw(np.random.default_rng(seed), POSTERIOR, 0.6, bounded=True)
             for seed in range(200)]
    horizons = {d.horizon for d in draws}
    gaps = np.array([(d.threshold - 0.6) / 0.4 for d in draws])  # the way to the ceiling 1
    assert horizons == {1, 2, 3, 4}
    assert gaps.min() >= 1e-4 and gaps.max() <= 0.1 and np.median(gaps) < 0.01  # log-uniform
    unbounded = acq.RandomHorizonPI.draw(np.random.default_rng(0), POSTERIOR, 0.6, bounded=False)
    ceiling = (MEAN + 3 * STD).max()  # 0.3 + 1.5
    assert unbounded.threshold == pytest.approx(0.6 + (ceiling - 0.6) * (draws[0].threshold - 0.6)
                                                / 0.4)
    assert acq.RandomHorizonPI.draw(np.random.default_rng(0), POSTERIOR, 0.6, True) == draws[0]


def test_curve_thompson_scores_the_best_drawn_value_of_the_remaining_epochs():
    draws = np.array([1.0, -2.0, 0.5])
    score = acq.CurveThompson(draws)(POSTERIOR, np.array([0, 1, 2]), np.array([1, 2, 4]))
    # candidate 0: max(mean + std) over epochs 1..4 = 0.9; 1: max(mean - 2 std) over 2..4 = 0.35;
    # 2: epoch 4 only, 0.3 + 0.25
    np.testing.assert_allclose(score, [0.9, 0.35, 0.55])
    # a zero draw is the best posterior mean over the remaining epochs
    zero = acq.CurveThompson(np.zeros(3))(POSTERIOR, np.array([0, 1]), np.array([1, 4]))
    np.testing.assert_allclose(zero, [0.6, 0.4])
