"""The K-slot simulator's clock, with and without a cost to start or resume a trial."""

import numpy as np
import pytest

from at2_tune.core.coordinator import Coordinator
from at2_tune.core.schedules import ModelFreeCore, Portfolio, RoundRobin
from at2_tune.core.simulation import Timing, epoch_seconds, simulate
from at2_tune.errors import AT2Error

CURVES = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]])


def run(policy, budget, concurrency=1, start_cost=0.0, equal_epochs=False):
    coordinator = Coordinator(ModelFreeCore(policy, [{}] * 3, 3), budget_epochs=budget,
                              max_concurrent=concurrency)
    times = []
    end = simulate(coordinator, CURVES, concurrency, seed=5,
                   on_observation=lambda row, clock: times.append(clock),
                   timing=Timing(start_cost, equal_epochs))
    return coordinator, times, end


@pytest.mark.parametrize("start_cost", [0.0, 2.5])
def test_a_trial_pays_the_start_cost_each_time_it_starts_or_resumes(start_cost):
    a, b = (epoch_seconds(5, c) for c in (0, 1))
    # in turn: 0 starts and goes on, then 1 starts and goes on: two starts
    coordinator, times, end = run(Portfolio(0, ranking=[0, 1]), 4, start_cost=start_cost)
    assert [(r.candidate, r.epoch) for r in coordinator.trace] == [(0, 1), (0, 2), (0, 3),
                                                                   (1, 1)]
    assert times == pytest.approx(np.cumsum([a + start_cost, a, a, b + start_cost]))
    assert end == pytest.approx(times[-1])
    # a round robin pauses each trial after every epoch: every epoch starts or resumes one
    coordinator, times, _ = run(RoundRobin(0, ranking=[0, 1], k=2), 4, start_cost=start_cost)
    assert [(r.candidate, r.epoch) for r in coordinator.trace] == [(0, 1), (1, 1), (0, 2),
                                                                   (1, 2)]
    assert times == pytest.approx(np.cumsum([a, b, a, b]) + start_cost * np.arange(1, 5))


def test_on_two_slots_each_trial_pays_its_start_once_and_then_goes_on():
    a, b = (epoch_seconds(5, c) for c in (0, 1))
    coordinator, times, _ = run(Portfolio(0, ranking=[0, 1]), 4, concurrency=2, start_cost=3.0)
    expected = sorted([(3.0 + a, 0), (3.0 + 2 * a, 0), (3.0 + b, 1), (3.0 + 2 * b, 1)])
    assert times == pytest.approx([t for t, _ in expected])
    assert [r.candidate for r in coordinator.trace] == [c for _, c in expected]


def test_with_equal_epochs_every_epoch_takes_one_unit():
    assert len({epoch_seconds(5, c) for c in range(3)}) == 3  # not so by default
    coordinator, times, end = run(RoundRobin(0, ranking=[0, 1], k=2), 4, start_cost=0.5,
                                  equal_epochs=True)
    assert times == pytest.approx([1.5, 3.0, 4.5, 6.0])
    # two slots finishing together: the one started first is observed first
    coordinator, times, _ = run(Portfolio(0, ranking=[0, 1]), 4, concurrency=2,
                                equal_epochs=True)
    assert times == pytest.approx([1.0, 1.0, 2.0, 2.0])
    assert [r.candidate for r in coordinator.trace] == [0, 1, 0, 1]


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_a_negative_start_cost_is_refused_by_name(bad):
    with pytest.raises(AT2Error, match=r"start_cost=.* must be a number >= 0"):
        Timing(start_cost=bad)
