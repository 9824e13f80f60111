"""The budget planner on hand-made priors, and the planned policy through the coordinator."""

import numpy as np
import pytest

from at2_tune.core.coordinator import Coordinator
from at2_tune.core.planner import (FAMILY, Plan, PlannedSchedule, Schedule, carried_forward,
                                   completed, plan_schedule, prior_order, replay_schedule,
                                   schedule_regrets)
from at2_tune.core.schedules import ModelFreeCore
from at2_tune.core.simulation import simulate
from at2_tune.errors import AT2Error

N_TASKS, N_CONFIGS, N_EPOCHS = 8, 30, 10


def _early_orders_final(seed: int = 0) -> np.ndarray:
    """Tasks that disagree on the best configuration, and curves whose first epoch already
    orders the final values (70% of the final at epoch 1, then saturating): breadth pays."""
    rng = np.random.default_rng(seed)
    finals = rng.uniform(size=(N_TASKS, N_CONFIGS))
    shape = 1.0 - 0.3 * 0.5 ** np.arange(N_EPOCHS)
    return finals[:, :, None] * shape[None, None, :]


def _cross_late(seed: int = 0) -> np.ndarray:
    """Tasks that agree on the best configurations, whose curves start slowest and cross the
    others late (value = final * (e / E) ** p with p rising with the final): depth pays."""
    rng = np.random.default_rng(seed)
    quality = np.linspace(0.0, 1.0, N_CONFIGS)
    finals = 0.5 + 0.5 * quality[None, :] + 0.02 * rng.standard_normal((N_TASKS, N_CONFIGS))
    power = 0.2 + 3.0 * quality
    fraction = (np.arange(1, N_EPOCHS + 1) / N_EPOCHS)[None, :] ** power[:, None]
    return finals[:, :, None] * fraction[None, :, :]


def _rising_together(seed: int = 0) -> np.ndarray:
    """Tasks that agree, every curve rising linearly to its final value."""
    rng = np.random.default_rng(seed)
    finals = np.linspace(0.2, 1.0, N_CONFIGS)[None, :] + \
        0.05 * rng.standard_normal((N_TASKS, N_CONFIGS))
    return finals[:, :, None] * (np.arange(1, N_EPOCHS + 1) / N_EPOCHS)[None, None, :]


def _configs_trained(schedule: Schedule, curves: np.ndarray, budget: int,
                     concurrency: int = 1) -> set[int]:
    order = prior_order(curves[1:].max(axis=2))
    core = ModelFreeCore(schedule.policy(order, N_EPOCHS), [{}] * N_CONFIGS, N_EPOCHS)
    coordinator = Coordinator(core, budget_epochs=budget, max_concurrent=concurrency)
    simulate(coordinator, curves[0], concurrency)
    return {row.candidate for row in coordinator.trace}


def test_a_prior_whose_early_epochs_order_the_finals_picks_breadth():
    plan = plan_schedule(_early_orders_final(), budget=30)
    assert plan.chosen.n >= 4, plan.describe()
    assert plan.scores[0].regret < next(s.regret for s in plan.scores
                                        if s.schedule == Schedule("round_robin", 1))


def test_a_prior_whose_curves_cross_late_picks_depth():
    plan = plan_schedule(_cross_late(), budget=12)
    assert plan.chosen.kind in ("round_robin", "in_turn") and plan.chosen.n <= 2, plan.describe()
    halving = next(s for s in plan.scores if s.schedule == Schedule("halving", 9))
    assert halving.regret > plan.scores[0].regret + 0.05


def test_a_tiny_budget_trains_one_configuration():
    curves = _rising_together()
    plan = plan_schedule(curves, budget=3)
    assert plan.chosen == Schedule("round_robin", 1), plan.describe()
    assert len(_configs_trained(plan.chosen, curves, 3)) == 1


def test_the_objective_switch_scores_the_full_training_value():
    """Early epochs order the finals but the first epochs are far from them: the held model
    wants depth, a configuration to train again wants breadth."""
    rng = np.random.default_rng(3)
    finals = rng.uniform(size=(N_TASKS, N_CONFIGS))
    curves = finals[:, :, None] * (np.arange(1, N_EPOCHS + 1) / N_EPOCHS)[None, None, :]
    model = plan_schedule(curves, budget=10, objective="model")
    configuration = plan_schedule(curves, budget=10, objective="configuration")
    assert (model.objective, configuration.objective) == ("model", "configuration")
    assert model.chosen.n <= 2 < configuration.chosen.n, (model.describe(),
                                                         configuration.describe())
    with pytest.raises(AT2Error, match="objective='best'"):
        plan_schedule(curves, budget=10, objective="best")


def test_schedule_regrets_are_the_held_values_by_hand():
    curves = np.array([[[0.1, 0.2, 0.3], [0.5, 0.6, 0.9], [0.0, 0.0, 0.1]],
                       [[0.9, 0.9, 0.9], [0.2, 0.4, 0.5], [0.0, 0.1, 0.2]]])
    regrets, walls = schedule_regrets(curves, budget=2, concurrency=1,
                                      family=[Schedule("round_robin", 1),
                                              Schedule("round_robin", 2)])
    # task 0 as the new task: task 1 orders 0, 1, 2; top1 trains config 0 twice: held 0.2;
    # finals 0.3, 0.9, 0.1: regret (0.9 - 0.2) / 0.8. top2 sees 0.1 and 0.5: (0.9 - 0.5) / 0.8
    # task 1 as the new task: task 0 orders 1, 0, 2; top1 holds 0.4, top2 holds 0.9
    assert regrets == pytest.approx(np.array([[0.7 / 0.8, 0.5 / 0.7], [0.4 / 0.8, 0.0]]))
    assert walls.shape == (2, 2) and (walls > 0).all()
    configuration, _ = schedule_regrets(curves, budget=2, concurrency=1, objective="configuration",
                                        family=[Schedule("round_robin", 2)])
    # recommended: the best observed, config 1 on task 0 (final 0.9), config 0 on task 1 (0.9)
    assert configuration == pytest.approx(np.zeros((1, 2)))


def test_the_papers_objective_keeps_its_default_unless_a_schedule_is_clearly_better():
    from at2_tune.core.planner import kept_unless_clearly_beaten

    regrets = np.array([[0.10, 0.30, 0.20, 0.00],    # 0: the lowest mean (0.15), but noisy
                        [0.20, 0.20, 0.20, 0.20],    # 1: the default (0.20)
                        [0.10, 0.10, 0.12, 0.11]])   # 2: 0.1075, lower on every task
    # 2 beats the default by 0.0925 with a paired standard error of 0.005: it is taken
    assert kept_unless_clearly_beaten([2, 0, 1], regrets, default=1) == [2, 0, 1]
    # 0 beats it by 0.05 with a standard error of 0.065: the default is kept, the rest in order
    assert kept_unless_clearly_beaten([0, 2, 1], regrets, default=1) == [1, 0, 2]
    assert kept_unless_clearly_beaten([1, 0, 2], regrets, default=1) == [1, 0, 2]
    assert kept_unless_clearly_beaten([0, 1], regrets[:2, :1], default=1) == [1, 0]  # 1 task

def test_cut_curves_are_completed_by_the_full_curves_gains_and_untrained_ones_skipped():
    nan = np.nan
    assert np.array_equal(carried_forward(np.array([[nan, 0.2, nan, 0.4, nan]])),
                          np.array([[0.2, 0.2, 0.2, 0.4, 0.4]]))
    curves = np.array([[[0.5, nan, nan], [0.2, 0.3, 0.5], [nan, nan, nan]],
                       [[0.9, 0.95, 0.97], [0.1, 0.2, 0.25], [0.3, 0.4, nan]],
                       [[0.6, nan, nan], [0.4, 0.5, nan], [nan, nan, nan]]])
    filled = completed(curves)
    # the curves trained to the end: task 0's config 1, task 1's configs 0 and 1. From epoch
    # 1 they gain medians of (0.1, 0.05, 0.1) and (0.3, 0.07, 0.15); from epoch 2 of
    # (0.2, 0.02, 0.05). A curve cut after epoch 1 gains +0.1, +0.15; after epoch 2, +0.05
    assert filled[0, 0] == pytest.approx([0.5, 0.6, 0.65])
    assert filled[1, 2] == pytest.approx([0.3, 0.4, 0.45])
    assert filled[2, 0] == pytest.approx([0.6, 0.7, 0.75])
    assert filled[2, 1] == pytest.approx([0.4, 0.5, 0.55])
    assert np.isnan(filled[0, 2]).all()  # never trained: nothing to continue
    full = np.random.default_rng(0).random((2, 3, 4))
    assert np.array_equal(completed(full), full)  # a full grid is left as it is

    # task 0 as the new task: the other task orders 0, 1 (config 2, which task 0 never
    # trained, is skipped); task 0's completed finals 0.65 and 0.5. Depth pays: top1 trains
    # config 0 three epochs (held 0.65, regret 0); top2 gets 0.6 (regret 0.05 / 0.15), where
    # carried forward flat both held 0.5
    regrets, _ = schedule_regrets(curves[:2], budget=3, concurrency=1,
                                  family=[Schedule("round_robin", 1), Schedule("round_robin", 2)])
    assert regrets[:, 0] == pytest.approx([0.0, 0.05 / 0.15])
    # task 1 as the new task: task 0 orders 0, 1, then config 2 only task 1 trained; finals
    # 0.97, 0.25, 0.45: top1 0.97 (regret 0), top2 0.95 (config 0 two epochs, config 1 one)
    assert regrets[:, 1] == pytest.approx([0.0, 0.02 / 0.72])
    assert prior_order(np.array([[1.0, nan, 0.0], [nan, 0.5, 0.7]])).tolist() == [0, 2, 1]


def test_prior_order_is_the_mean_rank_of_the_final_values():
    scores = np.array([[0.9, 0.5, 0.7, 0.7], [0.2, 0.9, 0.8, 0.1]])
    # strictly better counts: task 0: 0, 3, 1, 1; task 1: 2, 0, 1, 3 (over 3): means 1, 1.5, 1, 2
    assert prior_order(scores).tolist() == [0, 2, 1, 3]


def test_cut_priors_are_planned_with_the_whole_family():
    # every task stopped configurations 5.. after 3 epochs, as a tuning history's early stopper
    cut = _early_orders_final()
    cut[:, 5:, 3:] = np.nan
    plan = plan_schedule(cut, budget=30)
    assert len(plan.scores) == len(FAMILY)
    assert plan.chosen.kind == "halving"  # the first epoch still orders the finals: breadth
    late = _cross_late()
    late[:, 5:, 3:] = np.nan
    assert plan_schedule(late, budget=30).chosen == Schedule("round_robin", 1)  # depth


def test_one_odd_prior_task_does_not_decide_the_plan():
    from at2_tune.core.planner import trimmed_mean

    values = np.array([[0.1] * 9 + [0.0], [0.08] * 9 + [1.0]])
    assert trimmed_mean(values).tolist() == pytest.approx([0.1, 0.08])  # without each end
    assert trimmed_mean(values[:, :9]).tolist() == pytest.approx([0.1, 0.08])  # < 10: the mean
    assert trimmed_mean(values, trim=0.0).tolist() == pytest.approx([0.09, 0.172])


def test_planning_needs_two_prior_tasks_and_a_budget():
    assert plan_schedule(_rising_together()[:1], budget=10) is None
    with pytest.raises(AT2Error, match="budget=0"):
        plan_schedule(_rising_together(), budget=0)
    with pytest.raises(AT2Error, match="kind must be one of"):
        Schedule("fastest", 2)


def test_more_slots_shorten_the_simulated_wall_time_of_the_same_schedule():
    curves = _early_orders_final()
    _, _, one = replay_schedule(Schedule("round_robin", 4), curves[0], list(range(N_CONFIGS)),
                                20, 1)
    _, _, four = replay_schedule(Schedule("round_robin", 4), curves[0], list(range(N_CONFIGS)),
                                 20, 4)
    assert four < one / 2
    plan = plan_schedule(curves, budget=20, concurrency=4)
    assert plan.concurrency == 4 and plan.scores[0].wall > 0


def test_the_planned_policy_carries_the_plan_out_and_restores_it():
    curves = _cross_late()
    prior = curves[1:]
    cells = [None] + list(range(N_CONFIGS))  # candidate 0 is off the grid
    policy = PlannedSchedule()
    plan = policy.plan(prior, cells, budget=10, concurrency=1)
    assert policy.plan(prior, cells, budget=10, concurrency=1) is plan  # once per budget
    favourite = int(prior_order(prior.max(axis=2))[0])
    assert isinstance(plan, Plan) and policy.ranking[0] == 1 + favourite
    core = ModelFreeCore(policy, [{}] * len(cells), N_EPOCHS)
    coordinator = Coordinator(core, budget_epochs=10, max_concurrent=1)
    target = np.vstack([np.zeros((1, N_EPOCHS)), curves[0]])
    simulate(coordinator, target, 1)
    trained = [row.candidate for row in coordinator.trace]
    expected = ModelFreeCore(plan.chosen.policy(policy.ranking, N_EPOCHS), [{}] * len(cells),
                             N_EPOCHS)
    reference = Coordinator(expected, budget_epochs=10, max_concurrent=1)
    simulate(reference, target, 1)
    assert trained == [row.candidate for row in reference.trace] and 0 not in trained

    restored = PlannedSchedule()
    for row in coordinator.trace:
        restored.observe(row.candidate, row.epoch, row.value)
    restored.load_state_dict(policy.state_dict())
    assert restored.current_plan.to_json() == plan.to_json()
    assert restored.recommend(None, list(range(len(cells)))) == \
        policy.recommend(None, list(range(len(cells))))
    with pytest.raises(AT2Error, match="objective 'model'"):
        PlannedSchedule(objective="configuration").load_state_dict(policy.state_dict())


def test_the_family_holds_the_schedules_the_issue_names():
    labels = {s.label for s in FAMILY}
    assert {f"top{n} round robin" for n in range(1, 7)} <= labels
    assert {"top2 in turn", "top3 in turn", "halving from top9", "top4 weighted"} <= labels


def test_a_plan_that_ends_under_the_budget_hands_the_rest_to_leaders(frozen_settings):
    """A prior of 3 configurations and 2 samples off its grid: no schedule can spend more than
    3 x E epochs; the rest of the budget goes where ``leaders`` sends it (the samples)."""
    import synthetic_prior as synthetic

    from at2_tune.core.engine import AT2Engine

    configs = synthetic.toy_configs(5)
    prior = synthetic.toy_prior(3, configs[:3])
    engine = AT2Engine(synthetic.TOY_SPACE, prior, frozen_settings, seed=0, candidates=configs)
    n_epochs = engine.n_epochs
    budget = 3 * n_epochs + 4
    coordinator = Coordinator(engine, budget_epochs=budget, max_concurrent=1)
    plan = coordinator.plan()
    assert engine.policy.name == "planned" and plan is not None
    schedule = ModelFreeCore(plan.chosen.policy(engine.policy.ranking, n_epochs),
                             [{}] * len(configs), n_epochs)
    alone = Coordinator(schedule, budget_epochs=budget, max_concurrent=1)
    target = synthetic.toy_target(configs)
    simulate(alone, target, 1)
    simulate(coordinator, target, 1)
    planned = [(r.candidate, r.epoch) for r in alone.trace]
    made = [(r.candidate, r.epoch) for r in coordinator.trace]
    assert made[: len(planned)] == planned  # the plan first, exactly
    assert len(planned) < budget and len(made) == budget  # leaders spends what the plan left
    assert {c for c, _ in made[len(planned):]} & {3, 4}  # the samples, once the grid is done


def test_the_plan_travels_in_the_engines_saved_state(frozen_settings):
    import synthetic_prior as synthetic

    from at2_tune.core.engine import AT2Engine

    configs = synthetic.toy_configs(8)
    prior = synthetic.toy_prior(3, configs)
    engine = AT2Engine(synthetic.TOY_SPACE, prior, frozen_settings, seed=0)
    coordinator = Coordinator(engine, budget_epochs=20, max_concurrent=2)
    simulate(coordinator, synthetic.toy_target(configs)[:, :], 2)
    restored = AT2Engine(synthetic.TOY_SPACE, prior, frozen_settings, seed=0)
    restored.load_state_dict(engine.state_dict())
    assert restored.policy.current_plan.to_json() == engine.policy.current_plan.to_json()
    assert restored.policy.planned_for == (20, 2)
    restored.condition()
    engine.condition()
    assert restored.ranked_queries() == engine.ranked_queries()
    assert restored.recommend() == engine.recommend()
