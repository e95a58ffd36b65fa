"""What one task of a study's SLURM job array runs (submitit pickles ``run_task`` and its ``TaskLaunch``):
the worker loop of the study's kind (loops.py) on the shared study, as a local worker process does,
then what a local invocation does at its end (a last repair of stale trials, and the parent run closed
when no trial of the study runs any more)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from ...entry_point import imports_without_gc
from ..options import StudyOptions
from ..spec import StudySpec
from .slurm_env import slurm_job


@dataclass(frozen=True)
class TaskLaunch:
    """What an array task is given: the rest it builds on its node."""

    spec: StudySpec
    options: StudyOptions
    experiment_id: str
    parent_run_id: str
    index: int  # the array task's number: its log lines start with [w<index>]; a sweep's sampler seed offset
    deadline: float | None


def run_task(launch: TaskLaunch) -> dict[str, int]:
    """Run the study's trials on this node until none is left (or the deadline); the study's counts then."""
    from ..loops import work
    from ..study import close_parent, summarize
    from ..tracking import Tracker
    from ..training import quiet_libraries
    from ..trial import TrialContext
    from ..trial_queue import StudyHandle

    started = time.time()
    with imports_without_gc():
        import lit_snn.train  # noqa: F401  # what every trial imports, before the first one
    quiet_libraries(launch.options.verbose)
    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    if cpus:  # torch would size its pool by the node's cores, not the task's share
        import torch

        torch.set_num_threads(int(cpus))
    spec, options = launch.spec, launch.options
    tracker = Tracker(options.tracking_uri, options.artifact_root)
    handle = StudyHandle(spec, options, launch.index, points=[], tracker=tracker)  # the queue holds each point
    ctx = TrialContext(spec, options, tracker, launch.experiment_id, launch.parent_run_id, launch.index)
    ctx.say(f"SLURM job {slurm_job().get('job')} on {os.uname().nodename}: study {options.study_name}")
    interrupted = False
    try:
        work(ctx, handle, launch.deadline)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        outcome = summarize(ctx, handle, started)
        close_parent(handle, tracker, spec, outcome, interrupted)
    ctx.say(f"done: {outcome.counts['COMPLETE']} complete, {outcome.counts['RUNNING']} running elsewhere, "
            f"{outcome.counts['WAITING']} queued")
    return outcome.counts
