"""What lets a trial go on from its last epoch instead of epoch 0 (used by ``run_trial`` for any trial
marked ``RESUME_ATTR``; the SLURM launcher's ``launchers/preemption.py`` marks them and requeues).

A trial marked for resumption keeps its latest epoch-end Lightning checkpoint in ``<trial
folder>/resume/`` (``resume_checkpoint_callback``); resuming from an epoch's end is exact (a mid-epoch
checkpoint would not restore the data order). While its SLURM job is still queued the trial is not
stale, whatever its heartbeat (``held_by_requeue``, asked by the storages' stale-trial checks).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ..trial_record import RESUME_ATTR

RESUME_DIR = "resume"  # in a trial's folder: its latest epoch-end checkpoint, epoch=<k>.ckpt


def resume_checkpoint_callback(trial_dir: Path):
    """A ``ModelCheckpoint`` keeping the latest epoch-end checkpoint of a trial in ``trial_dir/resume``."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    callback = ModelCheckpoint(dirpath=str(trial_dir / RESUME_DIR), filename="{epoch}", monitor=None, save_top_k=1,
                               enable_version_counter=False)
    callback.resume_point = True  # the trial's MLflow logger uploads its best checkpoint, never this one
    return callback


def latest_checkpoint(folder: str | os.PathLike) -> tuple[Path, int] | None:
    """The newest ``epoch=<k>.ckpt`` in ``folder`` and its epoch ``k`` (0: the first), or None."""
    found = []
    for path in Path(folder).glob("epoch=*.ckpt"):
        epoch = path.stem.partition("=")[2]
        if epoch.isdigit():
            found.append((int(epoch), path))
    if not found:
        return None
    epoch, path = max(found)
    return path, epoch


def resume_point(system_attrs: dict) -> tuple[Path, int] | None:
    """The checkpoint (and its epoch) a trial marked for resumption goes on from; None: from the start."""
    record = system_attrs.get(RESUME_ATTR)
    return latest_checkpoint(record["dir"]) if record else None


def job_in_queue(job: str) -> bool | None:
    """Whether SLURM job ``job`` (``123`` or ``123_4``) is pending or running; None: cannot tell."""
    if shutil.which("squeue") is None:
        return None
    done = subprocess.run(["squeue", "-h", "-j", job, "-o", "%i"], capture_output=True, text=True)
    if done.returncode != 0:
        return False if "Invalid job id" in done.stderr else None  # a purged job; else slurmctld is down
    return bool(done.stdout.strip())


def held_by_requeue(system_attrs: dict) -> bool:
    """A RUNNING trial marked for resumption whose job is still queued: not stale, whatever its heartbeat."""
    job = (system_attrs.get(RESUME_ATTR) or {}).get("job")
    return bool(job) and job_in_queue(job) is not False
