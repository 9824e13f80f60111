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
from at2_tune.core.models import GPCurveModel, ResidualCorrected
from at2_tune.core.prior import copula_average, copula_imputed_average
from at2_tune.core.settings import ModelSettings, PolicySettings
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
    assert query.epoch == 1
    assert query.candidate == engine.recommend() == favourite == 34  # CIFAR10 + SUN397SUB1's pick


def _with_policy(settings, name, **knobs):
    return dataclasses.replace(settings, policy=PolicySettings(name, **knobs))


def test_the_paper_orders_by_the_ucb_of_the_next_epoch_on_the_gp(two_task_prior, fast_settings):
    engine = _conditioned(two_task_prior, _with_policy(fast_settings, "paper"), seed=0)
    engine.observe(3, 1, 0.4)
    engine.condition()
    open_ = engine.open_candidates()
    epochs = [engine.next_epoch(c) for c in open_]
    mean, std = engine.predict(open_, epochs)
    assert np.all(std > 0) and epochs[3] == 2
    expected = np.array(open_)[np.argsort(-(mean + 0.25 * std), kind="stable")]
    assert [q.candidate for q in engine.ranked_queries()] == expected.tolist()
    np.testing.assert_array_equal(engine.posterior().mean,  # no residual correction
                                  engine.surrogate.curve_posterior(engine.evidence().encodings).mean)
    # the paper recommends the best predicted configuration, observed or not
    assert engine.recommend() == int(np.argmax(engine.posterior().mean.max(axis=1)))


def test_no_prior_orders_by_the_improvement_per_epoch_on_the_new_tasks_own_gp(hyperrec,
                                                                             fast_settings,
                                                                             target_curves):
    from at2_tune.core.acquisition import ImprovementPerEpoch
    from at2_tune.core.models import NewTaskGPModel

    prior = PriorData.empty(hyperrec.configs, hyperrec.n_epochs)
    engine = _conditioned(prior, fast_settings, seed=0)
    assert isinstance(engine.posterior_source, NewTaskGPModel) and not engine.needs_gp()
    engine.plan(budget_epochs=30, concurrency=1)
    observed = [(7, 1), (7, 2), (7, 3), (40, 1), (81, 1)]
    for candidate, epoch in observed:
        engine.observe(candidate, epoch, float(target_curves[candidate, epoch - 1]))
    engine.condition()
    posterior = engine.posterior()
    assert posterior.mean.shape == (100, 75) and np.all(posterior.std > 0)
    best = max(float(target_curves[c, e - 1]) for c, e in observed)
    situation = engine.situation()
    assert situation.best_observed == pytest.approx(float(engine.surrogate.transform.warp(best)))
    scores = ImprovementPerEpoch(situation.best_observed, 30 - 5)(posterior, situation.open,
                                                                 situation.next_epochs)
    expected = situation.open[np.argsort(-scores, kind="stable")]
    assert [q.candidate for q in engine.ranked_queries()] == expected.tolist()
    assert engine.recommend() == max(observed, key=lambda o: target_curves[o[0], o[1] - 1])[0]


def test_the_new_task_gp_fits_at_3_6_12_24_then_every_20_observations():
    from at2_tune.core.models import NewTaskGPModel

    assert NewTaskGPModel.fit_points(70) == [3, 6, 12, 24, 44, 64]
    assert NewTaskGPModel.fit_points(2) == []


def test_a_restored_no_prior_engine_replays_its_fits_and_decides_the_same(hyperrec,
                                                                         fast_settings,
                                                                         target_curves):
    prior = PriorData.empty(hyperrec.configs, hyperrec.n_epochs)
    engine = _conditioned(prior, fast_settings, seed=2)
    engine.plan(budget_epochs=40, concurrency=1)
    _run_queries(engine, target_curves, 14)  # fits at 3, 6 and 12 observations
    engine.condition()
    state = engine.state_dict()
    restored = AT2Engine(HYPERREC_SPACE, prior, fast_settings, seed=2)
    restored.load_state_dict(state)
    np.testing.assert_array_equal(restored.posterior().mean, engine.posterior().mean)
    np.testing.assert_array_equal(restored.posterior().std, engine.posterior().std)
    assert restored.policy.planned_for == (40, 1)
    assert _run_queries(restored, target_curves, 6) == _run_queries(engine, target_curves, 6)
    # observations recorded but not conditioned on (a state saved mid-batch): the restored
    # engine fits at the same points (21 to 23 are not fit points; 24 is)
    for candidate in (90, 91, 92, 93):
        epoch = engine.next_epoch(candidate)
        engine.observe(candidate, epoch, float(target_curves[candidate, epoch - 1]))
    late = AT2Engine(HYPERREC_SPACE, prior, fast_settings, seed=2)
    late.load_state_dict(engine.state_dict())
    engine.condition()
    late.condition()
    assert engine.posterior_source.fitted_at == late.posterior_source.fitted_at == 24
    np.testing.assert_array_equal(late.posterior().mean, engine.posterior().mean)


def test_queries_refuse_a_model_that_has_not_seen_every_observation(two_task_prior,
                                                                    frozen_settings,
                                                                    target_curves):
    engine = _conditioned(two_task_prior, frozen_settings, seed=0)
    # nothing observed yet: the best predicted curve of all candidates
    assert engine.recommend() == int(np.argmax(engine.posterior().mean.max(axis=1)))
    for candidate in (5, 9):
        engine.observe(candidate, 1, float(target_curves[candidate, 0]))
    with pytest.raises(AT2Error, match=r"call engine.condition\(\) after observe"):
        engine.recommend()  # queries never train: the model has not seen 5 and 9 yet
    engine.condition()
    assert engine.recommend() == (5 if target_curves[5, 0] >= target_curves[9, 0] else 9)


@pytest.mark.parametrize("kind, field, value", [(PolicySettings, "name", "ei"),
                                                (ModelSettings, "output_warp", "log")])
def test_unknown_setting_choice_is_a_clear_error(kind, field, value):
    with pytest.raises(ValueError, match=f"{field}={value!r} is not one of"):
        kind(**{field: value})


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


def test_candidates_off_the_grid_get_the_copula_average_of_the_gps_prior_curves(
        two_task_prior, frozen_settings):
    engine = AT2Engine(HYPERREC_SPACE, two_task_prior, frozen_settings, seed=0)
    assert not engine.needs_gp()  # the grid alone: the prior tasks decide
    new = engine.add_candidates(HYPERREC_SPACE.sample_many(np.random.default_rng(0), 3))
    # the samples wait behind the grid's leaders: their posterior is not read, nothing is fitted
    assert new == [100, 101, 102] and not engine.needs_gp()
    engine.condition()
    assert not engine.surrogate.fitted and np.isnan(engine.posterior().mean[100:]).all()
    assert not np.isnan(engine.posterior().mean[:100]).any()
    with pytest.raises(AT2Error, match=r"candidates \[100, 102\] have no posterior yet"):
        engine.predict([100, 5, 102], [1, 1, 1])
    engine.observe(101, 1, 0.2)  # no matched cell: only the GP data grows
    assert engine.needs_gp()  # an observed sample: residual correction reads its curve
    engine.condition()
    assert engine.surrogate.fitted
    per_task = engine.surrogate.prior_task_means(engine.evidence().encodings)  # (2, 103, 75)
    imputed = copula_imputed_average(per_task, engine.prior.curves, engine.prior.observed)
    grid, _ = copula_average(engine.prior.curves, engine.prior.observed)
    transform = engine.surrogate.transform
    mean = engine.posterior().mean
    np.testing.assert_allclose(mean[[100, 102]], transform.mean_from_model(imputed[[100, 102]]))
    np.testing.assert_allclose(mean[:100], transform.mean_from_model(grid))
    # the samples wait while at least `leaders` grid configurations are open
    order = [q.candidate for q in engine.ranked_queries()]
    assert set(order[-3:]) == {100, 101, 102}


def test_standardized_prior_gives_every_task_the_same_mean_and_spread(two_task_prior):
    standardized = two_task_prior.standardized()
    flat = standardized.curves.reshape(standardized.n_tasks, -1)
    raw = two_task_prior.curves.reshape(two_task_prior.n_tasks, -1)
    np.testing.assert_allclose(flat.std(axis=1), raw.std(axis=1).mean())
    np.testing.assert_allclose(flat.mean(axis=1), raw.mean(axis=1).mean())
    order = np.argsort(raw, axis=1)
    assert np.array_equal(np.argsort(flat, axis=1), order)  # ranks within a task are kept


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


def test_the_transfer_mean_is_the_prior_tasks_copula_average_residual_corrected(
        two_task_prior, frozen_settings, target_curves):
    settings = _with_policy(frozen_settings, "leaders", residual_min_epochs=1)
    engine = _conditioned(two_task_prior, settings, seed=0)
    average, count = copula_average(engine.prior.curves, engine.prior.observed)
    assert (count == 2).all()
    np.testing.assert_allclose(engine.posterior().mean,
                               engine.surrogate.transform.mean_from_model(average))
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


def test_auto_policy_is_the_planner_with_a_prior_and_no_prior_without(two_task_prior,
                                                                       frozen_settings):
    assert frozen_settings.policy.name == "auto"
    with_prior = _conditioned(two_task_prior, frozen_settings)
    unplanned = with_prior.policy.unplanned  # how it decides before it knows the budget
    assert (with_prior.policy.name, unplanned.name, unplanned.k, unplanned.decay) == \
        ("planned", "leaders", 4, 0.5)
    plan = with_prior.plan(budget_epochs=20, concurrency=2)
    assert (plan.budget, plan.concurrency, plan.n_tasks) == (20, 2, 2)
    assert with_prior.policy.current_plan is plan
    without = _conditioned(PriorData.empty(two_task_prior.configs[:10], 75), frozen_settings)
    assert without.policy.name == "no_prior" and without.policy.decides_on == "new_task_gp"


def test_identity_tells_custom_spaces_apart_and_ignores_policy_settings(fast_settings):
    from at2_tune.core.offline_cache import FitCache
    from search_spaces import Float, SearchSpace

    configs = [{"x": 0.1}, {"x": 0.7}]
    narrow, wide = (SearchSpace("custom", [Float("x", 0.0, high)]) for high in (1.0, 2.0))
    first = AT2Engine(narrow, PriorData.empty(configs, 4), fast_settings)
    assert first.identity()["seed"] == 0 and len(first.identity_key()) == 24
    other_space = AT2Engine(wide, PriorData.empty(configs, 4), fast_settings)
    assert other_space.identity()["space"] != first.identity()["space"]  # both are named "custom"
    online = _with_policy(fast_settings, "paper", beta=3.0, leaders=2)
    assert AT2Engine(narrow, PriorData.empty(configs, 4), online).identity_key() == first.identity_key()
    offline = dataclasses.replace(fast_settings, model=dataclasses.replace(
        fast_settings.model, hidden_dim=fast_settings.model.hidden_dim + 1))
    assert AT2Engine(narrow, PriorData.empty(configs, 4), offline).identity_key() != first.identity_key()
    with pytest.raises(AT2Error, match="different tuning run; these differ: the search space"):
        other_space.load_state_dict(first.state_dict())
    assert FitCache.coerce(None) is None and FitCache.coerce("d") == FitCache(Path("d"))
    with pytest.raises(TypeError, match="pass None .no cache."):
        FitCache.coerce(True)


def test_repeated_candidates_are_refused(two_task_prior, fast_settings):
    grid = list(two_task_prior.configs)
    with pytest.raises(AT2Error, match="is given more than once"):
        AT2Engine(HYPERREC_SPACE, two_task_prior, fast_settings, candidates=grid + grid[3:4])
    engine = AT2Engine(HYPERREC_SPACE, two_task_prior, fast_settings, candidates=grid[:5])
    with pytest.raises(AT2Error, match="is given more than once"):
        engine.add_candidates([grid[7], grid[2]])
    assert engine.n_candidates == 5  # nothing was added
    assert engine.add_candidates([grid[7]]) == [5]


def test_observed_curves_are_corrected_with_the_fixed_kernel_and_the_priors_noise(
        toy, frozen_settings):
    space, prior, target = toy
    engine = AT2Engine(space, prior, frozen_settings, seed=0)
    for epoch in (1, 2):
        engine.observe(4, epoch, float(target[4, epoch - 1]))
    engine.condition()
    covariance = residual.prior_residual_covariance(engine.prior.curves, engine.prior.observed)
    kernel = residual.fixed_kernel_with_prior_noise(covariance)
    assert isinstance(engine.posterior_source, ResidualCorrected)
    np.testing.assert_allclose(engine.posterior_source.kernel.signal, kernel.signal)
    np.testing.assert_allclose(engine.posterior_source.kernel.noise, kernel.noise)
    assert kernel.noise.min() >= residual.NOISE_SHARE
    uncorrected = engine.posterior_source.base.posterior()
    values = engine.surrogate.transform.warp(target[4, :2])
    expected = residual.correct_observed(uncorrected, np.array([4, 4]), np.array([1, 2]),
                                         values, kernel, min_epochs=2)
    np.testing.assert_allclose(engine.posterior().mean, expected.mean)
    np.testing.assert_allclose(engine.posterior().std, expected.std)
    assert not np.allclose(engine.posterior().mean[4], uncorrected.mean[4])
    np.testing.assert_array_equal(engine.posterior().mean[5], uncorrected.mean[5])  # unobserved


def test_prior_spread_std_is_the_widened_spread_of_the_prior_tasks(hyperrec, frozen_settings,
                                                                   target_curves, tmp_path):
    from at2_tune.core.offline_cache import FitCache, prepare_engine

    prior = PriorData.from_database(hyperrec, ["CIFAR10", "SUN397SUB1", "SOP", "AWA2"], 0)
    settings = dataclasses.replace(frozen_settings, model=dataclasses.replace(
        frozen_settings.model, offline_epochs=1))  # the GP only compares
    engine, cache = AT2Engine(HYPERREC_SPACE, prior, settings), FitCache(tmp_path)
    assert prepare_engine(engine, cache) == "not needed" and not engine.surrogate.fitted
    spread = spread_over_tasks(engine.prior.curves, engine.prior.observed)  # model's scale
    error_scale = engine.posterior_source.base.spread[1]
    assert error_scale == spread_error_scale(engine.prior.curves, engine.prior.observed)
    assert 1.05 < error_scale < 2.0  # measured on the four tasks, not the clamp
    # before the first observation the map is the identity, and the new task's level and spread
    # are unknown: those of a prior task drawn at random (by hand, from the warped prior)
    posterior = engine.posterior()
    flat = engine.surrogate.transform.warp(prior.curves).reshape(4, -1)
    levels, spreads = flat.mean(axis=1), flat.std(axis=1) / flat.std(axis=1).mean()
    shift = posterior.mean[..., None] - levels.mean()
    expected = np.sqrt(np.mean((levels - levels.mean() + (spreads - 1) * shift) ** 2, axis=-1)
                       * 5 / 3 + np.mean(spreads ** 2) * (error_scale * spread) ** 2)
    np.testing.assert_allclose(posterior.std, expected, rtol=1e-10)
    assert (posterior.std > error_scale * spread).all()
    queries = _run_queries(engine, target_curves, 6)
    engine.condition()
    counts = np.bincount([c for c, _ in queries], minlength=100)
    corrected = np.flatnonzero(counts >= 2)  # two epochs or more (residual_min_epochs)
    others = np.flatnonzero(counts < 2)  # one epoch: not corrected
    assert len(corrected) >= 1 and (counts[others] == 1).any()
    target = engine.surrogate.transform.target
    scale = abs(target.scale)
    assert scale != pytest.approx(1.0)
    posterior = engine.posterior()
    std = posterior.std
    # the spread on the new task's scale, and the fitted map's own uncertainty at the mean
    model_mean = (posterior.mean - target.offset) / target.scale
    transfer_std = np.sqrt((scale * error_scale * spread) ** 2 + target.map_variance(model_mean))
    assert target.level_variance > 0 and target.scale_variance > 0
    np.testing.assert_allclose(std[others], transfer_std[others])
    assert (std[corrected] < np.sqrt((scale * error_scale * spread[corrected]) ** 2
                                     + target.map_variance(model_mean[corrected]))).all()
    engine.fit_offline()  # the GP, conditioned on the same observations, for comparison
    gp = ResidualCorrected(GPCurveModel(engine.surrogate), engine.surrogate, 2)
    gp.condition(engine.evidence())
    assert np.median(gp.posterior().std[others] / std[others]) < 0.8  # the GP's are narrower


@pytest.mark.parametrize("concurrency", [1, 4])
def test_deferring_the_gp_for_waiting_samples_changes_no_decision(two_task_prior, frozen_settings,
                                                                  target_curves, concurrency):
    """Samples off the grid next to the grid (``at2-tune tune``'s candidates): the engine that
    leaves their posterior uncomputed decides exactly as one with the GP fitted and conditioned
    on every candidate from the start."""
    from at2_tune.core.coordinator import Coordinator
    from at2_tune.simulator import simulate

    samples = HYPERREC_SPACE.sample_many(np.random.default_rng(3), 10)
    curves = np.concatenate([target_curves, target_curves[:10]])  # never read if never trained
    traces = []
    for deferred in (True, False):
        engine = AT2Engine(HYPERREC_SPACE, two_task_prior, frozen_settings, seed=0,
                           candidates=list(two_task_prior.configs) + samples)
        if not deferred:
            engine.policy.posterior_scope = lambda situation: None  # every candidate, always
        assert engine.needs_gp() is not deferred
        coordinator = Coordinator(engine, budget_epochs=24, max_concurrent=concurrency,
                                  track_recommendations=True)
        simulate(coordinator, curves, concurrency, seed=0)
        assert engine.surrogate.fitted is not deferred
        traces.append([(r.candidate, r.epoch, r.value, r.recommended) for r in coordinator.trace])
    assert len(traces[0]) == 24 and traces[0] == traces[1]
    assert all(candidate < 100 for candidate, *_ in traces[0])


def test_the_gp_is_built_only_when_a_candidate_needs_it(hyperrec, frozen_settings, target_curves):
    """Three full-grid prior tasks cover every candidate: the default policy reads the prior
    tasks alone (hyperparameters frozen online, the default) and the GPyTorch model is never
    built, nor saved; the state restores to the
    same queries. Built later, the model is the one built at once (same draws); a policy on
    the GP builds it."""
    prior = PriorData.from_database(hyperrec, ["CIFAR10", "SUN397SUB1", "CARS196"], 0)
    engine = AT2Engine(HYPERREC_SPACE, prior, frozen_settings, seed=1)
    _run_queries(engine, target_curves, 4)
    assert not engine.surrogate.built
    buffer = io.BytesIO()
    torch.save(engine.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert state["surrogate"]["model"] is None
    restored = AT2Engine(HYPERREC_SPACE, prior, frozen_settings, seed=1)
    restored.load_state_dict(state)
    assert _run_queries(restored, target_curves, 3) == _run_queries(engine, target_curves, 3)
    assert not restored.surrogate.built and not engine.surrogate.built

    at_once = AT2Engine(HYPERREC_SPACE, prior, frozen_settings, seed=1).surrogate.model
    later = engine.surrogate.model  # built after 7 queries
    assert engine.surrogate.built
    for name, value in at_once.state_dict().items():
        assert torch.equal(value, later.state_dict()[name]), name

    on_gp = dataclasses.replace(frozen_settings,
                                policy=dataclasses.replace(frozen_settings.policy, name="paper"))
    paper = _conditioned(prior, on_gp, seed=1)
    assert paper.surrogate.built and paper.surrogate.fitted
