"""What a command's own process does at its start and its end that an in-process call must not.

**Imports without the cyclic GC.** Importing Lightning (torch, torch._dynamo, torchmetrics,
scipy, sympy, ...) creates millions of objects, which live as long as the process, and the
collector walks them all again in each full collection it starts meanwhile: seven of them, 0.55 s
of the 2.8 s that ``lit-snn train`` spends importing on this project's 2-core VM.
``imports_without_gc()`` turns the collector off around a command's imports and then moves what
they created out of its reach (``gc.freeze()``), so a training's later full collections walk only
the objects of the training (its own cycles are collected as before).

**Exit without the interpreter's teardown.** After those imports a process spends about 0.9 s in
its teardown (``Py_FinalizeEx`` clearing the modules and collecting their cycles), after the
command's work and output are done. Nothing the command wrote depends on it: Lightning's loggers
and checkpoints are closed when the fit and the test end, MLflow runs are ended by the
orchestrator, and files are flushed by the handlers ``atexit`` runs. ``run_then_exit(main)``
registers an ``atexit`` handler before ``main`` runs, so that every handler registered later
(logging's, multiprocessing's, weakref finalizers', ...) runs first (atexit runs them last in,
first out); then it flushes the standard streams and ends the process with ``os._exit`` and main's
exit status. The non-daemon threads, which the interpreter joins before atexit, are joined by
then too. Where ``main`` raises (an error, ``SystemExit``, Ctrl-C) the handler only unfreezes
the frozen objects and Python exits as it always does.

Both only in a process that ``run_then_exit`` runs (the ``lit-snn`` script, a spawned ablation
worker): a test that calls a command's ``main`` in its own process keeps its collector and its
exit. Written by hand: Python has no switch for either (``gc.freeze()`` alone at exit also skips
most of the teardown but leaves nanobind modules, Triton's, printing leak reports).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import sys
from collections.abc import Callable, Iterator

_OWN_PROCESS: list[bool] = [False]  # set by run_then_exit: this process is the command's own


def run_then_exit(main: Callable[[], int | None]) -> int:
    """``main()``'s exit status (None is 0); the process then ends without the interpreter's teardown
    (see the module docstring), unless ``main`` raised."""
    finished: list[int] = []

    def exit_now() -> None:
        if not finished:  # main raised: the ordinary exit, traceback and status as Python gives them,
            gc.unfreeze()  # and the teardown collecting every object (frozen ones would leak: nanobind reports them)
            return
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
                pass
        os._exit(finished[0])

    atexit.register(exit_now)
    _OWN_PROCESS[0] = True
    code = main()
    finished.append(0 if code is None else int(code))
    return finished[0]


@contextlib.contextmanager
def imports_without_gc() -> Iterator[None]:
    """Around a command's imports in a process that ``run_then_exit`` runs: no cyclic GC during
    them, and the objects that exist at the end frozen out of later collections. Elsewhere it does
    nothing."""
    if not _OWN_PROCESS[0]:
        yield
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
