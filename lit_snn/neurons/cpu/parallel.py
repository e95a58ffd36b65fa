"""``parallel_cpu``: PSN (``parallel.parallel_reference``) as one autograd Function that saves only
``x``, ``W`` and ``B`` and recomputes ``H = W X`` in the backward instead of keeping ``H - B``
(``[T, N]``) alive between forward and backward.

Two implementations behind the one function, switched as ``multistep_cpu``'s (``scan.USE_NUMBA``,
the environment variable ``LIT_SNN_CPU_NUMBA=0``, and the torch code where numba cannot be
imported): ``_NumbaParallel``, one numba-compiled fused loop per direction
(``numba_parallel.py``: per chunk of neurons, H recomputed in the backward, the parameter
gradients as float64 partial sums per chunk), and ``_CpuParallel``, torch ops (one ``[T, T] x
[T, N]`` matmul per product). Both compute in float32 for float32/bf16/fp16 inputs (float64 for
float64) and round differently by an ulp here and there.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..surrogate import SURROGATE_IDS, surrogate_grad
from . import scan, scratch
from .params import compute_dtype

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


class _CpuParallel(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, threshold: Tensor, surrogate: str, param: float):
        T = x.shape[0]
        dtype = compute_dtype(x.dtype)
        h = torch.matmul(weight.to(dtype), x.reshape(T, -1).to(dtype))  # [T, N]
        spikes = torch.ge(h, threshold.to(dtype).unsqueeze(1), out=torch.empty_like(h))
        ctx.save_for_backward(x, weight, threshold)
        ctx.surrogate = (surrogate, param)
        ctx.set_materialize_grads(False)
        return spikes.view(x.shape).to(x.dtype), h[-1].view(x.shape[1:]).to(x.dtype, copy=True)

    @staticmethod
    def backward(ctx, grad_s, grad_h):
        x, weight, threshold = ctx.saved_tensors
        T = x.shape[0]
        dtype = compute_dtype(x.dtype)
        x2 = x.reshape(T, -1).to(dtype)  # [T, N]
        w, b = weight.to(dtype), threshold.to(dtype)
        h = torch.matmul(w, x2)
        if grad_s is None:
            grad_d = torch.zeros_like(h)
        else:
            grad_d = grad_s.reshape(T, -1).to(dtype) * surrogate_grad(h.sub_(b.unsqueeze(1)), *ctx.surrogate)
        grad_hh = grad_d if grad_h is None else grad_d.clone()
        if grad_h is not None:
            grad_hh[-1] += grad_h.reshape(-1).to(dtype)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x = torch.matmul(w.t(), grad_hh).view(x.shape).to(x.dtype) if need_x else None
        grad_w = torch.matmul(grad_hh, x2.t()).to(weight.dtype) if need_w else None
        grad_b = grad_d.sum(1).neg_().to(threshold.dtype) if need_b else None
        return grad_x, grad_w, grad_b, None, None


def parallel_cpu(x: Tensor, weight: Tensor, threshold: Tensor, surrogate: str = "atan",
                 surrogate_param: float = 2.0) -> tuple[Tensor, Tensor]:
    """``parallel_reference``'s signature, math and outputs: ``(spikes [T, ...], h_last [...])``."""
    T = x.shape[0] if isinstance(x, Tensor) and x.dim() >= 2 else None
    if T is None:
        raise ValueError("parallel_cpu: expected x of shape [T, ...] with >= 2 dims")
    if tuple(weight.shape) != (T, T) or tuple(threshold.shape) != (T,):
        raise ValueError(f"parallel_cpu: weight must be [T, T] and threshold [T] with T = {T}, got "
                         f"{tuple(weight.shape)} and {tuple(threshold.shape)}")
    if surrogate not in SURROGATE_IDS:
        raise ValueError(f"parallel_cpu: unknown surrogate {surrogate!r}; valid: {', '.join(SURROGATE_IDS)}")
    if x[0].numel() > 0 and scan.USE_NUMBA and scan._NUMBA_BROKEN is None:
        try:
            return _NumbaParallel.apply(x.contiguous(), weight, threshold, surrogate, float(surrogate_param))
        except ImportError as err:  # numba missing or broken: the torch path, which needs none
            scan._numba_failed(err)
    return _CpuParallel.apply(x.contiguous(), weight, threshold, surrogate, float(surrogate_param))


def uses_numba() -> bool:
    """Whether ``parallel_cpu`` runs on the numba path (else torch ops)."""
    return scan.USE_NUMBA and scan._NUMBA_BROKEN is None
