"""``parallel_cpu``: PSN (``parallel.parallel_reference``) on CPU tensors, the numba kernels or the
PyTorch reference.

``_NumbaParallel`` is one autograd Function that saves only ``x``, ``W`` and ``B`` and recomputes
``H = W X`` in the backward instead of keeping ``H - B`` (``[T, N]``) alive between forward and
backward: one numba-compiled fused loop per direction (``numba_parallel.py``: per chunk of neurons,
the parameter gradients as float64 partial sums per chunk), computing in float32 for
float32/bf16/fp16 inputs (float64 for float64). Without numba (``multistep_cpu``'s switch:
``scan.USE_NUMBA``, the environment variable ``LIT_SNN_CPU_NUMBA=0``, or numba not importable) it
runs ``parallel_reference`` itself (autograd).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ...errors import ConfigError
from ..parallel import parallel_reference
from ..surrogate import SURROGATE_IDS
from . import scan, scratch
from .numba_scan import compute_dtype

_kernels = None  # numba_parallel, imported (and numba with it) on first use


def _numba_kernels():
    global _kernels
    if _kernels is None:
        from . import numba_parallel

        _kernels = numba_parallel
    return _kernels


def _float_args(param: float, np_dtype) -> np.ndarray:
    from .numba_scan import _float_args as float_args

    return float_args((0.0, 1.0, 0.0, param), np_dtype)


class _NumbaParallel(torch.autograd.Function):
    """The numba kernels (``numba_parallel.py``); saves only x, W and B."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, threshold: Tensor, surrogate: str, param: float):
        k = _numba_kernels()
        T = x.shape[0]
        dtype = compute_dtype(x.dtype)
        np_dtype = np.float64 if dtype == torch.float64 else np.float32
        N = x[0].numel()
        xc = x.detach().to(dtype).contiguous().view(T, N)
        w = weight.detach().to(dtype).contiguous().numpy()
        th = threshold.detach().to(dtype).contiguous().numpy()
        spikes = torch.empty((T, N), dtype=dtype)
        h_last = torch.empty(N, dtype=dtype)
        with scratch.scope():
            work = scratch.take((1, k.chunk_size(T, N)), xc).numpy()
            k.psn_forward(xc.numpy(), w, th, _float_args(param, np_dtype), spikes.numpy(), h_last.numpy(), work)
        ctx.save_for_backward(x, weight, threshold)
        ctx.surrogate = (surrogate, param)
        ctx.set_materialize_grads(False)
        return spikes.view(x.shape).to(x.dtype), h_last.view(x.shape[1:]).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_s, grad_h):
        x, weight, threshold = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        if grad_s is None and grad_h is None:
            return None, None, None, None, None
        k = _numba_kernels()
        T = x.shape[0]
        N = x[0].numel()
        dtype = compute_dtype(x.dtype)
        np_dtype = np.float64 if dtype == torch.float64 else np.float32
        surrogate, param = ctx.surrogate
        xc = x.detach().to(dtype).contiguous().view(T, N)
        x_np = xc.numpy()
        wc = weight.detach().to(dtype)
        w, wt = wc.contiguous().numpy(), wc.t().contiguous().numpy()
        th = threshold.detach().to(dtype).contiguous().numpy()
        gs = x_np if grad_s is None else grad_s.detach().to(dtype).contiguous().view(T, N).numpy()
        gh = x_np[0] if grad_h is None else grad_h.detach().to(dtype).contiguous().view(N).numpy()
        need_gp = bool(need_w or need_b)
        chunk = k.chunk_size(T, N)
        pw = np.zeros((T, T), dtype=np.float64)
        pb = np.zeros(T, dtype=np.float64)
        grad_x = torch.empty((T, N), dtype=dtype) if need_x else None
        with scratch.scope():
            g = scratch.take((T, chunk), xc).numpy()
            work = scratch.take((1, chunk), xc).numpy()
            acc = scratch.take((T * (T + 1), chunk), torch.empty(0, dtype=torch.float64)).numpy()  # dL/dW, -dL/dB
            k.psn_backward(x_np, w, wt, th, _float_args(param, np_dtype), SURROGATE_IDS[surrogate], gs,
                           grad_s is not None, gh, grad_h is not None, bool(need_x), need_gp,
                           x_np if grad_x is None else grad_x.numpy(), pw, pb, g, work, acc)
        gx = grad_x.view(x.shape).to(x.dtype) if need_x else None
        gw = torch.from_numpy(pw).to(weight.dtype) if need_w else None
        gb = torch.from_numpy(pb).to(threshold.dtype) if need_b else None
        return gx, gw, gb, None, None


def parallel_cpu(x: Tensor, weight: Tensor, threshold: Tensor, surrogate: str = "atan",
                 surrogate_param: float = 2.0) -> tuple[Tensor, Tensor]:
    """``parallel_reference``'s signature, math and outputs: ``(spikes [T, ...], h_last [...])``."""
    T = x.shape[0] if isinstance(x, Tensor) and x.dim() >= 2 else None
    if T is None:
        raise ConfigError("parallel_cpu: expected x of shape [T, ...] with >= 2 dims")
    if tuple(weight.shape) != (T, T) or tuple(threshold.shape) != (T,):
        raise ConfigError(f"parallel_cpu: weight must be [T, T] and threshold [T] with T = {T}, got "
                         f"{tuple(weight.shape)} and {tuple(threshold.shape)}")
    if surrogate not in SURROGATE_IDS:
        raise ConfigError(f"parallel_cpu: unknown surrogate {surrogate!r}; valid: {', '.join(SURROGATE_IDS)}")
    if x[0].numel() > 0 and uses_numba():
        try:
            return _NumbaParallel.apply(x.contiguous(), weight, threshold, surrogate, float(surrogate_param))
        except ImportError as err:  # numba missing or broken: the reference, which needs none
            scan._numba_failed(err)
    return parallel_reference(x, weight, threshold, surrogate, surrogate_param)


def uses_numba() -> bool:
    """Whether ``parallel_cpu`` runs on the numba path (else the PyTorch reference)."""
    return scan.USE_NUMBA and scan._NUMBA_BROKEN is None
