"""Preemption-safe trials of a SLURM array task: the pre-kill signal, a checkpoint at each epoch's end,
the task requeued, the same trial resumed.

- Each trial of a task saves its latest epoch-end Lightning checkpoint in ``<trial folder>/resume/``
  (``resume_checkpoint_callback``). Resuming from an epoch's end is exact (the fit goes on as if
  never stopped); a checkpoint taken at the signal, mid-epoch, would not be (the interrupted epoch's
  data order is not restored), so at most the epoch in progress is trained again.
- ``install_signal_handlers``: ``USR2`` (``#SBATCH --signal=USR2@N``: N seconds before the time
  limit, or ``scancel --signal=USR2``) and ``TERM`` (preemption, ``scontrol requeue``, ``scancel``)
  raise ``Requeued`` in the main thread, which unwinds the trial without failing it (run_trial and the
  loops catch interrupts and failures, not this). The task then marks its running trial "resume from
  this checkpoint, in job J" (``RESUME_ATTR``; its worker record loses its pid, so no reaper takes
  the process's end for a death), and on ``USR2`` requeues itself (``scontrol requeue``, then
  ``StartTime=now``: slurmctld otherwise holds a requeued job about 2 minutes). On ``TERM`` SLURM
  decides: a requeued job resumes the trial, a cancelled one leaves the queue and its trial is failed
  and queued again like any dead worker's.
- The requeued task (same array task id) first takes back the trials marked for its job
  (``trials_to_resume``): same Optuna trial, same MLflow run, ``ckpt_path`` its last checkpoint.
- A marked trial is never stale while its job is in ``squeue`` (``held_by_requeue``, asked by the
  storages' heartbeat checks); ``fail_trials_of_gone_jobs`` fails at once the trials whose SLURM job
  has left the queue (``scancel`` of the array), so the same command re-runs them without waiting
  for their heartbeats to age.

Why not submitit's own checkpoint protocol (``checkpoint()`` returning a ``DelayedSubmission``): its
handler raises ``SystemExit`` anywhere in the training, which the trial code takes for an interrupt
(trial failed, run closed), and requeues without ``StartTime=now``. Why not Lightning's
``SLURMEnvironment(auto_requeue=True)``: it saves a mid-epoch checkpoint (not an exact resume) and
closes the MLflow run as finished; it listens to ``SIGUSR1``, which this launcher never asks for.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from optuna.trial import FrozenTrial, TrialState

from ...trial_record import RESUME_ATTR, WORKER_ATTR
from ..resume import RESUME_DIR, job_in_queue
from ..slurm_env import slurm_job

SIGNALS = ("SIGUSR2", "SIGTERM")


class Requeued(BaseException):  # noqa: N818 - not an error: the task stops for its job to run again
    """Raised by the signal handler in the main thread: this task is about to be requeued or killed."""

    def __init__(self, signame: str) -> None:
        super().__init__(signame)
        self.signame = signame


_stopping: list[str] = []  # the first signal's name: later ones are ignored


def _raise_requeued(signum, _frame) -> None:
    # once: the requeue's own SIGTERM must not interrupt the marking (a flag, not SIG_IGN: Lightning puts
    # back the handlers it found when the unwinding fit tears down)
    if _stopping:
        return
    _stopping.append(signal.Signals(signum).name)
    raise Requeued(_stopping[0])


def install_signal_handlers() -> None:
    """``USR2`` and ``TERM`` raise ``Requeued`` (replacing submitit's handlers of them)."""
    for name in SIGNALS:
        signal.signal(getattr(signal, name), _raise_requeued)


def mark_for_resume(storage, trials: list[FrozenTrial], trial_dir, signame: str) -> list[int]:
    """Mark the RUNNING ``trials`` of this process "resume in this SLURM job"; their numbers.

    ``trial_dir(number)``: the trial's folder (its checkpoints). The worker record keeps host and job
    and drops the pid: a reaper must not take this process's end for its trial's death.
    """
    job = slurm_job().get("job")
    marked = []
    for frozen in trials:
        worker = frozen.system_attrs.get(WORKER_ATTR) or {}
        if frozen.state != TrialState.RUNNING or worker.get("pid") != os.getpid():
            continue
        folder = Path(trial_dir(frozen.number)) / RESUME_DIR
        storage.set_trial_system_attr(frozen._trial_id, RESUME_ATTR,
                                      {"job": job, "dir": str(folder), "signal": signame})
        storage.set_trial_system_attr(frozen._trial_id, WORKER_ATTR,
                                      {"host": worker.get("host"), "job": job, "requeued": True})
        marked.append(frozen.number)
    return marked


def requeue_this_job(log) -> bool:
    """``scontrol requeue`` this task's job, then make it eligible at once; whether it was requeued."""
    job = os.environ.get("SLURM_JOB_ID")  # an array task's own id (SLURM_ARRAY_JOB_ID_TASK names it too)
    if not job or shutil.which("scontrol") is None:
        log("not under SLURM: nothing to requeue")
        return False
    done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
    if done.returncode != 0:
        log(f"scontrol requeue {job} failed: {(done.stderr or done.stdout).strip()}")
        return False
    _eligible_at_once(job)
    return True


def _eligible_at_once(job: str) -> None:
    """slurmctld holds a requeued job about 2 minutes (its begin time) and takes ``StartTime=now`` only once
    the job is pending again, i.e. after this process has exited: a detached shell, deaf to the job's
    kill signals, waits for ``squeue`` to show it PENDING and sets it then (an update while the job
    still runs or completes is accepted and changes nothing; where the job's processes are tracked
    by cgroup the shell dies with the job, and the job waits those 2 minutes)."""
    script = (f'trap "" TERM HUP INT; for i in $(seq 360); do '
              f'if [ "$(squeue -h -j {job} -o %T 2>/dev/null)" = PENDING ]; then '
              f'scontrol update JobId={job} StartTime=now 2>/dev/null && exit 0; fi; sleep 0.5; done')
    subprocess.Popen(["sh", "-c", script], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True)


def trials_to_resume(trials: list[FrozenTrial], job: str | None) -> list[FrozenTrial]:
    """The RUNNING trials marked for resumption in SLURM job ``job`` (this task after its requeue)."""
    if not job:
        return []
    return [t for t in trials if t.state == TrialState.RUNNING
            and (t.system_attrs.get(RESUME_ATTR) or {}).get("job") == job]


def fail_trials_of_gone_jobs(storage, study, trials: list[FrozenTrial]) -> list[int]:
    """Fail the RUNNING trials whose SLURM job has left the queue (``scancel``), each through the storage's
    stale-trial callback (its point queued again, its MLflow run closed); their numbers.

    Their heartbeats would say so only after the grace period; a task of the next launch finding an
    empty queue before then would exit and leave those points for yet another launch.
    """
    import optuna

    callback = storage.get_heartbeat_stale_trial_callback()
    failed, verdicts = [], {}
    for frozen in trials:
        job = (frozen.system_attrs.get(WORKER_ATTR) or {}).get("job")
        if frozen.state != TrialState.RUNNING or not job:
            continue
        if job not in verdicts:
            verdicts[job] = job_in_queue(job)
        if verdicts[job] is not False:
            continue
        try:
            if not storage.set_trial_state_values(frozen._trial_id, TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process got there first
        if callback is not None:
            callback(study, storage.get_trial(frozen._trial_id))
        failed.append(frozen.number)
    return failed
