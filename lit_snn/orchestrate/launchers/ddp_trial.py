"""One trial on several processes of a SLURM step: Lightning's DDP, its ranks from SLURM.

With ``tasks_per_trial`` N (per node) and ``nodes`` M above 1 processes, each array task is one SLURM
step of N x M processes, and submitit runs ``run_task`` in each (``srun`` inside its sbatch script).

- Rank 0 (``SLURM_PROCID`` 0) is the study's worker, as a single-process task is: it claims trials,
  records them in Optuna and MLflow, checkpoints and requeues. Its ``TrialContext.train`` is
  ``RankZeroTraining``: before each fit it publishes the trial's work (config, folder) to its peers
  (plan_channel.py), then fits as rank 0.
- Every other rank (``run_peer``) fits the published trials as a DDP peer, with the same callbacks
  (``trial.training_callbacks``) and no logger; it never opens the study or MLflow, and stops when
  rank 0 ends its loop.

Each fit is the trial's config with ``trainer: {strategy: ddp, devices: N, num_nodes: M}``; Lightning
detects its ``SLURMEnvironment`` (``srun`` sets ``SLURM_NTASKS``, ``SLURM_PROCID``, ``SLURM_LOCALID``,
``SLURM_NODEID``) and takes the ranks and ``MASTER_ADDR``/``MASTER_PORT`` from it; each rank trains and
tests on its shard (``DistributedSampler``), and the module's torchmetrics sync their states, so the
metrics rank 0 records are the whole split's.

Each trial's fit has a process group of its own (``trial_group``): rank 0 picks a free port for it and
publishes it with the plan, every rank sets it as ``MASTER_PORT`` before the fit (Lightning initialises
the group there) and destroys the group after the fit, whatever its end. A fit that fails on one rank
only (rank 0's MLflow logging or checkpoint writing, a NaN on one shard) then cannot pair the other
ranks' pending collectives with the next trial's: one group shared by the step's trials let a peer
still inside trial k's collectives go on with rank 0's trial k+1 (their gradients averaged, trial k+1
recorded). Destroying the failed rank's group closes its connections, so the others' pending
collectives fail at once (gloo; NCCL's watchdog ends them after its timeout) and every rank meets again
at the next trial. The plan store is a separate channel.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from .plan_channel import PlanFollower, PlanHost, TrialWork, free_port


@contextlib.contextmanager
def trial_group(master_port: int):
    """One trial's fit with its own process group: ``MASTER_PORT`` for Lightning's rendezvous, and the group
    destroyed after the fit (success or failure) so that the next fit starts a new one."""
    import torch.distributed as dist

    os.environ["MASTER_PORT"] = str(master_port)  # SLURMEnvironment.main_port reads it before its job-id default
    try:
        yield
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def ddp_config(config: dict, tasks_per_node: int, nodes: int) -> dict:
    """``config`` with the trainer of one DDP rank of a SLURM step (these keys win over the config's own)."""
    trainer = {**config.get("trainer", {}), "strategy": "ddp", "devices": tasks_per_node, "num_nodes": nodes}
    return {**config, "trainer": trainer}


class RankZeroTraining:
    """Rank 0's ``TrialContext.train``: hand the trial's work to the peers, then fit it as rank 0."""

    def __init__(self, host: PlanHost, tasks_per_node: int, nodes: int) -> None:
        self.host, self.tasks_per_node, self.nodes = host, tasks_per_node, nodes

    def __call__(self, config: dict, *, default_root_dir: str, **kwargs: Any) -> dict[str, float]:
        from ..training import run_training

        port = free_port()
        self.host.publish(TrialWork(config=config, root=str(default_root_dir), master_port=port))
        with trial_group(port):
            return run_training(ddp_config(config, self.tasks_per_node, self.nodes),
                                default_root_dir=default_root_dir, **kwargs)


def run_peer(launch, rank: int, say) -> dict[str, int]:
    """A DDP peer's loop: fit each trial rank 0 publishes, until it ends the loop; how many it fitted.

    A fit that fails here is one line (rank 0, failing with it, records the trial); a rank 0 that stops
    answering ends the loop with ``ConnectionError``."""
    from ..training import run_training
    from ..trial import training_callbacks

    follower = PlanFollower()
    fitted = 0
    while (work := follower.next()) is not None:
        root = Path(work.root)
        resume = work.config.get("ckpt_path")  # a requeued trial: every rank goes on from its checkpoint
        say(f"{root.name}: fitting as rank {rank} (SLURM_PROCID) of {launch.world_size}"
            + (f", resumed from {Path(resume).name}" if resume else ""))
        try:
            with trial_group(work.master_port):
                run_training(ddp_config(work.config, launch.tasks_per_node, launch.nodes),
                             callbacks=training_callbacks(launch.options, True, root), loggers=[],
                             default_root_dir=str(root))
            fitted += 1
        except Exception as exc:  # noqa: BLE001 - rank 0 records the trial; this rank goes on to the next
            say(f"{root.name}: the fit failed on rank {rank}: {type(exc).__name__}: {exc}")
    say(f"done: rank 0 ended the loop; {fitted} trial(s) fitted as rank {rank}")
    return {"fitted": fitted}
