import math

import numpy as np
import pytest

from at2_tune import evaluation


def test_normalized_regret_by_hand():
    final = [0.9, 0.5, 0.7]
    assert evaluation.normalized_regret(final, 2) == pytest.approx(0.5)  # (.9 - .7) / (.9 - .5)
    assert evaluation.normalized_regret(final, 0) == 0.0
    assert evaluation.normalized_regret(final, 1) == 1.0
    assert evaluation.normalized_regret(final, [2, 0, 1]).tolist() == pytest.approx([0.5, 0, 1])
    assert evaluation.normalized_regret([0.3, 0.3], 1) == 0.0  # no spread: no regret


def test_the_held_model_by_hand():
    curves = np.array([[0.2, 0.5, 0.4], [0.6, 0.3, 0.9], [0.1, 0.1, 0.1]])
    # config 0 epoch 1 (0.2), config 1 epoch 1 (0.6), config 0 epoch 2 (0.5), config 1 epoch 2
    held = evaluation.held_values(curves, [0, 1, 0, 1])
    assert held.tolist() == pytest.approx([0.2, 0.6, 0.6, 0.6])
    final = curves.max(axis=1)  # 0.5, 0.9, 0.1: best 0.9, worst 0.1
    assert evaluation.held_regrets(final, held).tolist() == pytest.approx(
        [0.7 / 0.8, 0.3 / 0.8, 0.3 / 0.8, 0.3 / 0.8])
    assert evaluation.held_ranks(final, held).tolist() == [2, 1, 1, 1]  # 0.9 and 0.5 beat 0.2
    assert evaluation.held_ranks(final, [0.9]).tolist() == [0]
    assert evaluation.held_values(curves, []).size == 0
    # a run that spent 3 of 5 epochs holds its best on; one that trained nothing holds `nothing`
    assert evaluation.held_curve([0.2, 0.6, 0.5], 5, 0.1).tolist() == [0.2, 0.6, 0.6, 0.6, 0.6]
    assert evaluation.held_curve([], 3, 0.1).tolist() == [0.1, 0.1, 0.1]


def test_a_budget_table_judges_each_budget_at_its_end_against_the_best_baseline():
    def run(method, case, budget, regrets):
        return {"database": "db", "protocol": "loo", "case": case, "method": method,
                "budget": budget, "held_regrets": regrets}

    runs = [run("at2", "a", 2, [0.5, 0.2]), run("at2", "b", 2, [0.5, 0.4]),
            run("top1", "a", 2, [0.5, 0.1]), run("top1", "b", 2, [0.5, 0.3]),
            run("top3", "a", 2, [0.9, 0.6]), run("top3", "b", 2, [0.9, 0.8]),
            run("at2", "a", 3, [0.5, 0.2, 0.1]), run("at2", "b", 3, [0.5, 0.4, 0.1]),
            run("top1", "a", 3, [0.5, 0.1, 0.1]), run("top1", "b", 3, [0.5, 0.3, 0.3]),
            run("top3", "a", 3, [0.9, 0.6, 0.0]), run("top3", "b", 3, [0.9, 0.8, 0.0])]
    table = evaluation.budget_table(runs)
    # B=2: at2 0.3, top1 0.2 (best), top3 0.7; B=3: at2 0.1, top1 0.2, top3 0.0 (best)
    # mean over B: at2 (0.15 + 0.25) / 2 = 0.2, top1 (0.1 + 0.3) / 2 = 0.2, top3 0.35
    assert "| at2 | 0.300 ± 0.100 | 0.100 ± 0.000 | 0.200 ± 0.050 |" in table
    assert "| top3 | 0.700 ± 0.100 | 0.000 ± 0.000 | 0.350 ± 0.050 |" in table
    assert "| best baseline | top1 | top3 |" in table
    assert "| held regret difference | 0.100 ± 0.000 | 0.100 ± 0.000 |" in table


def test_standard_error_by_hand():
    assert evaluation.standard_error([1, 2, 3]) == pytest.approx(1 / math.sqrt(3))  # 0.577...
    assert evaluation.standard_error([2, 3]) == pytest.approx(0.5)
    assert evaluation.standard_error([4.0]) is None


def test_format_mean_se_signs_differences_and_drops_the_error_of_one_value():
    assert evaluation.format_mean_se([1, 2, 3]) == "2.000 ± 0.577"
    assert evaluation.format_mean_se([0.5, 1.5], digits=2, sign=True) == "+1.00 ± 0.50"
    assert evaluation.format_mean_se([-0.25, -0.75], sign=True) == "-0.500 ± 0.250"
    assert evaluation.format_mean_se([0.125]) == "0.125"  # no standard error of one value, no NaN


def test_average_ranks_share_ties():
    assert evaluation.average_ranks([3, 1, 3, 2]).tolist() == [3.5, 1, 3.5, 2]
    assert evaluation.average_ranks([5, 5, 5]).tolist() == [2, 2, 2]
    assert evaluation.average_ranks([0.2, 0.1]).tolist() == [2, 1]


def test_rank_across_methods_uses_the_common_cases():
    per_case = {"a": {"x": 1, "y": 5}, "b": {"x": 1, "y": 2, "z": 9}, "c": {"x": 0, "y": 7}}
    # x: a 1, b 1, c 0 -> 2.5, 2.5, 1; y: a 5, b 2, c 7 -> 2, 1, 3; z is not common.
    assert evaluation.rank_across_methods(per_case) == {"a": 2.25, "b": 1.75, "c": 2.0}


def test_paired_difference_over_common_cases():
    mean, se, n = evaluation.paired_difference({1: 3.0, 2: 5.0, 3: 1.0}, {1: 1.0, 2: 2.0, 4: 0.0})
    assert (mean, n) == (2.5, 2) and se == pytest.approx(0.5)  # differences 2 and 3
    assert evaluation.paired_difference({1: 1.0}, {2: 1.0}) == (None, None, 0)


def test_checkpoints_for_budget():
    assert evaluation.checkpoints_for(100) == (10, 25, 50, 100)
    assert evaluation.checkpoints_for(60) == (10, 25, 50)
    assert evaluation.checkpoints_for(4) == (4,)


def _run(method, case, seed, ranks, touched, regrets=None, timing=None, rss=None):
    return {"database": "db", "protocol": "pairs", "case": case, "method": method, "seed": seed,
            "ranks": ranks, "regrets": regrets or [r / 10 for r in ranks],
            "configs_touched": touched, "timing": timing, "peak_rss_mb": rss}


def _timing(fit, query, total):
    return {"offline_fit_s": fit, "query_s_median": query, "total_s": total}


RUNS = [
    _run("at2", "A", 0, [4, 2], 3, [0.4, 0.2], _timing(1, .1, 10), 100),
    _run("at2", "A", 1, [6, 0], 5, [0.6, 0.0], _timing(2, .2, 20), 200),
    _run("at2", "B", 0, [2, 2], 2, [0.2, 0.2], _timing(3, .3, 30), 150),
    _run("at2", "B", 1, [2, 4], 2, [0.2, 0.4], _timing(4, .4, 40), 50),
    _run("zero-shot", "A", 0, [3, 3], 0),
    _run("zero-shot", "B", 0, [1, 1], 0),
    _run("screening", "A", 0, [10, 8], 2),
    _run("screening", "A", 1, [20, 6], 2),
    _run("screening", "B", 0, [9, 9], 2),
    _run("screening", "B", 1, [1, 1], 2),
]


def test_summarize_by_hand():
    summary = evaluation.summarize(RUNS, checkpoints=(1, 2))
    at2, zero_shot, screening = (summary["db"]["pairs"][m] for m in ("at2", "zero-shot", "screening"))
    # AT2, seeds averaged per case: A [5, 1], B [2, 3].
    assert (at2["cases"], at2["seeds"], at2["runs"]) == (2, 2, 4)
    assert (at2["rank@1"], at2["rank@2"]) == (3.5, 2.0)
    assert at2["rank_se@1"] == pytest.approx(1.5) and at2["rank_se@2"] == pytest.approx(1.0)
    assert at2["regret@2"] == pytest.approx(0.2) and at2["regret_se@2"] == pytest.approx(0.1)
    assert at2["touched"] == 3.0  # A 4, B 2
    assert (zero_shot["rank@1"], zero_shot["rank_se@1"], zero_shot["touched"]) == (2.0, 1.0, 0.0)
    assert (screening["rank@1"], screening["rank@2"], screening["seeds"]) == (10.0, 6.0, 2)
    assert screening["rank_se@1"] == pytest.approx(5.0)
    # Ranks among methods: @1 A (5, 3, 15), B (2, 1, 5); @2 A (1, 3, 7), B (3, 1, 5).
    assert [at2["method_rank@1"], zero_shot["method_rank@1"], screening["method_rank@1"]] == [2, 1, 3]
    assert [at2["method_rank@2"], zero_shot["method_rank@2"], screening["method_rank@2"]] == [1.5, 1.5, 3]
    # Paired differences with the best baseline (zero-shot at both checkpoints).
    first, second = at2["vs_best_baseline"]["@1"], at2["vs_best_baseline"]["@2"]
    assert first["baseline"] == second["baseline"] == "zero-shot" and first["cases"] == 2
    assert (first["rank_diff"], first["rank_diff_se"]) == (1.5, pytest.approx(0.5))  # 2, 1
    assert (second["rank_diff"], second["rank_diff_se"]) == (0.0, pytest.approx(2.0))  # -2, 2
    assert second["regret_diff"] == pytest.approx(0.0) and second["regret_diff_se"] == pytest.approx(0.2)
    assert "vs_best_baseline" not in zero_shot
    # Timing: medians over AT2 runs, the largest peak RSS; baselines have none.
    assert (at2["offline_fit_s"], at2["query_s"], at2["total_s"], at2["peak_rss_mb"]) == \
        (2.5, pytest.approx(0.25), 25.0, 200.0)
    assert "offline_fit_s" not in screening


def test_render_markdown_tables():
    text = evaluation.render_markdown(evaluation.summarize(RUNS, checkpoints=(1, 2)))
    assert text.startswith("## db, pairs protocol (2 cases)")
    assert "| at2 | 2 | 2 | 3.5 ± 1.5 | 2.0 ± 1.0 | 3.0 | 2.00 / 1.50 |" in text
    assert "| zero-shot | 0.200 ± 0.100 | 0.200 ± 0.100 |" in text
    assert "| best baseline | zero-shot | zero-shot |" in text
    assert "| rank difference | 1.5 ± 0.5 | 0.0 ± 2.0 |" in text
    assert "| at2 | 4 | 2.5 | 0.25 | 25.0 | 200 |" in text


def test_summary_without_at2_has_no_paired_rows():
    summary = evaluation.summarize([r for r in RUNS if r["method"] != "at2"], checkpoints=(1, 2))
    text = evaluation.render_markdown(summary)
    assert "Paired" not in text and "Timing" not in text
    assert np.isclose(summary["db"]["pairs"]["zero-shot"]["method_rank@2"], 1.0)
