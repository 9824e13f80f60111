"""The bench harness's process pool: an interrupt stops it."""

import time
from pathlib import Path

import pytest

from at2_tune.bench import harness


def _run_marking_its_start(job: harness.Job, started_dir: str) -> dict:
    """A job that records its start; seed 0 is interrupted (a Ctrl-C in its worker)."""
    Path(started_dir, job.key).touch()
    if job.seed == 0:
        raise KeyboardInterrupt
    time.sleep(0.3)
    return {"key": job.key}


@pytest.mark.integration
def test_an_interrupt_cancels_the_queued_runs_and_keeps_the_finished_ones(tmp_path):
    jobs = [harness.Job("lcbench", "loo", "adult@sp0", "adult", 0, (), "random", seed, 10)
            for seed in range(16)]
    started_dir, runs_dir = tmp_path / "started", tmp_path / "runs"
    started_dir.mkdir()
    with pytest.raises(KeyboardInterrupt):
        harness.run_missing(jobs, _run_marking_its_start, runs_dir, workers=2,
                            started_dir=str(started_dir))
    started = len(list(started_dir.iterdir()))
    # the interrupted run, the one beside it and the pool's few queued calls; before, the pool
    # went on through all 16
    assert 1 <= started <= 6
    assert not list(runs_dir.iterdir())  # nothing is written after the interrupt

    # the resume runs what is missing
    assert harness.run_missing(jobs[1:4], _run_marking_its_start, runs_dir, workers=1,
                               started_dir=str(started_dir)) == 0
    assert sorted(p.stem for p in runs_dir.iterdir()) == sorted(j.key for j in jobs[1:4])
