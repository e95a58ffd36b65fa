"""The scheduler settings of a SLURM launch, from a study file's ``launcher:`` block and the CLI's
``--slurm-*`` flags (a flag wins over the file), checked once, turned into submitit's parameters.

    launcher:
      type: slurm
      partition: gpu
      time: "1-00:00:00"          # sbatch's formats: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
      cpus_per_task: 8
      gpus_per_task: 1
      mem: 32G
      account: my_lab
      array_parallelism: 4        # array tasks running at once (default: all)
      additional: {qos: high}     # any other #SBATCH --key=value
      setup: ["module load cuda/12.4"]
      signal_delay_s: 120         # USR2 this long before the time limit: the trial stops, the task is requeued
      tasks_per_trial: 2          # processes per node of one trial: a DDP fit (ddp_trial.py; default 1)
      nodes: 1                    # nodes of one trial (default 1): the fit runs on tasks_per_trial x nodes ranks

``--workers N`` is the number of array tasks; each runs one worker loop on the shared study (with
``tasks_per_trial`` or ``nodes`` above 1, each array task is one SLURM step of that many processes
training one trial at a time).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

from ..yamlio import SpecError

DEFAULT_SIGNAL_DELAY_S = 120  # sbatch --signal=USR2@120: time to stop a trial and requeue before the kill
DEFAULT_TIME_MIN = 24 * 60  # submitit's own default is 5 minutes: far too short for a training trial
TIME_FORMATS = "MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS"
_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def time_minutes(value: Any, where: str = "time") -> int:
    """sbatch's ``--time`` value (an int: minutes) in whole minutes, rounded up (sbatch does too)."""
    if isinstance(value, int) and not isinstance(value, bool):
        minutes, seconds = value, 0
    else:
        match = _TIME.match(str(value).strip())
        if match is None:
            raise SpecError(f"{where}: {value!r} is not a SLURM time; use {TIME_FORMATS}")
        days, first, second, third = match.groups()
        if days is not None:  # D-HH[:MM[:SS]]
            minutes = int(days) * 1440 + int(first) * 60 + int(second or 0)
            seconds = int(third or 0)
        elif third is not None:  # HH:MM:SS
            minutes, seconds = int(first) * 60 + int(second), int(third)
        else:  # MM[:SS]
            minutes, seconds = int(first), int(second or 0)
    total = minutes + (seconds > 0)
    if total < 1:
        raise SpecError(f"{where}: {value!r} must be at least one minute")
    return total


@dataclass
class SlurmSettings:
    """What ``sbatch`` is asked for, per array task (one worker each)."""

    partition: str | None = None
    time: str | int = DEFAULT_TIME_MIN
    cpus_per_task: int | None = None
    gpus_per_task: int | None = None
    mem: str | None = None
    account: str | None = None
    array_parallelism: int | None = None
    additional: dict[str, Any] = field(default_factory=dict)
    setup: list[str] = field(default_factory=list)
    signal_delay_s: int = DEFAULT_SIGNAL_DELAY_S  # the pre-kill signal, seconds before the time limit
    folder: str | None = None  # submitit's scripts and logs (default: <store-dir>/slurm/<study>), on a shared disk
    tasks_per_trial: int = 1  # processes per node training one trial together (Lightning's DDP); 1: no DDP
    nodes: int = 1  # nodes of one trial

    @property
    def world_size(self) -> int:
        """The processes of one trial (DDP ranks): ``tasks_per_trial`` on each of ``nodes``."""
        return self.tasks_per_trial * self.nodes

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def check(self, where: str = "launcher") -> SlurmSettings:
        """``SpecError`` naming the setting and what is valid; the settings otherwise."""
        time_minutes(self.time, f"{where}.time")
        for name in ("cpus_per_task", "gpus_per_task", "array_parallelism", "signal_delay_s", "tasks_per_trial",
                     "nodes"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise SpecError(f"{where}.{name}: {value!r} must be a whole number >= 1")
        if self.mem is not None and not re.match(r"^\d+[KMGT]?$", str(self.mem)):
            raise SpecError(f"{where}.mem: {self.mem!r} is not a SLURM memory size; use e.g. 16G, 4000M or 4000")
        if not isinstance(self.additional, dict):
            raise SpecError(f"{where}.additional: give a mapping of #SBATCH options, e.g. {{qos: high}}")
        if not isinstance(self.setup, list) or not all(isinstance(line, str) for line in self.setup):
            raise SpecError(f"{where}.setup: give a list of shell lines, e.g. ['module load cuda']")
        return self

    def submitit_parameters(self, tasks: int, job_name: str) -> dict[str, Any]:
        """``AutoExecutor.update_parameters`` keywords for an array of ``tasks`` workers, each a SLURM step of
        ``tasks_per_trial`` processes on each of ``nodes`` (submitit runs the task function once per process)."""
        params: dict[str, Any] = {"name": job_name, "timeout_min": time_minutes(self.time), "nodes": self.nodes,
                                  "tasks_per_node": self.tasks_per_trial, "slurm_signal_delay_s": self.signal_delay_s,
                                  "slurm_array_parallelism": min(self.array_parallelism or tasks, tasks)}
        if self.cpus_per_task is not None:
            params["cpus_per_task"] = self.cpus_per_task
        gpus_per_task = self.gpus_per_task
        if gpus_per_task is not None and self.tasks_per_trial > 1:
            # --gpus-per-task binds each process to its own GPU (CUDA_VISIBLE_DEVICES of one), where Lightning's
            # SLURM ranks index the node's GPUs by SLURM_LOCALID: ask for the node's GPUs together instead
            params["gpus_per_node"] = gpus_per_task * self.tasks_per_trial
            gpus_per_task = None
        optional = {"partition": self.partition, "gpus_per_task": gpus_per_task, "mem": self.mem,
                    "account": self.account}
        params.update({f"slurm_{k}": v for k, v in optional.items() if v is not None})
        if self.additional:
            params["slurm_additional_parameters"] = dict(self.additional)
        if self.setup:
            params["slurm_setup"] = list(self.setup)
        return params


def parse_launcher_block(block: Any, where: str = "launcher") -> tuple[str, SlurmSettings | None]:
    """A study file's ``launcher:`` block -> (``"local"`` or ``"slurm"``, its settings)."""
    if block is None:
        return "local", None
    if not isinstance(block, dict):
        raise SpecError(f"{where}: give a mapping such as {{type: slurm, partition: gpu, time: '2:00:00'}}")
    kind = block.get("type", "slurm")
    if kind == "local":
        return "local", None
    if kind != "slurm":
        raise SpecError(f"{where}.type: {kind!r} is not a launcher; valid: local, slurm")
    unknown = sorted(set(block) - {"type", *SlurmSettings.names()})
    if unknown:
        raise SpecError(f"{where}: unknown setting(s) {', '.join(unknown)}; valid: type, "
                        + ", ".join(SlurmSettings.names()))
    return "slurm", SlurmSettings(**{k: v for k, v in block.items() if k != "type"}).check(where)


def parse_additional(lines: list[str]) -> dict[str, str]:
    """``--slurm-additional KEY=VALUE`` (repeatable; ``--KEY=VALUE`` too) -> submitit's additional parameters."""
    out = {}
    for line in lines:
        key, sep, value = line.lstrip("-").partition("=")
        if not sep or not key:
            raise SpecError(f"--slurm-additional {line!r}: give KEY=VALUE, e.g. qos=high or constraint=a100")
        out[key.replace("-", "_")] = value
    return out


def merge_flags(settings: SlurmSettings | None, flags: dict[str, Any]) -> SlurmSettings:
    """The file's settings (or the defaults) overridden by the flags that were given (not None/empty)."""
    merged = SlurmSettings() if settings is None else SlurmSettings(**vars(settings))
    for name, value in flags.items():
        if value is None or value == [] or value == {}:
            continue
        if name == "additional":
            merged.additional = {**merged.additional, **value}
        elif name == "setup":
            merged.setup = [*merged.setup, *value]
        else:
            setattr(merged, name, value)
    return merged.check("--slurm")
