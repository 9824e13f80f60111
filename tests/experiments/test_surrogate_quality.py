"""The surrogate-quality metrics against values computed by hand from the engine's posterior."""

import dataclasses

import numpy as np
import pytest
from scipy import stats

from at2_tune.core.acquisition import best_value_distribution
from at2_tune.core.engine import AT2Engine
from at2_tune.core.prior import PriorData
from at2_tune.core.settings import AT2Settings
from experiments.surrogate_quality import AFTER, case_quality
from search_spaces import get_space

TINY = AT2Settings(n_inducing=32, offline_epochs=1, hidden_dim=8, feature_dim=4)


def _hand_metrics(engine, truth, with_noise):
    mean, std = best_value_distribution(engine.posterior())
    transform = engine.surrogate.transform
    noise = float(engine.surrogate.likelihood.noise.detach()) * transform.target.scale ** 2
    noise = noise if with_noise else 0.0
    total = np.sqrt(std ** 2 + noise)
    warped = transform.warp(truth)
    return {"loglik": float(np.mean(stats.norm.logpdf(warped, mean, total))),
            "coverage90": float(np.mean(np.abs(warped - mean) <= stats.norm.ppf(0.95) * total)),
            "spearman": float(stats.spearmanr(mean, warped)[0])}


@pytest.mark.parametrize("transfer_std, with_noise", [("prior_spread", False), ("gp", True)])
def test_metrics_before_any_observation_are_those_of_the_posterior(hyperrec, tmp_path,
                                                                     transfer_std, with_noise):
    pair = hyperrec.pair(0)
    settings = dataclasses.replace(TINY, transfer_std=transfer_std)
    quality = case_quality(hyperrec, pair.train_tasks, pair.test_task, 0, 0, settings, tmp_path)
    assert sorted(quality) == list(AFTER)
    engine = AT2Engine(get_space(hyperrec.space_name),
                       PriorData.from_database(hyperrec, pair.train_tasks, 0), settings, seed=0)
    engine.fit_offline()
    engine.condition()
    expected = _hand_metrics(engine, hyperrec.final_values(pair.test_task, 0), with_noise)
    assert quality[0] == pytest.approx(expected)
    assert all(0.0 <= q["coverage90"] <= 1.0 for q in quality.values())
    assert quality[25]["loglik"] > quality[0]["loglik"]  # observations inform the model
