"""The generalization experiment's predictors and scores, by hand."""

import numpy as np
import pytest
from scipy import stats

from experiments.history_generalization import (encode_one_hot, knn_prediction, scores,
                                                 slot_contest)


def test_knn_averages_the_nearest_trained_predictions_and_adds_their_spread():
    encoded = np.array([[0.0], [0.1], [0.6], [1.0]])
    trained = np.array([True, True, False, True])
    mean, std = np.array([1.0, 3.0, 9.0, 5.0]), np.array([0.5, 0.5, 9.0, 1.0])
    knn_mean, knn_std = knn_prediction(encoded, trained, mean, std, k=2)
    # config 2 (0.6): nearest trained 3 (1.0) and 1 (0.1): mean 4, variance 0.625 + 1
    assert knn_mean[2] == pytest.approx(4.0)
    assert knn_std[2] == pytest.approx(np.sqrt((0.25 + 1.0) / 2 + 1.0))
    assert knn_mean[0] == pytest.approx(2.0)  # itself and config 1


def test_scores_are_the_normal_log_likelihood_coverage_and_spearman():
    mean, std = np.array([0.1, 0.5, 0.9]), np.array([0.1, 0.2, 0.1])
    truth = np.array([0.15, 0.9, 0.8])
    result = scores(mean, std, truth)
    assert result["loglik"] == pytest.approx(np.mean(stats.norm.logpdf(truth, mean, std)))
    assert result["coverage90"] == pytest.approx(2 / 3)  # 0.9 is 2 std above 0.5
    assert result["spearman"] == pytest.approx(stats.spearmanr(mean, truth)[0])


def test_the_slot_contest_compares_each_untrained_configuration_with_the_favourite():
    mean, std = np.array([1.0, 0.0, 1.2, 0.9]), np.array([0.3, 1.0, 0.4, 0.1])
    untrained = np.array([False, False, True, True])
    finals = np.array([0.7, 0.9, 0.5, 0.6])  # true ranks 1, 0, 3, 2
    contest = slot_contest(mean, std, favourite=0, untrained=untrained, finals=finals)
    # config 2: P(N(1.2, 0.4^2) > N(1.0, 0.3^2)) = Phi(0.2 / 0.5); config 3: Phi(-0.1 / 0.316)
    assert contest["p_max"] == pytest.approx(stats.norm.cdf(0.4))
    assert contest["favourite_rank"] == 1 and contest["pick_rank"] == 3


def test_categoricals_are_one_hot(hyperrec):
    from search_spaces import get_space

    space = get_space(hyperrec.space_name)
    encoded = encode_one_hot(space, list(hyperrec.configs[:4]))
    width = space.n_numeric + sum(len(c) for c in space.categorical_choices)
    assert encoded.shape == (4, width)
    assert (encoded[:, space.n_numeric:].sum(axis=1) == len(space.categorical_choices)).all()


def test_boosting_predicts_a_known_function_as_trained_to_the_end_with_calibrated_intervals():
    """Prior tasks whose best value is 2x + noise (sd 0.1), every curve reaching it at its last
    epoch and half of them cut after half the epochs: the median predicted at full depth follows
    2x at new configurations, and the 90% intervals cover about 90% of fresh noisy draws."""
    from experiments.history_generalization import boosting_prediction

    rng = np.random.default_rng(0)
    n_tasks, n_configs, n_epochs = 6, 60, 10
    x = rng.uniform(0, 1, size=(n_configs, 1))
    final = 2 * x[:, 0] + 0.1 * rng.standard_normal((n_tasks, n_configs))
    ramp = np.linspace(0.5, 1.0, n_epochs)  # a curve rises to its final value
    curves = final[:, :, None] * ramp[None, None, :]
    cut = rng.uniform(size=(n_tasks, n_configs)) < 0.5
    curves[cut, n_epochs // 2:] = np.nan  # early-stopped trials
    new = np.linspace(0.05, 0.95, 40)[:, None]
    mean, std = boosting_prediction(x, curves, new)
    assert np.abs(mean - 2 * new[:, 0]).mean() < 0.06  # cut curves read as cut, not as final
    draws = 2 * new[:, 0] + 0.1 * rng.standard_normal((200, len(new)))
    coverage = (np.abs(draws - mean) <= 1.6448536269514722 * std).mean()
    assert 0.75 <= coverage <= 0.99
