"""Bounded stops: a process that was asked to stop (SIGTERM, SIGINT) ends within a grace period, even
while its main thread is stuck in a native call, and a worker ends within seconds of its parent's death.

Python runs a signal handler only between bytecodes of the main thread: a trial inside a long C call
(a huge ``time_steps``, a hung driver, a blocking read) would never see its ``KeyboardInterrupt``.
The C-level handler still writes the signal's number to ``signal.set_wakeup_fd``'s pipe at once, so
a daemon thread reading that pipe learns of the signal: from the first one it gives the process
``grace_s`` seconds to unwind (its trial's MLflow run closed as KILLED, its point re-queued), then
``os._exit``s; a second signal ends it at once. Whatever the cut left RUNNING belongs to a dead
process and is re-queued by the next run (``StudyHandle.reap``). The same thread polls
``os.getppid()``: a worker whose parent died (even by SIGKILL) signals itself, which starts the same
grace (Linux also gets ``prctl(PR_SET_PDEATHSIG)``, workers.py: this poll is the portable tie).
Written by hand: neither Python nor Lightning bounds how long a signalled process may take.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
_CLOSE = b"\0"  # written by ``__exit__``: no signal has number 0


class StopWatchdog:
    """While in ``with``: end this process ``grace_s`` seconds after the first stop signal (at once after a
    second one), and signal it (SIGTERM) when process ``parent_pid`` is no longer its parent."""

    def __init__(self, grace_s: float, parent_pid: int | None = None, poll_s: float = 0.5,
                 say: Callable[[str], None] | None = None) -> None:
        self.grace_s, self.parent_pid, self.poll_s = grace_s, parent_pid, poll_s
        self.say = say or (lambda message: print(message, file=sys.stderr, flush=True))
        self._read = self._write = -1
        self._previous: int | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> StopWatchdog:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)  # the C handler must never block on it
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            self._previous = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        self._thread = threading.Thread(target=self._watch, daemon=True, name="stop-watchdog")
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.set_wakeup_fd(self._previous)
        with contextlib.suppress(OSError):
            os.write(self._write, _CLOSE)
        if self._thread is not None:
            self._thread.join(timeout=5)
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _watch(self) -> None:
        stop_at: float | None = None
        first: int | None = None
        while True:
            wait = self.poll_s if stop_at is None else max(0.0, min(self.poll_s, stop_at - time.monotonic()))
            ready, _, _ = select.select([self._read], [], [], wait)
            data = os.read(self._read, 64) if ready else b""
            if _CLOSE in data:
                return
            for signum in (b for b in data if b in STOP_SIGNALS):
                if first is not None:
                    self._exit(signum, f"a second signal ({signal.Signals(signum).name})")
                first, stop_at = signum, time.monotonic() + self.grace_s
            if stop_at is not None and time.monotonic() >= stop_at:
                self._exit(first, f"still busy {self.grace_s:g} s after {signal.Signals(first).name}")
            if self.parent_pid is not None and first is None and os.getppid() != self.parent_pid:
                os.kill(os.getpid(), signal.SIGTERM)  # the handler unwinds the trial; the pipe starts the grace

    def _exit(self, signum: int, why: str) -> None:
        with contextlib.suppress(Exception):
            self.say(f"{why}: exiting now (the next run re-queues the trial this process was running)")
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
        os._exit(128 + signum)
