"""The soak run's summary: the driver after the warm-up against its last sample, and the run
folder against the checkpoints it holds (computed on a hand-made run, no Ray)."""

from __future__ import annotations

import os

import pytest

from experiments.soak import driver_sample, epochs_reported, summarize, table


def _write(path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


def test_the_summary_compares_the_driver_after_the_warmup_with_its_end(tmp_path) -> None:
    experiment = tmp_path / "ray" / "at2-tune"
    for trial, kept in (("trial_a", 3), ("trial_b", 2)):
        for index in range(kept):
            _write(experiment / trial / f"checkpoint_{index:06d}" / "model.pt", 1000)
        _write(experiment / trial / "result.json", 10)
    _write(experiment / "experiment_state.json", 5)
    samples = [{"seconds": 1, "epochs": 5, "rss_mb": 400.0, "open_files": 30},
               {"seconds": 2, "epochs": 22, "rss_mb": 500.0, "open_files": 40},
               {"seconds": 3, "epochs": 120, "rss_mb": 530.0, "open_files": 45},
               {"seconds": 4, "epochs": 200, "rss_mb": 520.0, "open_files": 42},
               {"seconds": 5, "epochs": 200, "rss_mb": 300.0, "open_files": 8}]  # shutting down
    result = summarize(samples, warmup=20, experiment=experiment)
    assert (result["warmup_epochs"], result["final_epochs"]) == (22, 200)  # first >= 20
    assert result["rss_change"] == pytest.approx(0.04)  # when epoch 200 came, not at shutdown
    assert result["open_files_change"] == pytest.approx(0.05)
    assert (result["peak_rss_mb"], result["peak_open_files"]) == (530.0, 45)
    assert (result["trials"], result["checkpoints"], result["most_checkpoints_per_trial"]) == \
        (2, 5, 3)
    assert result["checkpoint_bytes"] == 5000 and result["experiment_bytes"] == 5025
    assert "| driver resident memory (MB) | 500 | 520 | +4.0% | 530 |" in table(result)


def test_the_samples_read_this_process_and_the_reported_epochs(tmp_path) -> None:
    resident_mb, descriptors = driver_sample(os.getpid())
    assert resident_mb > 10 and descriptors > 2
    assert driver_sample(2 ** 22 + 7) is None  # no such process
    _write(tmp_path / "trials" / "t1" / "metrics.jsonl", 0)
    (tmp_path / "trials" / "t1" / "metrics.jsonl").write_text('{"a": 1}\n{"a": 2}\n')
    (tmp_path / "trials" / "t2").mkdir()
    (tmp_path / "trials" / "t2" / "metrics.jsonl").write_text('{"a": 1}\n')
    assert epochs_reported(tmp_path) == 3
