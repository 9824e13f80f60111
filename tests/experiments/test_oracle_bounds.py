"""The oracle bounds against values computed by hand on the release."""

import json

import numpy as np

from experiments.oracle_bounds import case_bounds, main, prefix_references


def test_case_bounds_take_the_best_rank_among_the_prior_top_k_and_the_other_seed_pick(hyperrec):
    pair = hyperrec.pair(0)
    bounds = case_bounds(hyperrec, pair.train_tasks, pair.test_task, 1)
    order = np.argsort(np.mean([hyperrec.ranks(t, 1) for t in pair.train_tasks], axis=0), kind="stable")
    ranks = hyperrec.ranks(pair.test_task, 1)
    assert bounds["top-1 oracle"] == ranks[order[0]]
    assert bounds["top-3 oracle"] == min(ranks[order[0]], ranks[order[1]], ranks[order[2]])
    assert bounds["top-10 oracle"] <= bounds["top-5 oracle"] <= bounds["top-3 oracle"]
    other_best = int(np.argmax(hyperrec.final_values(pair.test_task, 0)))
    assert bounds["other-seed oracle"] == ranks[other_best]


def test_lcbench_has_no_other_seed_oracle_and_main_writes_the_table(lcbench, release_dir, tmp_path, capsys):
    pair = lcbench.pair(0)
    assert "other-seed oracle" not in case_bounds(lcbench, pair.train_tasks, pair.test_task, 0)
    assert main(["--database", "lcbench", "--protocol", "pairs", "--data-dir", str(release_dir),
                 "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "oracle_bounds.json").read_text())
    expected = np.mean([case_bounds(lcbench, lcbench.pair(i).train_tasks, lcbench.pair(i).test_task, 0)
                        ["top-3 oracle"] for i in range(len(lcbench.pairs))])
    assert summary["lcbench"]["pairs"]["top-3 oracle"][0] == expected
    assert "| lcbench | pairs | 5 |" in capsys.readouterr().out


def test_prefix_references_pick_the_best_value_seen_within_the_first_epochs(hyperrec):
    pair = hyperrec.pair(1)
    references = prefix_references(hyperrec, pair.train_tasks, pair.test_task, 0)
    curves, ranks = hyperrec.task_curves(pair.test_task, 0), hyperrec.ranks(pair.test_task, 0)
    average = np.mean([hyperrec.ranks(t, 0) for t in pair.train_tasks], axis=0)
    top10 = np.argsort(average, kind="stable")[:10]
    for epochs in (10, 25, 50):
        seen = curves[:, :epochs].max(axis=1)
        assert references[f"first-{epochs} epochs"] == ranks[int(np.argmax(seen))]
        assert references[f"top-10, first-{epochs} epochs"] == ranks[top10[np.argmax(seen[top10])]]
    # all 75 epochs seen would be the best configuration itself; 10 epochs say much less here
    assert references["first-10 epochs"] > references["first-50 epochs"] >= 0
