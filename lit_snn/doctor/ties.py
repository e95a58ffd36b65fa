"""Near-tie neurons: where an fp32 backend may legitimately differ from the float64 reference.

A neuron whose float64 trajectory passes within ``eps`` of a discontinuity (the firing threshold,
the rectangle surrogate's edges, an integer spike's rounding points and clamp ends, a relu kink)
can flip a spike or a surrogate branch on an ulp of rounding; the comparison skips such neurons
(the rule of ``tests/neurons/test_kernels.py`` and ``test_parallel.py``). Both functions replay
the recurrence in float64 only to find these margins; the outputs compared are the backends'.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..neurons.reference import KernelSpec, broadcast_param


def scan_near_ties(x: Tensor, params: dict[str, Tensor], spec: KernelSpec, eps: float) -> Tensor:
    """Bool ``[N]`` (N = the neurons of one step of ``x [T, ...]``): near-tie neurons of the scan."""
    x = x.detach().double()
    per = {name: broadcast_param(p.detach().double().reshape(-1), x[0]).expand_as(x[0]).reshape(-1)
           for name, p in params.items()}  # [N] each
    x = x.reshape(x.shape[0], -1)  # [T, N]
    v = torch.zeros(x.shape[1], dtype=torch.float64)
    m = torch.zeros_like(v)
    bad = torch.zeros(x.shape[1], dtype=torch.bool)
    top = math.floor(spec.int_scale * spec.int_max + 0.5)
    for xt in x:
        u = per["beta"] * v + per["alpha"] * xt
        if spec.slope:
            bad |= (per["slope"] * u).abs() < eps
            u = (per["slope"] * u).clamp_min(0)
        th = per["vth"]
        if spec.adaptive_threshold:
            th = th + per["thr_coef"] * torch.tanh(xt)
        elif spec.spike_adaptive_threshold:
            th = th + per["thr_coef"] * m
        if spec.integer:
            z = u / th
            nz = (z * spec.int_scale).clamp(0, top)
            bad |= ((nz - nz.floor() - 0.5).abs() < eps * spec.int_scale) & (nz > 0) & (nz < top)
            bad |= ((z.abs() < eps) & (z != 0)) | ((z - spec.int_max).abs() < eps)
            s = torch.floor(nz + 0.5) / spec.int_scale
            fired = (s > 0).double()
        else:
            d = u - th
            bad |= d.abs() < eps
            if spec.surrogate == "rectangle":
                bad |= (d.abs() - spec.surrogate_param / 2).abs() < eps
            s = fired = (d >= 0).double()
        v, m, bad = _reset(spec, per, xt, u, th, s, fired, v, m, bad, eps)
    return bad


def _reset(spec, per, xt, u, th, s, fired, v, m, bad, eps):
    """One step's reset: the next ``(v, m, bad)``."""
    if spec.reset == "hard":
        v = u * (1 - fired)
    elif spec.reset == "soft":
        v = u - s * th
    elif spec.reset == "adaptive":
        mp = m if spec.memory_carry else torch.zeros_like(m)
        bad = bad | ((mp.abs() < eps) & (mp != 0))
        g = torch.sigmoid(per["mem_gain"] * xt)
        m = mp.clamp_min(0) * g - (-mp).clamp_min(0) * (1 - g) + (2 * fired - 1) * torch.sigmoid(xt)
        v = u - s * (th + torch.sigmoid(m))
    elif spec.reset == "complementary":
        m = m * torch.sigmoid(per["mem_gain"] * u) + s
        v = u - s * (th + torch.sigmoid(m))
    elif spec.reset == "gated":
        v = u - s * (per["reset_gate"] * u + (1 - per["reset_gate"]) * per["reset_value"])
    else:
        v = u
    if spec.spike_adaptive_threshold:
        m = per["adapt_decay"] * m + (1 - per["adapt_decay"]) * s
    return v, m, bad


def parallel_near_ties(x: Tensor, weight: Tensor, threshold: Tensor, surrogate: str, param: float,
                       eps: float) -> Tensor:
    """Bool ``[N]``: PSN neurons whose ``H - B`` (``H = W X``) comes within ``eps`` of a discontinuity."""
    T = x.shape[0]
    d = weight.detach().double() @ x.detach().double().reshape(T, -1) - threshold.detach().double()[:, None]  # [T, N]
    bad = d.abs() < eps
    if surrogate == "rectangle":
        bad |= (d.abs() - param / 2).abs() < eps
    return bad.any(dim=0)
