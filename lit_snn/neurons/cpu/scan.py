"""``multistep_cpu``: the neuron scan on CPU tensors, the numba kernels or the PyTorch reference.

Same signature, math and outputs as ``reference.multistep_reference`` (the oracle it is tested
against) and ``kernels.multistep_triton``. Where ``numba_scan.numba_supports(spec)`` (every variant
the Triton kernel takes) it runs ``numba_scan.NumbaScan``: the scan as one numba-compiled fused loop
per direction (``numba_kernels.py``), which keeps only x and the parameters for the backward.
Storage dtypes: float32 and float64 compute in their own precision; bfloat16/float16 inputs compute
in float32 and store spikes and states in the input's dtype (as the Triton kernel does).

Without numba (``LIT_SNN_CPU_NUMBA=0``, read once at import; numba not installed or not importable
on this Python; a variant numba does not cover) it runs the PyTorch reference itself (autograd, in
the input's dtype), so the spec is the only other implementation: no third hand-written backward.
"""

from __future__ import annotations

import os
import warnings

import torch
from torch import Tensor

from ...errors import ConfigError
from ..reference import PARAM_NAMES, KernelSpec, multistep_reference
from .numba_scan import NumbaScan, numba_supports

USE_NUMBA = os.environ.get("LIT_SNN_CPU_NUMBA", "1").strip() != "0"  # the numba path; 0: the PyTorch reference
_NUMBA_BROKEN: Exception | None = None  # set when numba failed to import: the reference from then on


def multistep_cpu(
    x: Tensor,  # [T, B, C, *S] (or [T, N] with per-layer parameters)
    alpha: Tensor,  # [P], P = 1 or C
    beta: Tensor,  # [P]
    vth: Tensor,  # [P]
    thr_coef: Tensor,  # [P]  tanh(a) (adaptive threshold) or ALIF's gain (spike_adaptive)
    mem_gain: Tensor,  # [P]  c (adaptive reset) or 1/tau (complementary reset)
    spec: KernelSpec,
    adapt_decay: Tensor | None = None,  # [P]  ALIF's rho
    slope: Tensor | None = None,  # [P]  KLIF's k
    reset_gate: Tensor | None = None,  # [P]  GLIF's reset gate
    reset_value: Tensor | None = None,  # [P]  GLIF's soft-reset value
    input_gain: Tensor | None = None,  # [T, P]  GLIF's gated input: the scan runs on x'_t = gain_t x_t + bias
    input_bias: Tensor | None = None,  # [P] or []
) -> tuple[Tensor, Tensor, Tensor]:
    """The CPU path of ``multistep_reference``: same signature, same math, same outputs.

    ``input_gain``/``input_bias`` (both or neither): GLIF's gated integration
    (``SpikingNeuron.glif_input``), ``x'_t = input_gain_t x_t + input_bias`` (per layer: gain
    ``[T, 1]``, bias ``[1]`` or ``[]``; per channel ``[T, C]``, ``[C]``), the scan's input in x's
    place; differentiable w.r.t. both. The numba path folds it into its kernels (the backward keeps
    only x); the reference gets it applied first, as ``glif_input`` (its autograd keeps x and x').

    Returns ``(spikes [T, ...], V_T [...], M_T [...])`` in ``x``'s dtype; without a second state
    ``M_T`` is the constant zero as a read-only broadcast (``.clone()`` it before writing in place).
    Differentiable w.r.t. ``x`` and every parameter, through the spikes and through ``V_T``/``M_T``.
    Raises ``ValueError``/``TypeError`` for malformed inputs.
    """
    if not isinstance(spec, KernelSpec):
        raise TypeError(f"multistep_cpu: spec must be a KernelSpec, got {type(spec).__name__}")
    if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[0] < 1:
        raise ConfigError(f"multistep_cpu: expected x of shape [T, ...] with T >= 1, got "
                         f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"multistep_cpu: x must be a floating-point tensor, got {x.dtype}")
    given = (alpha, beta, vth, thr_coef, mem_gain, adapt_decay, slope, reset_gate, reset_value)
    spec.require_params(dict(zip(PARAM_NAMES, given)), "multistep_cpu")
    channels = x.shape[2] if x.dim() >= 3 else 1
    used = spec.used_params()
    flat = []
    for name, p, use in zip(PARAM_NAMES, given, used):
        if p is None or not use:  # a parameter the variant does not read: no gradient, not saved
            flat.append(None)
            continue
        if p.numel() != 1 and (x.dim() < 3 or p.numel() != channels):
            raise ConfigError(f"multistep_cpu: {name} has {p.numel()} entries; expected 1 (per layer) or C = "
                             f"x.shape[2] (per channel, x of shape [T, B, C, ...]), x has shape {tuple(x.shape)}")
        flat.append(p.reshape(-1))
    if (input_gain is None) != (input_bias is None):
        raise ConfigError("multistep_cpu: input_gain and input_bias come together (GLIF's gated input)")
    if input_gain is not None:
        P = input_gain[0].numel() if input_gain.dim() >= 1 and input_gain.shape[0] == x.shape[0] else -1
        if P < 1 or input_gain.numel() != x.shape[0] * P or (P != 1 and P != channels) or \
                input_bias.numel() not in (1, P):
            raise ConfigError(f"multistep_cpu: input_gain must be [T, 1] or [T, C] and input_bias [1] or [C] "
                             f"(T = {x.shape[0]}, C = {channels}), got {tuple(input_gain.shape)} and "
                             f"{tuple(input_bias.shape)}")
    if x[0].numel() == 0:  # nothing to run: the reference's empty outputs
        return x.clone(), x.new_zeros(x.shape[1:]), x.new_zeros(x.shape[1:])
    if uses_numba(spec):
        try:
            return NumbaScan.apply(x, spec, input_gain, input_bias, *flat)
        except ImportError as err:  # numba missing or broken: the reference, which needs none
            _numba_failed(err)
    if input_gain is not None:
        x = gated_input(x, input_gain, input_bias)
    given = [None if p is None else p.to(x.dtype) for p in given]  # as backend "torch" calls it
    return multistep_reference(x, *given[:5], spec, *given[5:])


def gated_input(x: Tensor, gain: Tensor, bias: Tensor) -> Tensor:
    """GLIF's gated input ``x'_t = gain_t x_t + bias`` in x's dtype (one ``addcmul``; what
    ``SpikingNeuron.glif_input`` computes): gain [T, 1] or [T, C], bias [1], [] or [C], broadcast
    over x [T, B, C, ...]."""
    T = x.shape[0]
    if gain[0].numel() > 1 or bias.numel() > 1:  # per channel: [T, C] -> [T, 1, C, 1, ...]
        gain = gain.reshape((T, 1, -1) + (1,) * (x.dim() - 3))
        bias = bias.reshape((1, -1) + (1,) * (x.dim() - 3))
    else:
        gain = gain.reshape((T,) + (1,) * (x.dim() - 1))
        bias = bias.reshape(())
    return torch.addcmul(bias.to(x.dtype), gain.to(x.dtype), x)


def nonfinite_reaches_state(spec: KernelSpec) -> bool:
    """Whether a NaN/inf anywhere in x leaves the final membrane V_T non-finite on the numba path,
    so that a check of V_T (N elements) stands for one of x (T N): the variants with a fixed
    threshold, a hard or soft reset and no slope (lif, plif, hard_lif, da_lif, soft_lif, i_lif,
    ib_ra_lif). Their step is U = beta V + alpha X, then V = U (1 - F) (hard) or U - S th (soft),
    with S, F finite: a non-finite X makes U non-finite (alpha inf or NaN is NaN even for alpha =
    0), a non-finite U gives a non-finite V (hard: inf 0 is NaN, U 1 is U; soft: U minus a finite
    number), and a non-finite V_{t-1} makes the next U non-finite the same way (beta inf is inf or
    NaN), to the last step. Not so for KLIF's relu(k P) (relu(-inf) = 0), an adaptive threshold or
    reset, or a gated one, whose sigmoids and selects can bring a state back to finite numbers."""
    return (uses_numba(spec) and spec.reset in ("hard", "soft") and not spec.adaptive_threshold
            and not spec.spike_adaptive_threshold and not spec.slope)


def uses_numba(spec: KernelSpec) -> bool:
    """Whether ``multistep_cpu`` runs ``spec`` on the numba path (else the PyTorch reference)."""
    return USE_NUMBA and _NUMBA_BROKEN is None and numba_supports(spec)


def _numba_failed(err: Exception) -> None:
    global _NUMBA_BROKEN
    _NUMBA_BROKEN = err
    warnings.warn(f"lit_snn CPU path: numba unavailable ({err!r}); running the PyTorch reference", RuntimeWarning,
                  stacklevel=3)
