"""PSN, the Parallel Spiking Neuron (Fang et al., NeurIPS 2023): PyTorch reference.

No reset and no recurrence: the membrane is a learnable linear mix of the inputs over time,

    H = W X,              W in R^{T x T}, X in R^{T x N}   (H_t = sum_s W[t, s] X_s)
    S_t = Theta(H_t - B_t),   B in R^T                     (spike with a surrogate gradient)

with ``X`` the time-first input viewed as ``[T, N]`` (N = every other dim flattened). SpikingJelly's
``PSN`` writes the same neuron as ``S = Theta(W X + b)`` with a ``[T, 1]`` bias ``b`` (init -1); here
the threshold ``B = -b`` is a ``[T]`` vector (init 1.0). ``W`` is initialised like SpikingJelly's
(``kaiming_uniform_(a=sqrt(5))``). The "final membrane" reported next to the spikes is
``H_{T-1}``, the last step's value before the threshold.

Gradients (``sg`` the surrogate's derivative, ``G_S = dL/dS``, ``G_h = dL/dH_{T-1}``):

    G_D = G_S * sg(H - B),   G_H = G_D (+ G_h on row T-1),
    dL/dX = W^T G_H,   dL/dW = G_H X^T,   dL/dB = -sum_n G_D   (h_last is taken before the threshold)

The fused Triton version is ``lit_snn.neurons.kernels.parallel.parallel_triton``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..errors import ConfigError
from .surrogate import SURROGATE_IDS, heaviside

__all__ = ["init_parallel_params", "parallel_reference"]


def init_parallel_params(T: int, dtype: torch.dtype = torch.float32, device=None) -> tuple[Tensor, Tensor]:
    """Fresh ``(weight [T, T], threshold [T])`` initialised as SpikingJelly's PSN (W kaiming, B = 1)."""
    if T < 1:
        raise ConfigError(f"init_parallel_params: need T >= 1, got {T}")
    weight = torch.empty(T, T, dtype=dtype, device=device)
    torch.nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    return weight, torch.ones(T, dtype=dtype, device=device)


def parallel_reference(
    x: Tensor,  # [T, ...] time-first (e.g. [T, B, C, H, W]), any float dtype
    weight: Tensor,  # [T, T]  W: H_t = sum_s W[t, s] X_s
    threshold: Tensor,  # [T]  B: S_t = Theta(H_t - B_t)
    surrogate: str = "atan",
    surrogate_param: float = 2.0,
) -> tuple[Tensor, Tensor]:
    """PSN over all T steps: ``H = W X``, ``S = Theta(H - B)`` with the named surrogate gradient.

    Returns ``(spikes [T, ...], h_last [...])`` in ``x``'s dtype, ``h_last = H_{T-1}`` (before the
    threshold). ``weight`` and ``threshold`` are cast (differentiably) to ``x``'s dtype.
    Differentiable w.r.t. ``x``, ``weight`` and ``threshold``, through both outputs.
    """
    if x.dim() < 2:
        raise ConfigError(f"parallel_reference: expected x of shape [T, ...] with >= 2 dims, got {tuple(x.shape)}")
    T = x.shape[0]
    if T < 1:
        raise ConfigError(f"parallel_reference: need at least one time step, got shape {tuple(x.shape)}")
    if tuple(weight.shape) != (T, T):
        raise ConfigError(f"parallel_reference: weight must have shape [T, T] = [{T}, {T}], got {tuple(weight.shape)}")
    if tuple(threshold.shape) != (T,):
        raise ConfigError(f"parallel_reference: threshold must have shape [T] = [{T}], got {tuple(threshold.shape)}")
    if surrogate not in SURROGATE_IDS:
        raise ConfigError(f"parallel_reference: unknown surrogate {surrogate!r}; valid: {', '.join(SURROGATE_IDS)}")
    w = weight.to(x.dtype)  # [T, T]
    b = threshold.to(x.dtype)  # [T]
    h = torch.matmul(w, x.reshape(T, -1))  # [T, N]
    spikes = heaviside(h - b.unsqueeze(1), surrogate, surrogate_param)  # [T, N]
    return spikes.view(x.shape), h[-1].view(x.shape[1:])
