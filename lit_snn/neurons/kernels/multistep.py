"""Fused multi-step Triton kernels of the neuron family: same math as ``reference.multistep_reference``.

One kernel template per direction; ``tl.constexpr`` flags pick the neuron variant at compile time
(``Variant`` holds them, named as in the kernels, and derives them from a ``KernelSpec``):

- ``RESET``: 0 hard ``V = U (1 - F)``, 1 soft ``V = U - S th``, 2 adaptive (AR-LIF memory ``M``),
  3 complementary (CLIF potential ``M``), 4 gated (GLIF), 5 none ``V = U``
- ``THRESHOLD``: 0 ``th = vth``, 1 AR-LIF ``th = vth + thr_coef tanh(X)``, 2 ALIF
  ``th = vth + thr_coef a`` with the spike trace ``a`` kept in ``M``
- ``INTEGER``: ``S = round(clamp(N U/th, 0, N D)) / N`` with straight-through gradient on [0, D]
  (``int_max`` = D, ``int_scale`` = N, ``int_top`` = round(N D) are float arguments)
- ``SLOPE``: KLIF's ``U = relu(slope U)`` after the charge
- ``DETACH_RESET`` (backward only): the state update sees the spike without gradient
- ``SURROGATE``: 0 rectangle, 1 triangle, 2 sigmoid, 3 atan (``surrogate_param`` a float argument)
- ``MEMORY_CARRY``: AR-LIF memory carried across steps (else it restarts at 0 every step)
- ``PER_CHANNEL``: parameters are ``[C]`` vectors indexed by the channel (dim 2) of each neuron

Parameters travel as one fp32 table ``[9, P]`` (rows in ``reference.PARAM_NAMES`` order: alpha,
beta, vth, thr_coef, mem_gain, adapt_decay, slope, reset_gate, reset_value; P = 1 or C), loaded
once per program; their gradients come back as one ``[9, P]`` table.

Layout: the input is viewed as ``[T, N]`` (time-major, contiguous); one program owns ``BLOCK``
neurons and walks over time inside the kernel with ``V`` (and ``M``) in registers. ``T`` is a
runtime argument (no recompilation per sequence length).

Forward: reads each ``x`` once, writes each spike once, plus the final ``V`` (and ``M``).

Backward: runs the adjoint recurrence in reverse inside the kernel. What is kept per element:

- between forward and backward, for every preset: nothing but ``x`` (autograd holds the input,
  already alive as the layer's input, and the ``[9, P]`` parameters; no spikes, no membrane
  history). The backward recomputes the states in registers from ``x``. (GLIF's gated
  integration is an elementwise transform of the input before the kernel, so ``glif`` keeps the
  layer's input and the transformed one.)
- inside the backward, to keep that recomputation O(T K) instead of O(T^2), the backward first replays the forward
  once and writes the state entering every K-th step to a transient fp32 buffer (freed when the
  backward returns): ``ceil(T/K) - 1`` floats per neuron and state. ``V`` alone for the presets
  with one state (``lif``, ``plif``, ``hard_lif``, ``soft_lif``, ``da_lif``, ``i_lif``,
  ``ib_ra_lif``, ``klif``, ``glif``; K = 4, so nothing at all for T <= 4); ``V`` and ``M`` for
  ``alif`` (K = 4) and for ``ar_lif`` and ``clif`` (K = 2, their step costs four transcendentals);
  ``V`` alone for ``ar_lif_dvs`` (memory restarts each step, K = 2). ``CHECKPOINT_EVERY`` holds the
  two intervals.
- within a chunk of K steps, two modes (constexpr ``UNROLL``; the GPU autotuner picks per shape):
  unrolled, the chunk's x and entering states are held in registers (each x read once, K - 1
  replayed steps); recompute, each step's entering state is replayed from the chunk start from
  reloaded x (K (K - 1) / 2 replayed steps, fewer registers).

Parameter gradients are deterministic: each program writes partial sums (per 256-neuron chunk
for per-layer parameters, per neuron for per-channel ones) and one ``torch.sum`` reduces them;
no float atomics. Gradients flowing into the final ``V``/``M`` outputs are honoured exactly.

Numerics: everything is computed in fp32 registers whatever the storage dtype (fp32, bf16, fp16);
outputs are stored in the input's dtype. ``tanh`` is computed from ``exp`` (the interpreter has no
libdevice), with an absolute error of about 1e-7. Divisions that decide integer spikes use
IEEE round-to-nearest (``div_rn``) to reproduce the PyTorch CPU reference bit for bit.

On CPU the kernels run only in Triton's interpreter (``TRITON_INTERPRET=1`` set before this module
is imported); that is how the tests run them.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import astuple, dataclass, fields

import torch
import triton
import triton.language as tl
from torch import Tensor

from ...errors import ConfigError
from ..reference import PARAM_NAMES, RESET_IDS, SECOND_STATE_RESETS, KernelSpec, used_params
from ..surrogate import SURROGATE_IDS, integer_top

INTERPRET = bool(triton.knobs.runtime.interpret)  # decided when the kernels below are decorated
NUM_PARAMS = len(PARAM_NAMES)  # rows of the parameter table
PARTIAL_CHUNK = 256  # neurons per partial sum of a per-layer parameter gradient (divides every BLOCK)
CHECKPOINT_EVERY = {"adaptive": 2, "default": 4}  # backward: steps between stored states (see docstring)


@dataclass(frozen=True)
class Variant:
    """One compiled variant of the kernels: the constexpr flags (named as in the kernels) and the
    float arguments. ``from_spec`` is the one place that derives them from a ``KernelSpec``."""

    RESET: int
    THRESHOLD: int
    INTEGER: bool
    MEMORY_CARRY: bool
    SLOPE: bool
    DETACH_RESET: bool
    SURROGATE: int
    PER_CHANNEL: bool
    int_max: float
    int_scale: float
    surrogate_param: float

    @classmethod
    def from_spec(cls, spec: KernelSpec, per_channel: bool = False) -> "Variant":
        """Flags that do not apply (a surrogate with integer spikes, memory carry without the adaptive
        reset) are normalised, so they cause no extra compilations."""
        if spec.spike_adaptive_threshold and spec.reset in SECOND_STATE_RESETS:
            raise ConfigError(f"multistep_triton: reset={spec.reset} and the spike-adaptive threshold both need "
                             "the second state M; combine it with reset hard, soft, gated or none")
        integer = bool(spec.integer)
        return cls(
            RESET=RESET_IDS[spec.reset],
            THRESHOLD=1 if spec.adaptive_threshold else 2 if spec.spike_adaptive_threshold else 0,
            INTEGER=integer, MEMORY_CARRY=bool(spec.memory_carry) or spec.reset != "adaptive",
            SLOPE=bool(spec.slope), DETACH_RESET=bool(spec.detach_reset),
            SURROGATE=0 if integer else SURROGATE_IDS[spec.surrogate], PER_CHANNEL=bool(per_channel),
            int_max=float(spec.int_max), int_scale=float(spec.int_scale),
            surrogate_param=1.0 if integer else float(spec.surrogate_param),
        )

    @property
    def int_top(self) -> float:
        return float(integer_top(self.int_max, self.int_scale))

    @property
    def keep_m(self) -> bool:
        """The second state M is carried from step to step (and checkpointed by the backward)."""
        return (self.RESET == 2 and self.MEMORY_CARRY) or self.RESET == 3 or self.THRESHOLD == 2

    @property
    def has_m(self) -> bool:
        """M_T is an output (else the constant zero)."""
        return self.RESET in (2, 3) or self.THRESHOLD == 2

    @property
    def checkpoint_every(self) -> int:
        return CHECKPOINT_EVERY["adaptive" if self.RESET in (2, 3) else "default"]

    def used_params(self) -> list[int]:
        """Rows of the parameter table this variant reads (the others get no gradient)."""
        reset = next(name for name, i in RESET_IDS.items() if i == self.RESET)
        used = used_params(reset, ("fixed", "adaptive", "spike_adaptive")[self.THRESHOLD], self.SLOPE)
        return [i for i, u in enumerate(used) if u]

    @functools.lru_cache(maxsize=None)  # noqa: B019  (a few frozen variants live for the process anyway)
    def constexprs(self, direction: str) -> dict:
        """The kernel's constexpr arguments for ``direction`` ("fwd" or "bwd"); do not mutate."""
        names = ["RESET", "THRESHOLD", "INTEGER", "MEMORY_CARRY", "SLOPE", "PER_CHANNEL"]
        if direction == "bwd":
            names += ["DETACH_RESET", "SURROGATE"]
        return {name: getattr(self, name) for name in names}

    def to_op(self) -> tuple[list[int], list[float]]:
        """The variant as the custom ops' ``int[]`` and ``float[]`` arguments."""
        values = astuple(self)
        return [int(v) for v in values[:8]], [float(v) for v in values[8:]]

    @classmethod
    def from_op(cls, ints, floats) -> "Variant":
        names = [f.name for f in fields(cls)]
        kinds = [f.type for f in fields(cls)]
        values = [bool(v) if k == "bool" else int(v) for v, k in zip(ints, kinds[:8])] + [float(v) for v in floats]
        return cls(**dict(zip(names, values)))


# ---------------------------------------------------------------------------------------------
# per-step helpers (inlined into both kernels)
# ---------------------------------------------------------------------------------------------
@triton.jit
def _surrogate_grad(d, SURROGATE: tl.constexpr, surrogate_param):
    """dS/du of the surrogate at d = U - th (see surrogate.py)."""
    if SURROGATE == 0:  # rectangle of width w: 1/w on |d| < w/2
        sg = tl.where(tl.abs(d) < surrogate_param / 2, 1.0 / surrogate_param, 0.0)
    elif SURROGATE == 1:  # triangle of width w: max(0, w - |d|) / w^2
        sg = tl.maximum(surrogate_param - tl.abs(d), 0.0) / (surrogate_param * surrogate_param)
    elif SURROGATE == 2:  # sigmoid, alpha: alpha sig(alpha d) (1 - sig(alpha d))
        sig = 1.0 / (1.0 + tl.exp(-surrogate_param * d))
        sg = surrogate_param * sig * (1.0 - sig)
    else:  # atan, alpha: alpha / 2 / (1 + (pi/2 alpha d)^2)
        q = (1.5707963267948966 * surrogate_param) * d
        sg = surrogate_param / 2 / (1.0 + q * q)
    return sg


@triton.jit
def _sigmoid(z):
    return 1.0 / (1.0 + tl.exp(-z))


@triton.jit
def _quantize(z, int_scale, int_top):
    """Integer spike floor(clamp(N z, 0, round(N D)) + 0.5) / N (no gradient)."""
    q = tl.floor(tl.minimum(tl.maximum(z * int_scale, 0.0), int_top) + 0.5)
    return tl.math.div_rn(q, int_scale + tl.zeros_like(q))


@triton.jit
def _charge_fire(x, v, m, prm, int_scale, int_top,
                 THRESHOLD: tl.constexpr, INTEGER: tl.constexpr, SLOPE: tl.constexpr):
    """Charge, threshold and fire of one step, shared by the forward and the backward's replay.

    Returns P = beta V + alpha X, U (= relu(slope P) with SLOPE), tanh(X) (THRESHOLD 1, else 0),
    th, the spike function's argument (U / th integer, U - th binary), S and F ("fired")."""
    pre = prm[1] * v + prm[0] * x
    if SLOPE:
        u = tl.maximum(prm[6] * pre, 0.0)
    else:
        u = pre
    if THRESHOLD == 1:  # AR-LIF: vth + k tanh(x)
        e = tl.exp(-x)
        tx = 2.0 / (1.0 + e * e) - 1.0
        th = prm[2] + prm[3] * tx
    elif THRESHOLD == 2:  # ALIF: vth + gamma a, the trace a in m
        tx = tl.zeros_like(x)
        th = prm[2] + prm[3] * m
    else:
        tx = tl.zeros_like(x)
        th = prm[2] + tl.zeros_like(x)
    if INTEGER:
        arg = tl.math.div_rn(u, th)
        s = _quantize(arg, int_scale, int_top)
        fired = (s > 0).to(tl.float32)
    else:
        arg = u - th
        s = (arg >= 0).to(tl.float32)
        fired = s
    return pre, u, tx, th, arg, s, fired


@triton.jit
def _forward_step(x, v, m, prm, int_scale, int_top,
                  RESET: tl.constexpr, THRESHOLD: tl.constexpr, INTEGER: tl.constexpr,
                  MEMORY_CARRY: tl.constexpr, SLOPE: tl.constexpr):
    """One step: (V_{t-1}, M_{t-1}, X_t) -> (S_t, V_t, M_t); every tensor [BLOCK] fp32."""
    _, u, _, th, _, s, fired = _charge_fire(x, v, m, prm, int_scale, int_top, THRESHOLD, INTEGER, SLOPE)
    m_new = m
    if RESET == 0:
        v_new = u * (1.0 - fired)
    elif RESET == 1:
        v_new = u - s * th
    elif RESET == 2:  # AR-LIF memory
        g = _sigmoid(prm[4] * x)  # sigmoid(c x)
        if MEMORY_CARRY:
            mp = m
        else:
            mp = tl.zeros_like(m)
        m_new = tl.maximum(mp, 0.0) * g - tl.maximum(-mp, 0.0) * (1.0 - g)
        m_new = m_new + (2.0 * fired - 1.0) * _sigmoid(x)
        v_new = u - s * (th + _sigmoid(m_new))
    elif RESET == 3:  # CLIF complementary potential
        m_new = m * _sigmoid(prm[4] * u) + s
        v_new = u - s * (th + _sigmoid(m_new))
    elif RESET == 4:  # GLIF gated reset
        v_new = u - s * (prm[7] * u + (1.0 - prm[7]) * prm[8])
    else:
        v_new = u
    if THRESHOLD == 2:  # ALIF trace a_{t+1} = rho a_t + (1 - rho) S_t
        m_new = prm[5] * m + (1.0 - prm[5]) * s
    return s, v_new, m_new


@triton.jit
def _backward_step(x, v, m, gs, av, am, prm, int_max, int_scale, int_top, surrogate_param,
                   RESET: tl.constexpr, THRESHOLD: tl.constexpr, INTEGER: tl.constexpr, SLOPE: tl.constexpr,
                   DETACH_RESET: tl.constexpr, SURROGATE: tl.constexpr, MEMORY_CARRY: tl.constexpr):
    """Adjoint of one step.

    Inputs: the state entering the step (v = V_{t-1}, m = M_{t-1}), x = X_t, the incoming
    gradients gs = dL/dS_t, av = dL/dV_t, am = dL/dM_t, and the parameter table row values ``prm``.
    Returns dL/dX_t, dL/dV_{t-1}, dL/dM_{t-1} and this step's contributions to the gradient of
    each parameter (a tuple in ``PARAM_NAMES`` order).
    """
    pre, u, tx, th, arg, s, fired = _charge_fire(x, v, m, prm, int_scale, int_top, THRESHOLD, INTEGER, SLOPE)
    zero = tl.zeros_like(x)
    # ---- reset: gradients into U, th, and the state's share of dS (g_s) and dF (g_f)
    g_s = zero
    g_f = zero
    g_th = zero
    g_x = zero
    g_mem = zero
    g_gate = zero
    g_value = zero
    am_prev = zero
    if RESET == 0:  # V = U (1 - F)
        g_u = av * (1.0 - fired)
        g_f = -av * u
    elif RESET == 1:  # V = U - S th
        g_u = av
        g_s = -av * th
        g_th = -av * s
    elif RESET == 2:  # M = relu(M') g - relu(-M') (1 - g) + (2F - 1) sig(x);  V = U - S (th + sig(M))
        sx = _sigmoid(x)
        g = _sigmoid(prm[4] * x)
        if MEMORY_CARRY:
            mp = m
        else:
            mp = zero
        m_new = tl.maximum(mp, 0.0) * g - tl.maximum(-mp, 0.0) * (1.0 - g)
        m_new = m_new + (2.0 * fired - 1.0) * sx
        sm = _sigmoid(m_new)
        g_u = av
        g_s = -av * (th + sm)
        g_th = -av * s
        g_m = am - av * s * sm * (1.0 - sm)  # dL/dM_t (total)
        g_f = 2.0 * g_m * sx
        g_x = g_m * (2.0 * fired - 1.0) * sx * (1.0 - sx)
        g_pre = g_m * tl.abs(mp) * g * (1.0 - g)  # through g = sigmoid(c x): relu(M') + relu(-M') = |M'|
        g_x += g_pre * prm[4]
        g_mem = g_pre * x
        if MEMORY_CARRY:
            am_prev = g_m * (tl.where(mp > 0, g, 0.0) + tl.where(mp < 0, 1.0 - g, 0.0))
    elif RESET == 3:  # M = M' q + S, q = sig(c U);  V = U - S (th + sig(M))
        q = _sigmoid(prm[4] * u)
        m_new = m * q + s
        sm = _sigmoid(m_new)
        g_m = am - av * s * sm * (1.0 - sm)  # dL/dM_t (total)
        g_q = g_m * m * q * (1.0 - q)
        g_u = av + g_q * prm[4]
        g_mem = g_q * u
        g_s = -av * (th + sm) + g_m
        g_th = -av * s
        am_prev = g_m * q
    elif RESET == 4:  # V = U - S (r U + (1 - r) v_sub)
        g_u = av * (1.0 - s * prm[7])
        g_s = -av * (prm[7] * u + (1.0 - prm[7]) * prm[8])
        g_gate = -av * s * (u - prm[8])
        g_value = -av * s * (1.0 - prm[7])
    else:  # V = U
        g_u = av
    g_rho = zero
    if THRESHOLD == 2:  # M_t = rho M_{t-1} + (1 - rho) S_t; am = dL/dM_t
        g_s += am * (1.0 - prm[5])
        g_rho = am * (m - s)
        am_prev = am * prm[5]
    if DETACH_RESET:  # the state saw the spike without gradient
        g_s = zero
        g_f = zero
    g_s += gs
    # ---- fire
    if INTEGER:  # S = Q(U / th), straight-through on 0 <= z <= D; F = [S > 0] carries no gradient
        g_z = tl.where((arg >= 0) & (arg <= int_max), g_s, 0.0)
        g_u += g_z / th
        g_th -= g_z * u / (th * th)
    else:  # S = H(U - th) with the surrogate; F = S
        g_d = (g_s + g_f) * _surrogate_grad(arg, SURROGATE, surrogate_param)
        g_u += g_d
        g_th -= g_d
    # ---- threshold, slope and charge
    g_k = zero
    if THRESHOLD == 1:
        g_x += g_th * prm[3] * (1.0 - tx * tx)
        g_k = g_th * tx
    elif THRESHOLD == 2:
        am_prev += g_th * prm[3]
        g_k = g_th * m
    g_slope = zero
    if SLOPE:  # U = relu(k P)
        active = prm[6] * pre > 0
        g_slope = tl.where(active, g_u * pre, 0.0)
        g_pre = tl.where(active, g_u * prm[6], 0.0)
    else:
        g_pre = g_u
    g_x += g_pre * prm[0]
    grads = (g_pre * x, g_pre * v, g_th, g_k, g_mem, g_rho, g_slope, g_gate, g_value)
    return g_x, g_pre * prm[1], am_prev, grads


@triton.jit
def _load_params(prm_ptr, P, offs, mask, C, S, PER_CHANNEL: tl.constexpr):
    """The parameter table's rows in fp32: scalars (per layer) or gathered per neuron (per channel,
    channel = (n // S) % C). Masked lanes read 1.0 (no division by zero in lanes never stored)."""
    if PER_CHANNEL:
        ptrs = prm_ptr + (offs // S) % C
        prm = (tl.load(ptrs, mask=mask, other=1.0), tl.load(ptrs + P, mask=mask, other=1.0),
               tl.load(ptrs + 2 * P, mask=mask, other=1.0), tl.load(ptrs + 3 * P, mask=mask, other=1.0),
               tl.load(ptrs + 4 * P, mask=mask, other=1.0), tl.load(ptrs + 5 * P, mask=mask, other=1.0),
               tl.load(ptrs + 6 * P, mask=mask, other=1.0), tl.load(ptrs + 7 * P, mask=mask, other=1.0),
               tl.load(ptrs + 8 * P, mask=mask, other=1.0))
    else:
        prm = (tl.load(prm_ptr), tl.load(prm_ptr + P), tl.load(prm_ptr + 2 * P), tl.load(prm_ptr + 3 * P),
               tl.load(prm_ptr + 4 * P), tl.load(prm_ptr + 5 * P), tl.load(prm_ptr + 6 * P),
               tl.load(prm_ptr + 7 * P), tl.load(prm_ptr + 8 * P))
    return prm


@triton.jit
def _chunk_sum(acc, mask, BLOCK: tl.constexpr, CHUNK: tl.constexpr):
    """[BLOCK] -> [BLOCK // CHUNK] sums of consecutive CHUNK neurons; masked lanes count as 0."""
    acc = tl.where(mask, acc, 0.0)
    return tl.sum(tl.reshape(acc, [BLOCK // CHUNK, CHUNK]), axis=1)


@triton.jit
def _accumulate(acc, grads, valid):
    """acc + grads (tuples in PARAM_NAMES order), where ``valid``; unused rows are optimised away."""
    return (acc[0] + tl.where(valid, grads[0], 0.0), acc[1] + tl.where(valid, grads[1], 0.0),
            acc[2] + tl.where(valid, grads[2], 0.0), acc[3] + tl.where(valid, grads[3], 0.0),
            acc[4] + tl.where(valid, grads[4], 0.0), acc[5] + tl.where(valid, grads[5], 0.0),
            acc[6] + tl.where(valid, grads[6], 0.0), acc[7] + tl.where(valid, grads[7], 0.0),
            acc[8] + tl.where(valid, grads[8], 0.0))


@triton.jit
def _store_partial(part_ptr, row, acc, offs, mask, pid, N, PER_CHANNEL: tl.constexpr, BLOCK: tl.constexpr,
                   CHUNK: tl.constexpr):
    """One row of the partial parameter gradients: per neuron [N] (PER_CHANNEL) or per CHUNK neurons."""
    if PER_CHANNEL:
        tl.store(part_ptr + row * N + offs, acc, mask=mask)
    else:
        n_part = tl.cdiv(N, CHUNK)
        idx = pid * (BLOCK // CHUNK) + tl.arange(0, BLOCK // CHUNK)
        tl.store(part_ptr + row * n_part + idx, _chunk_sum(acc, mask, BLOCK, CHUNK), mask=idx < n_part)


# ---------------------------------------------------------------------------------------------
# forward kernel
# ---------------------------------------------------------------------------------------------
@triton.jit(do_not_specialize=["T"])
def _forward_kernel(
    x_ptr, s_ptr, v_ptr, m_ptr,  # x, s: [T, N]; v, m: [N] (m written only when M is an output)
    flag_ptr,  # [1] int32, set to 1 if any x is NaN/inf (written only with CHECK_FINITE)
    prm_ptr,  # [9, P] fp32 parameter table
    T, N, C, S, P,  # steps, neurons per step, channels (dim 2), neurons per channel and sample, row stride
    int_scale, int_top,
    RESET: tl.constexpr, THRESHOLD: tl.constexpr, INTEGER: tl.constexpr, MEMORY_CARRY: tl.constexpr,
    SLOPE: tl.constexpr, PER_CHANNEL: tl.constexpr, CHECK_FINITE: tl.constexpr, BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)  # [BLOCK] neuron indices (N < 2^31, checked on the host)
    mask = offs < N
    prm = _load_params(prm_ptr, P, offs, mask, C, S, PER_CHANNEL)
    v = tl.zeros([BLOCK], dtype=tl.float32)
    m = tl.zeros([BLOCK], dtype=tl.float32)
    x_ptrs = x_ptr + offs  # advanced by N per step: 64-bit pointer arithmetic, no int32 overflow
    s_ptrs = s_ptr + offs
    x_t = tl.load(x_ptrs, mask=mask, other=0.0).to(tl.float32)
    nonfinite = tl.zeros([BLOCK], dtype=tl.int32)
    for t in range(T):
        if CHECK_FINITE:  # the input is read here anyway: checking it costs no memory traffic
            nonfinite |= ((x_t != x_t) | (tl.abs(x_t) == float("inf"))).to(tl.int32)
        # prefetch X_{t+1} while step t computes
        x_ptrs += N
        x_next = tl.load(x_ptrs, mask=offs < tl.where(t + 1 < T, N, 0), other=0.0).to(tl.float32)
        s, v, m = _forward_step(x_t, v, m, prm, int_scale, int_top, RESET, THRESHOLD, INTEGER, MEMORY_CARRY, SLOPE)
        tl.store(s_ptrs, s.to(s_ptr.dtype.element_ty), mask=mask)
        s_ptrs += N
        x_t = x_next
    tl.store(v_ptr + offs, v.to(v_ptr.dtype.element_ty), mask=mask)
    if RESET == 2 or RESET == 3 or THRESHOLD == 2:
        tl.store(m_ptr + offs, m.to(m_ptr.dtype.element_ty), mask=mask)
    if CHECK_FINITE:
        found = tl.max(nonfinite, axis=0)
        if found > 0:  # programs that saw NaN/inf all write the same 1: no atomic needed
            tl.store(flag_ptr, found)


# ---------------------------------------------------------------------------------------------
# backward kernel
# ---------------------------------------------------------------------------------------------
@triton.jit
def _adjoint_slot(lim, x, v, m, row, offs, gs_ptr, gx_ptr, av, am, acc, prm,
                  int_max, int_scale, int_top, surrogate_param,
                  RESET: tl.constexpr, THRESHOLD: tl.constexpr, INTEGER: tl.constexpr, SLOPE: tl.constexpr,
                  DETACH_RESET: tl.constexpr, SURROGATE: tl.constexpr, MEMORY_CARRY: tl.constexpr,
                  PARAM_GRAD: tl.constexpr):
    """One step of the adjoint in the unrolled chunk: the state entering it (v, m) and x come from
    registers. ``lim`` is N, or 0 for a slot past the sequence's end, which changes and stores nothing."""
    lanes = offs < lim
    valid = lim > 0
    gs_t = tl.load(gs_ptr + row + offs, mask=lanes, other=0.0).to(tl.float32)
    g_x, av_new, am_new, grads = _backward_step(
        x, v, m, gs_t, av, am, prm, int_max, int_scale, int_top, surrogate_param,
        RESET, THRESHOLD, INTEGER, SLOPE, DETACH_RESET, SURROGATE, MEMORY_CARRY)
    tl.store(gx_ptr + row + offs, g_x.to(gx_ptr.dtype.element_ty), mask=lanes)
    av = tl.where(valid, av_new, av)
    am = tl.where(valid, am_new, am)
    if PARAM_GRAD:
        acc = _accumulate(acc, grads, valid)
    return av, am, acc


@triton.jit(do_not_specialize=["T"])
def _backward_kernel(
    x_ptr, gs_ptr, gv_ptr, gm_ptr,  # x, dL/dS: [T, N]; dL/dV_T, dL/dM_T: [N] (read if HAS_GRAD_STATE)
    gx_ptr,  # out dL/dX: [T, N]
    ck_ptr,  # scratch [ceil(T/K) - 1, NSTATE, N] fp32: state entering steps K, 2K, ...
    part_ptr,  # out partial parameter gradients, fp32: [9, N] (PER_CHANNEL) or [9, cdiv(N, CHUNK)]
    prm_ptr,  # [9, P] fp32 parameter table
    T, N, C, S, P,
    int_max, int_scale, int_top, surrogate_param,
    RESET: tl.constexpr, THRESHOLD: tl.constexpr, INTEGER: tl.constexpr, MEMORY_CARRY: tl.constexpr,
    SLOPE: tl.constexpr, PER_CHANNEL: tl.constexpr, DETACH_RESET: tl.constexpr, SURROGATE: tl.constexpr,
    HAS_GRAD_STATE: tl.constexpr, PARAM_GRAD: tl.constexpr, CHUNK: tl.constexpr,
    K: tl.constexpr,  # steps between checkpoints (fixed per variant: RESET decides it)
    UNROLL: tl.constexpr,  # chunk held in registers (K <= 4) instead of recomputed per step from x
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)  # [BLOCK]
    mask = offs < N
    prm = _load_params(prm_ptr, P, offs, mask, C, S, PER_CHANNEL)
    # the state is (V, M) when M is carried from step to step, else V alone
    KEEP_M: tl.constexpr = (RESET == 2 and MEMORY_CARRY) or RESET == 3 or THRESHOLD == 2
    HAS_M: tl.constexpr = RESET == 2 or RESET == 3 or THRESHOLD == 2  # M_T is an output
    NSTATE: tl.constexpr = 2 if KEEP_M else 1

    # ---- pass 1: replay the forward, checkpoint the state entering steps K, 2K, ... (< T)
    n_ck = (T - 1) // K
    v = tl.zeros([BLOCK], dtype=tl.float32)
    m = tl.zeros([BLOCK], dtype=tl.float32)
    x_ptrs = x_ptr + offs
    ck_ptrs = ck_ptr + offs
    for _ck in range(n_ck):
        for _j in range(K):
            x_t = tl.load(x_ptrs, mask=mask, other=0.0).to(tl.float32)
            _, v, m = _forward_step(x_t, v, m, prm, int_scale, int_top, RESET, THRESHOLD, INTEGER, MEMORY_CARRY,
                                    SLOPE)
            x_ptrs += N
        tl.store(ck_ptrs, v, mask=mask)
        if KEEP_M:
            tl.store(ck_ptrs + N, m, mask=mask)
        ck_ptrs += NSTATE * N

    # ---- pass 2: adjoint recurrence, chunks last to first, steps last to first within a chunk
    if HAS_GRAD_STATE:
        av = tl.load(gv_ptr + offs, mask=mask, other=0.0).to(tl.float32)  # dL/dV_T
        if HAS_M:
            am = tl.load(gm_ptr + offs, mask=mask, other=0.0).to(tl.float32)  # dL/dM_T
        else:
            am = tl.zeros([BLOCK], dtype=tl.float32)
    else:
        av = tl.zeros([BLOCK], dtype=tl.float32)
        am = tl.zeros([BLOCK], dtype=tl.float32)
    z = tl.zeros([BLOCK], dtype=tl.float32)
    acc = (z, z, z, z, z, z, z, z, z)  # PARAM_NAMES order
    for cc in range(n_ck + 1):
        c = n_ck - cc  # chunk c covers steps [c K, min((c + 1) K, T))
        t0 = c * K
        length = tl.minimum(K, T - t0)
        row0 = tl.cast(t0, tl.int64) * N  # element offset of step t0 (int64: T N may exceed 2^31)
        # state entering the chunk: a checkpoint, or zeros for the first chunk
        ck_row = tl.cast(tl.maximum(c - 1, 0), tl.int64) * (NSTATE * N)
        has_ck = offs < tl.where(c > 0, N, 0)
        v0 = tl.load(ck_ptr + ck_row + offs, mask=has_ck, other=0.0)
        if KEEP_M:
            m0 = tl.load(ck_ptr + ck_row + N + offs, mask=has_ck, other=0.0)
        else:
            m0 = tl.zeros([BLOCK], dtype=tl.float32)
        if UNROLL:  # the chunk's inputs and entering states in registers: each x read once, K - 1 replays
            tl.static_assert(K <= 4, "UNROLL holds at most 4 steps")
            xa = tl.load(x_ptr + row0 + offs, mask=mask, other=0.0).to(tl.float32)
            if K > 1:
                xb = tl.load(x_ptr + row0 + N + offs, mask=offs < tl.where(1 < length, N, 0), other=0.0).to(tl.float32)
                _, vb, mb = _forward_step(xa, v0, m0, prm, int_scale, int_top, RESET, THRESHOLD, INTEGER,
                                          MEMORY_CARRY, SLOPE)
            if K > 2:
                xc = tl.load(x_ptr + row0 + 2 * N + offs, mask=offs < tl.where(2 < length, N, 0),
                             other=0.0).to(tl.float32)
                _, vc, mc = _forward_step(xb, vb, mb, prm, int_scale, int_top, RESET, THRESHOLD, INTEGER,
                                          MEMORY_CARRY, SLOPE)
            if K > 3:
                xd = tl.load(x_ptr + row0 + 3 * N + offs, mask=offs < tl.where(3 < length, N, 0),
                             other=0.0).to(tl.float32)
                _, vd, md = _forward_step(xc, vc, mc, prm, int_scale, int_top, RESET, THRESHOLD, INTEGER,
                                          MEMORY_CARRY, SLOPE)
                av, am, acc = _adjoint_slot(
                    tl.where(3 < length, N, 0), xd, vd, md, row0 + 3 * N, offs, gs_ptr, gx_ptr, av, am, acc, prm,
                    int_max, int_scale, int_top, surrogate_param,
                    RESET, THRESHOLD, INTEGER, SLOPE, DETACH_RESET, SURROGATE, MEMORY_CARRY, PARAM_GRAD)
            if K > 2:
                av, am, acc = _adjoint_slot(
                    tl.where(2 < length, N, 0), xc, vc, mc, row0 + 2 * N, offs, gs_ptr, gx_ptr, av, am, acc, prm,
                    int_max, int_scale, int_top, surrogate_param,
                    RESET, THRESHOLD, INTEGER, SLOPE, DETACH_RESET, SURROGATE, MEMORY_CARRY, PARAM_GRAD)
            if K > 1:
                av, am, acc = _adjoint_slot(
                    tl.where(1 < length, N, 0), xb, vb, mb, row0 + N, offs, gs_ptr, gx_ptr, av, am, acc, prm,
                    int_max, int_scale, int_top, surrogate_param,
                    RESET, THRESHOLD, INTEGER, SLOPE, DETACH_RESET, SURROGATE, MEMORY_CARRY, PARAM_GRAD)
            av, am, acc = _adjoint_slot(
                tl.where(0 < length, N, 0), xa, v0, m0, row0, offs, gs_ptr, gx_ptr, av, am, acc, prm,
                int_max, int_scale, int_top, surrogate_param,
                RESET, THRESHOLD, INTEGER, SLOPE, DETACH_RESET, SURROGATE, MEMORY_CARRY, PARAM_GRAD)
        else:  # recompute the state entering each step from the chunk start (any K)
            for jj in range(length):
                j = length - 1 - jj  # step t = t0 + j
                v = v0
                m = m0
                for i in range(j):
                    x_i = tl.load(x_ptr + row0 + i * N + offs, mask=mask, other=0.0).to(tl.float32)
                    _, v, m = _forward_step(x_i, v, m, prm, int_scale, int_top, RESET, THRESHOLD, INTEGER,
                                            MEMORY_CARRY, SLOPE)
                row = row0 + j * N
                x_t = tl.load(x_ptr + row + offs, mask=mask, other=0.0).to(tl.float32)
                gs_t = tl.load(gs_ptr + row + offs, mask=mask, other=0.0).to(tl.float32)
                g_x, av, am, grads = _backward_step(
                    x_t, v, m, gs_t, av, am, prm, int_max, int_scale, int_top, surrogate_param,
                    RESET, THRESHOLD, INTEGER, SLOPE, DETACH_RESET, SURROGATE, MEMORY_CARRY)
                tl.store(gx_ptr + row + offs, g_x.to(gx_ptr.dtype.element_ty), mask=mask)
                if PARAM_GRAD:
                    acc = _accumulate(acc, grads, N > 0)

    # ---- partial sums of the parameter gradients (reduced by one torch.sum on the host); only the
    # rows the variant reads (Variant.used_params: the host zeroes or ignores the others)
    if PARAM_GRAD:
        _store_partial(part_ptr, 0, acc[0], offs, mask, pid, N, PER_CHANNEL, BLOCK, CHUNK)
        _store_partial(part_ptr, 1, acc[1], offs, mask, pid, N, PER_CHANNEL, BLOCK, CHUNK)
        _store_partial(part_ptr, 2, acc[2], offs, mask, pid, N, PER_CHANNEL, BLOCK, CHUNK)
        if THRESHOLD > 0:
            _store_partial(part_ptr, 3, acc[3], offs, mask, pid, N, PER_CHANNEL, BLOCK, CHUNK)
        if RESET == 2 or RESET == 3:
            _store_partial(part_ptr, 4, acc[4], offs, mask, pid, N, PER_CHANNEL, BLOCK, CHUNK)
        if THRESHOLD == 2:
            _store_partial(part_ptr, 5, acc[5], offs, mask, pid, N, PER_CHANNEL, BLOCK, CHUNK)
        if SLOPE:
            _store_partial(part_ptr, 6, acc[6], offs, mask, pid, N, PER_CHANNEL, BLOCK, CHUNK)
        if RESET == 4:
            _store_partial(part_ptr, 7, acc[7], offs, mask, pid, N, PER_CHANNEL, BLOCK, CHUNK)
            _store_partial(part_ptr, 8, acc[8], offs, mask, pid, N, PER_CHANNEL, BLOCK, CHUNK)


# ---------------------------------------------------------------------------------------------
# launchers
# ---------------------------------------------------------------------------------------------
_FWD_KEYS = ["N", "RESET", "THRESHOLD", "INTEGER", "MEMORY_CARRY", "SLOPE", "PER_CHANNEL", "CHECK_FINITE"]
_BWD_KEYS = _FWD_KEYS[:-1] + ["DETACH_RESET", "SURROGATE", "HAS_GRAD_STATE", "PARAM_GRAD"]

# autotune candidates, all with num_stages=1; register counts compiled for sm_90 with Triton 3.9
# (python -m lit_snn.tools.kernel_resources). Forward, (BLOCK, num_warps): 32-78 registers at
# any of these. Backward, (BLOCK, num_warps, UNROLL): 2 neurons per thread (256/4, 512/8) keep
# AR-LIF at 64-72 registers (28-32 resident warps per SM), 4 per thread at 96-128 (16-20 warps),
# 8 per thread (1024/4) suits the light variants but takes 168 for AR-LIF. UNROLL holds a
# checkpoint chunk (K <= 4 steps) in registers: each x is read once and the chunk is replayed
# once (K - 1 steps) instead of once per step from reloaded x, for more registers; the autotuner
# picks. BLOCK must be a multiple of PARTIAL_CHUNK in the backward.
FWD_CONFIGS = ((512, 4), (1024, 4), (1024, 8), (2048, 8))
BWD_CONFIGS = tuple((b, w, unroll) for unroll in (False, True)
                    for b, w in ((256, 2), (256, 4), (512, 4), (512, 8), (1024, 8), (1024, 4))
                    if not (unroll and (b, w) == (1024, 4)))
INTERPRET_BLOCK = 1024  # the interpreter's one fixed configuration (tests switch UNROLL through _FIXED_BWD)

if INTERPRET:  # one fixed configuration: autotuning would benchmark in the (slow) interpreter
    _fwd_runner = _forward_kernel
    _bwd_runner = _backward_kernel
    _FIXED_FWD = {"BLOCK": INTERPRET_BLOCK}
    _FIXED_BWD = {"BLOCK": INTERPRET_BLOCK, "UNROLL": True}
else:
    _fwd_runner = triton.autotune(
        configs=[triton.Config({"BLOCK": b}, num_warps=w, num_stages=1) for b, w in FWD_CONFIGS], key=_FWD_KEYS,
    )(_forward_kernel)
    _bwd_runner = triton.autotune(
        configs=[triton.Config({"BLOCK": b, "UNROLL": u}, num_warps=w, num_stages=1) for b, w, u in BWD_CONFIGS],
        key=_BWD_KEYS,
    )(_backward_kernel)
    _FIXED_FWD = {}
    _FIXED_BWD = {}


def _on_device(x: Tensor):
    """Launch on x's GPU (Triton uses the current device), a no-op on the CPU interpreter."""
    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()


def forward_launch(x: Tensor, prm: Tensor, variant: Variant, C: int, S: int, check_finite: bool = False):
    """x: [T, N] contiguous, prm: [9, P] fp32 -> (spikes [T, N], V_T [N], M_T [N]) in x's dtype, and the
    non-finite flag: [1] int32, 1 if x held NaN/inf (with ``check_finite``; else an empty tensor)."""
    T, N = x.shape
    spikes = torch.empty_like(x)
    v = torch.empty(N, device=x.device, dtype=x.dtype)
    # without a second state M_T is the constant 0: a broadcast zero, not N written zeros
    m = torch.empty(N, device=x.device, dtype=x.dtype) if variant.has_m else x.new_zeros(()).expand(N)
    flag = torch.zeros(1 if check_finite else 0, device=x.device, dtype=torch.int32)
    if N == 0:
        return spikes, v, m, flag
    grid = lambda meta: (triton.cdiv(N, meta["BLOCK"]),)
    with _on_device(x):
        _fwd_runner[grid](
            x, spikes, v, m, flag, prm, T, N, C, S, prm.shape[1], variant.int_scale, variant.int_top,
            **variant.constexprs("fwd"), CHECK_FINITE=check_finite, **_FIXED_FWD,
        )
    return spikes, v, m, flag


def backward_launch(x: Tensor, grad_s: Tensor, grad_v: Tensor | None, grad_m: Tensor | None, prm: Tensor,
                    variant: Variant, C: int, S: int, param_grad: bool):
    """Adjoint of ``forward_launch``: (dL/dx [T, N] in x's dtype, dL/dprm [9, P] fp32)."""
    T, N = x.shape
    P = prm.shape[1]
    grad_x = torch.empty_like(x)
    if N == 0 or not param_grad:
        grad_params = torch.zeros(NUM_PARAMS, P, device=x.device, dtype=torch.float32)
        if N == 0:
            return grad_x, grad_params
    K = variant.checkpoint_every
    if K > 4 and _FIXED_BWD.get("UNROLL", True):
        raise ConfigError(f"multistep_triton: CHECKPOINT_EVERY = {K}, but the unrolled backward holds at most 4 steps")
    n_state = 2 if variant.keep_m else 1
    n_ck = (T - 1) // K
    ck = torch.empty(max(n_ck, 1) * n_state * N, device=x.device, dtype=torch.float32)
    if not param_grad:
        part = torch.empty(1, device=x.device, dtype=torch.float32)
    elif variant.PER_CHANNEL:
        part = torch.empty(NUM_PARAMS, N, device=x.device, dtype=torch.float32)
    else:  # zeroed (N / 256 floats a row): rows of parameters the variant lacks stay 0 and sum to 0
        part = torch.zeros(NUM_PARAMS, triton.cdiv(N, PARTIAL_CHUNK), device=x.device, dtype=torch.float32)
    has_grad_state = grad_v is not None
    if not has_grad_state:
        grad_v = grad_m = x  # never read
    elif grad_m is None:  # read only when M_T is an output, where the caller always passes it
        grad_m = grad_v
    grid = lambda meta: (triton.cdiv(N, meta["BLOCK"]),)
    with _on_device(x):
        _bwd_runner[grid](
            x, grad_s, grad_v, grad_m, grad_x, ck, part, prm, T, N, C, S, P,
            variant.int_max, variant.int_scale, variant.int_top, variant.surrogate_param,
            **variant.constexprs("bwd"), HAS_GRAD_STATE=has_grad_state, PARAM_GRAD=param_grad,
            CHUNK=PARTIAL_CHUNK, K=K, **_FIXED_BWD,
        )
    if param_grad:
        if variant.PER_CHANNEL:  # [9, B, C, S] -> [9, C]; rows the variant does not write hold garbage
            rows = variant.used_params()
            grad_params = torch.zeros(NUM_PARAMS, P, device=x.device, dtype=torch.float32)
            grad_params[rows] = part.view(NUM_PARAMS, N // (C * S), C, S)[rows].sum(dim=(1, 3))
        else:  # one deterministic reduction of the per-chunk partial sums
            grad_params = part.sum(dim=1, keepdim=True)
    return grad_x, grad_params


# ---------------------------------------------------------------------------------------------
# autograd wiring: two custom ops, so torch.compile sees one opaque op per direction (no graph break)
# ---------------------------------------------------------------------------------------------
@torch.library.custom_op("lit_snn::neuron_multistep_fwd", mutates_args=())
def _fwd_op(x: Tensor, prm: Tensor, flags: list[int], scalars: list[float], C: int, S: int,
            check_finite: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return forward_launch(x, prm, Variant.from_op(flags, scalars), C, S, check_finite)


@_fwd_op.register_fake
def _fwd_fake(x, prm, flags, scalars, C, S, check_finite):
    n = x.shape[1]
    m = x.new_empty(n) if Variant.from_op(flags, scalars).has_m else x.new_zeros(()).expand(n)
    return torch.empty_like(x), x.new_empty(n), m, x.new_empty(1 if check_finite else 0, dtype=torch.int32)


@torch.library.custom_op("lit_snn::neuron_multistep_bwd", mutates_args=())
def _bwd_op(x: Tensor, grad_s: Tensor, grad_v: Tensor | None, grad_m: Tensor | None, prm: Tensor,
            flags: list[int], scalars: list[float], C: int, S: int, param_grad: bool) -> tuple[Tensor, Tensor]:
    return backward_launch(x, grad_s, grad_v, grad_m, prm, Variant.from_op(flags, scalars), C, S, param_grad)


@_bwd_op.register_fake
def _bwd_fake(x, grad_s, grad_v, grad_m, prm, flags, scalars, C, S, param_grad):
    return torch.empty_like(x), prm.new_empty(prm.shape, dtype=torch.float32)


def _adjoint(x, prm, variant, C, S, grad_s, grad_v, grad_m, param_grad: bool, input_grad: bool):
    """The backward of one call: (dL/dx or None, dL/dprm [9, P] fp32) from the outputs' gradients."""
    if grad_s is None:
        grad_s = torch.zeros_like(x)
    if not variant.has_m:
        grad_m = None  # M_T is the constant 0 without a second state
    if grad_v is None and grad_m is not None:
        grad_v = torch.zeros_like(grad_m)
    if grad_v is not None and grad_m is None and variant.has_m:
        grad_m = torch.zeros_like(grad_v)
    grad_v = None if grad_v is None else grad_v.contiguous()
    grad_m = None if grad_m is None else grad_m.contiguous()
    if torch.compiler.is_compiling():  # traced by torch.compile: the opaque custom op
        grad_x, grad_params = _bwd_op(x, grad_s.contiguous(), grad_v, grad_m, prm, *variant.to_op(), C, S,
                                      param_grad=param_grad)
    else:  # eager: the launcher itself (no op-dispatch overhead)
        grad_x, grad_params = backward_launch(x, grad_s.contiguous(), grad_v, grad_m, prm, variant, C, S,
                                              param_grad=param_grad)
    return grad_x if input_grad else None, grad_params


def _autograd_backward(ctx, grad_s, grad_v, grad_m, grad_flag=None):
    x, prm = ctx.saved_tensors
    variant, C, S = ctx.launch
    needs = ctx.needs_input_grad
    grad_x, grad_params = _adjoint(x, prm, variant, C, S, grad_s, grad_v, grad_m, needs[1], needs[0])
    return grad_x, grad_params.to(prm.dtype) if needs[1] else None, None, None, None, None, None


def _fwd_op_setup_context(ctx, inputs, output):
    x, prm, flags, scalars, C, S, _ = inputs
    ctx.save_for_backward(x, prm)
    ctx.launch = (Variant.from_op(flags, scalars), C, S)
    ctx.set_materialize_grads(False)


_fwd_op.register_autograd(_autograd_backward, setup_context=_fwd_op_setup_context)


class _EagerMultistep(torch.autograd.Function):
    """The same forward and backward as the custom ops, for eager mode.

    The ``custom_op`` dispatch costs the host about 100 us per direction. Measured with no-op
    launchers on a 2-core CPU (``scripts/host_overhead.py``, 2026-12-01): 358-592 us per
    ``multistep_triton`` forward + backward through the custom ops, 149-317 us through this
    Function (a noisy machine: an empty Function took 27-63 us). That is
    the size of the kernels' own GPU time at a CIFAR ResNet stage, so eager calls skip it. Under
    ``torch.compile``, ``multistep_triton`` uses the custom ops, which the compiler sees as one
    opaque op per direction: a whole network compiles as one graph (``LitSNN(compile=True)``,
    ``--model.compile true``; ``tests/test_compile.py``).
    """

    @staticmethod
    def forward(ctx, x, variant: Variant, C: int, S: int, check_finite: bool, *params):
        # the nine parameters come in separately and are stacked here, outside autograd: no stack
        # node in the graph (its backward would cost the host as much as this Function's)
        prm = _param_table(params, C if variant.PER_CHANNEL else 1)
        outputs = forward_launch(x, prm, variant, C, S, check_finite)
        ctx.save_for_backward(x, prm)
        ctx.launch = (variant, C, S)
        ctx.param_meta = [(p.numel(), p.dtype) for p in params]
        ctx.set_materialize_grads(False)
        return outputs

    @staticmethod
    def backward(ctx, grad_s, grad_v, grad_m, grad_flag):
        x, prm = ctx.saved_tensors
        variant, C, S = ctx.launch
        needs = ctx.needs_input_grad
        grad_x, grad_params = _adjoint(x, prm, variant, C, S, grad_s, grad_v, grad_m, any(needs[5:]), needs[0])
        grads = []
        for row, (numel, dtype), need in zip(range(NUM_PARAMS), ctx.param_meta, needs[5:]):
            if not need:
                grads.append(None)
                continue
            g = grad_params[row]
            grads.append((g.sum(0, keepdim=True) if numel == 1 and g.numel() > 1 else g).to(dtype))
        return (grad_x, None, None, None, None, *grads)


def _param_table(params, width: int) -> Tensor:
    """[9, width] fp32 from nine [1] or [width] vectors."""
    if width > 1:
        table = torch.stack([p.expand(width) for p in params])
    else:
        table = torch.cat(params).view(NUM_PARAMS, 1)
    return table if table.dtype == torch.float32 else table.float()


# ---------------------------------------------------------------------------------------------
# public function
# ---------------------------------------------------------------------------------------------
_UNUSED: dict = {}  # device -> a [1] fp32 stand-in for parameters a variant does not read
_VARIANTS: dict = {}  # (spec, per_channel) -> Variant: built once, not per eager call


def _variant(spec: KernelSpec, per_channel: bool) -> Variant:
    if torch.compiler.is_compiling():  # traced once per graph anyway: no cache for dynamo to trace
        return Variant.from_spec(spec, per_channel)
    key = (spec, per_channel)
    if key not in _VARIANTS:
        _VARIANTS[key] = Variant.from_spec(spec, per_channel)
    return _VARIANTS[key]


def _unused_param(device: torch.device) -> Tensor:
    if device not in _UNUSED:
        _UNUSED[device] = torch.ones(1, device=device)
    return _UNUSED[device]


def check_device(x: Tensor, who: str = "multistep_triton", fallback: str = "backend='torch'") -> None:
    """Raise ``RuntimeError`` where Triton cannot run on ``x``'s device (CPU without the interpreter)."""
    if x.is_cuda:
        return
    if x.device.type == "cpu":
        if INTERPRET:
            return
        raise RuntimeError(
            f"{who}: x is on the CPU, where Triton kernels run only in the interpreter; set "
            "TRITON_INTERPRET=1 before lit_snn.neurons.kernels is first imported, move x to a CUDA device, "
            f"or use the PyTorch reference ({fallback})"
        )
    raise RuntimeError(f"{who}: unsupported device {x.device}; use CUDA (or {fallback})")


def multistep_triton(
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
    check_finite: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """Fused Triton version of ``multistep_reference``: same signature, same math, same outputs.

    With ``check_finite=True`` a fourth output follows: a ``[1]`` int32 device flag, 1 if ``x``
    held NaN/inf, found by the forward kernel as it reads ``x`` (no extra pass, no synchronisation).

    Returns ``(spikes [T, ...], V_T [...], M_T [...])`` in ``x``'s dtype (fp32, bf16 or fp16; the
    recurrence runs in fp32 registers). Without a second state ``M_T`` is the constant zero
    returned as a read-only broadcast (stride 0; ``.clone()`` it before writing in place).
    Differentiable w.r.t. ``x`` and every parameter, through the spikes and through
    ``V_T``/``M_T``; ``torch.compile`` sees one custom op per direction (no graph break).

    Raises ``RuntimeError`` when Triton cannot run on ``x``'s device (CPU without
    ``TRITON_INTERPRET=1``), ``ValueError``/``TypeError`` for malformed inputs.
    """
    check_device(x)
    if not isinstance(spec, KernelSpec):
        raise TypeError(f"multistep_triton: spec must be a KernelSpec, got {type(spec).__name__}")
    if x.dim() < 2:
        raise ConfigError(f"multistep_triton: expected x of shape [T, ...] with >= 2 dims, got {tuple(x.shape)}")
    if x.dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise TypeError(
            f"multistep_triton: x must be float32, bfloat16 or float16, got {x.dtype} (use backend='torch')"
        )
    if x.shape[0] < 1:
        raise ConfigError(f"multistep_triton: need at least one time step, got shape {tuple(x.shape)}")
    if spec.reset not in RESET_IDS:
        raise ConfigError(f"multistep_triton: unknown reset {spec.reset!r}; valid: {', '.join(RESET_IDS)}")
    if spec.surrogate not in SURROGATE_IDS:
        raise ConfigError(
            f"multistep_triton: unknown surrogate {spec.surrogate!r}; valid: {', '.join(SURROGATE_IDS)}"
        )
    T = x.shape[0]
    N = x[0].numel()
    if N * max(NUM_PARAMS, *CHECKPOINT_EVERY.values()) >= 2**31:  # in-kernel offsets up to 9 N are int32
        raise ConfigError(f"multistep_triton: too many neurons per step ({N}); split the batch")
    channels = x.shape[2] if x.dim() >= 3 else 1
    given = (alpha, beta, vth, thr_coef, mem_gain, adapt_decay, slope, reset_gate, reset_value)
    spec.require_params(dict(zip(PARAM_NAMES, given)), "multistep_triton")
    flat = []
    for name, p in zip(PARAM_NAMES, given):
        if p is None:  # unused by this variant: any value
            p = _unused_param(x.device)
        if not isinstance(p, Tensor) or not p.is_floating_point():
            raise TypeError(f"multistep_triton: {name} must be a floating-point tensor [P]")
        if p.device != x.device:
            raise ConfigError(f"multistep_triton: {name} is on {p.device}, x on {x.device}")
        if p.numel() != 1 and (x.dim() < 3 or p.numel() != channels):
            raise ConfigError(
                f"multistep_triton: {name} has {p.numel()} entries; expected 1 (per layer) or C = "
                f"{channels if x.dim() >= 3 else 'x.shape[2]'} (per channel, x of shape [T, B, C, ...]), "
                f"x has shape {tuple(x.shape)}"
            )
        flat.append(p if p.dim() == 1 else p.reshape(-1))
    per_channel = any(p.numel() > 1 for p in flat)
    B = x.shape[1] if x.dim() >= 3 else 1
    S = N // (B * channels) if x.dim() >= 3 and N else 1
    C = channels if per_channel else 1
    variant = _variant(spec, per_channel)
    check_finite = bool(check_finite)
    x2d = x.contiguous().view(T, N)
    if torch.compiler.is_compiling():  # the table is built in the traced graph (differentiable)
        spikes, v, m, flag = _fwd_op(x2d, _param_table(flat, C), *variant.to_op(), C, S, check_finite)
    else:
        spikes, v, m, flag = _EagerMultistep.apply(x2d, variant, C, S, check_finite, *flat)
    if check_finite:
        return spikes.view(x.shape), v.view(x.shape[1:]), m.view(x.shape[1:]), flag
    return spikes.view(x.shape), v.view(x.shape[1:]), m.view(x.shape[1:])
