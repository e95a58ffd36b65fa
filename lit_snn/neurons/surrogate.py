"""Spike functions: Heaviside forward with a surrogate derivative, and the integer quantiser
with its straight-through gradient (spec section 4).

Surrogate derivatives of ``S = H(u)``, ``u = U - th`` (forward is always ``u >= 0``):

- rectangle, width w: ``1/w`` on ``|u| < w/2``
- triangle, width w: ``max(0, w - |u|) / w^2``
- sigmoid, alpha: ``alpha * sig(alpha u) * (1 - sig(alpha u))``
- atan, alpha: ``alpha / 2 / (1 + (pi/2 * alpha * u)^2)``
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..errors import ConfigError

SURROGATE_IDS = {"rectangle": 0, "triangle": 1, "sigmoid": 2, "atan": 3}


def surrogate_grad(u: Tensor, kind: str, param: float) -> Tensor:
    """dS/du of the named surrogate at ``u``; ``param`` is the width (rectangle, triangle) or alpha."""
    if kind == "rectangle":
        return (u.abs() < param / 2).to(u.dtype) / param
    if kind == "triangle":
        return (param - u.abs()).clamp_min(0) / (param * param)
    if kind == "sigmoid":
        sig = torch.sigmoid(param * u)
        return param * sig * (1 - sig)
    if kind == "atan":
        return param / 2 / (1 + (math.pi / 2 * param * u) ** 2)
    raise ConfigError(f"unknown surrogate {kind!r}; valid: {', '.join(SURROGATE_IDS)}")


class HeavisideSurrogate(torch.autograd.Function):
    """``S = (u >= 0)`` forward; the surrogate's derivative backward."""

    @staticmethod
    def forward(ctx, u: Tensor, kind: str, param: float) -> Tensor:
        ctx.save_for_backward(u)
        ctx.kind, ctx.param = kind, param
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (u,) = ctx.saved_tensors
        return grad_out * surrogate_grad(u, ctx.kind, ctx.param), None, None


class IntegerQuantizer(torch.autograd.Function):
    """``S = round(clamp(N z, 0, N D)) / N`` with round half up; straight-through ``dS/dz = 1`` on [0, D].

    ``round`` is ``floor(. + 0.5)`` (not torch's half-to-even) so the Triton kernel and the
    reference agree on ties. SpikeYOLO's I-LIF uses ``torch.round``: the two differ only where
    ``N z`` is exactly k + 1/2 for an even k (a membrane of exactly 0.5 or 2.5 for I-LIF), a
    deliberate difference of measure zero.
    """

    @staticmethod
    def forward(ctx, z: Tensor, int_max: float, int_scale: float) -> Tensor:
        ctx.save_for_backward(z)
        ctx.int_max = int_max
        return quantize(z, int_max, int_scale)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (z,) = ctx.saved_tensors
        inside = (z >= 0) & (z <= ctx.int_max)
        return grad_out * inside.to(grad_out.dtype), None, None


def integer_top(int_max: float, int_scale: float) -> int:
    """The largest integer code, ``N * D`` rounded half up: 511 for D = 5.11, N = 100 (every module
    that needs it reads it here or through ``NeuronConfig.int_top``)."""
    return math.floor(int_scale * int_max + 0.5)


def quantize(z: Tensor, int_max: float, int_scale: float, out: Tensor | None = None) -> Tensor:
    """The integer code ``q = floor(clamp(N z, 0, N D) + 0.5)`` divided by ``N`` (no gradient).

    ``out``: written in place there (the same ops and roundings; ``* N`` and ``/ N`` skipped at N = 1,
    where they are exact no-ops)."""
    top = integer_top(int_max, int_scale)
    if out is None:
        return torch.floor((z * int_scale).clamp(0, top) + 0.5) / int_scale
    if int_scale == 1.0:
        torch.clamp(z, 0, top, out=out)
    else:
        torch.mul(z, int_scale, out=out).clamp_(0, top)
    out.add_(0.5).floor_()
    return out if int_scale == 1.0 else out.div_(int_scale)


def heaviside(u: Tensor, kind: str = "sigmoid", param: float = 4.0) -> Tensor:
    """Binary spike of ``u`` with the named surrogate gradient."""
    if kind not in SURROGATE_IDS:
        raise ConfigError(f"unknown surrogate {kind!r}; valid: {', '.join(SURROGATE_IDS)}")
    return HeavisideSurrogate.apply(u, kind, float(param))


def integer_spike(z: Tensor, int_max: float, int_scale: float) -> Tensor:
    """Integer-valued spike ``round(clamp(N z, 0, N D)) / N`` with the straight-through gradient."""
    return IntegerQuantizer.apply(z, float(int_max), float(int_scale))
