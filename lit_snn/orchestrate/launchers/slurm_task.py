"""What one task of a study's SLURM job array runs (submitit pickles ``run_task`` and its ``TaskLaunch``):
the trials its job was running before a requeue (resumed from their checkpoints, preemption.py), then
the worker loop of the study's kind (loops.py) on the shared study, as a local worker process does,
then what a local invocation does at its end (a last repair of stale trials, and the parent run closed
when no trial of the study runs or waits any more).

On the pre-kill signal (``USR2``) or ``TERM`` the task stops its trial without failing it, marks it for
resumption in this job, requeues itself on ``USR2`` and exits (``SystemExit``, as submitit's own
handler would).

A task of several processes (``tasks_per_trial`` x ``nodes`` above 1) runs this in each: rank 0 is the
worker above, each trial a DDP fit; the other ranks fit the trials rank 0 hands them (ddp_trial.py). On
the signal every rank stops (SLURM signals the whole step) and the requeued step resumes the trial from
its last epoch-end checkpoint on all ranks."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from ...entry_point import imports_without_gc
from ..options import WORKER_ATTR, StudyOptions
from ..slurm_env import slurm_job
from ..spec import StudySpec
from .preemption import Requeued, install_signal_handlers, mark_for_resume, requeue_this_job, trials_to_resume

REQUEUED_EXIT = 3  # the exit status of a task that left for its requeue (or its kill)
PEER_ORPHANED_EXIT = 4  # a DDP peer whose rank 0 has gone (requeued, killed or crashed)


@dataclass(frozen=True)
class TaskLaunch:
    """What an array task is given: the rest it builds on its node."""

    spec: StudySpec
    options: StudyOptions
    experiment_id: str
    parent_run_id: str
    index: int  # the array task's number: its log lines start with [w<index>]; a sweep's sampler seed offset
    deadline: float | None
    tasks_per_node: int = 1  # processes per node of each trial's fit (SlurmSettings.tasks_per_trial)
    nodes: int = 1

    @property
    def world_size(self) -> int:
        """The processes of this task's SLURM step, each a DDP rank of every trial (1: no DDP)."""
        return self.tasks_per_node * self.nodes


def run_task(launch: TaskLaunch) -> dict[str, int]:
    """Run the study's trials on this node until none is left (or the deadline); the study's counts then
    (a DDP peer's: how many trials it fitted)."""
    install_signal_handlers()  # before the imports: a signal then still requeues the task
    from ..training import quiet_libraries

    started = time.time()
    with imports_without_gc():
        import lit_snn.train  # noqa: F401  # what every trial imports, before the first one
    quiet_libraries(launch.options.verbose)
    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    if cpus:  # torch would size its pool by the node's cores, not the task's share
        import torch

        torch.set_num_threads(int(cpus))
    if launch.world_size == 1:
        return _run_worker(launch, started, train=None)
    import submitit

    from .ddp_trial import RankZeroTraining, run_peer
    from .plan_channel import ACK_S, PlanHost

    rank = submitit.JobEnvironment().global_rank
    if rank != 0:
        def say(message: str) -> None:
            print(f"[w{launch.index} rank {rank}] {message}", flush=True)

        try:
            return run_peer(launch, rank, say)
        except Requeued as stop:
            say(f"{stop.signame}: rank 0 keeps the trial to resume")
            raise SystemExit(REQUEUED_EXIT) from None
        except ConnectionError as gone:  # rank 0 left first (its signal, its requeue, or its crash)
            say(f"{gone}: this rank stops with it")
            raise SystemExit(PEER_ORPHANED_EXIT) from None
    host = PlanHost(peers=launch.world_size - 1)
    try:
        counts = _run_worker(launch, started, RankZeroTraining(host, launch.tasks_per_node, launch.nodes))
    except BaseException:  # the peers stop too (signalled with this rank, or their fit fails with it)
        host.end(ack_s=0)
        raise
    if not host.end():
        print(f"[w{launch.index}] not every DDP peer read the end of the loop within {ACK_S:.0f} s", flush=True)
    return counts


def _run_worker(launch: TaskLaunch, started: float, train) -> dict[str, int]:
    """The study's worker loop in this process (``train``: rank 0's DDP training, None: a plain fit)."""
    from ..loops import work
    from ..tracking import Tracker
    from ..trial import TrialContext
    from ..trial_queue import StudyHandle

    spec, options = launch.spec, launch.options
    tracker = Tracker(options.tracking_uri, options.artifact_root)
    handle = StudyHandle(spec, options, launch.index, points=[], tracker=tracker)  # the queue holds each point
    extra = {} if train is None else {"train": train, "world_size": launch.world_size}
    ctx = TrialContext(spec, options, tracker, launch.experiment_id, launch.parent_run_id, launch.index,
                       resumable=True, **extra)
    job = slurm_job().get("job")
    ranks = "" if train is None else f", rank 0 of {launch.world_size} (SLURM_PROCID {os.environ.get('SLURM_PROCID')})"
    ctx.say(f"SLURM job {job} on {os.uname().nodename}{ranks}: study {options.study_name}")
    try:
        resume_trials(ctx, handle, job)
        work(ctx, handle, launch.deadline)
    except Requeued as stop:
        leave_for_requeue(ctx, handle, stop.signame)
        raise SystemExit(REQUEUED_EXIT) from None
    except KeyboardInterrupt:
        _end(ctx, handle, started, interrupted=True)
        raise
    outcome = _end(ctx, handle, started, interrupted=False)
    ctx.say(f"done: {outcome.counts['COMPLETE']} complete, {outcome.counts['RUNNING']} running elsewhere, "
            f"{outcome.counts['WAITING']} queued")
    return outcome.counts


def _end(ctx, handle, started: float, interrupted: bool):
    from ..study import close_parent, summarize

    outcome = summarize(ctx, handle, started)
    close_parent(handle, ctx.tracker, ctx.spec, outcome, interrupted)
    return outcome


def resume_trials(ctx, handle, job: str | None) -> None:
    """Run to the end the trials this SLURM job was running when it was requeued (same Optuna trial, same
    MLflow run, from the trial's last epoch-end checkpoint: ``run_trial`` reads the mark)."""
    import optuna

    from ..loops import run_claimed
    from ..workers import identity

    for frozen in trials_to_resume(handle.trials(), job):
        handle.storage.set_trial_system_attr(frozen._trial_id, WORKER_ATTR, identity())
        trial = optuna.trial.Trial(handle.study, frozen._trial_id)
        if ctx.spec.kind == "ablation":
            run_claimed(ctx, handle, trial, frozen._trial_id)
        else:
            _run_sweep_trial(ctx, handle, trial)


def _run_sweep_trial(ctx, handle, trial) -> None:
    """A sweep trial taken back outside ``study.optimize`` (which only asks for new ones): run, then tell."""
    from ..trial import plan_and_run, sweep_plan
    from ..workers import Heartbeat

    with Heartbeat(handle.storage, trial._trial_id, ctx.options.heartbeat_s):
        handle.tell(trial, plan_and_run(ctx, trial, sweep_plan))


def leave_for_requeue(ctx, handle, signame: str) -> None:
    """Mark this process's running trial for resumption in this job; requeue the job on ``USR2``."""
    from ..trial import trial_dir

    marked = mark_for_resume(handle.storage, handle.trials(), lambda n: trial_dir(ctx.options, n), signame)
    what = f"trial(s) {', '.join(map(str, marked))} kept RUNNING to resume" if marked else "no trial running"
    if signame == "SIGUSR2":
        requeued = requeue_this_job(ctx.say)
        ctx.say(f"{signame}: {what}; job {'requeued' if requeued else 'NOT requeued'}")
    else:  # preemption, scontrol requeue or scancel: SLURM requeues the job or not
        ctx.say(f"{signame}: {what} if SLURM requeues this job")
