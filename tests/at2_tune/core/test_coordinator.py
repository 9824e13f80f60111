"""The coordinator's slot rules, without Ray (the Ray tests drive it through Tune)."""

import dataclasses

from at2_tune.core.coordinator import Coordinator, Decision
from at2_tune.core.engine import AT2Engine
from search_spaces import HYPERREC_SPACE


def test_a_paused_trial_does_not_resume_while_a_new_trial_holds_the_only_slot(
        two_task_prior, fast_settings, hyperrec):
    curves = hyperrec.task_curves("CIFAR100")
    # the leaders round robin moves to another candidate after one epoch
    settings = dataclasses.replace(fast_settings, acquisition="leaders")
    engine = AT2Engine(HYPERREC_SPACE, two_task_prior, settings, seed=0)
    coordinator = Coordinator(budget_epochs=20, max_concurrent=1, engine=engine)
    first = coordinator.suggest("a")
    decision = coordinator.on_result("a", 1, float(curves[first, 0]))
    while decision is Decision.CONTINUE:  # train "a" until the ranking prefers another candidate
        epoch = engine.next_epoch(first)
        decision = coordinator.on_result("a", epoch, float(curves[first, epoch - 1]))
    assert decision is Decision.PAUSE
    second = coordinator.suggest("b")  # a new candidate ranks first (seed 0)
    assert second is not None and second != first
    assert coordinator.resume_choice(["a"]) is None  # "b" is pending in the only slot
    assert coordinator.suggest("c") is None
