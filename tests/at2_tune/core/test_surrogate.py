"""The surrogate on the synthetic prior: cached exact conditioning, fast posterior, pure queries."""

import dataclasses

import numpy as np
import pytest
import torch

from at2_tune.core.engine import AT2Engine
from at2_tune.core.settings import PolicySettings
from at2_tune.errors import AT2Error
from at2_tune.model.exact import set_optimal_variational_distribution


def _observe(engine, target, pairs):
    for candidate, epoch in pairs:
        engine.observe(candidate, epoch, float(target[candidate, epoch - 1]))


@pytest.fixture
def conditioned(toy, frozen_settings):
    space, prior, target = toy  # the GP's own posterior (under the default the prior decides)
    settings = dataclasses.replace(frozen_settings, policy=PolicySettings("paper"))
    engine = AT2Engine(space, prior, settings, seed=0)
    _observe(engine, target, [(3, 1), (3, 2), (7, 1), (12, 1), (12, 2), (12, 3)])
    engine.condition()
    return engine


def test_cached_prior_summary_gives_the_same_q_u_as_all_rows(conditioned):
    surrogate = conditioned.surrogate
    strategy = surrogate.model.variational_strategy.variational_distribution
    cached_mean = strategy.mean.detach().clone()
    cached_constant = float(surrogate.model.mean_module.constants[surrogate.target_task].detach())
    evidence = conditioned.evidence()
    epochs, values = torch.as_tensor(evidence.epochs, dtype=torch.float64), evidence.values
    target_x = surrogate.rows(evidence.encodings[evidence.candidates], surrogate.target_task,
                              epochs)
    target_y = torch.as_tensor(surrogate.transform.target_to_model(values))
    prior_x, prior_y = surrogate._prior_rows()
    constants = surrogate.model.mean_module.constants
    with torch.no_grad():
        constants[surrogate.target_task] = constants[: surrogate.target_task].mean()
    set_optimal_variational_distribution(surrogate.model, surrogate.likelihood,
                                         torch.cat([prior_x, target_x]), torch.cat([prior_y, target_y]),
                                         offset_task=surrogate.target_task)
    torch.testing.assert_close(strategy.mean.detach(), cached_mean, rtol=1e-6, atol=1e-6)
    assert float(constants[surrogate.target_task].detach()) == pytest.approx(cached_constant,
                                                                             abs=1e-8)


def test_fast_curve_posterior_matches_gpytorch(conditioned):
    surrogate = conditioned.surrogate
    encodings = conditioned.evidence().encodings[:5]
    posterior = surrogate.curve_posterior(encodings)
    np.testing.assert_allclose(posterior.mean, conditioned.posterior().mean[:5],  # the paper's
                               rtol=1e-12)
    epochs = torch.arange(1, surrogate.n_epochs + 1, dtype=torch.float64).repeat(5)
    rows = surrogate.rows(encodings.repeat_interleave(surrogate.n_epochs, 0),
                          surrogate.target_task, epochs)
    surrogate.model.eval()
    with torch.no_grad():
        reference = surrogate.model(rows)
    transform = surrogate.transform
    mean = transform.mean_from_model(reference.mean.numpy()).reshape(5, -1)
    variance = (transform.std_from_model(reference.variance.sqrt().numpy()) ** 2).reshape(5, -1)
    np.testing.assert_allclose(posterior.mean, mean, rtol=1e-9, atol=1e-9)
    # GPyTorch clamps tiny variances to 1e-6 (its min_variance setting); the rest agrees
    np.testing.assert_allclose(posterior.std ** 2, variance, atol=2e-6 * transform.target.scale ** 2)


def test_queries_do_not_train_and_refuse_a_stale_model(conditioned, toy):
    _, _, target = toy
    before = conditioned.posterior()
    for _ in range(3):
        conditioned.ranked_queries()
        conditioned.recommend()
        conditioned.predict([0, 1], [1, 1])
    conditioned.condition()  # nothing new: a no-op
    after = conditioned.posterior()
    np.testing.assert_array_equal(before.mean, after.mean)
    np.testing.assert_array_equal(before.std, after.std)
    conditioned.observe(20, 1, float(target[20, 0]))
    with pytest.raises(AT2Error, match="call engine.condition"):
        conditioned.next_query()
    conditioned.condition()
    assert not np.array_equal(conditioned.posterior().mean, before.mean)


def test_conditioning_pulls_the_observed_curve_to_its_values(toy, frozen_settings):
    space, prior, target = toy
    engine = AT2Engine(space, prior, frozen_settings, seed=0)
    engine.condition()
    before = engine.posterior().mean[5, :4].copy()
    _observe(engine, target, [(5, e) for e in range(1, 5)])
    engine.condition()
    warped = engine.surrogate.transform.warp(target[5, :4])
    after = engine.posterior().mean[5, :4]
    assert np.abs(after - warped).max() < 0.5 * np.abs(before - warped).max()


def test_default_policy_finds_a_top_configuration_of_the_toy_task(toy, frozen_settings):
    space, prior, target = toy
    engine = AT2Engine(space, prior, frozen_settings, seed=0)
    for _ in range(30):
        engine.condition()
        query = engine.next_query()
        engine.observe(query.candidate, query.epoch, float(target[query.candidate, query.epoch - 1]))
    engine.condition()
    final = target.max(axis=1)
    rank = int((final > final[engine.recommend()]).sum())
    assert rank <= 2, rank


def test_under_the_default_the_gp_is_not_conditioned_and_decisions_are_the_same(
        toy, frozen_settings):
    """With the prior tasks' average and spread deciding alone, conditioning skips the GP's
    exact update; the posterior equals the one computed with a conditioned GP."""
    space, prior, target = toy
    lazy = AT2Engine(space, prior, frozen_settings, seed=0)
    eager = AT2Engine(space, prior, frozen_settings, seed=0)
    eager.posterior_source.base._covers = (tuple(eager._candidate_cell), False)  # force the GP path
    for engine in (lazy, eager):
        _observe(engine, target, [(3, 1), (3, 2), (7, 1), (12, 1), (12, 2), (12, 3)])
        engine.condition()
    assert not lazy.needs_gp() and eager.needs_gp()
    assert not lazy.surrogate.fitted and eager.surrogate.fitted
    strategy = lazy.surrogate.model.variational_strategy.variational_distribution
    assert not torch.equal(strategy.mean.detach(), eager.surrogate.model.variational_strategy
                           .variational_distribution.mean.detach())  # q(u) left as built
    np.testing.assert_allclose(lazy.posterior().mean, eager.posterior().mean, rtol=1e-12)
    np.testing.assert_allclose(lazy.posterior().std, eager.posterior().std, rtol=1e-12)
    assert [q.candidate for q in lazy.ranked_queries()] == \
        [q.candidate for q in eager.ranked_queries()]
    (sample,) = lazy.add_candidates([space.sample(np.random.default_rng(5))])  # off the grid
    assert not lazy.needs_gp()  # it waits behind the grid's leaders: nothing reads it
    lazy.observe(sample, 1, float(target[0, 0]))
    assert lazy.needs_gp()  # observed: residual correction reads its curve, the GP gives it
