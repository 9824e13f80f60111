"""The held-out-configurations protocol against values computed by hand on the release."""

import dataclasses
import json

import numpy as np
import pytest

from at2_tune.bench.baselines import top_k_round_robin
from at2_tune.core.prior import prior_order
from at2_tune.core.settings import AT2Settings, ModelSettings, PolicySettings
from at2_tune.simulator import resolve_task
from experiments.held_out_configs import (hidden_configs, main, masked_prior, nearest_order,
                                          observed_order, run_case)
from search_spaces import get_space
from search_spaces.nearest import NearestConfig

TINY = AT2Settings(ModelSettings(n_inducing=32, offline_epochs=1, offline_max_steps=10,
                                 hidden_dim=8, feature_dim=4))


def test_half_of_the_configurations_are_hidden_reproducibly():
    hidden = hidden_configs(100, case_seed=3)
    assert hidden.sum() == 50
    assert np.array_equal(hidden, hidden_configs(100, case_seed=3))
    assert not np.array_equal(hidden, hidden_configs(100, case_seed=4))
    assert hidden_configs(10, case_seed=3, share=0.3).sum() == 3
    with pytest.raises(ValueError, match="hidden share 1.0 must be strictly between 0 and 1"):
        hidden_configs(100, case_seed=3, share=1.0)


def test_the_prior_never_saw_a_hidden_configuration(lcbench):
    tasks = lcbench.tasks[1:4]
    hidden = hidden_configs(lcbench.n_configs, case_seed=0)
    prior = masked_prior(lcbench, tasks, 0, hidden)
    assert np.isnan(prior.curves[:, hidden]).all()
    expected = np.stack([lcbench.task_curves(t, 0) for t in tasks])[:, ~hidden]
    assert np.array_equal(prior.curves[:, ~hidden], expected)


def test_the_orders_rank_observed_configurations_among_themselves_and_snap_hidden_ones(lcbench):
    tasks = lcbench.tasks[1:6]
    hidden = hidden_configs(lcbench.n_configs, case_seed=0)
    observed = np.flatnonzero(~hidden)
    best = np.stack([lcbench.final_values(t, 0) for t in tasks])  # (T, C) best over epochs
    best[:, hidden] = np.nan
    expected = prior_order(best)  # the package's one order, over the observed ones only
    order = observed_order(lcbench, tasks, 0, hidden)
    assert np.array_equal(order, expected) and sorted(order.tolist()) == observed.tolist()

    full = nearest_order(lcbench, get_space(lcbench.space_name), tasks, 0, hidden)
    assert sorted(full.tolist()) == list(range(lcbench.n_configs))
    assert np.array_equal(full[~hidden[full]], order)  # observed ones keep their order
    snap = NearestConfig(get_space(lcbench.space_name), [lcbench.configs[i] for i in order])
    position = {int(c): i for i, c in enumerate(full)}
    for config in np.flatnonzero(hidden)[:10]:
        neighbour = order[snap.index(lcbench.configs[config])]
        between = full[position[int(neighbour)] + 1: position[int(config)]]
        assert position[int(config)] > position[int(neighbour)]
        assert hidden[between].all()  # only other hidden configurations come in between


def test_a_case_runs_every_method_on_the_masked_prior(lcbench, release_dir):
    test_task = "Fashion-MNIST"  # where AT2's pick moves within 12 epochs
    case = run_case("lcbench", test_task, 0, ["top4-weighted", "top4-weighted-nn", "at2",
                                              "at2-observed", "at2-replica"], 12,
                    str(release_dir), TINY.to_json())
    hidden = hidden_configs(lcbench.n_configs, lcbench.task_index(test_task))
    ranks = lcbench.ranks(test_task, 0)
    assert case["hidden"] == np.flatnonzero(hidden).tolist()
    assert case["best_hidden"] == bool(hidden[int(np.argmin(ranks))])
    task = resolve_task(lcbench, train_tasks=lcbench.tasks_excluding([test_task]),
                        test_task=test_task, seed_profile=0, budget=12)
    order = observed_order(lcbench, task.train_tasks, 0, hidden)
    expected = top_k_round_robin(lcbench, task, 4, 0.5, order).recommended
    assert case["recommended"]["top4-weighted"] == expected
    assert case["ranks"]["top4-weighted"] == [int(ranks[expected[9]])]  # checkpoint 10 only
    assert not hidden[case["recommended"]["at2-observed"]].any()
    # the fit-free replica decides as AT2 over the observed half, and so as AT2 over all (the
    # hidden half waits for the observed one under the default policy)
    assert case["recommended"]["at2-replica"] == case["recommended"]["at2-observed"] == \
        case["recommended"]["at2"]
    assert len(set(case["recommended"]["at2"])) >= 2  # a real comparison: the pick moves
    assert len(case["recommended"]["at2"]) == 12
    assert case["seconds"]["at2"]["fit"] > 0


def test_a_fit_cache_is_shared_by_runs_that_differ_in_policy_settings(lcbench, release_dir,
                                                                     tmp_path):
    test_task, cache = lcbench.tasks[1], tmp_path / "fits"
    # more leaders than observed configurations: the hidden half contends, the GP is fitted
    wide = dataclasses.replace(TINY, policy=PolicySettings(leaders=60)).to_json()
    fresh = run_case("lcbench", test_task, 0, ["at2"], 10, str(release_dir), wide,
                     fit_cache=str(cache))
    assert len(list(cache.glob("*.pt"))) == 1
    again = run_case("lcbench", test_task, 0, ["at2"], 10, str(release_dir), wide,
                     fit_cache=str(cache))
    assert again["recommended"] == fresh["recommended"]  # the saved fit decides the same
    online = dataclasses.replace(TINY, policy=PolicySettings(leaders=70)).to_json()
    other = run_case("lcbench", test_task, 0, ["at2"], 10, str(release_dir), online,
                     fit_cache=str(cache))
    assert len(list(cache.glob("*.pt"))) == 1  # no second fit for a policy setting
    assert len(other["recommended"]["at2"]) == 10


def test_main_writes_the_summary_and_skips_runs_it_has(release_dir, tmp_path, capsys):
    argv = ["--database", "lcbench", "--tasks", "2", "--budget", "10", "--jobs", "1",
            "--methods", "top4-weighted,top4-weighted-nn", "--data-dir", str(release_dir),
            "--out", str(tmp_path)]
    assert main(argv) == 0
    first = capsys.readouterr()
    assert "| top4-weighted-nn |" in first.out and "2 cases" in first.out
    runs = sorted((tmp_path / "runs").glob("*.json"))
    assert len(runs) == 4  # 2 cases x 2 methods, one file each
    document = json.loads(runs[0].read_text())
    assert document["budget"] == 10 and len(document["ranks"]) == 1
    summary = (tmp_path / "summary.md").read_text()
    assert main(argv) == 0
    assert "4 runs already in" in capsys.readouterr().err
    assert (tmp_path / "summary.md").read_text() == summary  # the same runs, the same tables
    assert "2 cases; the best configuration is hidden in" in summary


def test_main_names_an_unknown_method(release_dir, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--methods", "at2,top9", "--data-dir", str(release_dir), "--out", str(tmp_path)])
    assert "['top9'] not among at2" in capsys.readouterr().err
