"""The phase clock of ``at2-tune tune`` and its first-trial callback (no Ray run)."""

import pickle

import pytest

from at2_tune.live.phases import FirstTrialPhases, PhaseClock


class _Searcher:
    offline_fit_seconds = 12.5
    offline_fit_outcome = "fitted"


def test_phases_are_stamped_in_order_and_a_part_does_not_restart_the_phase():
    said = []
    clock = PhaseClock(said.append)
    clock.stamp("prior loaded", detail="hyperrec (27 tasks)")
    callback = FirstTrialPhases(clock, _Searcher())
    callback.on_trial_start(0, [], None)
    callback.on_trial_start(1, [], None)  # only the first trial
    assert [p["phase"] for p in clock.phases] == ["prior loaded", "offline fit",
                                                  "first trial started"]
    fit, first = clock.phases[1:]
    assert fit["seconds"] == 12.5 and fit["detail"] == "fitted"
    # the fit is a part of the phase that ends with the first trial: it does not restart it
    since_prior = first["since_start_s"] - clock.phases[0]["since_start_s"]
    assert first["seconds"] == pytest.approx(since_prior, abs=1e-3)
    assert said[0].startswith("phase: prior loaded in ") and ", hyperrec (27 tasks) (" in said[0]
    assert said[1].startswith("phase: offline fit in 12.5 s, fitted (")


def test_a_callback_restored_from_a_saved_experiment_stays_silent():
    said = []
    callback = pickle.loads(pickle.dumps(FirstTrialPhases(PhaseClock(said.append), _Searcher())))
    callback.on_trial_start(0, [], None)
    assert said == [] and callback.clock is None


def test_the_budget_plan_is_stamped_with_the_chosen_schedule_and_kept():
    import numpy as np

    from at2_tune.core.planner import plan_schedule
    from at2_tune.live.run import _plan_json

    rising = np.linspace(0.2, 1.0, 12)[None, :, None] * np.linspace(0.1, 1.0, 6)[None, None, :]
    plan = plan_schedule(np.repeat(rising, 3, axis=0), budget=3)

    class Planned(_Searcher):
        pass

    Planned.plan = plan
    said = []
    clock = PhaseClock(said.append)
    FirstTrialPhases(clock, Planned()).on_trial_start(0, [], None)
    assert [p["phase"] for p in clock.phases] == ["offline fit", "plan", "first trial started"]
    assert clock.phases[1]["seconds"] == pytest.approx(round(plan.seconds, 3), abs=1e-3)
    assert said[1].startswith("phase: plan in ") and \
        "plan for 3 epochs on 1 slot(s), objective model: top1 round robin 0." in said[1]
    assert _plan_json(Planned())["chosen"] == "top1 round robin"
    assert _plan_json(_Searcher()) is None  # a searcher that does not plan
