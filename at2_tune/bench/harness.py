"""One harness for benchmark runs: jobs, their plan, a resumable process pool, the run files.

``at2-tune bench`` (through Ray Tune) and the experiments' in-process replays
(``experiments/replay_benchmark.py``) describe a run the same way (:class:`Job`), plan it the
same way (:func:`plan`: every method on every case of a protocol, ``at2_tune.bench.protocols``,
and seed profile, with its seeds) and keep one JSON file per run under ``OUT/runs``, written
when the run finishes and skipped when it exists, so an interrupted benchmark resumes where it
stopped (:func:`run_missing`, :func:`load_documents`). Each supplies its own function that runs
one job.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import re
import signal
import sys
import threading
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from at2_tune.bench.protocols import Case
from at2_tune.errors import AT2Error, Terminated
from at2_tune.simulator import ReplayTask


@dataclass(frozen=True)
class Job:
    """One run: ``method`` with ``seed`` on the case ``case`` (test task @ seed profile)."""

    database: str
    protocol: str
    case: str
    test_task: str
    seed_profile: int
    train_tasks: tuple[str, ...]
    """The prior tasks the method uses (empty for a method without transfer)."""
    method: str
    seed: int
    budget: int
    concurrency: int = 1
    seconds_per_epoch: float = 0.0
    """Simulated training time of one replayed epoch (runs through Ray Tune)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """``--set`` overrides of AT2's settings (empty for other methods)."""
    history: dict[str, Any] = field(default_factory=dict)
    """The histories protocol's options (``at2_tune.bench.histories``; empty on a grid)."""

    @property
    def key(self) -> str:
        """File name of the run: names the case, method and seed, and hashes the rest."""
        rest = [self.budget, self.concurrency, self.seconds_per_epoch, self.overrides,
                list(self.train_tasks)] + ([self.history] if self.history else [])
        digest = hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()[:8]
        task = re.sub(r"[^A-Za-z0-9.-]", "-", self.test_task)
        return (f"{self.database}_{task}_sp{self.seed_profile}_{self.method}_seed{self.seed}"
                f"_{digest}")

    def task(self) -> ReplayTask:
        return ReplayTask(self.database, self.train_tasks, self.test_task, self.seed_profile,
                          self.budget)


def plan(database: str, cases: Sequence[Case], methods: Sequence[str], *,
         profiles: Sequence[int], seeds: Callable[[str], Iterable[int]], budget: int,
         uses_prior: Callable[[str], bool] = lambda method: True,
         concurrency: int = 1, seconds_per_epoch: Callable[[str], float] = lambda m: 0.0,
         overrides: Callable[[str], dict[str, Any]] = lambda method: {},
         history: dict[str, Any] | None = None) -> list[Job]:
    """Every run: each method on each case and seed profile, with the seeds ``seeds(method)``;
    a method for which ``uses_prior`` is false gets no prior tasks (its runs are then shared by
    the cases of one test task)."""
    if budget < 1 or concurrency < 1:
        raise ValueError(f"budget={budget} and concurrency={concurrency} must each be at "
                         "least 1")
    return [Job(database, case.protocol, f"{case.name}@sp{profile}", case.test_task, profile,
                case.train_tasks if uses_prior(method) else (), method, seed, budget,
                concurrency, seconds_per_epoch(method), overrides(method),
                dict(history or {}) if uses_prior(method) else {})
            for case in cases for profile in profiles for method in methods
            for seed in seeds(method)]


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While active (in the main thread; elsewhere a no-op), a SIGTERM to this process stops it
    as Ctrl-C does: it is sent on to this process's multiprocessing children (a bench's
    workers, which take it as Ctrl-C, :func:`_worker_takes_terminate_as_interrupt`) and raised
    here as :class:`~at2_tune.errors.Terminated`, so the runs under way are not written, the
    workers exit and shut their Ray down, and the callers' cleanup runs. Without it the default
    SIGTERM killed this process alone: the workers went on with their runs, and their Ray
    processes and session folders stayed behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []

    def on_terminate(signum, frame):
        received.append(signum)
        for child in multiprocessing.active_children():
            with contextlib.suppress(OSError):
                os.kill(child.pid, signal.SIGTERM)
        raise Terminated(f"signal {signum} (SIGTERM)")

    previous = signal.signal(signal.SIGTERM, on_terminate)
    try:
        yield
    except KeyboardInterrupt as exc:
        if received and not isinstance(exc, Terminated):  # a library re-raised it as Ctrl-C
            raise Terminated(f"signal {received[0]} (SIGTERM)") from exc
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def terminate_handler_kept() -> Iterator[None]:
    """Keep this process's Python SIGTERM handler across the block. ``ray.init`` sets its own
    (one that exits, and the core worker's crash handler, which prints a stack and aborts:
    exit 134), which would replace the handler of :func:`terminate_as_interrupt` or of a
    worker; the Ray a bench started is shut down by the bench instead. Wrap ``ray.init`` in it
    (main thread only; elsewhere a no-op)."""
    handler = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        if callable(handler) and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, handler)


@contextlib.contextmanager
def ctrl_c_deferred() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) that arrives within the block and raise its
    ``KeyboardInterrupt`` when the block ends. Wrap ``ray.init`` in it: Ray runs Python
    callbacks from Cython there and swallows an exception raised inside one ("Exception ignored
    in ray._raylet..."), so a Ctrl-C within ``ray.init`` was lost and the bench ran on (seen
    once in 33 interrupts, for more than 120 s). Main thread only (elsewhere a no-op); a
    handler set within the block is kept."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum, frame):
        received.append(signum)

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGINT) is hold:
            signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt(f"signal {received[0]} (Ctrl-C) within the block, held to its end")


def _worker_takes_terminate_as_interrupt() -> None:
    """A worker's initializer: SIGTERM raises ``KeyboardInterrupt`` (what Ctrl-C raises), so
    the run under way stops unwritten and the worker exits through its normal shutdown
    (Ray's ``atexit`` hook stops its Ray processes)."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


_INTERRUPTED = False
"""Whether a run of this worker process was interrupted (:func:`_run_unless_interrupted`)."""


def _run_unless_interrupted(run_one: Callable[..., dict[str, Any]], job: Job,
                            **context: Any) -> dict[str, Any]:
    """``run_one(job, **context)`` in a worker, unless an earlier run of this worker was
    interrupted: the pool hands each worker a call or two ahead, which would otherwise run to
    their end (unwritten) before the interrupted bench could exit."""
    global _INTERRUPTED
    if _INTERRUPTED:
        raise KeyboardInterrupt(f"not started: an earlier run of worker {os.getpid()} was "
                                "interrupted")
    try:
        return run_one(job, **context)
    except (KeyboardInterrupt, SystemExit):  # SystemExit: Ray's SIGTERM handler in ray.init
        _INTERRUPTED = True
        raise


def run_missing(jobs: Sequence[Job], run_one: Callable[..., dict[str, Any]], runs_dir: Path,
                workers: int, *, description: str = "runs", **context: Any) -> int:
    """Run each job without a run file as ``run_one(job, **context)``, in this process with one
    worker or in ``workers`` spawned processes, and write each document to
    ``runs_dir/<key>.json`` when it finishes. A failed run is reported and the others go on;
    returns how many failed. An interrupt (Ctrl-C, or SIGTERM: :func:`terminate_as_interrupt`)
    stops the bench: the runs under way and the queued ones are not written, the finished
    ones stay written for a resume."""
    with terminate_as_interrupt():
        return _run_missing(jobs, run_one, runs_dir, workers, description, context)


def _run_missing(jobs: Sequence[Job], run_one: Callable[..., dict[str, Any]], runs_dir: Path,
                 workers: int, description: str, context: dict[str, Any]) -> int:
    from tqdm import tqdm

    runs_dir.mkdir(parents=True, exist_ok=True)
    todo = list({job.key: job for job in jobs
                 if not (runs_dir / f"{job.key}.json").exists()}.values())
    done = len({job.key for job in jobs}) - len(todo)
    if done:
        print(f"{done} runs already in {runs_dir}, {len(todo)} to run", file=sys.stderr)
    failed = 0
    with tqdm(total=len(todo), unit="run", desc=description, file=sys.stderr) as progress:
        def finished(job: Job, result: Callable[[], dict[str, Any]]) -> None:
            nonlocal failed
            try:
                write_json(runs_dir / f"{job.key}.json", result())
            except Exception as exc:  # keep the other runs' results
                failed += 1
                progress.write(f"FAILED {job.key}: {exc!r}")
            progress.update()

        if workers == 1:
            for job in todo:
                finished(job, lambda: run_one(job, **context))
            return failed
        pool = ProcessPoolExecutor(max_workers=workers,
                                   mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_takes_terminate_as_interrupt)
        try:
            futures = {pool.submit(_run_unless_interrupted, run_one, job, **context): job
                       for job in todo}
            for future in as_completed(futures):
                finished(futures[future], future.result)
        except BaseException:
            # Ctrl-C or SIGTERM (or a failure here): no queued run starts; a worker's run under
            # way gets the same Ctrl-C from the terminal (or the SIGTERM sent on to it), and
            # nothing more is written
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    return failed


def load_documents(jobs: Sequence[Job], runs_dir: Path) -> list[dict[str, Any]]:
    """The run documents of ``jobs`` that exist, each with its job's protocol and case (a file
    that does not hold its job's run is an error)."""
    documents = []
    for job in jobs:
        path = runs_dir / f"{job.key}.json"
        if not path.exists():
            continue
        try:
            document = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise AT2Error(f"{path} is not valid JSON ({exc}); delete it to run it again") from None
        if document.get("key") != job.key:
            raise AT2Error(f"{path} holds run {document.get('key')!r}, not {job.key!r}; delete "
                           "it to run it again")
        documents.append({**document, "protocol": job.protocol, "case": job.case})
    return documents


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` to ``path`` atomically (a reader never sees half a file)."""
    from at2_tune.paths import atomic_write

    text = json.dumps(document, indent=1) + "\n"
    atomic_write(path, lambda handle: handle.write(text.encode()))
