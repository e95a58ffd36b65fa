"""How rank 0 of a multi-process SLURM step tells its DDP peers which trial to train next, and when to stop.

Rank 0 (``SLURM_PROCID`` 0, on the step's first node) hosts a ``torch.distributed.TCPStore``; step ``k``
of the loop is the key ``plan/<k>``: the JSON of the trial's plan (``TrialWork``), or ``END``. Each peer
polls for its next key as long as the store answers (a trial may train for hours), and acknowledges
``END`` (``ended``), which rank 0 waits for before its process, and the store with it, exits.

Why by hand: nothing in Lightning or submitit hands a work item from one rank to the others before a
fit (Lightning's process group exists only inside ``fit``, and only for the fit's collectives); a store
of its own, on a port apart from Lightning's ``MASTER_PORT``, never meets Lightning's process group.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from datetime import timedelta

END = "end"
CONNECT_S = 600.0  # how long a peer waits for rank 0's store (rank 0 opens the study first)
POLL_S = 0.5  # how often a peer looks for its next plan
ACK_S = 60.0  # how long rank 0 waits for its peers to read END
PORT_BASE = 25000  # + job id % 5000: apart from Lightning's SLURM MASTER_PORT (15000 + last 4 digits: < 25000)


@dataclass(frozen=True)
class TrialWork:
    """One trial's fit as every rank runs it: the run config (a resumed trial's carries ``ckpt_path``) and
    the trial's folder (checkpoints; on a disk every node sees)."""

    config: dict
    root: str
    master_port: int  # the trial's own process group: Lightning's MASTER_PORT for this fit (ddp_trial.py)


def plan_address() -> tuple[str, int]:
    """``(host, port)`` of rank 0's store: the step's first node (as Lightning picks ``MASTER_ADDR``) and a
    port from the job id."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    nodes = os.environ.get("SLURM_JOB_NODELIST") or os.environ.get("SLURM_NODELIST") or "127.0.0.1"
    job = os.environ.get("SLURM_JOB_ID", "0")
    return SLURMEnvironment.resolve_root_node_address(nodes), PORT_BASE + int(job) % 5000


def free_port() -> int:
    """A TCP port free on this node now (the OS picks it): rank 0's rendezvous port for one trial's group."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]


class PlanHost:
    """Rank 0's side: ``publish`` each trial's work, ``end`` once the worker loop is over."""

    def __init__(self, peers: int) -> None:
        from torch.distributed import TCPStore

        host, port = plan_address()
        self.peers, self.step = peers, 0
        self.store = TCPStore(host, port, world_size=None, is_master=True, wait_for_workers=False,
                              timeout=timedelta(seconds=CONNECT_S))

    def publish(self, work: TrialWork) -> None:
        self._send(json.dumps(asdict(work)))

    def end(self, ack_s: float = ACK_S) -> bool:
        """Tell the peers the loop is over; whether all of them read it within ``ack_s``."""
        self._send(END)
        deadline = time.time() + ack_s
        while self.store.add("ended", 0) < self.peers:
            if time.time() > deadline:
                return False
            time.sleep(0.1)
        return True

    def _send(self, value: str) -> None:
        self.store.set(f"plan/{self.step}", value)
        self.step += 1


class PlanFollower:
    """A peer's side: ``next()`` is the next trial's work, or None once rank 0 has ended the loop."""

    def __init__(self) -> None:
        from torch.distributed import TCPStore

        host, port = plan_address()
        self.step = 0
        self.store = TCPStore(host, port, world_size=None, is_master=False, timeout=timedelta(seconds=CONNECT_S))

    def next(self) -> TrialWork | None:
        """Blocks until rank 0 publishes; ``ConnectionError`` once its store no longer answers."""
        from torch.distributed import DistError

        key = f"plan/{self.step}"
        try:
            # polled, not store.wait(timeout): each timed-out wait logs two c10d warnings, and a trial may
            # train for hours; a store that stops answering (rank 0 gone) raises DistNetworkError here
            while not self.store.check([key]):
                time.sleep(POLL_S)
            value = self.store.get(key).decode()
        except DistError as exc:
            raise ConnectionError(f"rank 0's plan store stopped answering ({type(exc).__name__})") from exc
        self.step += 1
        if value == END:
            self.store.add("ended", 1)
            return None
        return TrialWork(**json.loads(value))
