"""The no-prior comparison against values computed by hand on the release."""

import json

import numpy as np
import pytest

from at2_tune.core.simulation import Timing, epoch_seconds
from at2_tune.simulator import ReplayTask, run_replay
from experiments.no_prior import SCHEDULES, held_regret, main


def test_held_regrets_by_hand_and_the_table(hyperrec, release_dir, tmp_path, capsys):
    main(["--database", "hyperrec", "--budget", "12", "--tasks", "CIFAR10", "--seeds", "0",
          "--baseline-seeds", "2", "--data-dir", str(release_dir), "--out", str(tmp_path)])
    (row,) = json.loads((tmp_path / "no_prior_hyperrec_12_1.json").read_text())
    final, curves = hyperrec.final_values("CIFAR10", 0), hyperrec.task_curves("CIFAR10", 0)
    span = final.max() - final.min()
    for seed in range(2):
        order = np.random.default_rng([seed, 7]).permutation(100)
        # random search trains the first configuration of its order for all 12 epochs
        best = curves[order[0], :12].max()
        assert row["random"][seed] == np.clip((final.max() - best) / span, 0, None)
        # successive halving: 12 of its 27 configurations for one epoch each
        best = curves[order[:12], 0].max()
        assert row["sh27"][seed] == row["sh27-survivor"][seed] == \
            np.clip((final.max() - best) / span, 0, None)
        # from 9: each for one epoch, then the best 3 one after the other to epoch 3: the
        # 3 epochs left train the first to epoch 3 and the second to epoch 2
        first = order[:9][np.argsort(-curves[order[:9], 0], kind="stable")][:2]
        best = max(curves[order[:9], 0].max(), curves[first[0], 1:3].max(), curves[first[1], 1])
        assert row["sh9-survivor"][seed] == np.clip((final.max() - best) / span, 0, None)
    assert 0.0 <= row["at2"][0] <= 1.0 and 1 <= row["touched"][0] <= 12
    assert 12 / row["touched"][0] <= row["deepest"][0] <= 12
    # one slot: the simulated time is the sum of the 12 epochs' durations
    trace = run_replay(hyperrec, ReplayTask("hyperrec", (), "CIFAR10", 0, 12), seed=0)["trace"]
    assert row["wall"][0] == pytest.approx(sum(epoch_seconds(0, r["config_id"]) for r in trace))
    assert set(SCHEDULES) <= set(row)
    printed = capsys.readouterr().out
    assert "| at2 (no_prior) |" in printed and "| sh27-survivor |" in printed


def test_held_regret_is_the_best_value_observed_against_the_final_values():
    final = np.array([0.2, 0.6, 1.0])  # best 1.0, worst 0.2: a range of 0.8
    assert held_regret(final, [0.3, 0.6, 0.5], budget=4) == pytest.approx((1.0 - 0.6) / 0.8)
    assert held_regret(final, [], budget=4) == 1.0  # nothing trained: the worst model


def test_a_start_cost_is_paid_by_every_switch_of_the_slot(hyperrec, release_dir, tmp_path):
    main(["--database", "hyperrec", "--budget", "12", "--tasks", "CIFAR10", "--seeds", "0",
          "--baseline-seeds", "1", "--start-cost", "3", "--data-dir", str(release_dir),
          "--out", str(tmp_path)])
    (row,) = json.loads((tmp_path / "no_prior_hyperrec_12_1_start3.json").read_text())
    trace = run_replay(hyperrec, ReplayTask("hyperrec", (), "CIFAR10", 0, 12), seed=0,
                       timing=Timing(start_cost=3.0))["trace"]
    configs = [r["config_id"] for r in trace]
    # one slot: a trial starts or resumes whenever the configuration trained changes
    switches = 1 + sum(a != b for a, b in zip(configs, configs[1:]))
    assert row["wall"][0] == pytest.approx(sum(epoch_seconds(0, c) for c in configs)
                                           + 3.0 * switches)
    assert switches >= 2


def test_a_negative_start_cost_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--database", "hyperrec", "--start-cost", "-1", "--out", str(tmp_path)])
    assert "start_cost=-1.0 must be a number >= 0" in capsys.readouterr().err
