"""The ``--launcher`` / ``--wait`` / ``--slurm-*`` flags of ``lit-snn ablate|sweep``."""

from __future__ import annotations

import argparse
from typing import Any

from .slurm_settings import TIME_FORMATS, SlurmSettings, parse_additional


def add_launcher_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cluster launch (the file's `launcher:` block sets the same; a flag wins)")
    group.add_argument("--launcher", choices=("local", "slurm"), default=None,
                       help="local: worker processes here (default); slurm: --workers N array tasks through "
                            "submitit (needs --storage journal:PATH or postgresql://...)")
    group.add_argument("--wait", action="store_true",
                       help="slurm: follow the study until its jobs end, then print the comparison "
                            "(default: print the job id and return)")
    group.add_argument("--slurm-partition", default=None, help="sbatch --partition")
    group.add_argument("--slurm-time", default=None, help=f"sbatch --time per task ({TIME_FORMATS}; default 1 day)")
    group.add_argument("--slurm-cpus-per-task", type=int, default=None, help="sbatch --cpus-per-task")
    group.add_argument("--slurm-gpus-per-task", type=int, default=None, help="sbatch --gpus-per-task")
    group.add_argument("--slurm-mem", default=None, help="sbatch --mem per node, e.g. 32G")
    group.add_argument("--slurm-account", default=None, help="sbatch --account")
    group.add_argument("--slurm-array-parallelism", type=int, default=None,
                       help="array tasks running at once (default: all of --workers)")
    group.add_argument("--slurm-additional", action="append", default=[], metavar="KEY=VALUE",
                       help="any other #SBATCH --KEY=VALUE line (repeatable), e.g. qos=high")
    group.add_argument("--slurm-setup", action="append", default=[], metavar="LINE",
                       help="a shell line run before the worker starts (repeatable), e.g. 'module load cuda'")
    group.add_argument("--slurm-signal-delay-s", type=int, default=None, metavar="S",
                       help="sbatch --signal=USR2@S: S seconds before the time limit the running trial stops at its "
                            "last epoch-end checkpoint and the task is requeued to resume it (default 120)")
    group.add_argument("--slurm-tasks-per-trial", type=int, default=None, metavar="N",
                       help="processes per node training one trial together (Lightning's DDP, ranks from SLURM; "
                            "default 1: no DDP)")
    group.add_argument("--slurm-nodes", type=int, default=None, metavar="M",
                       help="nodes of one trial (default 1): its fit runs on N x M processes")
    group.add_argument("--slurm-folder", default=None,
                       help="submitit's scripts and logs, on a disk every node sees (default: <store-dir>/slurm/)")


def slurm_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--slurm-*`` flags as ``SlurmSettings`` fields (None/empty: not given)."""
    flags = {name: getattr(args, f"slurm_{name}") for name in SlurmSettings.names()}  # one flag per field
    return {**flags, "additional": parse_additional(args.slurm_additional), "setup": list(args.slurm_setup)}


def given_slurm_flags(args: argparse.Namespace) -> list[str]:
    """The ``--slurm-*`` flags given on the command line (an error without a SLURM launch)."""
    return [f"--slurm-{name.replace('_', '-')}" for name, value in slurm_flags(args).items()
            if value not in (None, [], {})]
