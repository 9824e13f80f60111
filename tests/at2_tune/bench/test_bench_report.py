"""Bench aggregation checked against hand-computed values: normalized regret, the average rank
across methods per epoch, means and standard errors over cases, the summary's schema."""

import math

import numpy as np
import pytest

from at2_tune.bench import report
from at2_tune.evaluation import normalized_regret


def test_normalized_regret_by_hand():
    final = [0.9, 0.5, 0.7, 0.5]  # best 0.9, worst 0.5
    assert normalized_regret(final, 0) == 0.0
    assert normalized_regret(final, 2) == pytest.approx(0.5)
    assert normalized_regret(final, [1, 2, 0]).tolist() == pytest.approx([1.0, 0.5, 0.0])
    assert normalized_regret([0.3, 0.3], 1) == 0.0  # all equal: no regret


def test_average_rank_across_methods_per_epoch_by_hand():
    curves = {  # recommendation rank per epoch (lower is better), per case
        "a": {"c1": np.array([5.0, 1.0, 0.0]), "c2": np.array([2.0, 2.0, 2.0])},
        "b": {"c1": np.array([3.0, 1.0, 4.0]), "c2": np.array([1.0, 3.0, 2.0])},
        "c": {"c1": np.array([9.0, 9.0, 9.0]), "c2": np.array([0.0, 0.0, 0.0]),
              "c3": np.array([1.0, 1.0, 1.0])},  # c3 is not shared: left out
    }
    ranks = report.average_rank_curves(curves)
    # epoch 1: c1 ranks a=2, b=1, c=3; c2 ranks a=3, b=2, c=1 -> a 2.5, b 1.5, c 2
    # epoch 2: c1 a=b tie (1.5 each), c=3; c2 a=2, b=3, c=1 -> a 1.75, b 2.25, c 2
    # epoch 3: c1 a=1, b=2, c=3; c2 a=b tie (2.5 each), c=1 -> a 1.75, b 2.25, c 2
    assert ranks["a"].tolist() == pytest.approx([2.5, 1.75, 1.75])
    assert ranks["b"].tolist() == pytest.approx([1.5, 2.25, 2.25])
    assert ranks["c"].tolist() == pytest.approx([2.0, 2.0, 2.0])


class _Db:
    """Four configurations with known final values and ranks on one task."""

    name = "toy"
    final = np.array([0.9, 0.5, 0.7, 0.8])

    def ranks(self, task, profile):
        return np.array([0, 3, 2, 1])

    def final_values(self, task, profile):
        return self.final


def _document(method, case, seed, recommended, budget=4, overhead=0.1, values=None):
    values = values or [0.6] * len(recommended)
    trace = [{"config_id": c, "recommended_config_id": c, "value": v}
             for c, v in zip(recommended, values)]
    return {"database": "toy", "protocol": "pairs", "case": case, "method": method,
            "seed": seed, "budget": budget, "test_task": case, "seed_profile": 0,
            "trace": trace, "key": f"{method}-{case}-{seed}",
            "timing": {"overhead_s_per_query": overhead, "offline_fit_s": None}}


def test_curves_carry_the_last_recommendation_over_unspent_epochs():
    run = report.curves_of(_Db(), _document("m", "t", 0, [1, 2], budget=4, values=[0.45, 0.6]))
    assert run["ranks"] == [3, 2, 2, 2]
    # the held model: 0.45, then 0.6 carried on; finals 0.9 (best) .. 0.5 (worst)
    assert run["held_regrets"] == pytest.approx([0.45 / 0.4, 0.3 / 0.4, 0.3 / 0.4, 0.3 / 0.4])
    assert run["held_ranks"] == [4, 3, 3, 3]  # 0.45 is below all four finals, 0.6 below three
    assert run["regrets"] == pytest.approx([1.0, 0.5, 0.5, 0.5])
    assert run["configs_touched"] == 2 and run["epochs_spent"] == 2


def test_summary_means_and_standard_errors_over_cases_by_hand():
    documents = [
        # method x: seeds averaged within case t1 first: rank after 4 epochs (3 + 1) / 2 = 2
        _document("x", "t1", 0, [1, 1, 1, 1], overhead=0.2),
        _document("x", "t1", 1, [3, 3, 3, 3], overhead=0.4),
        _document("x", "t2", 0, [0, 0, 0, 0], overhead=0.3),
        _document("y", "t1", 0, [2, 2, 2, 2]),
        _document("y", "t2", 0, [2, 2, 2, 2]),
    ]
    summary = report.summarize(_Db(), documents, ["x", "y"], "pairs", budget=4, concurrency=2)
    assert summary["checkpoints"] == [4] and summary["cases"] == 2
    x, y = summary["methods"]["x"], summary["methods"]["y"]
    assert x["rank@4"] == pytest.approx(1.0)            # cases 2 and 0
    assert x["rank_se@4"] == pytest.approx(math.sqrt(2) / math.sqrt(2))  # sd sqrt(2) / sqrt(2)
    # t1: configs 1 and 3 have regrets (0.9 - 0.5) / 0.4 = 1 and (0.9 - 0.8) / 0.4 = 0.25
    assert x["regret@4"] == pytest.approx(((1.0 + 0.25) / 2 + 0.0) / 2)
    assert y["rank@4"] == 2.0 and y["rank_se@4"] == 0.0
    # among the methods: t1 a tie (1.5 each), t2 x first -> x (1.5 + 1) / 2, y (1.5 + 2) / 2
    assert x["method_rank@4"] == pytest.approx(1.25) and y["method_rank@4"] == pytest.approx(1.75)
    assert x["overhead_s_per_query"] == pytest.approx(0.3)  # median of 0.2, 0.4, 0.3
    assert x["runs"] == 3 and x["seeds"] == 2 and x["cases"] == 2
    markdown = report.render_markdown(summary)
    assert "| x | 2 | 2 | 1.0 ± 1.0 |" in markdown and "0.300" in markdown
