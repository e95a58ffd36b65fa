"""Run work on torch's own OpenMP threads: the CPU kernels' second thread without a second pool.

Torch's CPU builds run their intra-op parallelism on an OpenMP team (libgomp on Linux) whose
threads spin for a while after each parallel op. A pool of our own (``ThreadPoolExecutor``) puts
its threads on the same cores as that spin, so the numba kernels gained little from a second
thread (docs/benchmarks.md). Here the kernels' calls run as an OpenMP parallel region of torch's
runtime itself (``GOMP_parallel``, the entry GCC compiles ``#pragma omp parallel`` to): the threads
that spin are the ones that take the work.

The region's body is a Python callback (ctypes takes the GIL for it on each OpenMP thread); the
numba kernels it calls release the GIL, so the threads hold it only for the call's dispatch.
Where torch's runtime is not libgomp (another OpenMP, or a build without one), ``team()`` is None
and the caller keeps its own pool.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable

import torch

_BODY = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class Team:
    """torch's libgomp: ``run(body, threads)`` calls ``body(i)`` once on each of ``threads`` of its
    threads (i = 0 .. threads - 1; 0 is the calling thread) and returns when all have; an exception
    raised by a body is raised here (the first one)."""

    def __init__(self, lib: ctypes.CDLL):
        self._parallel = lib.GOMP_parallel
        self._parallel.argtypes = [_BODY, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
        self._parallel.restype = None
        self._thread_num = lib.omp_get_thread_num
        self._thread_num.restype = ctypes.c_int

    def run(self, body: Callable[[int], None], threads: int) -> None:
        errors: list[BaseException] = []
        thread_num = self._thread_num

        def region(_data) -> None:
            try:
                body(thread_num())
            except BaseException as err:  # noqa: BLE001 - ctypes would print and drop it
                errors.append(err)

        self._parallel(_BODY(region), None, threads, 0)
        if errors:
            raise errors[0]


_TEAM: list = []  # [Team or None] once looked for
_LOCK = threading.Lock()


def team() -> Team | None:
    """torch's OpenMP team, or None where torch's runtime is not the libgomp shipped beside it (or
    ``LIT_SNN_CPU_OWN_POOL=1`` asks for the kernels' own thread pool)."""
    with _LOCK:
        if not _TEAM:
            _TEAM.append(_find())
        return _TEAM[0]


def _find() -> Team | None:
    if os.environ.get("LIT_SNN_CPU_OWN_POOL", "0") == "1":
        return None
    if "OpenMP" not in torch.__config__.parallel_info():
        return None
    path = os.path.join(os.path.dirname(torch.__file__), "lib", "libgomp.so.1")
    if not os.path.exists(path):
        return None
    try:
        return Team(ctypes.CDLL(path))  # the file torch loaded: the same library, not a second copy
    except (OSError, AttributeError):
        return None
