"""Tests of the prior-spread standard deviation (``at2_tune.core.spread``)."""

import warnings

import numpy as np
import pytest

from at2_tune.core.spread import PSEUDO_TASKS, spread_error_scale, spread_over_tasks


def _partial_prior(seed=0, tasks=5, configs=6, epochs=4):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(configs, epochs)).cumsum(axis=1)
    curves = np.stack([rng.uniform(0.8, 1.2) * base + rng.normal(scale=0.1) +
                       rng.normal(scale=0.5, size=base.shape) for _ in range(tasks)])
    observed = rng.random(curves.shape) > 0.2
    return np.where(observed, curves, np.nan), observed


def _hand_spread(curves, observed, pseudo_tasks):
    """Cell by cell: sample variance, the epoch's mean sample variance, the shrunk std."""
    _, n_configs, n_epochs = curves.shape
    variance = np.full((n_configs, n_epochs), np.nan)
    for c in range(n_configs):
        for e in range(n_epochs):
            seen = curves[observed[:, c, e], c, e]
            if seen.size > 1:
                variance[c, e] = np.var(seen, ddof=1)
    pooled = np.nanmean(variance, axis=0)
    n = observed.sum(axis=0)
    return np.sqrt(((n - 1) * variance + pseudo_tasks * pooled) / (n - 1 + pseudo_tasks))


def test_spread_is_the_sample_std_over_the_tasks_that_observed_each_cell():
    curves, observed = _partial_prior()
    observed[:, 0, 0] = [True] + [False] * (len(observed) - 1)  # one task saw this cell
    observed[:, 0, 1] = False  # none did
    curves = np.where(observed, curves, np.nan)
    count = observed.sum(axis=0)
    assert (count < 2).any() and (count > 2).any()  # both cases are exercised
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanstd of < 2 values
        plain = np.nanstd(curves, axis=0, ddof=1)
    unshrunk = spread_over_tasks(curves, observed, pseudo_tasks=0.0)
    np.testing.assert_allclose(unshrunk[count > 1], plain[count > 1])
    shrunk = spread_over_tasks(curves, observed)
    np.testing.assert_allclose(shrunk[count > 1],
                               _hand_spread(curves, observed, PSEUDO_TASKS)[count > 1])
    assert np.isnan(shrunk[count < 2]).all() and np.isnan(unshrunk[count < 2]).all()
    assert not np.allclose(shrunk[count > 1], unshrunk[count > 1])


def test_error_scale_is_the_rms_held_out_error_in_units_of_the_others_spread():
    curves, observed = _partial_prior(seed=1)
    squares = []
    for task in range(curves.shape[0]):
        others = [t for t in range(curves.shape[0]) if t != task]
        mean = np.nanmean(np.where(observed[others], curves[others], np.nan), axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            std = _hand_spread(curves[others], observed[others], PSEUDO_TASKS)
        usable = observed[task] & (observed[others].sum(axis=0) >= 2)
        slope, offset = np.polyfit(mean[usable], curves[task][usable], 1)
        errors = curves[task][usable] - offset - slope * mean[usable]
        squares.extend((errors / (abs(slope) * std[usable])) ** 2)
    expected = np.sqrt(np.mean(squares))
    assert expected > 1.0  # the clamp does not act
    assert spread_error_scale(curves, observed) == pytest.approx(expected)
    assert spread_error_scale(3.0 * curves - 1.0, observed) == pytest.approx(expected)


def test_error_scale_is_at_least_one_and_one_without_three_tasks():
    rng = np.random.default_rng(2)
    base = rng.normal(size=(6, 4))
    copies = np.stack([a * base + b for a, b in [(1.0, 0.0), (2.0, 1.0), (0.5, -1.0), (3, 2)]])
    observed = np.ones(copies.shape, dtype=bool)
    assert spread_error_scale(copies, observed) == 1.0  # affine copies: no held-out error
    curves, observed = _partial_prior(seed=3, tasks=2)
    assert spread_error_scale(curves, observed) == 1.0
