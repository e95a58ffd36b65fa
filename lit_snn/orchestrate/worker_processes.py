"""Worker processes of a study with ``--workers N`` > 1: spawn them, let each build its trial context
once and run its loop (loops.py), and stop them with the invoking process."""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..entry_point import imports_without_gc, run_then_exit
from .loops import work
from .options import StudyOptions
from .spec import StudySpec
from .storage import StorageError, storage_failure
from .tracking import Tracker
from .training import quiet_libraries
from .trial import TrialContext
from .trial_queue import StudyHandle
from .watchdog import StopWatchdog
from .workers import die_with_parent

STORAGE_EXIT = 3  # a worker's exit status after a storage error it reported
CLEANUP_S = 15.0  # the invoking process's clean-up after its workers are stopped (parent run, counts)


@dataclass(frozen=True)
class WorkerLaunch:
    """What a spawned worker is given (pickled): the rest it builds in its own process."""

    spec: StudySpec
    options: StudyOptions
    experiment_id: str
    parent_run_id: str
    index: int
    deadline: float | None
    threads: int | None
    parent_pid: int


def _worker_entry(launch: WorkerLaunch, problems) -> None:
    """A spawned worker process: its trials, then its end without the interpreter's teardown."""
    run_then_exit(lambda: _work(launch, problems))


def _work(launch: WorkerLaunch, problems) -> None:
    die_with_parent(launch.parent_pid)
    with imports_without_gc():
        import lit_snn.train  # noqa: F401  # what every trial imports, before the first one
    quiet_libraries(launch.options.verbose)
    if launch.threads:
        import torch

        torch.set_num_threads(launch.threads)
    try:
        tracker = Tracker(launch.options.tracking_uri, launch.options.artifact_root)
        handle = StudyHandle(launch.spec, launch.options, launch.index, points=[], tracker=tracker)  # no grid
        ctx = TrialContext(launch.spec, launch.options, tracker, launch.experiment_id, launch.parent_run_id,
                           launch.index)
        work(ctx, handle, launch.deadline, launch.parent_pid)
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # a store that cannot be written: its one line goes to the invoking process
        failure = exc if isinstance(exc, StorageError) else storage_failure(exc, launch.options)
        if failure is None:
            raise
        problems.put(str(failure))
        sys.exit(STORAGE_EXIT)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run_processes(spec: StudySpec, options: StudyOptions, experiment_id: str, parent_run_id: str,
                  deadline: float | None, log: Callable[[str], None],
                  requeued: Callable[[], int] | None = None) -> None:
    """``options.workers`` worker processes until each has found the queue empty (or the deadline).

    ``requeued()``: how many trials are queued again after the workers ended (a worker stopped by a
    signal or killed re-queues its trial, or leaves it to the stale-trial repair): they get another
    round of workers, up to ``options.workers`` rounds. A worker that stopped on a storage error ends
    the study with that error (``StorageError``, one line)."""
    for _round in range(options.workers + 1):
        problems = _run_round(spec, options, experiment_id, parent_run_id, deadline, log)
        if problems:
            raise StorageError(problems[0])
        left = requeued() if requeued is not None else 0
        if not left or (deadline is not None and time.time() >= deadline):
            return
        log(f"  {left} trial(s) re-queued from stopped workers: starting workers again")


def _run_round(spec: StudySpec, options: StudyOptions, experiment_id: str, parent_run_id: str,
               deadline: float | None, log: Callable[[str], None]) -> list[str]:
    """One set of worker processes, joined; the storage errors they reported."""
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no forked torch/sqlite state
    threads = max(1, _cpu_count() // options.workers)
    problems = ctx.SimpleQueue()
    procs = [ctx.Process(target=_worker_entry, name=f"lit-snn-worker-{i}",
                         args=(WorkerLaunch(spec, options, experiment_id, parent_run_id, i, deadline, threads,
                                            os.getpid()), problems))
             for i in range(options.workers)]
    log(f"  starting {options.workers} worker processes (each loads torch and Lightning first) ...")
    # this process's own clean-up after the workers' grace (parent run, counts): a few seconds more
    with StopWatchdog(options.stop_grace_s + CLEANUP_S):
        for proc in procs:
            proc.start()
        try:
            for proc in procs:
                proc.join()
        except KeyboardInterrupt:  # Ctrl-C reached the whole process group; a SIGTERM only this process
            stop_processes(procs, options.stop_grace_s, log)
            raise
    crashed = [p.name for p in procs if p.exitcode not in (0, None, STORAGE_EXIT)]
    if crashed:
        log(f"worker process(es) {', '.join(crashed)} exited abnormally; their trials are re-queued")
    reported = []
    while not problems.empty():
        reported.append(problems.get())
    return reported


def stop_processes(procs: list, grace_s: float, log: Callable[[str], None]) -> None:
    """SIGTERM each process (its trial's run closed as KILLED, its point re-queued), SIGKILL those still
    alive after ``grace_s`` seconds (stuck in a native call): never an unbounded wait."""
    for proc in procs:
        proc.terminate()
    until = time.monotonic() + grace_s
    for proc in procs:
        proc.join(timeout=max(0.0, until - time.monotonic()))
    stuck = [p for p in procs if p.is_alive()]
    for proc in stuck:
        log(f"{proc.name} still running {grace_s:g} s after SIGTERM: killed (the next run re-queues its trial)")
        proc.kill()
    for proc in stuck:
        proc.join(timeout=5)
