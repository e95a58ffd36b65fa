"""Fused multi-step Triton kernels of the neuron family: same math as ``reference.multistep_reference``.

One kernel template per direction; ``tl.constexpr`` flags pick the neuron variant at compile time:

- ``RESET``: 0 hard ``V = U (1 - F)``, 1 soft ``V = U - S th``, 2 adaptive (AR-LIF memory ``M``)
- ``ADAPTIVE_THRESHOLD``: ``th = vth + thr_coef tanh(X)`` (else ``th = vth``)
- ``INTEGER``: ``S = round(clamp(N U/th, 0, N D)) / N`` with straight-through gradient on [0, D]
  (``int_max`` = D, ``int_scale`` = N, ``int_top`` = round(N D) are float arguments)
- ``SURROGATE``: 0 rectangle, 1 triangle, 2 sigmoid, 3 atan (``surrogate_param`` a float argument)
- ``MEMORY_CARRY``: AR-LIF memory carried across steps (else it restarts at 0 every step)
- ``PER_CHANNEL``: parameters are ``[C]`` vectors indexed by the channel (dim 2) of each neuron

Layout: the input is viewed as ``[T, N]`` (time-major, contiguous); one program owns ``BLOCK``
neurons and walks over time inside the kernel with ``V`` (and ``M``) in registers. ``T`` is a
runtime argument (no recompilation per sequence length).

Forward: reads each ``x`` once, writes each spike once, plus the final ``V`` (and ``M``).

Backward: runs the adjoint recurrence in reverse inside the kernel. What is kept per element:

- between forward and backward, for every preset: nothing but ``x`` (autograd holds the input,
  already alive as the layer's input, and the ``[P]`` parameters; no spikes, no membrane
  history). The backward recomputes the states in registers from ``x``.
- inside the backward, to keep that recomputation O(T K) instead of O(T^2), the backward first replays the forward
  once and writes the state entering every K-th step to a transient fp32 buffer (freed when the
  backward returns): ``V`` only, ``ceil(T/K) - 1`` floats per neuron, for the hard/soft-reset
  presets (``lif``, ``plif``, ``hard_lif``, ``soft_lif``, ``da_lif``, ``i_lif``, ``ib_ra_lif``;
  K = 4, so nothing at all for T <= 4); ``V`` and ``M`` for ``ar_lif`` and ``V`` alone for
  ``ar_lif_dvs`` (memory restarts each step), with K = 2 because their step costs four
  transcendentals. ``CHECKPOINT_EVERY`` holds the two intervals.
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
import math

import torch
import triton
import triton.language as tl
from torch import Tensor

from ..reference import KernelSpec
from ..surrogate import SURROGATE_IDS

INTERPRET = bool(triton.knobs.runtime.interpret)  # decided when the kernels below are decorated
RESET_IDS = {"hard": 0, "soft": 1, "adaptive": 2}
PARTIAL_CHUNK = 256  # neurons per partial sum of a per-layer parameter gradient (divides every BLOCK)
CHECKPOINT_EVERY = {"adaptive": 2, "default": 4}  # backward: steps between stored states (see docstring)


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
def _quantize(z, int_scale, int_top):
    """Integer spike floor(clamp(N z, 0, round(N D)) + 0.5) / N (no gradient)."""
    q = tl.floor(tl.minimum(tl.maximum(z * int_scale, 0.0), int_top) + 0.5)
    return tl.math.div_rn(q, int_scale + tl.zeros_like(q))


@triton.jit
def _forward_step(x, v, m, alpha, beta, vth, thr_coef, mem_gain, int_scale, int_top,
                  RESET: tl.constexpr, ADAPTIVE_THRESHOLD: tl.constexpr, INTEGER: tl.constexpr,
                  MEMORY_CARRY: tl.constexpr):
    """One step: (V_{t-1}, M_{t-1}, X_t) -> (S_t, V_t, M_t); every tensor [BLOCK] fp32."""
    u = beta * v + alpha * x  # U_t
    if ADAPTIVE_THRESHOLD or RESET == 2:
        e = tl.exp(-x)  # shared by tanh(x) and sigmoid(x)
    if ADAPTIVE_THRESHOLD:
        th = vth + thr_coef * (2.0 / (1.0 + e * e) - 1.0)  # vth + k tanh(x)
    else:
        th = vth + tl.zeros_like(x)
    if INTEGER:
        s = _quantize(tl.math.div_rn(u, th), int_scale, int_top)
        fired = (s > 0).to(tl.float32)
    else:
        s = (u - th >= 0).to(tl.float32)
        fired = s
    m_new = m
    if RESET == 0:
        v_new = u * (1.0 - fired)
    elif RESET == 1:
        v_new = u - s * th
    else:
        g = 1.0 / (1.0 + tl.exp(-mem_gain * x))  # sigmoid(c x)
        if MEMORY_CARRY:
            mp = m
        else:
            mp = tl.zeros_like(m)
        m_new = tl.maximum(mp, 0.0) * g - tl.maximum(-mp, 0.0) * (1.0 - g)
        m_new = m_new + (2.0 * fired - 1.0) * (1.0 / (1.0 + e))
        v_new = u - s * (th + 1.0 / (1.0 + tl.exp(-m_new)))
    return s, v_new, m_new


@triton.jit
def _backward_step(x, v, m, gs, av, am, alpha, beta, vth, thr_coef, mem_gain,
                   int_max, int_scale, int_top, surrogate_param,
                   RESET: tl.constexpr, ADAPTIVE_THRESHOLD: tl.constexpr, INTEGER: tl.constexpr,
                   SURROGATE: tl.constexpr, MEMORY_CARRY: tl.constexpr):
    """Adjoint of one step.

    Inputs: the state entering the step (v = V_{t-1}, m = M_{t-1}), x = X_t, the incoming
    gradients gs = dL/dS_t, av = dL/dV_t, am = dL/dM_t. Returns dL/dX_t, dL/dV_{t-1}, dL/dM_{t-1}
    and this step's contributions to the gradients of alpha, beta, vth, thr_coef, mem_gain.
    """
    # ---- recompute the step's forward
    u = beta * v + alpha * x  # U_t
    if ADAPTIVE_THRESHOLD or RESET == 2:
        e = tl.exp(-x)
    if ADAPTIVE_THRESHOLD:
        tx = 2.0 / (1.0 + e * e) - 1.0  # tanh(x)
        th = vth + thr_coef * tx
    else:
        th = vth + tl.zeros_like(x)
    if INTEGER:
        z = tl.math.div_rn(u, th)
        s = _quantize(z, int_scale, int_top)
        fired = (s > 0).to(tl.float32)
    else:
        d = u - th
        s = (d >= 0).to(tl.float32)
        fired = s
    # ---- reset: gradients into U, th, S (g_s) and F (g_f: the "fired" indicator)
    zero = tl.zeros_like(x)
    g_s = gs
    g_f = zero
    g_th = zero
    g_x = zero
    g_c = zero
    am_prev = zero
    if RESET == 0:  # V = U (1 - F)
        g_u = av * (1.0 - fired)
        g_f = -av * u
    elif RESET == 1:  # V = U - S th
        g_u = av
        g_s = gs - av * th
        g_th = -av * s
    else:  # M = relu(M') g - relu(-M') (1 - g) + (2F - 1) sig(x);  V = U - S (th + sig(M))
        sx = 1.0 / (1.0 + e)
        g = 1.0 / (1.0 + tl.exp(-mem_gain * x))
        if MEMORY_CARRY:
            mp = m
        else:
            mp = zero
        m_new = tl.maximum(mp, 0.0) * g - tl.maximum(-mp, 0.0) * (1.0 - g)
        m_new = m_new + (2.0 * fired - 1.0) * sx
        sm = 1.0 / (1.0 + tl.exp(-m_new))
        g_u = av
        g_s = gs - av * (th + sm)
        g_th = -av * s
        g_m = am - av * s * sm * (1.0 - sm)  # dL/dM_t (total)
        g_f = 2.0 * g_m * sx
        g_x = g_m * (2.0 * fired - 1.0) * sx * (1.0 - sx)
        g_pre = g_m * tl.abs(mp) * g * (1.0 - g)  # through g = sigmoid(c x): relu(M') + relu(-M') = |M'|
        g_x += g_pre * mem_gain
        g_c = g_pre * x
        if MEMORY_CARRY:
            am_prev = g_m * (tl.where(mp > 0, g, 0.0) + tl.where(mp < 0, 1.0 - g, 0.0))
    # ---- fire
    if INTEGER:  # S = Q(U / th), straight-through on 0 <= z <= D; F = [S > 0] carries no gradient
        g_z = tl.where((z >= 0) & (z <= int_max), g_s, 0.0)
        g_u += g_z / th
        g_th -= g_z * u / (th * th)
    else:  # S = H(U - th) with the surrogate; F = S
        g_d = (g_s + g_f) * _surrogate_grad(d, SURROGATE, surrogate_param)
        g_u += g_d
        g_th -= g_d
    # ---- threshold and charge
    g_k = zero
    if ADAPTIVE_THRESHOLD:
        g_x += g_th * thr_coef * (1.0 - tx * tx)
        g_k = g_th * tx
    g_x += g_u * alpha
    return g_x, g_u * beta, am_prev, g_u * x, g_u * v, g_th, g_k, g_c


@triton.jit
def _load_params(alpha_ptr, beta_ptr, vth_ptr, thr_coef_ptr, mem_gain_ptr, offs, mask, C, S,
                 PER_CHANNEL: tl.constexpr):
    """Parameters in fp32: scalars (per layer) or gathered per neuron (per channel, channel = (n // S) % C)."""
    if PER_CHANNEL:
        ch = (offs // S) % C
        alpha = tl.load(alpha_ptr + ch, mask=mask, other=1.0).to(tl.float32)
        beta = tl.load(beta_ptr + ch, mask=mask, other=1.0).to(tl.float32)
        vth = tl.load(vth_ptr + ch, mask=mask, other=1.0).to(tl.float32)
        thr_coef = tl.load(thr_coef_ptr + ch, mask=mask, other=0.0).to(tl.float32)
        mem_gain = tl.load(mem_gain_ptr + ch, mask=mask, other=0.0).to(tl.float32)
    else:
        alpha = tl.load(alpha_ptr).to(tl.float32)
        beta = tl.load(beta_ptr).to(tl.float32)
        vth = tl.load(vth_ptr).to(tl.float32)
        thr_coef = tl.load(thr_coef_ptr).to(tl.float32)
        mem_gain = tl.load(mem_gain_ptr).to(tl.float32)
    return alpha, beta, vth, thr_coef, mem_gain


@triton.jit
def _chunk_sum(acc, mask, BLOCK: tl.constexpr, CHUNK: tl.constexpr):
    """[BLOCK] -> [BLOCK // CHUNK] sums of consecutive CHUNK neurons; masked lanes count as 0."""
    acc = tl.where(mask, acc, 0.0)
    return tl.sum(tl.reshape(acc, [BLOCK // CHUNK, CHUNK]), axis=1)


# ---------------------------------------------------------------------------------------------
# forward kernel
# ---------------------------------------------------------------------------------------------
@triton.jit(do_not_specialize=["T"])
def _forward_kernel(
    x_ptr, s_ptr, v_ptr, m_ptr,  # x, s: [T, N]; v, m: [N] (m written only for RESET == 2)
    flag_ptr,  # [1] int32, set to 1 if any x is NaN/inf (written only with CHECK_FINITE)
    alpha_ptr, beta_ptr, vth_ptr, thr_coef_ptr, mem_gain_ptr,  # [P]
    T, N, C, S,  # steps, neurons per step, channels (dim 2), neurons per channel and sample
    int_scale, int_top,
    RESET: tl.constexpr, ADAPTIVE_THRESHOLD: tl.constexpr, INTEGER: tl.constexpr,
    MEMORY_CARRY: tl.constexpr, PER_CHANNEL: tl.constexpr, CHECK_FINITE: tl.constexpr, BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)  # [BLOCK] neuron indices (N < 2^31, checked on the host)
    mask = offs < N
    alpha, beta, vth, thr_coef, mem_gain = _load_params(
        alpha_ptr, beta_ptr, vth_ptr, thr_coef_ptr, mem_gain_ptr, offs, mask, C, S, PER_CHANNEL)
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
        s, v, m = _forward_step(x_t, v, m, alpha, beta, vth, thr_coef, mem_gain, int_scale, int_top,
                                RESET, ADAPTIVE_THRESHOLD, INTEGER, MEMORY_CARRY)
        tl.store(s_ptrs, s.to(s_ptr.dtype.element_ty), mask=mask)
        s_ptrs += N
        x_t = x_next
    tl.store(v_ptr + offs, v.to(v_ptr.dtype.element_ty), mask=mask)
    if RESET == 2:
        tl.store(m_ptr + offs, m.to(m_ptr.dtype.element_ty), mask=mask)
    if CHECK_FINITE:
        found = tl.max(nonfinite, axis=0)
        if found > 0:  # programs that saw NaN/inf all write the same 1: no atomic needed
            tl.store(flag_ptr, found)


# ---------------------------------------------------------------------------------------------
# backward kernel
# ---------------------------------------------------------------------------------------------
@triton.jit
def _adjoint_slot(lim, x, v, m, row, offs, gs_ptr, gx_ptr, av, am,
                  acc_alpha, acc_beta, acc_vth, acc_thr, acc_mem, alpha, beta, vth, thr_coef, mem_gain,
                  int_max, int_scale, int_top, surrogate_param,
                  RESET: tl.constexpr, ADAPTIVE_THRESHOLD: tl.constexpr, INTEGER: tl.constexpr,
                  SURROGATE: tl.constexpr, MEMORY_CARRY: tl.constexpr, PARAM_GRAD: tl.constexpr):
    """One step of the adjoint in the unrolled chunk: the state entering it (v, m) and x come from
    registers. ``lim`` is N, or 0 for a slot past the sequence's end, which changes and stores nothing."""
    lanes = offs < lim
    valid = lim > 0
    gs_t = tl.load(gs_ptr + row + offs, mask=lanes, other=0.0).to(tl.float32)
    g_x, av_new, am_new, g_alpha, g_beta, g_vth, g_thr, g_mem = _backward_step(
        x, v, m, gs_t, av, am, alpha, beta, vth, thr_coef, mem_gain,
        int_max, int_scale, int_top, surrogate_param,
        RESET, ADAPTIVE_THRESHOLD, INTEGER, SURROGATE, MEMORY_CARRY)
    tl.store(gx_ptr + row + offs, g_x.to(gx_ptr.dtype.element_ty), mask=lanes)
    av = tl.where(valid, av_new, av)
    am = tl.where(valid, am_new, am)
    if PARAM_GRAD:
        acc_alpha += tl.where(valid, g_alpha, 0.0)
        acc_beta += tl.where(valid, g_beta, 0.0)
        acc_vth += tl.where(valid, g_vth, 0.0)
        if ADAPTIVE_THRESHOLD:
            acc_thr += tl.where(valid, g_thr, 0.0)
        if RESET == 2:
            acc_mem += tl.where(valid, g_mem, 0.0)
    return av, am, acc_alpha, acc_beta, acc_vth, acc_thr, acc_mem


@triton.jit(do_not_specialize=["T"])
def _backward_kernel(
    x_ptr, gs_ptr, gv_ptr, gm_ptr,  # x, dL/dS: [T, N]; dL/dV_T, dL/dM_T: [N] (read if HAS_GRAD_STATE)
    gx_ptr,  # out dL/dX: [T, N]
    ck_ptr,  # scratch [ceil(T/K) - 1, NSTATE, N] fp32: state entering steps K, 2K, ...
    part_ptr,  # out partial parameter gradients, fp32: [5, N] (PER_CHANNEL) or [5, cdiv(N, CHUNK)]
    alpha_ptr, beta_ptr, vth_ptr, thr_coef_ptr, mem_gain_ptr,  # [P]
    T, N, C, S,
    int_max, int_scale, int_top, surrogate_param,
    RESET: tl.constexpr, ADAPTIVE_THRESHOLD: tl.constexpr, INTEGER: tl.constexpr,
    SURROGATE: tl.constexpr, MEMORY_CARRY: tl.constexpr, PER_CHANNEL: tl.constexpr,
    HAS_GRAD_STATE: tl.constexpr, PARAM_GRAD: tl.constexpr, CHUNK: tl.constexpr,
    K: tl.constexpr,  # steps between checkpoints (fixed per variant: RESET decides it)
    UNROLL: tl.constexpr,  # chunk held in registers (K <= 4) instead of recomputed per step from x
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)  # [BLOCK]
    mask = offs < N
    alpha, beta, vth, thr_coef, mem_gain = _load_params(
        alpha_ptr, beta_ptr, vth_ptr, thr_coef_ptr, mem_gain_ptr, offs, mask, C, S, PER_CHANNEL)
    KEEP_M: tl.constexpr = RESET == 2 and MEMORY_CARRY  # the state is (V, M), else V alone
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
            _, v, m = _forward_step(x_t, v, m, alpha, beta, vth, thr_coef, mem_gain, int_scale, int_top,
                                    RESET, ADAPTIVE_THRESHOLD, INTEGER, MEMORY_CARRY)
            x_ptrs += N
        tl.store(ck_ptrs, v, mask=mask)
        if KEEP_M:
            tl.store(ck_ptrs + N, m, mask=mask)
        ck_ptrs += NSTATE * N

    # ---- pass 2: adjoint recurrence, chunks last to first, steps last to first within a chunk
    if HAS_GRAD_STATE:
        av = tl.load(gv_ptr + offs, mask=mask, other=0.0).to(tl.float32)  # dL/dV_T
        if RESET == 2:
            am = tl.load(gm_ptr + offs, mask=mask, other=0.0).to(tl.float32)  # dL/dM_T
        else:
            am = tl.zeros([BLOCK], dtype=tl.float32)
    else:
        av = tl.zeros([BLOCK], dtype=tl.float32)
        am = tl.zeros([BLOCK], dtype=tl.float32)
    acc_alpha = tl.zeros([BLOCK], dtype=tl.float32)
    acc_beta = tl.zeros([BLOCK], dtype=tl.float32)
    acc_vth = tl.zeros([BLOCK], dtype=tl.float32)
    acc_thr = tl.zeros([BLOCK], dtype=tl.float32)
    acc_mem = tl.zeros([BLOCK], dtype=tl.float32)
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
                _, vb, mb = _forward_step(xa, v0, m0, alpha, beta, vth, thr_coef, mem_gain, int_scale, int_top,
                                          RESET, ADAPTIVE_THRESHOLD, INTEGER, MEMORY_CARRY)
            if K > 2:
                xc = tl.load(x_ptr + row0 + 2 * N + offs, mask=offs < tl.where(2 < length, N, 0),
                             other=0.0).to(tl.float32)
                _, vc, mc = _forward_step(xb, vb, mb, alpha, beta, vth, thr_coef, mem_gain, int_scale, int_top,
                                          RESET, ADAPTIVE_THRESHOLD, INTEGER, MEMORY_CARRY)
            if K > 3:
                xd = tl.load(x_ptr + row0 + 3 * N + offs, mask=offs < tl.where(3 < length, N, 0),
                             other=0.0).to(tl.float32)
                _, vd, md = _forward_step(xc, vc, mc, alpha, beta, vth, thr_coef, mem_gain, int_scale, int_top,
                                          RESET, ADAPTIVE_THRESHOLD, INTEGER, MEMORY_CARRY)
                av, am, acc_alpha, acc_beta, acc_vth, acc_thr, acc_mem = _adjoint_slot(
                    tl.where(3 < length, N, 0), xd, vd, md, row0 + 3 * N, offs, gs_ptr, gx_ptr, av, am,
                    acc_alpha, acc_beta, acc_vth, acc_thr, acc_mem, alpha, beta, vth, thr_coef, mem_gain,
                    int_max, int_scale, int_top, surrogate_param,
                    RESET, ADAPTIVE_THRESHOLD, INTEGER, SURROGATE, MEMORY_CARRY, PARAM_GRAD)
            if K > 2:
                av, am, acc_alpha, acc_beta, acc_vth, acc_thr, acc_mem = _adjoint_slot(
                    tl.where(2 < length, N, 0), xc, vc, mc, row0 + 2 * N, offs, gs_ptr, gx_ptr, av, am,
                    acc_alpha, acc_beta, acc_vth, acc_thr, acc_mem, alpha, beta, vth, thr_coef, mem_gain,
                    int_max, int_scale, int_top, surrogate_param,
                    RESET, ADAPTIVE_THRESHOLD, INTEGER, SURROGATE, MEMORY_CARRY, PARAM_GRAD)
            if K > 1:
                av, am, acc_alpha, acc_beta, acc_vth, acc_thr, acc_mem = _adjoint_slot(
                    tl.where(1 < length, N, 0), xb, vb, mb, row0 + N, offs, gs_ptr, gx_ptr, av, am,
                    acc_alpha, acc_beta, acc_vth, acc_thr, acc_mem, alpha, beta, vth, thr_coef, mem_gain,
                    int_max, int_scale, int_top, surrogate_param,
                    RESET, ADAPTIVE_THRESHOLD, INTEGER, SURROGATE, MEMORY_CARRY, PARAM_GRAD)
            av, am, acc_alpha, acc_beta, acc_vth, acc_thr, acc_mem = _adjoint_slot(
                tl.where(0 < length, N, 0), xa, v0, m0, row0, offs, gs_ptr, gx_ptr, av, am,
                acc_alpha, acc_beta, acc_vth, acc_thr, acc_mem, alpha, beta, vth, thr_coef, mem_gain,
                int_max, int_scale, int_top, surrogate_param,
                RESET, ADAPTIVE_THRESHOLD, INTEGER, SURROGATE, MEMORY_CARRY, PARAM_GRAD)
        else:  # recompute the state entering each step from the chunk start (any K)
            for jj in range(length):
                j = length - 1 - jj  # step t = t0 + j
                # recompute the state entering step t from the chunk start
                v = v0
                m = m0
                for i in range(j):
                    x_i = tl.load(x_ptr + row0 + i * N + offs, mask=mask, other=0.0).to(tl.float32)
                    _, v, m = _forward_step(x_i, v, m, alpha, beta, vth, thr_coef, mem_gain, int_scale, int_top,
                                            RESET, ADAPTIVE_THRESHOLD, INTEGER, MEMORY_CARRY)
                row = row0 + j * N
                x_t = tl.load(x_ptr + row + offs, mask=mask, other=0.0).to(tl.float32)
                gs_t = tl.load(gs_ptr + row + offs, mask=mask, other=0.0).to(tl.float32)
                g_x, av, am, g_alpha, g_beta, g_vth, g_thr, g_mem = _backward_step(
                    x_t, v, m, gs_t, av, am, alpha, beta, vth, thr_coef, mem_gain,
                    int_max, int_scale, int_top, surrogate_param,
                    RESET, ADAPTIVE_THRESHOLD, INTEGER, SURROGATE, MEMORY_CARRY)
                tl.store(gx_ptr + row + offs, g_x.to(gx_ptr.dtype.element_ty), mask=mask)
                if PARAM_GRAD:
                    acc_alpha += g_alpha
                    acc_beta += g_beta
                    acc_vth += g_vth
                    if ADAPTIVE_THRESHOLD:
                        acc_thr += g_thr
                    if RESET == 2:
                        acc_mem += g_mem

    # ---- partial sums of the parameter gradients (reduced by one torch.sum on the host)
    if PARAM_GRAD:
        if PER_CHANNEL:  # one partial per neuron: [5, N]
            p_ptrs = part_ptr + offs
            tl.store(p_ptrs, acc_alpha, mask=mask)
            tl.store(p_ptrs + N, acc_beta, mask=mask)
            tl.store(p_ptrs + 2 * N, acc_vth, mask=mask)
            if ADAPTIVE_THRESHOLD:
                tl.store(p_ptrs + 3 * N, acc_thr, mask=mask)
            if RESET == 2:
                tl.store(p_ptrs + 4 * N, acc_mem, mask=mask)
        else:  # one partial per CHUNK neurons, whatever BLOCK: [5, cdiv(N, CHUNK)]
            n_part = tl.cdiv(N, CHUNK)
            idx = pid * (BLOCK // CHUNK) + tl.arange(0, BLOCK // CHUNK)
            p_mask = idx < n_part
            p_ptrs = part_ptr + idx
            tl.store(p_ptrs, _chunk_sum(acc_alpha, mask, BLOCK, CHUNK), mask=p_mask)
            tl.store(p_ptrs + n_part, _chunk_sum(acc_beta, mask, BLOCK, CHUNK), mask=p_mask)
            tl.store(p_ptrs + 2 * n_part, _chunk_sum(acc_vth, mask, BLOCK, CHUNK), mask=p_mask)
            if ADAPTIVE_THRESHOLD:
                tl.store(p_ptrs + 3 * n_part, _chunk_sum(acc_thr, mask, BLOCK, CHUNK), mask=p_mask)
            if RESET == 2:
                tl.store(p_ptrs + 4 * n_part, _chunk_sum(acc_mem, mask, BLOCK, CHUNK), mask=p_mask)


# ---------------------------------------------------------------------------------------------
# launchers
# ---------------------------------------------------------------------------------------------
_FWD_KEYS = ["N", "RESET", "ADAPTIVE_THRESHOLD", "INTEGER", "MEMORY_CARRY", "PER_CHANNEL", "CHECK_FINITE"]
_BWD_KEYS = _FWD_KEYS[:-1] + ["SURROGATE", "HAS_GRAD_STATE", "PARAM_GRAD"]

# autotune candidates, all with num_stages=1; register counts compiled for sm_90 with Triton 3.9
# (python -m lit_snn.neurons.kernels.resources). Forward, (BLOCK, num_warps): 32-78 registers at
# any of these. Backward, (BLOCK, num_warps, UNROLL): 2 neurons per thread (256/4, 512/8) keep
# AR-LIF at 64-72 registers (28-32 resident warps per SM), 4 per thread at 96-128 (16-20 warps),
# 8 per thread (1024/4) suits the light variants but takes 255 for AR-LIF. UNROLL holds a
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


def _int_top(int_max: float, int_scale: float) -> float:
    return float(math.floor(int_scale * int_max + 0.5))  # N D rounded, as in surrogate.quantize


def forward_launch(x, alpha, beta, vth, thr_coef, mem_gain, C, S, reset, adaptive_threshold, integer,
                   int_scale, int_top, memory_carry, per_channel, check_finite=False):
    """x: [T, N] contiguous -> (spikes [T, N], V_T [N], M_T [N]) in x's dtype, and the non-finite
    flag: [1] int32, 1 if x held NaN/inf (with ``check_finite``; else an empty tensor)."""
    T, N = x.shape
    spikes = torch.empty_like(x)
    v = torch.empty(N, device=x.device, dtype=x.dtype)
    # without the adaptive reset M_T is the constant 0: a broadcast zero, not N written zeros
    m = torch.empty(N, device=x.device, dtype=x.dtype) if reset == 2 else x.new_zeros(()).expand(N)
    flag = torch.zeros(1 if check_finite else 0, device=x.device, dtype=torch.int32)
    if N == 0:
        return spikes, v, m, flag
    grid = lambda meta: (triton.cdiv(N, meta["BLOCK"]),)
    with _on_device(x):
        _fwd_runner[grid](
            x, spikes, v, m, flag, alpha, beta, vth, thr_coef, mem_gain, T, N, C, S, int_scale, int_top,
            RESET=reset, ADAPTIVE_THRESHOLD=adaptive_threshold, INTEGER=integer,
            MEMORY_CARRY=memory_carry, PER_CHANNEL=per_channel, CHECK_FINITE=check_finite, **_FIXED_FWD,
        )
    return spikes, v, m, flag


def backward_launch(x, grad_s, grad_v, grad_m, alpha, beta, vth, thr_coef, mem_gain, B, C, S, reset,
                    adaptive_threshold, integer, int_max, int_scale, int_top, surrogate, surrogate_param,
                    memory_carry, per_channel, param_grad):
    """Adjoint of ``forward_launch``: (dL/dx [T, N] in x's dtype, dL/dparams [5, P] fp32)."""
    T, N = x.shape
    P = C if per_channel else 1
    grad_x = torch.empty_like(x)
    if N == 0 or not param_grad:
        grad_params = torch.zeros(5, P, device=x.device, dtype=torch.float32)
        if N == 0:
            return grad_x, grad_params
    K = CHECKPOINT_EVERY["adaptive" if reset == 2 else "default"]
    if K > 4 and _FIXED_BWD.get("UNROLL", True):
        raise ValueError(f"multistep_triton: CHECKPOINT_EVERY = {K}, but the unrolled backward holds at most 4 steps")
    n_state = 2 if (reset == 2 and memory_carry) else 1
    n_ck = (T - 1) // K
    ck = torch.empty(max(n_ck, 1) * n_state * N, device=x.device, dtype=torch.float32)
    if not param_grad:
        part = torch.empty(1, device=x.device, dtype=torch.float32)
    elif per_channel:
        part = torch.empty(5, N, device=x.device, dtype=torch.float32)
    else:  # zeroed (N / 256 floats a row): rows of parameters the variant lacks stay 0 and sum to 0
        part = torch.zeros(5, triton.cdiv(N, PARTIAL_CHUNK), device=x.device, dtype=torch.float32)
    has_grad_state = grad_v is not None
    if not has_grad_state:
        grad_v = grad_m = x  # never read
    elif grad_m is None:  # read only with the adaptive reset, where the caller always passes it
        grad_m = grad_v
    grid = lambda meta: (triton.cdiv(N, meta["BLOCK"]),)
    with _on_device(x):
        _bwd_runner[grid](
            x, grad_s, grad_v, grad_m, grad_x, ck, part, alpha, beta, vth, thr_coef, mem_gain,
            T, N, C, S, int_max, int_scale, int_top, surrogate_param,
            RESET=reset, ADAPTIVE_THRESHOLD=adaptive_threshold, INTEGER=integer, SURROGATE=surrogate,
            MEMORY_CARRY=memory_carry, PER_CHANNEL=per_channel, HAS_GRAD_STATE=has_grad_state,
            PARAM_GRAD=param_grad, CHUNK=PARTIAL_CHUNK, K=K, **_FIXED_BWD,
        )
    if param_grad:
        if per_channel:  # [5, B, C, S] -> [5, C]; rows the variant does not write hold garbage: zero them
            rows = [0, 1, 2] + ([3] if adaptive_threshold else []) + ([4] if reset == 2 else [])
            grad_params = torch.zeros(5, P, device=x.device, dtype=torch.float32)
            grad_params[rows] = part.view(5, B, C, S)[rows].sum(dim=(1, 3))
        else:  # one deterministic reduction of the per-chunk partial sums
            grad_params = part.sum(dim=1, keepdim=True)
    return grad_x, grad_params


# ---------------------------------------------------------------------------------------------
# autograd wiring: two custom ops, so torch.compile sees one opaque op per direction (no graph break)
# ---------------------------------------------------------------------------------------------
@torch.library.custom_op("lit_snn::neuron_multistep_fwd", mutates_args=())
def _fwd_op(
    x: Tensor, alpha: Tensor, beta: Tensor, vth: Tensor, thr_coef: Tensor, mem_gain: Tensor,
    B: int, C: int, S: int, reset: int, adaptive_threshold: bool, integer: bool, int_max: float,
    int_scale: float, surrogate: int, surrogate_param: float, memory_carry: bool, per_channel: bool,
    check_finite: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return forward_launch(x, alpha, beta, vth, thr_coef, mem_gain, C, S, reset, adaptive_threshold, integer,
                          int_scale, _int_top(int_max, int_scale), memory_carry, per_channel, check_finite)


@_fwd_op.register_fake
def _fwd_fake(x, alpha, beta, vth, thr_coef, mem_gain, B, C, S, reset, adaptive_threshold, integer,
              int_max, int_scale, surrogate, surrogate_param, memory_carry, per_channel, check_finite):
    n = x.shape[1]
    m = x.new_empty(n) if reset == 2 else x.new_zeros(()).expand(n)
    return torch.empty_like(x), x.new_empty(n), m, x.new_empty(1 if check_finite else 0, dtype=torch.int32)


@torch.library.custom_op("lit_snn::neuron_multistep_bwd", mutates_args=())
def _bwd_op(
    x: Tensor, grad_s: Tensor, grad_v: Tensor | None, grad_m: Tensor | None,
    alpha: Tensor, beta: Tensor, vth: Tensor, thr_coef: Tensor, mem_gain: Tensor,
    B: int, C: int, S: int, reset: int, adaptive_threshold: bool, integer: bool, int_max: float,
    int_scale: float, surrogate: int, surrogate_param: float, memory_carry: bool, per_channel: bool,
    param_grad: bool,
) -> tuple[Tensor, Tensor]:
    return backward_launch(x, grad_s, grad_v, grad_m, alpha, beta, vth, thr_coef, mem_gain, B, C, S, reset,
                           adaptive_threshold, integer, int_max, int_scale, _int_top(int_max, int_scale),
                           surrogate, surrogate_param, memory_carry, per_channel, param_grad)


@_bwd_op.register_fake
def _bwd_fake(x, grad_s, grad_v, grad_m, alpha, beta, vth, thr_coef, mem_gain, B, C, S, reset,
              adaptive_threshold, integer, int_max, int_scale, surrogate, surrogate_param, memory_carry,
              per_channel, param_grad):
    return torch.empty_like(x), x.new_empty((5, C if per_channel else 1), dtype=torch.float32)


_FLAG_NAMES = ("B", "C", "S", "reset", "adaptive_threshold", "integer", "int_max", "int_scale", "surrogate",
               "surrogate_param", "memory_carry", "per_channel")


def _setup_context(ctx, inputs, output):
    x, alpha, beta, vth, thr_coef, mem_gain = inputs[:6]
    ctx.save_for_backward(x, alpha, beta, vth, thr_coef, mem_gain)
    ctx.flags = dict(zip(_FLAG_NAMES, inputs[6:6 + len(_FLAG_NAMES)]))  # check_finite, last, is not needed
    ctx.set_materialize_grads(False)  # unused V_T / M_T outputs arrive as None: nothing to read


def _autograd_backward(ctx, grad_s, grad_v, grad_m, grad_flag=None):
    x, alpha, beta, vth, thr_coef, mem_gain = ctx.saved_tensors
    flags = ctx.flags
    needs = ctx.needs_input_grad
    if grad_s is None:
        grad_s = torch.zeros_like(x)
    if flags["reset"] != 2:
        grad_m = None  # M_T is the constant 0 without the adaptive reset
    if grad_v is None and grad_m is not None:
        grad_v = torch.zeros_like(grad_m)
    if grad_v is not None and grad_m is None and flags["reset"] == 2:
        grad_m = torch.zeros_like(grad_v)
    # traced by torch.compile: the opaque custom op; eager: the launcher itself (no op-dispatch overhead)
    backward = _bwd_op if torch.compiler.is_compiling() else _bwd_direct
    grad_x, grad_params = backward(
        x, grad_s.contiguous(), None if grad_v is None else grad_v.contiguous(),
        None if grad_m is None else grad_m.contiguous(), alpha, beta, vth, thr_coef, mem_gain,
        **flags, param_grad=any(needs[1:6]),
    )
    used = (True, True, True, flags["adaptive_threshold"], flags["reset"] == 2)
    rows = grad_params.unbind(0)  # [P] each
    grads = [
        rows[i].to(p.dtype) if (needs[1 + i] and used[i]) else None
        for i, p in enumerate((alpha, beta, vth, thr_coef, mem_gain))
    ]
    return (grad_x if needs[0] else None, *grads) + (None,) * (len(_FLAG_NAMES) + 1)  # + check_finite


_fwd_op.register_autograd(_autograd_backward, setup_context=_setup_context)


def _bwd_direct(x, grad_s, grad_v, grad_m, alpha, beta, vth, thr_coef, mem_gain, B, C, S, reset, adaptive_threshold,
                integer, int_max, int_scale, surrogate, surrogate_param, memory_carry, per_channel, param_grad):
    """``_bwd_op`` without the custom-op dispatch (eager backward of ``_EagerMultistep``)."""
    return backward_launch(x, grad_s, grad_v, grad_m, alpha, beta, vth, thr_coef, mem_gain, B, C, S, reset,
                           adaptive_threshold, integer, int_max, int_scale, _int_top(int_max, int_scale),
                           surrogate, surrogate_param, memory_carry, per_channel, param_grad)


class _EagerMultistep(torch.autograd.Function):
    """The same forward and backward as the custom ops, for eager mode.

    The ``custom_op`` dispatch costs the host about 100 us per direction. Measured with no-op
    launchers on a 2-core CPU (``scripts/host_overhead.py``): 368-427 us per ``multistep_triton``
    forward + backward through the custom ops, 145-180 us through this Function. That is
    the size of the kernels' own GPU time at a CIFAR ResNet stage, so eager calls skip it. Under
    ``torch.compile``, ``multistep_triton`` uses the custom ops, which the compiler sees as one
    opaque op per direction.
    """

    @staticmethod
    def forward(ctx, x, alpha, beta, vth, thr_coef, mem_gain, *flags):  # flags: _FLAG_NAMES, check_finite
        named = dict(zip(_FLAG_NAMES, flags))
        outputs = forward_launch(x, alpha, beta, vth, thr_coef, mem_gain, named["C"], named["S"], named["reset"],
                                 named["adaptive_threshold"], named["integer"], named["int_scale"],
                                 _int_top(named["int_max"], named["int_scale"]), named["memory_carry"],
                                 named["per_channel"], flags[-1])
        _setup_context(ctx, (x, alpha, beta, vth, thr_coef, mem_gain, *flags), outputs)
        return outputs

    @staticmethod
    def backward(ctx, grad_s, grad_v, grad_m, grad_flag):
        return _autograd_backward(ctx, grad_s, grad_v, grad_m)


# ---------------------------------------------------------------------------------------------
# public function
# ---------------------------------------------------------------------------------------------
def kernel_flags(spec: KernelSpec) -> dict:
    """The op's flag arguments for a neuron variant, normalised so that flags that do not apply
    (a surrogate with integer spikes, memory carry without the adaptive reset) cause no extra compilations."""
    integer = bool(spec.integer)
    return dict(
        reset=RESET_IDS[spec.reset], adaptive_threshold=bool(spec.adaptive_threshold), integer=integer,
        int_max=float(spec.int_max), int_scale=float(spec.int_scale),
        surrogate=0 if integer else SURROGATE_IDS[spec.surrogate],
        surrogate_param=1.0 if integer else float(spec.surrogate_param),
        memory_carry=bool(spec.memory_carry) or spec.reset != "adaptive",
    )


def _check_device(x: Tensor) -> None:
    if x.is_cuda:
        return
    if x.device.type == "cpu":
        if INTERPRET:
            return
        raise RuntimeError(
            "multistep_triton: x is on the CPU, where Triton kernels run only in the interpreter; set "
            "TRITON_INTERPRET=1 before lit_snn.neurons.kernels is first imported, move x to a CUDA device, "
            "or use the PyTorch reference (backend='torch')"
        )
    raise RuntimeError(f"multistep_triton: unsupported device {x.device}; use CUDA (or backend='torch')")


def multistep_triton(
    x: Tensor,  # [T, B, C, *S] (or [T, N] with per-layer parameters)
    alpha: Tensor,  # [P], P = 1 or C
    beta: Tensor,  # [P]
    vth: Tensor,  # [P]
    thr_coef: Tensor,  # [P]  tanh(a); used only with adaptive_threshold
    mem_gain: Tensor,  # [P]  c; used only with reset=adaptive
    spec: KernelSpec,
    check_finite: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """Fused Triton version of ``multistep_reference``: same signature, same math, same outputs.

    With ``check_finite=True`` a fourth output follows: a ``[1]`` int32 device flag, 1 if ``x``
    held NaN/inf, found by the forward kernel as it reads ``x`` (no extra pass, no synchronisation).

    Returns ``(spikes [T, ...], V_T [...], M_T [...])`` in ``x``'s dtype (fp32, bf16 or fp16; the
    recurrence runs in fp32 registers). Without the adaptive reset ``M_T`` is the constant zero
    returned as a read-only broadcast (stride 0; ``.clone()`` it before writing in place).
    Differentiable w.r.t. ``x`` and the five parameters, through the spikes and through
    ``V_T``/``M_T``; ``torch.compile`` sees one custom op per direction (no graph break).

    Raises ``RuntimeError`` when Triton cannot run on ``x``'s device (CPU without
    ``TRITON_INTERPRET=1``), ``ValueError``/``TypeError`` for malformed inputs.
    """
    _check_device(x)
    if not isinstance(spec, KernelSpec):
        raise TypeError(f"multistep_triton: spec must be a KernelSpec, got {type(spec).__name__}")
    if x.dim() < 2:
        raise ValueError(f"multistep_triton: expected x of shape [T, ...] with >= 2 dims, got {tuple(x.shape)}")
    if x.dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise TypeError(
            f"multistep_triton: x must be float32, bfloat16 or float16, got {x.dtype} (use backend='torch')"
        )
    if x.shape[0] < 1:
        raise ValueError(f"multistep_triton: need at least one time step, got shape {tuple(x.shape)}")
    if spec.reset not in RESET_IDS:
        raise ValueError(f"multistep_triton: unknown reset {spec.reset!r}; valid: {', '.join(RESET_IDS)}")
    if spec.surrogate not in SURROGATE_IDS:
        raise ValueError(
            f"multistep_triton: unknown surrogate {spec.surrogate!r}; valid: {', '.join(SURROGATE_IDS)}"
        )
    T = x.shape[0]
    N = x[0].numel()
    if N * max(5, *CHECKPOINT_EVERY.values()) >= 2**31:  # in-kernel offsets up to 5 N are int32
        raise ValueError(f"multistep_triton: too many neurons per step ({N}); split the batch")
    channels = x.shape[2] if x.dim() >= 3 else 1
    params = []
    for name, p in zip(("alpha", "beta", "vth", "thr_coef", "mem_gain"), (alpha, beta, vth, thr_coef, mem_gain)):
        if not isinstance(p, Tensor) or not p.is_floating_point():
            raise TypeError(f"multistep_triton: {name} must be a floating-point tensor [P]")
        if p.device != x.device:
            raise ValueError(f"multistep_triton: {name} is on {p.device}, x on {x.device}")
        if p.numel() != 1 and (x.dim() < 3 or p.numel() != channels):
            raise ValueError(
                f"multistep_triton: {name} has {p.numel()} entries; expected 1 (per layer) or C = "
                f"{channels if x.dim() >= 3 else 'x.shape[2]'} (per channel, x of shape [T, B, C, ...]), "
                f"x has shape {tuple(x.shape)}"
            )
        params.append(p.reshape(-1))
    per_channel = any(p.numel() > 1 for p in params)
    if per_channel:  # mixing per-layer and per-channel entries: expand (differentiably) to [C]
        params = [p.expand(channels) if p.numel() == 1 else p for p in params]
    params = [p.contiguous() for p in params]
    B = x.shape[1] if x.dim() >= 3 else 1
    S = N // (B * channels) if x.dim() >= 3 and N else 1
    if not per_channel:
        channels = 1
    flags = dict(B=B, C=channels, S=S, **kernel_flags(spec), per_channel=per_channel)
    check_finite = bool(check_finite)
    if torch.compiler.is_compiling():
        spikes, v, m, flag = _fwd_op(x.contiguous().view(T, N), *params, **flags, check_finite=check_finite)
    else:
        spikes, v, m, flag = _EagerMultistep.apply(x.contiguous().view(T, N), *params,
                                                   *(flags[k] for k in _FLAG_NAMES), check_finite)
    if check_finite:
        return spikes.view(x.shape), v.view(x.shape[1:]), m.view(x.shape[1:]), flag
    return spikes.view(x.shape), v.view(x.shape[1:]), m.view(x.shape[1:])
