"""The PyTorch reference recurrence of the neuron family: the spec every kernel is tested against.

One function, ``multistep_reference``, with the same signature as the Triton kernel's public
function (``lit_snn.neurons.kernels.multistep_triton``). It works on *effective* per-layer or
per-channel parameters (``PARAM_NAMES``: ``alpha``, ``beta``, ``vth``, ``thr_coef`` = tanh(a) or
ALIF's gain, ``mem_gain`` = c or CLIF's 1/tau, ``adapt_decay`` = ALIF's rho, ``slope`` = KLIF's k,
``reset_gate`` and ``reset_value`` = GLIF's reset gate and soft-reset value); the module
(``family.py``) maps its raw learnable parameters to these with autograd.

Per element and step (spec sections 1-4 and 7):

```
P_t  = beta * V_{t-1} + alpha * X_t
U_t  = relu(slope * P_t) (slope, KLIF) | P_t
th_t = vth + thr_coef * tanh(X_t)             (adaptive threshold, AR-LIF)
     | vth + thr_coef * M_{t-1}               (spike_adaptive, ALIF: M is the trace a_t)
     | vth
S_t  = H(U_t - th_t)                          (binary, surrogate gradient)
     | round(clamp(N U_t / th_t, 0, N D)) / N  (integer, straight-through on [0, D])
F_t  = S_t (binary) | [S_t > 0] (integer, no gradient)      "fired"
     (with detach_reset the reset and M below see S_t, F_t without gradient)
hard:     V_t = U_t (1 - F_t)
soft:     V_t = U_t - S_t th_t
adaptive: g = sigmoid(c X_t); M_t = relu(M') g - relu(-M') (1 - g) + (2 F_t - 1) sigmoid(X_t)
          with M' = M_{t-1} (memory_carry) or 0;  V_t = U_t - S_t (th_t + sigmoid(M_t))
complementary (CLIF): M_t = M_{t-1} sigmoid(mem_gain U_t) + S_t;  V_t = U_t - S_t (th_t + sigmoid(M_t))
gated (GLIF):  V_t = U_t - S_t (reset_gate U_t + (1 - reset_gate) reset_value)
none:     V_t = U_t
spike_adaptive: M_t = adapt_decay M_{t-1} + (1 - adapt_decay) S_t
```

The integer spike is the threshold's multiple: with ``vth = 1`` (every integer preset) it is
exactly the papers' ``round(clamp(N U, 0, N D)) / N``; other thresholds are our extension.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import ConfigError
from .config import NeuronConfig
from .surrogate import heaviside, integer_spike

# the effective parameters of the recurrence, in the kernel's row order
PARAM_NAMES = ("alpha", "beta", "vth", "thr_coef", "mem_gain", "adapt_decay", "slope", "reset_gate", "reset_value")
# the reset rules as the kernels (Triton, numba) number them
RESET_IDS = {"hard": 0, "soft": 1, "adaptive": 2, "complementary": 3, "gated": 4, "none": 5}
SECOND_STATE_RESETS = ("adaptive", "complementary")  # resets that keep M (ALIF's threshold keeps it too)


@dataclass(frozen=True)
class KernelSpec:
    """Compile-time flags of one neuron variant (hashable: one kernel specialisation each)."""

    reset: str = "hard"  # hard | soft | adaptive | complementary | gated | none
    adaptive_threshold: bool = False  # AR-LIF: vth + thr_coef tanh(X)
    integer: bool = False
    int_max: float = 4.0
    int_scale: float = 1.0
    surrogate: str = "sigmoid"
    surrogate_param: float = 4.0  # width for rectangle/triangle, alpha for sigmoid/atan
    memory_carry: bool = True
    spike_adaptive_threshold: bool = False  # ALIF: vth + thr_coef a_t, the trace a_t kept in M
    slope: bool = False  # KLIF: U = relu(slope U)
    detach_reset: bool = False  # the state update sees the spike without gradient

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
            spike_adaptive_threshold=cfg.threshold == "spike_adaptive",
            slope=cfg.slope == "learnable",
            detach_reset=cfg.detach_reset,
        )

    @property
    def keeps_memory(self) -> bool:
        """Whether the recurrence has a second state M (AR-LIF memory, CLIF potential, ALIF trace)."""
        return self.reset in SECOND_STATE_RESETS or self.spike_adaptive_threshold

    def used_params(self) -> tuple[bool, ...]:
        """Per name of ``PARAM_NAMES``: whether this variant reads it (the others get no gradient)."""
        threshold = "adaptive" if self.adaptive_threshold else "spike_adaptive" if self.spike_adaptive_threshold \
            else "fixed"
        return used_params(self.reset, threshold, self.slope)

    def require_params(self, given: dict, who: str) -> None:
        """``ValueError`` naming the parameters this variant reads that ``given`` (name -> tensor) lacks."""
        missing = [n for n, used in zip(PARAM_NAMES, self.used_params()) if used and given.get(n) is None]
        if missing:
            raise ConfigError(f"{who}: this neuron variant needs {', '.join(missing)}")


def used_params(reset: str, threshold: str, slope: bool) -> tuple[bool, ...]:
    """Per name of ``PARAM_NAMES``: whether a variant with this reset, threshold kind ("fixed",
    "adaptive" or "spike_adaptive") and slope reads it. The one statement of the rule: the kernel's
    ``Variant`` asks it too."""
    return (True, True, True, threshold != "fixed", reset in SECOND_STATE_RESETS, threshold == "spike_adaptive",
            bool(slope), reset == "gated", reset == "gated")


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
    thr_coef: Tensor,  # [P]  tanh(a) (adaptive threshold) or ALIF's gain (spike_adaptive)
    mem_gain: Tensor,  # [P]  c (adaptive reset) or 1/tau (complementary reset)
    spec: KernelSpec,
    adapt_decay: Tensor | None = None,  # [P]  ALIF's rho (spike_adaptive)
    slope: Tensor | None = None,  # [P]  KLIF's k
    reset_gate: Tensor | None = None,  # [P]  GLIF's reset gate (gated reset)
    reset_value: Tensor | None = None,  # [P]  GLIF's soft-reset value (gated reset)
) -> tuple[Tensor, Tensor, Tensor]:
    """Run the recurrence over T; states start at zero. Returns (spikes [T, ...], V_T [...], M_T [...]).

    The last four parameters are needed only by the variants that read them (``spec.used_params()``).
    """
    step0 = x[0]
    given = dict(alpha=alpha, beta=beta, vth=vth, thr_coef=thr_coef, mem_gain=mem_gain, adapt_decay=adapt_decay,
                 slope=slope, reset_gate=reset_gate, reset_value=reset_value)
    spec.require_params(given, "multistep_reference")
    p = {n: None if t is None else broadcast_param(t, step0) for n, t in given.items()}
    v = torch.zeros_like(step0)
    m = torch.zeros_like(step0)
    spikes = []
    for x_t in x:  # x_t: [B, C, *S]
        u = p["beta"] * v + p["alpha"] * x_t
        if spec.slope:
            u = torch.relu(p["slope"] * u)
        if spec.adaptive_threshold:
            th = p["vth"] + p["thr_coef"] * torch.tanh(x_t)
        elif spec.spike_adaptive_threshold:
            th = p["vth"] + p["thr_coef"] * m
        else:
            th = p["vth"]
        if spec.integer:
            s = integer_spike(u / th, spec.int_max, spec.int_scale)
            fired = (s > 0).to(s.dtype)
        else:
            s = heaviside(u - th, spec.surrogate, spec.surrogate_param)
            fired = s
        s_r, f_r = (s.detach(), fired.detach()) if spec.detach_reset else (s, fired)  # as the state sees them
        if spec.reset == "hard":
            v = u * (1 - f_r)
        elif spec.reset == "soft":
            v = u - s_r * th
        elif spec.reset == "adaptive":  # AR-LIF
            g = torch.sigmoid(p["mem_gain"] * x_t)
            m_prev = m if spec.memory_carry else torch.zeros_like(m)
            m = torch.relu(m_prev) * g - torch.relu(-m_prev) * (1 - g)
            m = m + (2 * f_r - 1) * torch.sigmoid(x_t)
            v = u - s_r * (th + torch.sigmoid(m))
        elif spec.reset == "complementary":  # CLIF
            m = m * torch.sigmoid(p["mem_gain"] * u) + s_r
            v = u - s_r * (th + torch.sigmoid(m))
        elif spec.reset == "gated":  # GLIF
            v = u - s_r * (p["reset_gate"] * u + (1 - p["reset_gate"]) * p["reset_value"])
        else:  # none
            v = u
        if spec.spike_adaptive_threshold:  # ALIF: M_t = a_{t+1}
            m = p["adapt_decay"] * m + (1 - p["adapt_decay"]) * s_r
        spikes.append(s)
    return torch.stack(spikes), v, m
