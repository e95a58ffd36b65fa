"""Scratch memory that the CPU path reuses from call to call.

Fresh memory costs more than the arithmetic on it: a new multi-MiB tensor comes from ``mmap`` and
every 4 KiB page faults in on first touch (about 22,000 faults per forward + backward of an AR-LIF
layer at ``[4, 16, 64, 16, 16]`` allocated naively, more time than its ops took on this project's
2-core VM), and glibc hands freed big blocks back to the kernel at once. ``take`` serves the
temporaries of one call (the numba kernels' scratch rows, the backward's replayed trajectory) from a
per-thread pool keyed by size; ``scope`` returns them at exit, so the next call (the next training
step's same layer) finds its pages mapped and warm. Nothing taken may outlive its scope: outputs
and saved tensors are always fresh tensors.

The pool holds at most ``LIMIT_BYTES``; past that, releases free their memory as torch would.
``release()`` empties the calling thread's pool.
"""

from __future__ import annotations

import contextlib
import threading

from torch import Tensor

LIMIT_BYTES = 1 << 30  # a pool larger than this stops keeping released blocks

_local = threading.local()


def _state():
    if not hasattr(_local, "free"):
        _local.free = {}  # (numel, dtype, device) -> [flat tensors]
        _local.held = 0  # bytes in the free lists
        _local.scopes = []  # per open scope: the flat tensors taken in it
    return _local


def take(shape, like: Tensor) -> Tensor:
    """An uninitialised tensor of ``shape`` with ``like``'s dtype and device (pooled inside a scope)."""
    st = _state()
    if not st.scopes:
        return like.new_empty(shape)
    numel = 1
    for n in shape:
        numel *= n
    key = (numel, like.dtype, like.device)
    bucket = st.free.get(key)
    if bucket:
        flat = bucket.pop()
        st.held -= flat.nbytes
    else:
        flat = like.new_empty(numel)
    st.scopes[-1].append(flat)
    return flat.view(shape)


def take_like(t: Tensor) -> Tensor:
    return take(t.shape, t)


@contextlib.contextmanager
def scope():
    """Temporaries taken inside go back to the pool at exit."""
    st = _state()
    st.scopes.append([])
    try:
        yield
    finally:
        for flat in st.scopes.pop():
            if st.held + flat.nbytes <= LIMIT_BYTES:
                st.free.setdefault((flat.numel(), flat.dtype, flat.device), []).append(flat)
                st.held += flat.nbytes


def release() -> None:
    """Free the calling thread's pooled blocks."""
    st = _state()
    st.free.clear()
    st.held = 0
