"""The surrogate-quality metrics against values computed by hand from the engine's posterior."""

import numpy as np
import pytest
from scipy import stats

from at2_tune.core.engine import AT2Engine
from at2_tune.core.models import GPCurveModel, ResidualCorrected
from at2_tune.core.prior import PriorData
from at2_tune.core.settings import AT2Settings, ModelSettings
from experiments.surrogate_quality import AFTER, case_quality
from search_spaces import get_space

TINY = AT2Settings(ModelSettings(n_inducing=32, offline_epochs=1, hidden_dim=8, feature_dim=4))


def _hand_metrics(engine, truth, gp):
    if gp is not None:  # the GP conditioned on the engine's observations
        gp.condition(engine.evidence())
    posterior = engine.posterior() if gp is None else gp.posterior()
    # each configuration's best value: its mean curve's peak
    peak = (np.arange(len(posterior.mean)), posterior.mean.argmax(axis=1))
    mean, std = posterior.mean[peak], posterior.std[peak]
    transform = engine.surrogate.transform
    noise = float(engine.surrogate.likelihood.noise.detach()) * transform.target.scale ** 2
    noise = noise if gp is not None else 0.0  # the GP's std is latent: its noise is added
    total = np.sqrt(std ** 2 + noise)
    warped = transform.warp(truth)
    return {"loglik": float(np.mean(stats.norm.logpdf(warped, mean, total))),
            "coverage90": float(np.mean(np.abs(warped - mean) <= stats.norm.ppf(0.95) * total)),
            "spearman": float(stats.spearmanr(mean, warped)[0])}


def _replayed_metrics(engine, db, test_task, gp) -> dict[int, dict[str, float]]:
    """The protocol by hand: the engine's own next query is observed (its value on the test
    task's curves) and conditioned on, one at a time; the metrics are taken by scipy after 0,
    5, 10 and 25 observations."""
    curves, truth = db.task_curves(test_task, 0), db.final_values(test_task, 0)
    expected = {}
    for observed in range(max(AFTER) + 1):
        if observed in AFTER:
            expected[observed] = _hand_metrics(engine, truth, gp)
        query = engine.next_query()
        engine.observe(query.candidate, query.epoch,
                       float(curves[query.candidate, query.epoch - 1]))
        engine.condition()
    return expected


@pytest.mark.parametrize("model", ["engine", "gp"])
def test_metrics_are_those_of_the_posterior_along_the_policys_observations(
        hyperrec, tmp_path, model):
    pair = hyperrec.pair(0)
    quality = case_quality(hyperrec, pair.train_tasks, pair.test_task, 0, 0, TINY, tmp_path,
                           model)
    assert sorted(quality) == list(AFTER)
    engine = AT2Engine(get_space(hyperrec.space_name),
                       PriorData.from_database(hyperrec, pair.train_tasks, 0), TINY, seed=0)
    engine.fit_offline()
    engine.condition()
    gp = ResidualCorrected(GPCurveModel(engine.surrogate), engine.surrogate, 2) \
        if model == "gp" else None
    expected = _replayed_metrics(engine, hyperrec, pair.test_task, gp)
    for n in AFTER:
        assert quality[n] == pytest.approx(expected[n]), f"after {n} observations"
    assert quality[25]["loglik"] > quality[0]["loglik"]  # observations inform the model
