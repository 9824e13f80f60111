"""``at2-tune compare``: the table's numbers from the runs' traces, the checks that runs are
comparable, and (integration) two real ``at2-tune tune --method`` runs on scikit-learn's digits."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from at2_tune.cli import main
from at2_tune.errors import AT2Error
from at2_tune.live.compare import compare, mean_se, read_runs
from at2_tune.live.records import read_all

DATASET = {"name": "digits", "num_classes": 10, "num_images": 1797, "image_size": 16}


def _write_run(folder: Path, method: str, seed: int, values: list[float], test: float,
               first_trial_s: float = 5.0, wall_s: float = 60.0, **changes) -> Path:
    folder.mkdir(parents=True)
    summary = {"method": method, "budget_epochs": len(values), "concurrency": 2,
               "dataset": DATASET, "test_top1": test, "wall_s": wall_s,
               "trace": [{"trial_id": f"t{i % 3}", "epoch": 1 + i // 3, "val_top1": v}
                         for i, v in enumerate(values)],
               "phases": [{"phase": "Ray started", "since_start_s": 2.0},
                          {"phase": "first trial started", "since_start_s": first_trial_s}]}
    summary.update(changes)
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "live-options.json").write_text(json.dumps({"seed": seed}))
    return folder


def test_the_table_is_the_mean_and_standard_error_of_the_best_values_so_far(tmp_path: Path):
    runs = [_write_run(tmp_path / "a0", "at2", 0, [0.1, 0.5, 0.3, 0.6, 0.2, 0.4, 0.7, 0.1],
                       0.65, 4.0, 100.0),
            _write_run(tmp_path / "a1", "at2", 1, [0.3, 0.2, 0.4, 0.1, 0.5, 0.5, 0.2, 0.9],
                       0.85, 6.0, 120.0),
            _write_run(tmp_path / "h0", "asha", 0, [0.2, 0.1, 0.1, 0.1, 0.3, 0.1, 0.1, 0.1],
                       0.25, 3.0, 90.0)]
    done = compare(runs, tmp_path / "cmp")
    at2, asha = done["rows"]
    # budget 8: 25% -> 2 epochs, 50% -> 4, 100% -> 8
    assert at2["best_val_at_25pct"] == pytest.approx((0.5 + 0.3) / 2)
    assert at2["best_val_at_25pct_se"] == pytest.approx(0.1)  # std 0.1414 / sqrt 2
    assert at2["best_val_at_50pct"] == pytest.approx((0.6 + 0.4) / 2)
    assert at2["best_val_at_100pct"] == pytest.approx((0.7 + 0.9) / 2)
    assert at2["test_top1"] == pytest.approx(0.75) and at2["test_top1_se"] == pytest.approx(0.1)
    assert at2["first_trial_s"] == pytest.approx(5.0) and at2["wall_s"] == pytest.approx(110.0)
    assert asha["runs"] == 1 and asha["best_val_at_100pct"] == pytest.approx(0.3)
    assert asha["best_val_at_100pct_se"] is None  # one run: no standard error
    lines = done["markdown"].splitlines()
    assert lines[0].startswith("| method | runs | best val top-1 @2 ep | best val top-1 @4 ep")
    assert lines[2].startswith("| at2 | 2 | 0.400 ± 0.100 | 0.500 ± 0.100 | 0.800 ± 0.100 | "
                               "0.750 ± 0.100 | 5.0 ± 1.0 | 110.0 ± 10.0 |")
    assert lines[3] == "| asha | 1 | 0.200 | 0.200 | 0.300 | 0.250 | 3.0 | 90.0 |"
    with open(tmp_path / "cmp" / "compare-runs.csv") as handle:
        per_run = list(csv.DictReader(handle))
    assert [(r["method"], r["seed"]) for r in per_run] == [("at2", "0"), ("at2", "1"),
                                                          ("asha", "0")]
    assert float(per_run[1]["best_val_at_50pct"]) == pytest.approx(0.4)
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 10_000


def test_a_run_cut_short_reports_its_best_so_far(tmp_path: Path):
    run = _write_run(tmp_path / "r", "random", 0, [0.2, 0.4, 0.3, 0.5], 0.4)
    summary = json.loads((run / "summary.json").read_text())
    summary["budget_epochs"] = 8  # only 4 of 8 epochs were spent (every trial failed)
    (run / "summary.json").write_text(json.dumps(summary))
    (loaded,) = read_runs([run])
    assert [loaded.best_at(f) for f in (0.25, 0.5, 1.0)] == [0.4, 0.5, 0.5]


def test_runs_that_cannot_be_compared_are_clear_errors(tmp_path: Path):
    a = _write_run(tmp_path / "a", "at2", 0, [0.1, 0.2], 0.2)
    with pytest.raises(AT2Error, match="holds no summary.json"):
        read_runs([a, tmp_path / "missing"])
    other = _write_run(tmp_path / "b", "asha", 0, [0.1, 0.2], 0.2,
                       dataset={**DATASET, "image_size": 32})
    with pytest.raises(AT2Error, match="compare runs of one dataset"):
        read_runs([a, other])
    longer = _write_run(tmp_path / "c", "asha", 0, [0.1, 0.2, 0.3], 0.2)
    with pytest.raises(AT2Error, match="budget_epochs=3.*budget_epochs=2.*same budget_epochs"):
        read_runs([a, longer])
    twin = _write_run(tmp_path / "d", "at2", 0, [0.3, 0.2], 0.2)
    with pytest.raises(AT2Error, match="both at2 with seed 0"):
        read_runs([a, twin])
    assert main(["compare", str(a), str(twin), "--out", str(tmp_path / "x")]) == 2


def test_mean_se_skips_missing_values():
    assert mean_se([None, 0.5]) == (0.5, None, 1)
    mean, se, n = mean_se([1.0, 2.0, 3.0])
    assert (mean, n) == (2.0, 3) and se == pytest.approx(1.0 / math.sqrt(3))
    assert mean_se([None]) == (None, None, 0)


TUNE_ARGS = ["--dataset", "digits", "--image-size", "8", "--budget-epochs", "4",
             "--concurrency", "2", "--samples", "0", "--cpus-per-trial", "1"]


@pytest.mark.integration
def test_two_methods_on_digits_then_compare(tmp_path: Path, release_dir, capsys):
    """AT2 and ASHA tune scikit-learn's digits live through Ray, same trainable and budget;
    ``compare`` reads both."""
    pytest.importorskip("sklearn")
    outs = {}
    for method in ("at2", "asha"):
        outs[method] = tmp_path / method
        assert main(["tune", *TUNE_ARGS, "--method", method, "--data-dir", str(release_dir),
                     "--out", str(outs[method])]) == 0
    printed = capsys.readouterr().out
    assert "recommended by asha: trial" in printed and "recommended by at2: trial" in printed
    for method, out in outs.items():
        summary = json.loads((out / "summary.json").read_text())
        metrics = read_all(out / "trials")
        assert summary["method"] == method and summary["dataset"]["name"] == "digits"
        assert summary["epochs_spent"] == len(summary["trace"]) == 4
        assert summary["settings"]["scheduler"] == ("AT2Scheduler" if method == "at2" else "ASHA")
        for row in summary["trace"]:  # every counted epoch is the trial's reported one
            reported = metrics[row["trial_id"]][row["epoch"] - 1]
            assert reported["training_iteration"] == row["epoch"]
            assert reported["val_top1"] == pytest.approx(row["val_top1"])
        recommended = metrics[summary["recommended_trial"]][summary["recommended_epoch"] - 1]
        assert summary["test_top1"] == recommended["test_top1"]
        assert summary["best_val_top1"] == recommended["val_top1"]
        assert sum(t["epochs"] for t in summary["trials"]) == 4
        assert summary["phases"][-1]["phase"] == "first trial started"
    assert main(["compare", str(outs["at2"]), str(outs["asha"]), "--out",
                 str(tmp_path / "cmp")]) == 0
    table = capsys.readouterr().out
    with open(tmp_path / "cmp" / "compare.csv") as handle:
        rows = {row["method"]: row for row in csv.DictReader(handle)}
    for method, out in outs.items():
        summary = json.loads((out / "summary.json").read_text())
        best = max(row["val_top1"] for row in summary["trace"])
        assert float(rows[method]["best_val_at_100pct"]) == pytest.approx(best)
        assert float(rows[method]["test_top1"]) == pytest.approx(summary["test_top1"])
        assert f"| {method} | 1 | " in table
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 10_000


def test_an_interrupted_run_is_refused_with_the_way_to_finish_it(tmp_path: Path):
    done = _write_run(tmp_path / "done", "at2", 0, [0.1, 0.2, 0.3, 0.4], 0.4)
    cut = _write_run(tmp_path / "cut", "asha", 0, [0.1, 0.2], 0.2, budget_epochs=4,
                     epochs_spent=2, interrupted=True)
    with pytest.raises(AT2Error, match=r"cut was interrupted \(Ctrl-C\) after 2 of 4 epochs; "
                                       r"finish it with the same `at2-tune tune` command and "
                                       r"--resume"):
        read_runs([done, cut])
    assert len(read_runs([done])) == 1
