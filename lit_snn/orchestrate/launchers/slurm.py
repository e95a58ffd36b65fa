"""``lit-snn ablate|sweep FILE --launcher slurm``: the study's workers as one SLURM job array (submitit).

The invoking process does what a local run does before its workers start: it validates the file,
checks that the MLflow store answers, opens (or resumes) the study and its MLflow parent run, repairs
stale trials and queues the ablation's missing points. Then it submits ``--workers`` array tasks
through ``submitit.AutoExecutor``; each runs the worker loop of the study's kind on the shared
study (slurm_task.py). The command prints the job id and returns; with ``--wait`` it follows the
study (progress.py) until no trial is queued or running, or the array has left the queue (``squeue``:
without slurmdbd there is no ``sacct``, which submitit's job states read), and sums up as a local run.

The nodes share the study through its storage: SQLite is refused (its locks are not safe on a network
filesystem); a journal file on a shared disk or a PostgreSQL server is what a cluster uses.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...store_files import sqlite_path
from ..options import StudyOptions
from ..resume import job_in_queue
from ..spec import StudySpec
from ..tracking import is_server
from ..yamlio import SpecError
from .preemption import fail_trials_of_gone_jobs
from .slurm_settings import SlurmSettings
from .slurm_task import TaskLaunch, run_task

POLL_S = 5.0  # how often --wait reads the array's state from squeue


@dataclass
class Submitted:
    """A submitted array: its SLURM job id, its tasks and where submitit keeps their scripts and logs."""

    job_id: str
    tasks: int
    folder: Path


def check_cluster_stores(options: StudyOptions, log: Callable[[str], None]) -> None:
    """``SpecError`` for a SQLite study storage; a line about a file MLflow store every node must reach."""
    if sqlite_path(options.storage) is not None:
        raise SpecError(f"--launcher slurm: the study storage {options.storage} is SQLite, which the nodes of a "
                        "cluster cannot share safely; use --storage journal:/shared/path/study.journal (a file "
                        "on a disk every node mounts) or --storage postgresql://user:pass@host/db")
    if not is_server(options.tracking_uri):
        log(f"  MLflow store {options.tracking_uri}: every node must reach this path (a shared disk); on a "
            "cluster a tracking server (--tracking-uri http://host:5000) is the safe choice")


def submit(spec: StudySpec, options: StudyOptions, settings: SlurmSettings, *, wait: bool,
           log: Callable[[str], None] = print):
    """Open the study as a local run does, submit its workers as one array; with ``wait``, follow it and
    return the ``StudyOutcome`` a local run returns, else the ``Submitted`` array (None: nothing to run)."""
    from ..progress import Ticking
    from ..study import announce, open_study, summarize, validate

    if spec.adaptive:
        raise SpecError("--launcher slurm: adaptive seeds decide between rounds in the invoking process; run "
                        "this ablation locally, or list its seeds")
    if settings.world_size > 1 and spec.prunes:
        raise SpecError(f"--launcher slurm: a trial on {settings.world_size} processes cannot be pruned (Optuna's "
                        "Lightning pruning callback needs every rank to reach the study); remove the sweep's "
                        "`pruner:` or set tasks_per_trial and nodes to 1")
    check_cluster_stores(options, log)
    started = time.time()
    points = validate(spec)
    total = len(points) if points is not None else spec.n_trials
    ctx, handle = open_study(spec, options, points, total, log)
    handle.reap()
    gone = fail_trials_of_gone_jobs(handle.storage, handle.study, handle.trials())
    if gone:
        log(f"  trial(s) {', '.join(map(str, gone))} ran in SLURM jobs no longer queued: failed, "
            "their points queued again")
    handle.close_runs_left_running(ctx.experiment_id)
    added = handle.enqueue_missing() if spec.kind == "ablation" else 0
    if announce(ctx, handle, total, added):
        outcome = summarize(ctx, handle, started)
        outcome.idle = True
        return outcome if wait else None
    from lit_snn.neurons.cpu.warmup import precompile_cpu_kernels  # imports torch: not at the CLI's start

    with Ticking(log, "compiling the CPU kernels"):  # into the cache the tasks of this node (or disk) reuse
        precompile_cpu_kernels([p.config for p in points] if points is not None else [spec.base], log)
    folder = Path(settings.folder) if settings.folder else Path(options.work_dir).parent.parent / "slurm"
    deadline = started + spec.time_limit_s if spec.time_limit_s else None
    launches = [TaskLaunch(spec, options, ctx.experiment_id, ctx.parent_run_id, i, deadline,
                           settings.tasks_per_trial, settings.nodes) for i in range(options.workers)]
    submitted = _submit_array(settings, launches, folder / options.study_name, f"lit-snn-{options.study_name}")
    log(f"  submitted SLURM job array {submitted.job_id} ({submitted.tasks} task(s)); scripts and logs in "
        f"{submitted.folder}")
    if not wait:
        return submitted
    return follow(ctx, handle, spec, submitted, total, started, log)


def _submit_array(settings: SlurmSettings, launches: list[TaskLaunch], folder: Path, name: str) -> Submitted:
    import submitit

    executor = submitit.AutoExecutor(folder=folder / "%j", cluster="slurm")
    executor.update_parameters(**settings.submitit_parameters(len(launches), name))
    try:
        jobs = executor.map_array(run_task, launches)
    except subprocess.CalledProcessError as exc:  # sbatch refused the script: its own words
        said = (exc.stderr or exc.output or b"")
        said = said.decode(errors="replace") if isinstance(said, bytes) else str(said)
        raise SpecError(f"--launcher slurm: sbatch refused the job array: {said.strip() or exc}") from exc
    return Submitted(jobs[0].job_id.split("_")[0], len(jobs), folder)


def array_in_queue(job_id: str) -> bool:
    """Whether any task of array ``job_id`` is pending or running (``squeue``; an unknown id: no)."""
    return job_in_queue(job_id) is True


def follow(ctx, handle, spec: StudySpec, submitted: Submitted, total: int, started: float,
           log: Callable[[str], None]):
    """``--wait``: progress lines until no trial is queued or running, or the array has left the queue;
    then the outcome (the parent run closed as a local run closes it)."""
    from ..study import close_parent, follow_progress, summarize

    follower = follow_progress(handle, spec, ctx.options, total, log).start()
    try:
        while True:
            time.sleep(POLL_S)
            counts = handle.counts()
            busy = counts["RUNNING"] or (counts["WAITING"] if spec.kind == "ablation" else
                                         counts["COMPLETE"] + counts["PRUNED"] < spec.n_trials)
            if not busy or not array_in_queue(submitted.job_id):
                break
    except KeyboardInterrupt as exc:
        exc.add_note(f"the job array {submitted.job_id} goes on: `scancel {submitted.job_id}` stops it")
        raise
    finally:
        follower.stop()
    outcome = summarize(ctx, handle, started)
    close_parent(handle, ctx.tracker, spec, outcome, interrupted=False)
    return outcome
