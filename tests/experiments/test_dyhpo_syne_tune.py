"""DyHPO's runs read back, checked against the release and scored as AT2's are (the Syne Tune
side runs in its own environment and is not tested here)."""

import json

import numpy as np
import pytest

from experiments.dyhpo_syne_tune import (
    complete_configs,
    export,
    neutral_value,
    read_runs,
)
from experiments.no_prior import add_dyhpo, dyhpo_runs, table


def write_runs(path, runs):
    path.write_text("".join(json.dumps(run) + "\n" for run in runs))


def run_line(task, seed, observations, database="hyperrec"):
    return {"database": database, "task": task, "seed": seed, "budget": len(observations),
            "observations": observations, "seconds": 1.0}


def observed(curves, steps):
    """``[[config, epoch, value]]`` of ``steps`` ``(config, epoch)`` on ``curves``."""
    return [[c, e, float(curves[c, e - 1])] for c, e in steps]


def test_a_run_is_scored_by_its_first_budget_epochs_as_at2_is(hyperrec, tmp_path):
    curves, final = hyperrec.task_curves("CIFAR10", 0), hyperrec.final_values("CIFAR10", 0)
    best = int(np.argmax(final))
    # seed 1 trains the best configuration from its 2nd epoch on; with a budget of 3 its
    # first two epochs count
    runs = [run_line("CIFAR10", 1, observed(curves, [(7, 1), (best, 1), (best, 2), (best, 3)])),
            run_line("CIFAR10", 0, observed(curves, [(3, 1), (3, 2), (5, 1), (best, 1)])),
            run_line("CIFAR10", 0, observed(curves, [(3, 1)]), database="lcbench")]
    path = tmp_path / "dyhpo.jsonl"
    write_runs(path, runs)
    values = read_runs(path, "hyperrec", lambda task: hyperrec.task_curves(task, 0), budget=3)
    assert values == {"CIFAR10": [[curves[3, 0], curves[3, 1], curves[5, 0]],
                                  [curves[7, 0], curves[best, 0], curves[best, 1]]]}
    rows = [{"task": "CIFAR10", "at2": [0.5]}]
    add_dyhpo(rows, hyperrec, dyhpo_runs(hyperrec, path, 3, ["CIFAR10"]), budget=3)
    span = final.max() - final.min()
    expected = [(final.max() - max(curves[3, :2].max(), curves[5, 0])) / span,
                (final.max() - max(curves[7, 0], curves[best, :2].max())) / span]
    assert rows[0]["dyhpo"] == pytest.approx(expected)
    schedules = {name: [0.4] for name in ("random", "sh27", "sh27-survivor", "sh9-survivor")}
    printed = table([dict(rows[0], touched=[3], deepest=[2], wall=[3.0], seconds=[1.0],
                          **schedules)])
    assert any(line.startswith("| dyhpo |") for line in printed)
    assert "touched 3.0 configurations per run and trained its deepest 2.0 epochs, in 3.0 units" \
        in printed[-1]


def test_a_task_and_seed_run_twice_counts_once_by_its_longest_run(hyperrec, tmp_path):
    curves = hyperrec.task_curves("CIFAR10", 0)
    short = observed(curves, [(3, 1)])
    long = observed(curves, [(3, 1), (3, 2), (4, 1)])
    path = tmp_path / "dyhpo.jsonl"
    write_runs(path, [run_line("CIFAR10", 0, short), run_line("CIFAR10", 1, short),
                      run_line("CIFAR10", 0, long)])
    with pytest.raises(ValueError, match="seed 1.*fewer than the budget 2"):
        read_runs(path, "hyperrec", lambda task: curves, budget=2)
    write_runs(path, [run_line("CIFAR10", 0, short), run_line("CIFAR10", 0, long)])
    assert read_runs(path, "hyperrec", lambda task: curves, budget=2) == {
        "CIFAR10": [[curves[3, 0], curves[3, 1]]]}


@pytest.mark.parametrize("steps, change, message", [
    ([(3, 1), (3, 3)], None, "reported epoch 3 after epoch 1"),
    ([(3, 1), (3, 2)], 0.5, "wrong database or seed profile"),
    ([(3, 1)], None, "fewer than the budget 2"),
])
def test_a_run_that_does_not_fit_the_database_is_refused(hyperrec, tmp_path, steps, change,
                                                         message):
    curves = hyperrec.task_curves("CIFAR10", 0)
    observations = observed(curves, steps)
    if change is not None:
        observations[-1][2] = change
    path = tmp_path / "dyhpo.jsonl"
    write_runs(path, [run_line("CIFAR10", 0, observations)])
    with pytest.raises(ValueError, match=message):
        read_runs(path, "hyperrec", lambda task: curves, budget=2)


def test_a_task_without_a_run_is_named(hyperrec, tmp_path):
    path = tmp_path / "dyhpo.jsonl"
    write_runs(path, [run_line("CIFAR10", 0, observed(hyperrec.task_curves("CIFAR10", 0),
                                                      [(3, 1)]))])
    with pytest.raises(ValueError, match="no DyHPO run of hyperrec task 'AWA2'"):
        dyhpo_runs(hyperrec, path, 1, ["CIFAR10", "AWA2"])


def test_runs_are_matched_to_the_slots_by_their_workers(hyperrec, tmp_path):
    curves = hyperrec.task_curves("CIFAR10", 0)
    one = run_line("CIFAR10", 0, observed(curves, [(3, 1), (3, 2)]))  # no "workers": one
    four = dict(run_line("CIFAR10", 0, observed(curves, [(3, 1), (5, 1), (6, 1), (7, 1)])),
                workers=4)
    path = tmp_path / "dyhpo.jsonl"
    write_runs(path, [one, four])
    assert read_runs(path, "hyperrec", lambda task: curves, budget=2) == {
        "CIFAR10": [[curves[3, 0], curves[3, 1]]]}
    assert read_runs(path, "hyperrec", lambda task: curves, budget=2, workers=4) == {
        "CIFAR10": [[curves[3, 0], curves[5, 0]]]}
    with pytest.raises(ValueError, match="no DyHPO run of hyperrec task 'CIFAR10' with 2 "
                                         "worker.*--workers 2"):
        dyhpo_runs(hyperrec, path, 1, ["CIFAR10"], workers=2)


def test_the_exported_space_is_the_projects_and_keeps_the_configurations_apart(
        hyperrec, release_dir, tmp_path):
    arrays, meta = export("hyperrec", str(release_dir), tmp_path)
    with np.load(arrays, allow_pickle=False) as data:
        assert data["curves"].shape == (hyperrec.n_tasks, 100, hyperrec.n_epochs)
        assert list(data["tasks"]) == list(hyperrec.tasks)
        np.testing.assert_array_equal(data["curves"][1], hyperrec.task_curves(hyperrec.tasks[1]))
    space = json.loads(meta.read_text())["space"]
    assert space["scheduler"] == ["choice", ["StepLR", "ExponentialLR", "CyclicLR",
                                             "CosineAnnealingWarmRestarts"]]
    assert space["lr"] == ["float", 1e-4, 1e-1, True]
    assert space["max_lr"] == ["float", 1.1e-4, 0.15, True]  # a ratio: its encoded interval
    assert space["batch_size"] == ["int", 32, 128, False]
    complete = complete_configs(space, json.loads(meta.read_text())["configs"])
    assert len({tuple(c.values()) for c in complete}) == 100
    adam = next(c for c in complete if c["optimizer"] == "Adam")
    assert adam["momentum"] == pytest.approx(np.sqrt(1e-3 * 1.0))  # inactive: the middle


def test_an_inactive_parameter_takes_the_middle_of_its_range():
    assert neutral_value(["float", 0.1, 10.0, True]) == pytest.approx(1.0)
    assert neutral_value(["float", 0.0, 1.0, False]) == 0.5
    assert neutral_value(["int", 2, 20, False]) == 11
    assert neutral_value(["choice", ["a", "b"]]) == "a"
    with pytest.raises(ValueError, match="equal once inactive"):
        complete_configs({"x": ["float", 0.0, 1.0, False]}, [{"x": None}, {"x": 0.5}])
