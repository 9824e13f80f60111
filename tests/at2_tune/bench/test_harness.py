"""The bench harness's process pool: an interrupt (Ctrl-C or SIGTERM) stops it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from at2_tune.bench import harness
from at2_tune.errors import Terminated


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


def _run_terminating_this_process(job: harness.Job) -> dict:
    """A job that sends SIGTERM to its own process (a bench run in process, killed)."""
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)  # the signal interrupts this
    return {"key": job.key}


def _not_handled(signum, frame):
    raise AssertionError("the SIGTERM reached the handler set before the bench")


def test_sigterm_in_process_stops_the_bench_unwritten_and_restores_the_handler(tmp_path):
    jobs = [harness.Job("lcbench", "loo", "adult@sp0", "adult", 0, (), "random", seed, 10)
            for seed in range(3)]
    before = signal.signal(signal.SIGTERM, _not_handled)  # so that a miss fails, not kills
    try:
        started = time.perf_counter()
        with pytest.raises(Terminated):
            harness.run_missing(jobs, _run_terminating_this_process, tmp_path / "runs",
                                workers=1)
        assert time.perf_counter() - started < 4  # not after the job's sleep
        assert not list((tmp_path / "runs").iterdir())
        assert signal.getsignal(signal.SIGTERM) is _not_handled
    finally:
        signal.signal(signal.SIGTERM, before)


_POOL_SCRIPT = """
import sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from at2_tune.bench import harness
from test_harness import _run_marking_its_pid

jobs = [harness.Job("lcbench", "loo", "adult@sp0", "adult", 0, (), "random", seed, 10)
        for seed in range(8)]
harness.run_missing(jobs, _run_marking_its_pid, Path({runs!r}), workers=2,
                    started_dir={started!r})
"""


def _run_marking_its_pid(job: harness.Job, started_dir: str) -> dict:
    """A long job that records which worker process started it."""
    Path(started_dir, f"{os.getpid()}-{job.seed}").touch()
    time.sleep(60)
    return {"key": job.key}


@pytest.mark.integration
def test_sigterm_stops_the_workers_too(tmp_path):
    """A SIGTERM to the bench alone (``kill``, a job scheduler's limit) used to kill the parent
    only: the workers went on with their runs (and their Ray processes with them)."""
    started_dir, runs_dir = tmp_path / "started", tmp_path / "runs"
    started_dir.mkdir()
    script = _POOL_SCRIPT.format(tests=str(Path(__file__).parent), runs=str(runs_dir),
                                 started=str(started_dir))
    bench = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    workers = set()
    try:
        deadline = time.monotonic() + 60
        while len(list(started_dir.iterdir())) < 2:  # both workers are in a run
            assert time.monotonic() < deadline and bench.poll() is None
            time.sleep(0.2)
        workers = {int(p.name.split("-")[0]) for p in started_dir.iterdir()}
        bench.send_signal(signal.SIGTERM)
        _, stderr = bench.communicate(timeout=30)  # not the jobs' 60 s
        assert bench.returncode != 0 and "Terminated" in stderr
        assert len(list(started_dir.iterdir())) == 2  # the queued runs never started
        assert not list(runs_dir.iterdir())
        time.sleep(1)
        assert not [pid for pid in workers if _alive(pid)]
    finally:  # a failure leaves nothing running
        for pid in [bench.pid, *workers]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        bench.wait()


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def _init_swallowing_ctrl_c(steps: list[str]) -> None:
    """What ``ray.init`` does with a Ctrl-C that arrives in one of its Cython callbacks: the
    ``KeyboardInterrupt`` is swallowed there and the call goes on."""
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)  # the handler runs on the main thread here
    except KeyboardInterrupt:
        steps.append("swallowed")
    steps.append("init ended")


@pytest.fixture
def python_ctrl_c_handler():
    """Python's own SIGINT handler, as a fresh process has it (an earlier ``tune.run`` in this
    process can leave Tune's installed), restored afterwards."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_a_ctrl_c_that_ray_init_would_swallow_is_raised_when_the_init_ends(python_ctrl_c_handler):
    """Before, the bench ran on after such a Ctrl-C (once for more than 120 s)."""
    steps: list[str] = []
    with pytest.raises(KeyboardInterrupt, match="held to its end"):
        with harness.ctrl_c_deferred():
            _init_swallowing_ctrl_c(steps)
            steps.append("after init")
    assert steps == ["init ended", "after init"]  # nothing was raised inside the block
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    with harness.ctrl_c_deferred():  # no Ctrl-C: nothing is raised
        steps.append("quiet")
    assert steps[-1] == "quiet" and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_without_the_deferral_the_ctrl_c_is_lost(python_ctrl_c_handler):
    """The premise of the test above: the stand-in for ``ray.init`` does lose a Ctrl-C."""
    steps: list[str] = []
    _init_swallowing_ctrl_c(steps)
    assert steps == ["swallowed", "init ended"]
