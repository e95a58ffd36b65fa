"""Who runs a trial: worker identity, liveness of local workers, the heartbeat thread, and the
tie that ends a worker process when its parent dies."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import sys
import threading
from pathlib import Path

HOST = socket.gethostname()


def _proc_stat(pid: int, field: int) -> str | None:
    """Field ``field`` of ``/proc/PID/stat`` after the name (0: the state, 19: the kernel start time, which
    tells a reused pid from the original), Linux only; None where there is no such process or field."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # the name may contain spaces and parentheses
    return fields[field] if len(fields) > field else None


def identity() -> dict:
    """This process as recorded on the trials it claims (with its SLURM job under SLURM)."""
    from .slurm_env import slurm_job

    pid = os.getpid()
    return {"host": HOST, "pid": pid, "start": _proc_stat(pid, 19), **slurm_job()}


def is_dead_local(worker: dict) -> bool:
    """True only when ``worker`` ran on this host and its process is gone (or is a zombie, or the pid
    was reused). Workers on other hosts are never judged here: the heartbeat covers them."""
    if not isinstance(worker, dict) or worker.get("host") != HOST:
        return False
    pid = worker.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    if _proc_stat(pid, 0) == "Z":
        return True
    start = worker.get("start")
    return start is not None and _proc_stat(pid, 19) not in (None, start)


class Heartbeat:
    """Records a trial's heartbeat every ``interval`` seconds in a daemon thread while in ``with``."""

    def __init__(self, storage, trial_id: int, interval: float | None) -> None:
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):  # a missed beat is retried; the grace period absorbs it
                self.storage.record_heartbeat(self.trial_id)

    def __enter__(self):
        if self.interval:
            self.storage.record_heartbeat(self.trial_id)
            self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{self.trial_id}")
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


PR_SET_PDEATHSIG = 1  # linux/prctl.h


STOP_MESSAGE = "signal "  # the KeyboardInterrupt's text that ``_stop`` raises: "signal 15"


def _stop(signum, _frame) -> None:
    signal.signal(signum, signal.SIG_IGN)  # once: a second signal must not interrupt the clean-up
    raise KeyboardInterrupt(f"{STOP_MESSAGE}{signum}")  # unwinds the trial: its runs are closed as KILLED


def quiet_swallowed_stops(unraisable) -> None:
    """``sys.unraisablehook`` of a worker: a stop signal that lands inside a weakref callback or a
    ``__del__`` raises there, where Python cannot unwind it and prints "Exception ignored" with a
    traceback. The stop itself goes on (Lightning's SIGTERM flag ends the fit, and the worker's
    ``StopWatchdog`` ends the process after the grace period), so only that noise is dropped;
    every other unraisable exception reaches the default hook."""
    exc = unraisable.exc_value
    if isinstance(exc, KeyboardInterrupt) and str(exc).startswith(STOP_MESSAGE):
        return
    sys.__unraisablehook__(unraisable)


def die_with_parent(parent_pid: int) -> None:
    """End this worker (SIGTERM, handled as an interrupt) as soon as process ``parent_pid`` dies.

    Linux: the kernel sends the signal (``prctl(PR_SET_PDEATHSIG)``) the moment the parent exits,
    even by SIGKILL. Everywhere the worker's ``StopWatchdog`` (watchdog.py) also polls
    ``os.getppid()``, and ends the worker when the interrupt cannot unwind it (a native call).
    Without this, workers of a killed ``lit-snn ablate`` are re-parented to PID 1 and go on
    running every remaining trial.
    """
    signal.signal(signal.SIGTERM, _stop)
    sys.unraisablehook = quiet_swallowed_stops
    libc_name = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None
    if libc_name and ctypes.CDLL(libc_name, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM) == 0:
        if os.getppid() != parent_pid:  # the parent died before the signal was armed
            os.kill(os.getpid(), signal.SIGTERM)
