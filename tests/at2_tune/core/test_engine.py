import copy
import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
import torch

from at2_tune.core import residual
from at2_tune.core.engine import AT2Engine
from at2_tune.core.prior import PriorData
from at2_tune.core.settings import AT2Settings
from at2_tune.core.spread import spread_error_scale, spread_over_tasks
from at2_tune.errors import AT2Error
from search_spaces import HYPERREC_SPACE


def _run_queries(engine: AT2Engine, curves: np.ndarray, count: int) -> list[tuple[int, int]]:
    queries = []
    for _ in range(count):
        engine.condition()
        query = engine.next_query()
        engine.observe(query.candidate, query.epoch, float(curves[query.candidate, query.epoch - 1]))
        queries.append((query.candidate, query.epoch))
    return queries


def _conditioned(prior, settings, seed=0) -> AT2Engine:
    engine = AT2Engine(HYPERREC_SPACE, prior, settings, seed=seed)
    engine.condition()
    return engine


@pytest.fixture(scope="module")
def target_curves(hyperrec) -> np.ndarray:
    return hyperrec.task_curves("CIFAR100")


def test_cold_start_proposes_a_first_epoch_and_recommends(two_task_prior, fast_settings):
    engine = _conditioned(two_task_prior, fast_settings, seed=0)
    query = engine.next_query()
    favourite = int(np.argmax(engine.posterior().mean.max(axis=1)))  # best predicted curve
    assert query.epoch == 1 and np.isfinite(query.score)
    assert query.candidate == engine.recommend() == favourite == 34  # CIFAR10 + SUN397SUB1's pick


def test_next_epoch_score_is_the_ucb_of_that_epoch(two_task_prior, fast_settings):
    settings = dataclasses.replace(fast_settings, acquisition="next_epoch")
    engine = _conditioned(two_task_prior, settings, seed=0)
    candidates, epochs = [0, 1, 1, 7], [1, 1, 5, 75]
    mean, std = engine.predict(candidates, epochs)
    assert mean.shape == std.shape == (4,) and np.all(std > 0)
    np.testing.assert_allclose(engine.score(candidates, epochs), mean + 0.25 * std)


def test_best_future_score_is_the_best_ucb_from_the_next_epoch_on(two_task_prior, fast_settings):
    engine = _conditioned(two_task_prior, dataclasses.replace(fast_settings, acquisition="best_future"),
                          seed=0)
    candidates, epochs = [0, 1, 1, 7], [1, 1, 60, 75]
    expected = []
    for candidate, epoch in zip(candidates, epochs):
        later = np.arange(epoch, 76)
        mean, std = engine.predict([candidate] * later.size, later)
        expected.append(np.max(mean + 0.25 * std))
    np.testing.assert_allclose(engine.score(candidates, epochs), expected, rtol=1e-10)


def test_recommend_from_observed_candidates(two_task_prior, fast_settings, target_curves):
    settings = dataclasses.replace(fast_settings, recommend_from="observed")
    engine = _conditioned(two_task_prior, settings, seed=0)
    # nothing observed yet: the best predicted curve of all candidates
    assert engine.recommend() == int(np.argmax(engine.posterior().mean.max(axis=1)))
    for candidate in (5, 9):
        engine.observe(candidate, 1, float(target_curves[candidate, 0]))
    with pytest.raises(AT2Error, match=r"call engine.condition\(\) after observe"):
        engine.recommend()  # queries never train: the model has not seen 5 and 9 yet
    engine.condition()
    assert engine.recommend() in (5, 9)


@pytest.mark.parametrize("field, value", [("acquisition", "ei"), ("recommend_from", "best")])
def test_unknown_setting_choice_is_a_clear_error(field, value):
    with pytest.raises(ValueError, match=f"{field}={value!r} is not one of"):
        AT2Settings(**{field: value})


def test_no_prior_tasks_is_plain_multi_fidelity_bo(hyperrec, fast_settings, target_curves):
    prior = PriorData.empty(hyperrec.configs, hyperrec.n_epochs)
    engine = _conditioned(prior, fast_settings, seed=0)
    queries = _run_queries(engine, target_curves, 4)
    assert len(set(queries)) == 4 and all(1 <= e <= 75 for _, e in queries)
    engine.condition()
    best = max(queries, key=lambda q: target_curves[q[0], q[1] - 1])[0]
    assert engine.recommend() == best  # best observed value (the default recommendation)


def test_same_seed_same_queries(two_task_prior, fast_settings, target_curves):
    runs = [_run_queries(AT2Engine(HYPERREC_SPACE, two_task_prior, fast_settings, seed=3),
                         target_curves, 4) for _ in range(2)]
    assert runs[0] == runs[1]


def test_state_dict_round_trip_gives_identical_next_queries(two_task_prior, fast_settings, target_curves):
    engine = _conditioned(two_task_prior, fast_settings, seed=1)
    _run_queries(engine, target_curves, 3)
    engine.mark_failed(42)
    buffer = io.BytesIO()
    torch.save(engine.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    with pytest.raises(AT2Error, match=r"the seed \(saved 1, here 99\)"):
        AT2Engine(HYPERREC_SPACE, two_task_prior, fast_settings, seed=99).load_state_dict(state)
    restored = AT2Engine(HYPERREC_SPACE, two_task_prior, fast_settings, seed=1)
    restored.load_state_dict(state)
    assert restored.failed == {42} and len(restored.observations) == 3
    assert _run_queries(restored, target_curves, 3) == _run_queries(engine, target_curves, 3)


def test_freeze_thaw_continues_a_candidate_at_its_next_epoch(two_task_prior, fast_settings):
    engine = _conditioned(two_task_prior, fast_settings, seed=0)
    engine.observe(5, 1, 0.3)
    engine.observe(5, 2, 0.4)
    assert engine.next_epoch(5) == 3 and engine.next_epoch(6) == 1


@pytest.mark.parametrize("candidate, epoch, value, message", [
    (0, 1, float("nan"), "not finite"),
    (0, 1, float("inf"), "not finite"),
    (0, 0, 0.5, r"epoch 0 of candidate 0 is outside 1\.\.75"),
    (0, 76, 0.5, "outside 1..75"),
    (100, 1, 0.5, r"candidate 100 does not exist"),
    (0, 1, "high", "is not a number"),
])
def test_bad_observations_are_rejected(two_task_prior, fast_settings, candidate, epoch, value, message):
    engine = _conditioned(two_task_prior, fast_settings, seed=0)
    with pytest.raises(AT2Error, match=message):
        engine.observe(candidate, epoch, value)
    assert len(engine.observations) == 0


def test_repeated_observation_is_rejected_and_failed_candidates_are_skipped(two_task_prior, fast_settings):
    engine = _conditioned(two_task_prior, fast_settings, seed=0)
    engine.observe(3, 1, 0.5)
    with pytest.raises(AT2Error, match="already observed at epoch 1"):
        engine.observe(3, 1, 0.6)
    for candidate in range(99):
        engine.mark_failed(candidate)
    engine.condition()
    assert engine.next_query().candidate == 99
    assert engine.recommend() == 99


def test_new_candidates_outside_the_grid_can_be_scored(two_task_prior, fast_settings):
    engine = _conditioned(two_task_prior, fast_settings, seed=0)
    new = engine.add_candidates(HYPERREC_SPACE.sample_many(np.random.default_rng(0), 3))
    assert new == [100, 101, 102]
    engine.observe(101, 1, 0.2)  # no matched cell: only the GP data grows
    engine.condition()
    assert engine.score(new, [1, 2, 1]).shape == (3,)


def test_standardized_prior_gives_every_task_the_same_mean_and_spread(two_task_prior):
    standardized = two_task_prior.standardized()
    flat = standardized.curves.reshape(standardized.n_tasks, -1)
    raw = two_task_prior.curves.reshape(two_task_prior.n_tasks, -1)
    np.testing.assert_allclose(flat.std(axis=1), raw.std(axis=1).mean())
    np.testing.assert_allclose(flat.mean(axis=1), raw.mean(axis=1).mean())
    order = np.argsort(raw, axis=1)
    assert np.array_equal(np.argsort(flat, axis=1), order)  # ranks within a task are kept


def test_calibration_widens_the_uncertainty_of_a_surprised_model(two_task_prior, fast_settings, target_curves):
    # values off the [0, 1] range of accuracies: no output warp
    fast_settings = dataclasses.replace(fast_settings, output_warp="none")
    settings = dataclasses.replace(fast_settings, calibrate=True)
    engine = _conditioned(two_task_prior, settings, seed=0)
    assert engine.calibration() == 1.0
    for _ in range(3):
        query = engine.next_query()  # predicts the curves; the next observation is scored
        mean, _ = engine.predict([query.candidate], [query.epoch])
        engine.observe(query.candidate, query.epoch, float(mean[0]) + 0.5)  # far off
        engine.condition()
    factor = engine.calibration()
    assert factor > 1.0
    raw = AT2Engine(HYPERREC_SPACE, two_task_prior, fast_settings, seed=0)
    raw.load_state_dict({**engine.state_dict(), "settings": raw.settings.to_json()})
    np.testing.assert_allclose(engine.predict([0, 1], [3, 9])[1], raw.predict([0, 1], [3, 9])[1] * factor)
    buffer = io.BytesIO()
    torch.save(engine.state_dict(), buffer)
    buffer.seek(0)
    restored = AT2Engine(HYPERREC_SPACE, two_task_prior, settings, seed=0)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert restored.calibration() == factor


def test_engines_restored_from_one_state_do_not_share_optimizer_buffers(two_task_prior, fast_settings,
                                                                         target_curves):
    engine = _conditioned(two_task_prior, fast_settings, seed=0)
    _run_queries(engine, target_curves, 3)  # stale: conditioning takes optimizer steps
    state = copy.deepcopy(engine.state_dict())  # state_dict() holds the live tensors
    restored = [AT2Engine(HYPERREC_SPACE, two_task_prior, fast_settings, seed=0) for _ in range(2)]
    for each in [engine, *restored]:
        each.load_state_dict(state)
        each.condition()
    predictions = [e.predict([0, 1], [3, 9]) for e in [engine, *restored]]
    for mean, std in predictions[1:]:
        np.testing.assert_array_equal(mean, predictions[0][0])
        np.testing.assert_array_equal(std, predictions[0][1])


def test_thompson_draws_are_pure_per_decision_and_survive_a_restore(two_task_prior, frozen_settings,
                                                                    target_curves):
    settings = dataclasses.replace(frozen_settings, acquisition="thompson")
    engine = _conditioned(two_task_prior, settings, seed=3)
    candidates, epochs = list(range(100)), [1] * 100
    first = engine.score(candidates, epochs)
    np.testing.assert_array_equal(first, engine.score(candidates, epochs))  # scoring draws nothing new
    posterior = engine.posterior()
    draws = np.random.default_rng([3, 0]).standard_normal(100)
    np.testing.assert_allclose(first, (posterior.mean + draws[:, None] * posterior.std).max(axis=1))
    _run_queries(engine, target_curves, 2)
    engine.condition()
    restored = AT2Engine(HYPERREC_SPACE, two_task_prior, settings, seed=3)
    restored.load_state_dict(engine.state_dict())
    open_ = engine.open_candidates()
    next_epochs = [engine.next_epoch(c) for c in open_]
    second = engine.score(open_, next_epochs)
    assert not np.allclose(second, first[open_])  # new observations, new draws
    np.testing.assert_allclose(restored.score(open_, next_epochs), second)


def test_prior_average_mean_replaces_the_gp_mean_of_unobserved_grid_candidates(
        two_task_prior, frozen_settings, target_curves):
    settings = dataclasses.replace(frozen_settings, transfer_mean="prior_average",
                                   transfer_std="gp", residual_min_epochs=1)  # 3 one-epoch curves
    engine = _conditioned(two_task_prior, settings, seed=0)
    average = engine.prior.curves.mean(axis=0)  # (100, 75) on the model's scale
    np.testing.assert_allclose(engine.posterior().mean,
                               engine.surrogate.transform.mean_from_model(average))
    gp = _conditioned(two_task_prior, dataclasses.replace(settings, transfer_mean="gp"), seed=0)
    np.testing.assert_array_equal(engine.posterior().std, gp.posterior().std)  # the GP's stds
    assert not np.allclose(engine.posterior().mean, gp.posterior().mean)
    queries = _run_queries(engine, target_curves, 3)
    engine.condition()
    observed = {c for c, _ in queries}
    others = [c for c in range(100) if c not in observed]
    mapped = engine.surrogate.transform.mean_from_model(average)  # the map now fits the target
    np.testing.assert_allclose(engine.posterior().mean[others], mapped[others])
    for candidate, epoch in queries:  # residual correction pulls observed curves towards the data
        warped = engine.surrogate.transform.warp(target_curves[candidate, epoch - 1])
        assert abs(engine.posterior().mean[candidate, epoch - 1] - warped) < \
            abs(mapped[candidate, epoch - 1] - warped)


def test_auto_acquisition_is_the_leaders_round_robin_with_a_prior_and_best_future_ucb_without(
        two_task_prior, frozen_settings):
    from at2_tune.core import acquisition as acq

    assert frozen_settings.acquisition == "auto"
    with_prior = _conditioned(two_task_prior, frozen_settings)
    rule = with_prior.acquisition()
    assert isinstance(rule, acq.LeadersRoundRobin) and (rule.k, rule.decay) == (4, 0.5)
    without = _conditioned(PriorData.empty(two_task_prior.configs[:10], 75), frozen_settings)
    assert without.acquisition() == acq.BestFutureUCB(frozen_settings.beta)


def test_identity_tells_custom_spaces_apart_and_ignores_online_settings(fast_settings):
    from at2_tune.core.offline_cache import FitCache
    from search_spaces import Float, SearchSpace

    configs = [{"x": 0.1}, {"x": 0.7}]
    narrow, wide = (SearchSpace("custom", [Float("x", 0.0, high)]) for high in (1.0, 2.0))
    first = AT2Engine(narrow, PriorData.empty(configs, 4), fast_settings)
    assert first.identity()["seed"] == 0 and len(first.identity_key()) == 24
    other_space = AT2Engine(wide, PriorData.empty(configs, 4), fast_settings)
    assert other_space.identity()["space"] != first.identity()["space"]  # both are named "custom"
    online = dataclasses.replace(fast_settings, beta=3.0, acquisition="thompson", leaders=2)
    assert AT2Engine(narrow, PriorData.empty(configs, 4), online).identity_key() == first.identity_key()
    offline = dataclasses.replace(fast_settings, hidden_dim=fast_settings.hidden_dim + 1)
    assert AT2Engine(narrow, PriorData.empty(configs, 4), offline).identity_key() != first.identity_key()
    with pytest.raises(AT2Error, match="different tuning run; these differ: the search space"):
        other_space.load_state_dict(first.state_dict())
    assert FitCache.coerce(None) is None and FitCache.coerce("d") == FitCache(Path("d"))
    with pytest.raises(TypeError, match="pass None .no cache."):
        FitCache.coerce(True)


def test_online_only_settings_are_marked_on_their_fields():
    settings = AT2Settings()
    online = set(settings.to_json()) - set(settings.offline_json())
    assert online == {"beta", "acquisition", "recommend_from", "leaders", "leaders_decay",
                      "transfer_mean", "residual_correction", "online_update", "online_steps",
                      "online_epochs", "scale_target", "calibrate", "transfer_weights",
                      "similarity_temperature", "similarity_cells", "residual_kernel",
                      "transfer_std", "imputation_penalty",
                      "unobserved_candidates", "residual_min_epochs"}


def test_repeated_candidates_are_refused(two_task_prior, fast_settings):
    grid = list(two_task_prior.configs)
    with pytest.raises(AT2Error, match="is given more than once"):
        AT2Engine(HYPERREC_SPACE, two_task_prior, fast_settings, candidates=grid + grid[3:4])
    engine = AT2Engine(HYPERREC_SPACE, two_task_prior, fast_settings, candidates=grid[:5])
    with pytest.raises(AT2Error, match="is given more than once"):
        engine.add_candidates([grid[7], grid[2]])
    assert engine.n_candidates == 5  # nothing was added
    assert engine.add_candidates([grid[7]]) == [5]


def test_prior_residual_kernel_conditions_observed_curves_on_the_prior_covariance(
        toy, frozen_settings):
    space, prior, target = toy
    plain = dataclasses.replace(frozen_settings, residual_correction=False)
    settings = dataclasses.replace(frozen_settings, residual_kernel="prior")
    fixed = dataclasses.replace(frozen_settings, residual_kernel="fixed")
    engines = [AT2Engine(space, prior, s, seed=0) for s in (plain, settings, fixed)]
    for engine in engines:
        for epoch in (1, 2):
            engine.observe(4, epoch, float(target[4, epoch - 1]))
        engine.condition()
    uncorrected, prior_kernel, fixed_kernel = (e.posterior() for e in engines)
    covariance = residual.prior_residual_covariance(engines[1].prior.curves,
                                                    engines[1].prior.observed)
    np.testing.assert_allclose(engines[1].residual_kernel.signal, covariance)
    np.testing.assert_array_equal(engines[1].residual_kernel.noise, 0.0)
    assert engines[2].residual_kernel is None
    values = engines[1].surrogate.transform.warp(target[4, :2])
    expected = residual.correct_observed(uncorrected, np.array([4, 4]), np.array([1, 2]),
                                         values, engines[1].residual_kernel)
    np.testing.assert_allclose(prior_kernel.mean, expected.mean)
    np.testing.assert_allclose(prior_kernel.std, expected.std)
    assert not np.allclose(prior_kernel.mean[4], fixed_kernel.mean[4])
    np.testing.assert_array_equal(prior_kernel.mean[5], fixed_kernel.mean[5])  # unobserved


def test_the_default_residual_kernel_is_the_fixed_one_with_the_priors_noise(toy, frozen_settings):
    space, prior, _ = toy
    engine = AT2Engine(space, prior, frozen_settings, seed=0)
    assert frozen_settings.residual_kernel == "prior_noise"
    covariance = residual.prior_residual_covariance(engine.prior.curves, engine.prior.observed)
    expected = residual.fixed_kernel_with_prior_noise(covariance)
    np.testing.assert_allclose(engine.residual_kernel.signal, expected.signal)
    np.testing.assert_allclose(engine.residual_kernel.noise, expected.noise)
    assert expected.noise.min() >= residual.NOISE_SHARE


def test_prior_spread_std_is_the_widened_spread_of_the_prior_tasks(hyperrec, frozen_settings,
                                                                   target_curves, tmp_path):
    from at2_tune.core.offline_cache import FitCache, prepare_engine

    prior = PriorData.from_database(hyperrec, ["CIFAR10", "SUN397SUB1", "SOP", "AWA2"], 0)
    assert frozen_settings.transfer_std == "prior_spread"
    settings = dataclasses.replace(frozen_settings, offline_epochs=1)  # the GP only compares
    engine, cache = AT2Engine(HYPERREC_SPACE, prior, settings), FitCache(tmp_path)
    assert prepare_engine(engine, cache) is False and not engine.surrogate.fitted  # no GP needed
    cache.load_or_fit(engine)  # fitted all the same, so that the GP engine below shares it
    spread = spread_over_tasks(engine.prior.curves, engine.prior.observed)  # model's scale
    error_scale = engine.prior_spread[1]
    assert error_scale == spread_error_scale(engine.prior.curves, engine.prior.observed)
    assert 1.05 < error_scale < 2.0  # measured on the four tasks, not the clamp
    np.testing.assert_allclose(engine.posterior().std, error_scale * spread)  # identity map
    queries = _run_queries(engine, target_curves, 6)
    engine.condition()
    counts = np.bincount([c for c, _ in queries], minlength=100)
    corrected = np.flatnonzero(counts >= settings.residual_min_epochs)  # two epochs or more
    others = np.flatnonzero(counts < settings.residual_min_epochs)  # one epoch: not corrected
    assert len(corrected) >= 1 and (counts[others] == 1).any()
    scale = abs(engine.surrogate.transform.target.scale)
    assert scale != pytest.approx(1.0)
    std = engine.posterior().std
    np.testing.assert_allclose(std[others], scale * error_scale * spread[others])
    assert (std[corrected] < scale * error_scale * spread[corrected]).all()  # residuals narrow it
    gp = AT2Engine(HYPERREC_SPACE, prior, dataclasses.replace(settings, transfer_std="gp"))
    assert prepare_engine(gp, cache)  # the same offline fit, the same observations
    for candidate, epoch in queries:
        gp.observe(candidate, epoch, float(target_curves[candidate, epoch - 1]))
    gp.condition()
    np.testing.assert_array_equal(gp.posterior().mean, engine.posterior().mean)
    assert np.median(gp.posterior().std[others] / std[others]) < 0.8  # the GP's are narrower
