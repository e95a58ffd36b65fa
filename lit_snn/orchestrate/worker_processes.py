"""Worker processes of a study with ``--workers N`` > 1: spawn them, let each build its trial context
once and run its loop (loops.py), and stop them with the invoking process."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from dataclasses import dataclass

from ..entry_point import imports_without_gc, run_then_exit
from .loops import work
from .options import StudyOptions
from .spec import StudySpec
from .tracking import Tracker
from .training import quiet_libraries
from .trial import TrialContext
from .trial_queue import StudyHandle
from .workers import die_with_parent


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


def _worker_entry(launch: WorkerLaunch) -> None:
    """A spawned worker process: its trials, then its end without the interpreter's teardown."""
    run_then_exit(lambda: _work(launch))


def _work(launch: WorkerLaunch) -> None:
    die_with_parent(launch.parent_pid)
    with imports_without_gc():
        import lit_snn.train  # noqa: F401  # what every trial imports, before the first one
    quiet_libraries(launch.options.verbose)
    if launch.threads:
        import torch

        torch.set_num_threads(launch.threads)
    tracker = Tracker(launch.options.tracking_uri, launch.options.artifact_root)
    handle = StudyHandle(launch.spec, launch.options, launch.index, points=[], tracker=tracker)  # no grid
    ctx = TrialContext(launch.spec, launch.options, tracker, launch.experiment_id, launch.parent_run_id, launch.index)
    try:
        work(ctx, handle, launch.deadline)
    except KeyboardInterrupt:
        pass


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run_processes(spec: StudySpec, options: StudyOptions, experiment_id: str, parent_run_id: str,
                  deadline: float | None, log: Callable[[str], None]) -> None:
    """``options.workers`` worker processes until each has found the queue empty (or the deadline)."""
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no forked torch/sqlite state
    threads = max(1, _cpu_count() // options.workers)
    procs = [ctx.Process(target=_worker_entry, name=f"lit-snn-worker-{i}",
                         args=(WorkerLaunch(spec, options, experiment_id, parent_run_id, i, deadline, threads,
                                            os.getpid()),))
             for i in range(options.workers)]
    log(f"  starting {options.workers} worker processes (each loads torch and Lightning first) ...")
    for proc in procs:
        proc.start()
    try:
        for proc in procs:
            proc.join()
    except KeyboardInterrupt:  # Ctrl-C reached the whole process group; a SIGTERM only this process
        for proc in procs:
            proc.terminate()  # the workers close their runs as KILLED and stop
        for proc in procs:
            proc.join(timeout=30)
        raise
    crashed = [p.name for p in procs if p.exitcode not in (0, None)]
    if crashed:
        log(f"worker process(es) {', '.join(crashed)} exited abnormally; re-run to resume their trials")
