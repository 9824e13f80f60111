"""The planner's choice measured alone agrees with the replay benchmark's AT2 run."""

import json

import numpy as np
import pytest

from at2_tune.core.planner import FAMILY, Schedule
from at2_tune.errors import AT2Error
from experiments import planner_choice, replay_benchmark


def test_the_plan_alone_holds_what_the_benchmarks_at2_run_holds(release_dir, tmp_path, capsys):
    common = ["--database", "lcbench", "--protocol", "loo", "--tasks", "dionis,adult",
              "--seed-profiles", "0", "--budget", "10", "--data-dir", str(release_dir)]
    assert replay_benchmark.main([*common, "--methods", "at2", "--seeds", "0", "--jobs", "1",
                                  "--out", str(tmp_path / "bench")]) == 0
    held = {}
    for path in (tmp_path / "bench" / "runs").glob("*.json"):
        document = json.loads(path.read_text())
        held[document["test_task"]] = replay_benchmark.evaluated(
            document, str(release_dir))["held_regrets"][-1]
    capsys.readouterr()
    assert planner_choice.main([*common, "--without", "round_robin",
                                "--out", str(tmp_path / "choice")]) == 0
    printed = capsys.readouterr().out
    stored = np.load(tmp_path / "choice.npz")
    assert stored["cases"].tolist() == ["loo/dionis@0", "loo/adult@0"]  # as --tasks names them
    scores, walls, regrets = stored["scores"], stored["walls"], stored["regrets"]
    assert scores.shape == (2, 1, len(FAMILY), 34) and regrets.shape == (2, 1, len(FAMILY))
    plan = planner_choice.plan_regrets(scores, walls, regrets, list(range(len(FAMILY))))
    assert plan[:, 0] == pytest.approx([held["dionis"], held["adult"]])
    # dionis: without dionis the prior's favourite changes, and alone it is poor there
    top1 = FAMILY.index(Schedule("round_robin", 1))
    assert planner_choice.chosen(scores[0, 0], walls[0, 0], list(range(len(FAMILY)))) == top1
    assert plan[0, 0] == pytest.approx(0.934, abs=0.001)
    assert "| plan without round_robin − plan (paired) |" in printed
    assert (tmp_path / "choice.md").read_text() in printed


def test_a_family_without_a_kind_is_chosen_from_the_same_replays():
    halving = [i for i, s in enumerate(FAMILY) if s.kind == "halving"]
    kept = planner_choice.family_without(["halving"])
    assert sorted(kept + halving) == list(range(len(FAMILY))) and len(halving) == 2
    scores = np.full((1, 1, len(FAMILY), 3), 0.5)
    scores[0, 0, halving[0]] = 0.1  # halving is best on the prior tasks
    scores[0, 0, 4] = 0.2  # then top5 round robin
    scores[0, 0, :, 2] = np.nan  # a prior task not replayed
    walls = np.ones_like(scores)
    regrets = np.arange(len(FAMILY), dtype=float)[None, None, :] / 100
    whole = planner_choice.plan_regrets(scores, walls, regrets, list(range(len(FAMILY))))
    assert whole.tolist() == [[halving[0] / 100]]
    assert planner_choice.plan_regrets(scores, walls, regrets, kept).tolist() == [[0.04]]
    with pytest.raises(AT2Error, match="--without halfing: not a schedule kind; choose from"):
        planner_choice.family_without(["halfing"])
    with pytest.raises(AT2Error, match="leaves no schedule"):
        planner_choice.family_without(list(planner_choice.KINDS))
