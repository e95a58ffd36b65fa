"""The PyTorch reference recurrence of the neuron family: the spec every kernel is tested against.

One function, ``multistep_reference``, with the same signature as the Triton kernel's public
function (``lit_snn.neurons.kernels.multistep_triton``). It works on *effective* per-layer or
per-channel parameters (``alpha``, ``beta``, ``vth``, ``thr_coef = tanh(a)``, ``mem_gain = c``);
the module (``family.py``) maps its raw learnable parameters to these with autograd.

Per element and step (spec sections 1-4):

```
U_t  = beta * V_{t-1} + alpha * X_t
th_t = vth + thr_coef * tanh(X_t)             (adaptive threshold; else vth)
S_t  = H(U_t - th_t)                          (binary, surrogate gradient)
     | round(clamp(N U_t / th_t, 0, N D)) / N  (integer, straight-through on [0, D])
F_t  = S_t (binary) | [S_t > 0] (integer, no gradient)      "fired"
hard:     V_t = U_t (1 - F_t)
soft:     V_t = U_t - S_t th_t
adaptive: g = sigmoid(c X_t); M_t = relu(M') g - relu(-M') (1 - g) + (2 F_t - 1) sigmoid(X_t)
          with M' = M_{t-1} (memory_carry) or 0;  V_t = U_t - S_t (th_t + sigmoid(M_t))
```

The integer spike is the threshold's multiple: with ``vth = 1`` (every integer preset) it is
exactly the papers' ``round(clamp(N U, 0, N D)) / N``; other thresholds are our extension.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .config import NeuronConfig
from .surrogate import heaviside, integer_spike


@dataclass(frozen=True)
class KernelSpec:
    """Compile-time flags of one neuron variant (hashable: one kernel specialisation each)."""

    reset: str = "hard"  # hard | soft | adaptive
    adaptive_threshold: bool = False
    integer: bool = False
    int_max: float = 4.0
    int_scale: float = 1.0
    surrogate: str = "sigmoid"
    surrogate_param: float = 4.0  # width for rectangle/triangle, alpha for sigmoid/atan
    memory_carry: bool = True

    @classmethod
    def from_config(cls, cfg: NeuronConfig) -> "KernelSpec":
        width_kind = cfg.surrogate in ("rectangle", "triangle")
        return cls(
            reset=cfg.reset,
            adaptive_threshold=cfg.threshold == "adaptive",
            integer=cfg.spike == "integer",
            int_max=float(cfg.int_max),
            int_scale=float(cfg.int_scale),
            surrogate=cfg.surrogate,
            surrogate_param=float(cfg.surrogate_width if width_kind else cfg.surrogate_alpha),
            memory_carry=cfg.memory_carry,
        )


def broadcast_param(p: Tensor, x_step: Tensor) -> Tensor:
    """Shape a per-layer ``[1]`` or per-channel ``[C]`` vector to broadcast over ``x_step`` = [B, C, *S]."""
    if p.numel() == 1:
        return p.reshape(())
    return p.reshape((1, -1) + (1,) * (x_step.dim() - 2))


def multistep_reference(
    x: Tensor,  # [T, B, C, *S] (or [T, N] with per-layer parameters)
    alpha: Tensor,  # [P], P = 1 or C
    beta: Tensor,  # [P]
    vth: Tensor,  # [P]
    thr_coef: Tensor,  # [P]  tanh(a); used only with adaptive_threshold
    mem_gain: Tensor,  # [P]  c; used only with reset=adaptive
    spec: KernelSpec,
) -> tuple[Tensor, Tensor, Tensor]:
    """Run the recurrence over T; states start at zero. Returns (spikes [T, ...], V_T [...], M_T [...])."""
    step0 = x[0]
    alpha, beta, vth, thr_coef, mem_gain = (
        broadcast_param(p, step0) for p in (alpha, beta, vth, thr_coef, mem_gain)
    )
    v = torch.zeros_like(step0)
    m = torch.zeros_like(step0)
    spikes = []
    for x_t in x:  # x_t: [B, C, *S]
        u = beta * v + alpha * x_t
        th = vth + thr_coef * torch.tanh(x_t) if spec.adaptive_threshold else vth
        if spec.integer:
            s = integer_spike(u / th, spec.int_max, spec.int_scale)
            fired = (s > 0).to(s.dtype)
        else:
            s = heaviside(u - th, spec.surrogate, spec.surrogate_param)
            fired = s
        if spec.reset == "hard":
            v = u * (1 - fired)
        elif spec.reset == "soft":
            v = u - s * th
        else:  # adaptive (AR-LIF)
            g = torch.sigmoid(mem_gain * x_t)
            m_prev = m if spec.memory_carry else torch.zeros_like(m)
            m = torch.relu(m_prev) * g - torch.relu(-m_prev) * (1 - g)
            m = m + (2 * fired - 1) * torch.sigmoid(x_t)
            v = u - s * (th + torch.sigmoid(m))
        spikes.append(s)
    return torch.stack(spikes), v, m
