"""``multistep_cpu``: the neuron scan as one ``torch.autograd.Function`` with a hand-written backward.

Same signature, math and outputs as ``reference.multistep_reference`` (the oracle it is tested
against) and ``kernels.multistep_triton``, whose memory design it follows:

- forward: ``forward.run_scan`` under no grad. Saved for the backward: the input ``x`` (already
  alive as the layer's input), the ``[P]`` parameters and, except for the soft resets
  (``saves_states``), the states ``V`` (and ``M``) entering every step: ``(T + 1) / T`` of x's size
  per state, where the reference keeps 3 to 11 times x's size.
- backward: recompute what each step derives from its states (the soft resets: replay the
  forward), as ``[T, ...]`` transients from the scratch pool, returned when the backward ends;
  then ``adjoint.scan_adjoint``, last step first.

Every axis the Triton kernel covers runs here (resets, thresholds, integer spikes with any D/N,
KLIF's slope, detach_reset, the four surrogates, memory carry, per-layer, per-channel and mixed
parameters, gradients into V_T/M_T), so no combination falls back to the reference. Storage
dtypes: float32 and float64 compute in their own precision; bfloat16/float16 inputs compute in
float32 and store spikes and states in the input's dtype (as the Triton kernel does; the
reference computes in the half dtype itself).

Two implementations behind the one function: where ``numba_scan.numba_supports(spec)`` (every
variant the Triton kernel takes), ``numba_scan.NumbaScan``, the scan as one numba-compiled fused
loop per direction (``numba_kernels.py``; it keeps only x and the parameters for the backward);
else, or with the environment variable ``LIT_SNN_CPU_NUMBA=0`` (read once, at import; for
benchmarking the two and as an escape hatch), or where numba cannot be imported, ``_CpuScan``
below: torch ops per step (``forward.py``, ``adjoint.py``), whose memory design the paragraphs
above describe (the numba path keeps less: nothing but x and the parameters). Both compute the
same math; they round differently by an ulp here and there.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

from ..reference import PARAM_NAMES, KernelSpec
from . import scratch
from .adjoint import scan_adjoint
from .forward import run_scan
from .numba_scan import NumbaScan, numba_supports
from .params import compute_dtype, step_params

USE_NUMBA = os.environ.get("LIT_SNN_CPU_NUMBA", "1").strip() != "0"  # the numba path (numba_scan.py); 0: torch ops
_NUMBA_BROKEN: Exception | None = None  # set when numba failed to import: the torch path from then on


def saves_states(spec: KernelSpec) -> bool:
    """Whether the forward keeps every step's states for the backward instead of replaying it.

    Replayed: the soft resets (``V = U - S th``), where autograd keeps only the spike function's input
    per step (the reference: one tensor of x's size), so keeping V would cost as much, and whose
    forward is the cheapest (3-5 ops a step). Kept: every other reset, for which the reference keeps
    3-11 tensors of x's size and the replay costs a third of the backward."""
    return spec.reset != "soft"


class _CpuScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, spec: KernelSpec, *params):
        dtype = compute_dtype(x.dtype)
        xc = x.to(dtype)
        record = saves_states(spec)
        with scratch.scope():
            prm = step_params(dict(zip(PARAM_NAMES, params)), xc[0], dtype)
            traj = run_scan(xc, prm, spec, keep=False, record=record)
            v = traj.v_final.to(x.dtype, copy=True)
            m = traj.m_final.to(x.dtype, copy=True) if traj.m_final is not None else \
                x.new_zeros(()).expand(x.shape[1:])
        states = (traj.v.all, traj.m.all if traj.m is not None else None) if record else (None, None)
        ctx.save_for_backward(x, *states, *params)
        ctx.spec, ctx.prm = spec, prm  # prm: views of the saved parameters, in the compute dtype
        ctx.set_materialize_grads(False)
        return traj.spikes.to(x.dtype), v, m

    @staticmethod
    def backward(ctx, grad_s, grad_v, grad_m):
        x, v_all, m_all, *saved = ctx.saved_tensors
        params = dict(zip(PARAM_NAMES, saved))
        spec = ctx.spec
        dtype = compute_dtype(x.dtype)
        xc = x.to(dtype)
        needs = {name: need for name, need in zip(PARAM_NAMES, ctx.needs_input_grad[2:])}
        with scratch.scope():
            prm = ctx.prm
            states = (v_all, m_all) if v_all is not None else None
            traj = run_scan(xc, prm, spec, keep=True, states=states)
            grad_x, grads = scan_adjoint(xc, traj, prm, spec, _to(grad_s, dtype), _to(grad_v, dtype),
                                         _to(grad_m, dtype) if spec.keeps_memory else None, needs, params)
        grad_x = grad_x.to(x.dtype) if ctx.needs_input_grad[0] else None
        return (grad_x, None, *(grads.get(name) for name in PARAM_NAMES))


def _to(t: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    return None if t is None else t.to(dtype).contiguous()


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
    only x); the torch path applies it first, as ``glif_input`` (its autograd keeps x and x').

    Returns ``(spikes [T, ...], V_T [...], M_T [...])`` in ``x``'s dtype; without a second state
    ``M_T`` is the constant zero as a read-only broadcast (``.clone()`` it before writing in place).
    Differentiable w.r.t. ``x`` and every parameter, through the spikes and through ``V_T``/``M_T``.
    Raises ``ValueError``/``TypeError`` for malformed inputs.
    """
    if not isinstance(spec, KernelSpec):
        raise TypeError(f"multistep_cpu: spec must be a KernelSpec, got {type(spec).__name__}")
    if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[0] < 1:
        raise ValueError(f"multistep_cpu: expected x of shape [T, ...] with T >= 1, got "
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
            raise ValueError(f"multistep_cpu: {name} has {p.numel()} entries; expected 1 (per layer) or C = "
                             f"x.shape[2] (per channel, x of shape [T, B, C, ...]), x has shape {tuple(x.shape)}")
        flat.append(p.reshape(-1))
    if (input_gain is None) != (input_bias is None):
        raise ValueError("multistep_cpu: input_gain and input_bias come together (GLIF's gated input)")
    if input_gain is not None:
        P = input_gain[0].numel() if input_gain.dim() >= 1 and input_gain.shape[0] == x.shape[0] else -1
        if P < 1 or input_gain.numel() != x.shape[0] * P or (P != 1 and P != channels) or \
                input_bias.numel() not in (1, P):
            raise ValueError(f"multistep_cpu: input_gain must be [T, 1] or [T, C] and input_bias [1] or [C] "
                             f"(T = {x.shape[0]}, C = {channels}), got {tuple(input_gain.shape)} and "
                             f"{tuple(input_bias.shape)}")
    if x[0].numel() == 0:  # nothing to run: the reference's empty outputs
        return x.clone(), x.new_zeros(x.shape[1:]), x.new_zeros(x.shape[1:])
    if USE_NUMBA and _NUMBA_BROKEN is None and numba_supports(spec):
        try:
            return NumbaScan.apply(x, spec, input_gain, input_bias, *flat)
        except ImportError as err:  # numba missing or broken: the torch path, which needs none
            _numba_failed(err)
    if input_gain is not None:
        x = gated_input(x, input_gain, input_bias)
    return _CpuScan.apply(x.contiguous(), spec, *flat)


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


def uses_numba(spec: KernelSpec) -> bool:
    """Whether ``multistep_cpu`` runs ``spec`` on the numba path (else torch ops per step)."""
    return USE_NUMBA and _NUMBA_BROKEN is None and numba_supports(spec)


def _numba_failed(err: Exception) -> None:
    global _NUMBA_BROKEN
    import warnings

    _NUMBA_BROKEN = err
    warnings.warn(f"multistep_cpu: numba unavailable ({err!r}); using the torch CPU path", RuntimeWarning,
                  stacklevel=3)
