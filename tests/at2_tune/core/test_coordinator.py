"""The coordinator's decisions, without Ray: slot rules, budget, failures, epochs, save/restore.

The property tests drive a real engine (synthetic prior) through a random executor: results in
any order between running trials, failures, NaNs and save/restore at any point.
"""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import synthetic_prior as synthetic
from at2_tune.core.coordinator import (FINISHED, WAIT, Coordinator, Decision, Resume, Start,
                                       TrialEpochError, TrialStatus)
from at2_tune.core.engine import AT2Engine
from at2_tune.core.settings import PolicySettings
from at2_tune.errors import AT2Error

CONFIGS = synthetic.toy_configs()
PRIOR = synthetic.toy_prior(configs=CONFIGS)
TARGET = synthetic.toy_target(CONFIGS)


@pytest.fixture(scope="module")
def fitted_state(frozen_settings):
    engine = AT2Engine(synthetic.TOY_SPACE, PRIOR, frozen_settings, seed=0)
    engine.fit_offline()
    return engine.state_dict()


def _engine(state, settings) -> AT2Engine:
    engine = AT2Engine(synthetic.TOY_SPACE, PRIOR, settings, seed=0)
    engine.load_state_dict({**state, "settings": settings.to_json()})  # as FitCache does
    engine.condition()
    return engine


def _carry_out(coordinator: Coordinator, names: list[str]) -> list:
    """Start and resume until the coordinator has nothing more for a free slot."""
    done = []
    action = coordinator.next_action()
    while isinstance(action, (Start, Resume)):
        if isinstance(action, Start):
            name = f"t{len(coordinator.trials)}"
            coordinator.start(name, action)
            names.append(name)
        else:
            coordinator.resume(action)
        done.append(action)
        action = coordinator.next_action()
    done.append(action)
    return done


def _report(coordinator: Coordinator, trial_id: str, value: float | None = None) -> Decision:
    record = coordinator.trials[trial_id]
    epoch = record.last_epoch + 1
    return coordinator.on_result(trial_id, epoch,
                                 float(TARGET[record.candidate, epoch - 1]) if value is None else value)


def test_one_slot_makes_the_queries_of_next_query(fitted_state, frozen_settings):
    settings = dataclasses.replace(frozen_settings, policy=PolicySettings("leaders"))
    coordinator = Coordinator(_engine(fitted_state, settings), budget_epochs=25, max_concurrent=1)
    reference = _engine(fitted_state, settings)
    queries = []
    while True:
        action = _carry_out(coordinator, [])[-1]
        if action is FINISHED:
            break
        (trial_id,) = coordinator.trials_with(TrialStatus.RUNNING) or coordinator.trials_with(TrialStatus.PENDING)
        record = coordinator.trials[trial_id]
        queries.append((record.candidate, record.last_epoch + 1))
        _report(coordinator, trial_id)
    expected = []
    for _ in range(25):
        query = reference.next_query()
        expected.append((query.candidate, query.epoch))
        reference.observe(query.candidate, query.epoch, float(TARGET[query.candidate, query.epoch - 1]))
        reference.condition()
    assert queries == expected
    assert coordinator.epochs_spent == 25 and len({c for c, _ in queries}) > 1


def test_a_paused_trial_does_not_resume_while_a_new_trial_holds_the_only_slot(
        fitted_state, frozen_settings):
    settings = dataclasses.replace(frozen_settings, policy=PolicySettings("leaders", leaders_decay=0.0))
    coordinator = Coordinator(_engine(fitted_state, settings), budget_epochs=20, max_concurrent=1)
    first = coordinator.next_action()
    coordinator.start("a", first)
    assert coordinator.next_action() is WAIT  # the only slot is taken
    assert _report(coordinator, "a") is Decision.PAUSE  # equal shares: the next leader's turn
    second = coordinator.next_action()
    assert isinstance(second, Start) and second.candidate != first.candidate
    assert coordinator.next_action() == second  # asked again: the same action, not recomputed
    coordinator.start("b", second)
    assert coordinator.next_action() is WAIT
    with pytest.raises(AT2Error, match="not the coordinator's current action"):
        coordinator.resume(Resume("a"))


def test_an_epoch_that_is_not_the_next_one_is_a_clear_error_and_still_counts(
        fitted_state, frozen_settings):
    coordinator = Coordinator(_engine(fitted_state, frozen_settings), budget_epochs=10, max_concurrent=2)
    coordinator.start("a", coordinator.next_action())
    _report(coordinator, "a")
    with pytest.raises(TrialEpochError, match=r"trial a reported epoch 1 again \(its next epoch is 2\).*checkpoint"):
        coordinator.on_result("a", 1, 0.5)
    assert coordinator.epochs_spent == 2 and coordinator.status("a") is TrialStatus.DONE
    assert len(coordinator.engine.observations) == 1


def test_a_non_finite_value_fails_the_candidate_and_stops_the_trial(fitted_state, frozen_settings):
    coordinator = Coordinator(_engine(fitted_state, frozen_settings), budget_epochs=10, max_concurrent=1)
    start = coordinator.next_action()
    coordinator.start("a", start)
    assert coordinator.on_result("a", 1, math.nan) is Decision.STOP
    assert start.candidate in coordinator.engine.failed and coordinator.epochs_spent == 1
    following = coordinator.next_action()
    assert isinstance(following, Start) and following.candidate != start.candidate


def test_the_budget_counts_epochs_in_flight_and_a_failure_gives_its_epoch_back(
        fitted_state, leaders_settings):
    coordinator = Coordinator(_engine(fitted_state, leaders_settings), budget_epochs=3,
                              max_concurrent=4)
    actions = _carry_out(coordinator, [])
    assert [type(a) for a in actions] == [Start, Start, Start, type(WAIT)]  # 3 epochs in flight
    assert coordinator.budget_left() == 0
    coordinator.on_trial_end("t0", failed=True)
    assert coordinator.budget_left() == 1 and isinstance(coordinator.next_action(), Start)


def test_a_state_of_another_prior_is_refused_and_names_what_differs(fitted_state, frozen_settings):
    coordinator = Coordinator(_engine(fitted_state, frozen_settings), budget_epochs=5)
    coordinator.start("a", coordinator.next_action())
    _report(coordinator, "a")
    state = coordinator.state_dict()
    other = AT2Engine(synthetic.TOY_SPACE, synthetic.toy_prior(n_tasks=2, configs=CONFIGS),
                      frozen_settings, seed=0)
    with pytest.raises(AT2Error, match="different tuning run.*prior"):
        Coordinator().load_state_dict(state, engine=other)
    reseeded = AT2Engine(synthetic.TOY_SPACE, PRIOR, frozen_settings, seed=1)
    with pytest.raises(AT2Error, match=r"the seed \(saved 0, here 1\)"):
        Coordinator().load_state_dict(state, engine=reseeded)


def _fork(coordinator: Coordinator, settings) -> Coordinator:
    restored = Coordinator()
    restored.load_state_dict(coordinator.state_dict(),
                             engine=AT2Engine(synthetic.TOY_SPACE, PRIOR, settings, seed=0))
    return restored


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(slots=st.integers(1, 4), budget=st.integers(1, 24), policy=st.sampled_from(["leaders", "no_prior"]),
       data=st.data())
def test_random_executions_keep_every_invariant_and_restore_to_the_same_decisions(
        fitted_state, frozen_settings, slots, budget, policy, data):
    config = dataclasses.replace(frozen_settings, policy=PolicySettings(policy))
    coordinators = [Coordinator(_engine(fitted_state, config), budget_epochs=budget, max_concurrent=slots,
                                track_recommendations=True)]
    failed: set[int] = set()
    seen: set[tuple[int, int]] = set()
    for _ in range(4 * budget + 20):
        actions = [_carry_out(c, []) for c in coordinators]
        assert all(a == actions[0] for a in actions), "a restored coordinator decided differently"
        main = coordinators[0]
        for action in actions[0]:
            if isinstance(action, Start):
                assert action.candidate not in failed
            if isinstance(action, Resume):
                assert main.trials[action.trial_id].candidate not in failed
        assert main.in_flight <= slots
        assert main.epochs_spent + main.in_flight <= budget
        in_flight = sorted(t for t, r in main.trials.items() if r.status.in_flight)
        if not in_flight:
            assert actions[0][-1] is FINISHED
            break
        trial_id = data.draw(st.sampled_from(in_flight))
        event = data.draw(st.sampled_from(["result"] * 8 + ["nan", "fail", "restore"]))
        candidate = main.trials[trial_id].candidate
        if event == "restore":
            coordinators.append(_fork(main, config))
            continue
        if event == "fail":
            for c in coordinators:
                c.on_trial_end(trial_id, failed=True)
            failed.add(candidate)
            continue
        epoch = main.trials[trial_id].last_epoch + 1
        assert candidate not in failed and (candidate, epoch) not in seen
        seen.add((candidate, epoch))
        value = math.nan if event == "nan" else None
        decisions = {_report(c, trial_id, value) for c in coordinators}
        assert len(decisions) == 1
        if event == "nan":
            failed.add(candidate)
    else:
        pytest.fail("the run did not finish")
    main = coordinators[0]
    assert main.epochs_spent == min(budget, main.epochs_spent)
    for c in coordinators[1:]:
        assert [dataclasses.astuple(r) for r in c.trace] == [dataclasses.astuple(r) for r in main.trace]
    epochs = {}
    for row in main.trace:  # every trial's epochs are 1, 2, 3, ... without gaps or repeats
        epochs.setdefault(row.trial_id, []).append(row.epoch)
    assert all(e == list(range(1, len(e) + 1)) for e in epochs.values())


def test_the_finished_run_spends_exactly_the_budget_when_nothing_fails(fitted_state, frozen_settings):
    coordinator = Coordinator(_engine(fitted_state, frozen_settings), budget_epochs=17, max_concurrent=3)
    rng = np.random.default_rng(0)
    while True:
        if _carry_out(coordinator, [])[-1] is FINISHED:
            break
        running = sorted(t for t, r in coordinator.trials.items() if r.status.in_flight)
        _report(coordinator, running[int(rng.integers(len(running)))])
    assert coordinator.epochs_spent == coordinator.epochs_observed == 17
    assert all(r.status in (TrialStatus.PAUSED, TrialStatus.DONE) for r in coordinator.trials.values())


def test_a_restored_trial_re_runs_observed_epochs_without_counting_them(fitted_state, frozen_settings):
    settings = dataclasses.replace(frozen_settings, policy=PolicySettings("leaders", leaders=1))  # t0 continues
    coordinator = Coordinator(_engine(fitted_state, settings), budget_epochs=10, max_concurrent=2)
    _carry_out(coordinator, [])
    assert [_report(coordinator, "t0") for _ in range(3)] == [Decision.CONTINUE] * 3
    saved = coordinator.state_dict()
    restored = Coordinator()
    restored.load_state_dict(saved, engine=AT2Engine(synthetic.TOY_SPACE, PRIOR, settings, seed=0))
    assert restored.needs_reconcile
    # Tune brought back only t0, from an older checkpoint (epoch 1): t1 never reported, released
    assert restored.reconcile({"t0"}) == ["t1"] and "t1" not in restored.trials
    spent = restored.epochs_spent
    assert restored.status("t0") is TrialStatus.RUNNING  # still in flight: Tune restarts it
    candidate = restored.trials["t0"].candidate
    assert restored.on_result("t0", 2, float(TARGET[candidate, 1])) is Decision.CONTINUE
    assert restored.epochs_spent == spent and len(restored.engine.observations) == 3  # not again
    restored.on_result("t0", 3, float(TARGET[candidate, 2]))
    restored.on_result("t0", 4, float(TARGET[candidate, 3]))  # its next epoch: counted
    assert restored.epochs_spent == spent + 1 and restored.engine.next_epoch(candidate) == 5


def test_a_trial_restarted_after_a_failure_re_runs_observed_epochs_without_counting_them(
        fitted_state, frozen_settings):
    settings = dataclasses.replace(frozen_settings, policy=PolicySettings("leaders", leaders=1))
    coordinator = Coordinator(_engine(fitted_state, settings), budget_epochs=10, max_concurrent=2)
    _carry_out(coordinator, [])
    assert [_report(coordinator, "t0") for _ in range(3)] == [Decision.CONTINUE] * 3
    spent, trace = coordinator.epochs_spent, list(coordinator.trace)
    coordinator.on_trial_restarted("t0")  # its worker died in epoch 4; checkpoint of epoch 1
    candidate = coordinator.trials["t0"].candidate
    for epoch in (2, 3):  # re-run: continued, neither counted nor observed again
        assert coordinator.on_result("t0", epoch, 0.0) is Decision.CONTINUE
    assert coordinator.epochs_spent == spent and coordinator.trace == trace
    assert coordinator.status("t0") is TrialStatus.RUNNING
    coordinator.on_result("t0", 4, float(TARGET[candidate, 3]))  # the epoch in flight: counted
    assert coordinator.epochs_spent == spent + 1 and coordinator.engine.next_epoch(candidate) == 5
    with pytest.raises(TrialEpochError, match="reported epoch 4 again"):  # the restart is over
        coordinator.on_result("t0", 4, 0.5)
    coordinator.on_trial_end("t1")
    coordinator.on_trial_restarted("t1")  # ended: nothing to catch up
    assert not coordinator.trials["t1"].catching_up


def test_without_new_trials_free_slots_only_resume(fitted_state, frozen_settings):
    settings = dataclasses.replace(frozen_settings, policy=PolicySettings("leaders", leaders_decay=0.0))
    coordinator = Coordinator(_engine(fitted_state, settings), budget_epochs=10, max_concurrent=1)
    coordinator.start("a", coordinator.next_action())
    assert _report(coordinator, "a") is Decision.PAUSE
    assert isinstance(coordinator.next_action(), Start)  # planned, then no more trials possible
    coordinator.stop_starting()
    assert coordinator.next_action() == Resume("a")


def test_the_recommendation_names_the_trial_and_epoch_of_the_best_value_observed():
    """Hand-made run of a round robin over candidates 0 and 1 (one slot): the recommendation
    is the best value observed so far, its trial and epoch; the first epoch on a tie; none
    before a value, a failed candidate never."""
    from at2_tune.core.schedules import ModelFreeCore, RoundRobin

    core = ModelFreeCore(RoundRobin(0, ranking=[0, 1], k=2), [{"c": 0}, {"c": 1}, {"c": 2}], 4)
    coordinator = Coordinator(core, budget_epochs=6, max_concurrent=1)
    assert coordinator.recommendation() is None
    names: list[str] = []
    values = {0: [0.5, 0.7, 0.7], 1: [0.6, 0.65, 0.8]}
    for _ in range(6):
        _carry_out(coordinator, names)
        running = coordinator.trials_with(TrialStatus.RUNNING) + \
            coordinator.trials_with(TrialStatus.PENDING)
        trial = running[0]
        record = coordinator.trials[trial]
        coordinator.on_result(trial, record.last_epoch + 1,
                              values[record.candidate][record.last_epoch])
        held = coordinator.recommendation()
        best = max(((v, -e) for e, v in enumerate(values[held.candidate][:held.epoch])))
        assert held.value == best[0] and held.epoch == 1 - best[1]
    held = coordinator.recommendation()
    assert (held.candidate, held.epoch, held.value) == (1, 3, 0.8)
    assert held.trial_id == coordinator.trial_of(1)
    core.mark_failed(1)
    held = coordinator.recommendation()
    assert (held.candidate, held.trial_id, held.epoch, held.value) == \
        (0, coordinator.trial_of(0), 2, 0.7)  # 0.7 at epochs 2 and 3: the first


def _portfolio_core(ranking, only_first: bool = False):
    """A model-free core over 3 candidates of 4 epochs, trained in the order ``ranking``; with
    ``only_first`` its policy orders the first open candidate alone (as the no-prior policy
    orders only what the budget pays for, and a free slot may then wait)."""
    from at2_tune.core.schedules import ModelFreeCore, Portfolio

    class FirstOpenOnly(Portfolio):
        def order(self, posterior, situation):
            return super().order(posterior, situation)[:1]

    policy = (FirstOpenOnly if only_first else Portfolio)(ranking[0], ranking=ranking)
    return ModelFreeCore(policy, [{"c": 0}, {"c": 1}, {"c": 2}], 4)


def test_a_candidate_whose_trial_ended_is_not_ranked_and_frees_its_place_for_the_next():
    coordinator = Coordinator(_portfolio_core([0, 1, 2], only_first=True), budget_epochs=8,
                              max_concurrent=1)
    coordinator.start("a", coordinator.next_action())
    assert coordinator.on_result("a", 1, 0.5) is Decision.CONTINUE
    coordinator.on_trial_end("a")  # the trainable said done with 3 epochs left
    assert [q.candidate for q in coordinator.ranking()] == [1]
    # before, candidate 0 was still ranked first and skipped, and the run was over
    assert coordinator.next_action() == Start(1)


def test_once_no_trial_can_start_only_started_candidates_are_ranked():
    coordinator = Coordinator(_portfolio_core([2, 0, 1]), budget_epochs=8, max_concurrent=1)
    coordinator.start("a", coordinator.next_action())
    assert [q.candidate for q in coordinator.ranking()] == [2, 0, 1]
    coordinator.stop_starting()
    assert [q.candidate for q in coordinator.ranking()] == [2]
    coordinator.on_result("a", 1, 0.5)
    coordinator.on_trial_end("a")
    assert coordinator.ranking() == [] and coordinator.next_action() == FINISHED
