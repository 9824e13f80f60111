"""Prior tasks weighted by their similarity to the new task (``transfer_weights="similar"``)."""

from __future__ import annotations

import dataclasses

import numpy as np

from at2_tune.core.engine import AT2Engine
from at2_tune.core.prior import mean_over_tasks


def test_weighted_mean_over_tasks_by_hand() -> None:
    values = np.array([[1.0, 2.0, np.nan], [3.0, np.nan, np.nan], [5.0, 6.0, 7.0]])
    observed = ~np.isnan(values)
    mean, count = mean_over_tasks(values, observed, np.array([0.5, 0.25, 0.25]))
    np.testing.assert_allclose(mean, [(0.5 + 0.75 + 1.25) / 1.0, (1.0 + 1.5) / 0.75, 7.0])
    assert count.tolist() == [3, 2, 1]
    plain, _ = mean_over_tasks(values, observed, np.ones(3))
    np.testing.assert_allclose(plain, mean_over_tasks(values, observed)[0])


def test_the_task_like_the_new_one_gets_the_weight(toy, frozen_settings) -> None:
    space, prior, target = toy  # the target is like the last prior task (toy2)
    settings = dataclasses.replace(frozen_settings, transfer_weights="similar",
                                   transfer_mean="prior_average")
    engine = AT2Engine(space, prior, settings, seed=0)
    assert engine.task_weights() is None  # nothing matched yet: equal weights
    for candidate in range(8):
        for epoch in (1, 2, 3):
            engine.observe(candidate, epoch, float(target[candidate, epoch - 1]))
    engine.condition()
    weights = engine.task_weights()
    statistics = engine.surrogate.statistics
    distance = statistics.distances()[3, :3].numpy()
    shrink = 24 / (24 + settings.similarity_cells)
    logits = -shrink * distance / (settings.similarity_temperature * distance.mean())
    np.testing.assert_allclose(weights, np.exp(logits) / np.exp(logits).sum())
    assert weights.argmax() == int(distance.argmin()) == 2 and weights[2] > 0.5
    # the prior-average mean of an unobserved grid config is the weighted average
    average, _ = mean_over_tasks(engine.prior.curves, engine.prior.observed, weights)
    mean = engine.posterior().mean
    expected = engine.surrogate.transform.mean_from_model(average[20])
    np.testing.assert_allclose(mean[20], expected)
    # and the weighted copula average with transfer_mean="prior_quantile"
    from at2_tune.core.prior import copula_average

    quantile = AT2Engine(space, prior, dataclasses.replace(settings,
                                                           transfer_mean="prior_quantile"), seed=0)
    for candidate in range(8):
        for epoch in (1, 2, 3):
            quantile.observe(candidate, epoch, float(target[candidate, epoch - 1]))
    quantile.condition()
    np.testing.assert_allclose(quantile.task_weights(), weights)  # same fit, same weights
    copula, _ = copula_average(engine.prior.curves, engine.prior.observed, weights)
    np.testing.assert_allclose(quantile.posterior().mean[20],
                               quantile.surrogate.transform.mean_from_model(copula[20]))


def test_copula_average_counts_only_each_tasks_ordering() -> None:
    from at2_tune.core.prior import _average_ranks, copula_average

    assert _average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [2.5, 0.0, 2.5, 1.0]
    small = np.array([[0.1, 0.2], [0.3, 0.9]])
    values = np.stack([small, 100 * small])  # same ordering, 100x the spread
    observed = ~np.isnan(values)
    mapped, count = copula_average(values, observed)
    pooled = np.sort(values.reshape(-1))
    levels = np.array([[0.125, 0.375], [0.625, 0.875]])  # (rank + 1/2) / 4, both tasks agree
    np.testing.assert_allclose(mapped, np.quantile(pooled, levels))
    assert count.tolist() == [[2, 2], [2, 2]]
    values[1, 1, 1] = np.nan  # a cell one task did not observe
    mapped, count = copula_average(values, ~np.isnan(values))
    assert count[1, 1] == 1 and np.isfinite(mapped).all()
    # the wide task no longer outweighs: reversing its order cancels the scores at the edges
    flipped = np.stack([small, -100 * small])
    middle, _ = copula_average(flipped, ~np.isnan(flipped))
    np.testing.assert_allclose(middle, np.median(np.sort(flipped.reshape(-1))))


def test_copula_imputed_values_sit_on_the_observed_cells_scale() -> None:
    from at2_tune.core.prior import copula_average, copula_imputed_average

    rng = np.random.default_rng(3)
    values = rng.normal(size=(3, 40, 5)) * np.array([1.0, 10.0, 0.1])[:, None, None]
    observed = np.ones(values.shape, dtype=bool)
    observed[:, 30:] = False  # 10 configurations no task observed
    average, _ = copula_average(values, observed)
    # imputing an observed configuration's own values gives its copula average
    imputed = copula_imputed_average(values[:, :30], values, observed)
    np.testing.assert_allclose(imputed, average[:30])
    # a value above everything a task observed scores as that task's best cell
    best = np.stack([np.full((1, 5), values[t][observed[t]].max()) for t in range(3)])
    above = copula_imputed_average(best + 1.0, values, observed)
    np.testing.assert_allclose(above, copula_imputed_average(best, values, observed))
    n = observed[0].sum()
    np.testing.assert_allclose(above, np.quantile(np.sort(values[observed]), (n - 0.5) / n))
    # between two observed values: between their scores
    task_values = np.sort(values[0][observed[0]])
    between = np.stack([np.full((1, 1), (task_values[99] + task_values[100]) / 2)] * 3)
    low, high = (copula_imputed_average(np.stack([np.full((1, 1), task_values[i])] * 3),
                                        values, observed) for i in (99, 100))
    assert low < copula_imputed_average(between, values, observed) < high
    # each task's ordering counts, not its scale: the 10x task alone cannot lift a cell
    middle = np.stack([np.full((1, 5), np.median(values[t][observed[t]])) for t in range(3)])
    middle[1] += 1000.0  # far above the 10x task's values, but its score saturates
    lifted = copula_imputed_average(middle, values, observed)
    pooled = np.sort(values[observed])
    from scipy.stats import norm
    level = norm.cdf(norm.ppf((n - 0.5) / n) / 3)  # scores: about 0, 0 and the best cell's
    np.testing.assert_allclose(lifted, np.quantile(pooled, level), rtol=0.02)
    assert (lifted < pooled.max()).all() and middle.mean(axis=0).min() > 300  # the mean's
