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
    settings = dataclasses.replace(frozen_settings, transfer_weights="similar")
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
