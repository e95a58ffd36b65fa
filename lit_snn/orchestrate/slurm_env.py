"""What SLURM tells a process about the job it runs in (its environment variables)."""

from __future__ import annotations

import os


def slurm_job() -> dict[str, str]:
    """This process's SLURM job: ``{"job": "123_4"}`` for task 4 of array 123, ``{"job": "123"}`` for a
    plain job, ``{}`` outside SLURM (recorded on the trials a worker claims: ``lit-snn status`` shows it)."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return {"job": f"{array}_{task}"}
    job = os.environ.get("SLURM_JOB_ID")
    return {"job": job} if job else {}
