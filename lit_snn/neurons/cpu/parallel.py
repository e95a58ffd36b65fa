"""``parallel_cpu``: PSN (``parallel.parallel_reference``) as one autograd Function that saves only
``x``, ``W`` and ``B`` and recomputes ``H = W X`` in the backward (one ``[T, T] x [T, N]`` matmul)
instead of keeping ``H - B`` (``[T, N]``) alive between forward and backward."""

from __future__ import annotations

import torch
from torch import Tensor

from ..surrogate import SURROGATE_IDS, surrogate_grad
from .scan import compute_dtype


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
    return _CpuParallel.apply(x.contiguous(), weight, threshold, surrogate, float(surrogate_param))
