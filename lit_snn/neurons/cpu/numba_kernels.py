"""The numba-compiled kernels of the CPU path: the neuron scan as one fused loop per direction.

The CPU analogue of the Triton kernel (``kernels/multistep.py``), step for step the same math
(``_charge_fire``, ``_forward_step``, ``_backward_step`` there). The variant travels as plain
integer flags (``flags``: RESET, THRESHOLD, INTEGER, MEMORY_CARRY, SLOPE, DETACH_RESET, SURROGATE,
as in ``Variant``) and floats (``fs``, see ``F_*``), so one compiled function per dtype (float32,
float64) serves every variant, and ``cache=True`` keeps it on disk (``__pycache__``, or
``NUMBA_CACHE_DIR``) for the next process. No closures, no generated code: a closure cannot be
cached.

Layout: ``x`` is a contiguous ``[T, N]`` numpy view of the torch tensor (zero copy), or ``[1, N]``
where x repeats one step (a static input's stride-0 expand: that step is read at every step, never
copied T times). The neurons are processed in chunks of ``CHUNK`` contiguous neurons; for each
chunk, for each step, every stage of the step (charge, threshold, fire, reset, ...) is a few loops over the chunk, on
chunk-sized rows of ``work`` (hot in cache; each row named per kernel: ``FWD_*``, ``BWD_*``, and
the backward's per-step rows ``TRAJ_*``) with the branch on the variant's flags outside the loops:
each loop is straight-line code that LLVM vectorises (AVX-512 / AVX2). The parameters are expanded
per chunk into rows of ``work`` (a per-layer value repeated, a per-channel one gathered: channel
``(i // S) % C``), so per-layer, per-channel and mixed parameters run the same loops.
The forward of the variants with a fixed threshold and a hard or soft reset (lif, plif, hard_lif,
da_lif, soft_lif, i_lif, ib_ra_lif) is one loop per step (``_simple_step``: 25-30% faster here;
with per-layer parameters it reads alpha, beta and vth as scalars, as the fused backward's replay
(``_simple_replay_scalar``) and its loop without parameter gradients do: three loads less per neuron
and step, about 10% off lif's forward and backward here), and
so is that of the binary gated (glif: ``_gated_step``) and complementary (clif:
``_complementary_step``) resets with a fixed threshold, in the forward and in the backward's replay
(``_gated_replay``, ``_complementary_replay``: the same operations, writing what the adjoint reads).
The backward of the simple variants (and of KLIF's slope, U = relu(k P)) is fused as a whole
(``scan_backward``'s ``fused``): its replay (``_simple_replay``) keeps only U (and P) and the V
entering each step, the adjoint recomputes S and the integer spike's argument from U (the same
operations, the same values), and each step's adjoint is one loop per spike kind
(``_adjoint_loops``: inlined per kind, its surrogate folded in) writing dL/dX and dL/dV_{t-1} where
no parameter gradient and no slope is wanted; else that loop writes dL/dU (and dL/dth) and
``_charge_adjoint`` the rest. It computes what ``_adjoint`` computes, operation for operation, and
cuts the backward's kernel time by 15-30% here.

GLIF's gated integration (``SpikingNeuron.glif_input``: ``x'_t = gain_t x_t + bias``, gain
``[T, Pg]``, bias ``[Pg]``, Pg = 1 or C) runs inside both kernels (``_gate``: one loop per step
into a row of ``work``; the backward's replay keeps x' in ``traj[TRAJ_XG]``), so that the backward keeps
only x: dL/dx = dL/dx' gain, the gain's gradient per step and channel (``part_gain``), the bias's
accumulated per element over time and summed per chunk (``part_bias``). The float64 sums over a
chunk's neurons (``_lane_sum``) run in ``LANES`` interleaved partial sums, which vectorise (one
float64 accumulator is a serial chain).

Backward, as the Triton kernel: nothing but ``x`` and the ``[9, P]`` table is kept from the
forward. Per chunk it replays the forward, keeping the states entering every step (``states``
``[2, T + 1, CH]``) and what each step derives from them (``traj``: U, S, the integer spike's
argument, th, tanh X, P, F, the reset's sigmoids; ``[TRAJ_ROWS, T, CH]``; the chunk CH shrinks for
long sequences so that this stays in L2), then runs the adjoint last step first. dL/dx goes
straight into ``gx`` ``[T, N]``; the parameter gradients accumulate per element over time in rows
of ``work`` and are summed at the chunk's end into ``part[chunk, row, channel]`` (float64), reduced
afterwards by one numpy sum: deterministic, no atomics. Only the rows flagged in ``used`` are
accumulated, and dL/dth only where a threshold term or vth's gradient reads it.

Threads: both kernels run a range of chunks (``c0``, ``c1``), and ``numba_scan.run_chunks`` runs
one call per thread (``nogil``) on the same range, each thread claiming the next unprocessed block
of contiguous chunks (``_next_chunk``: an atomic counter), so that a thread that gets its core
late (another process on it) does fewer blocks instead of holding the others up. A chunk's
results (its neurons' outputs and gradients, its rows of ``part``, ``part_gain``, ``part_bias``)
depend on that chunk alone, so they are bitwise the same for any thread count and any claiming
order.

Numerics (``fastmath=False``: no fma contraction, as the reference's separate roundings; IEEE
division, ``error_model="numpy"``: x / 0 is inf, no branch): all arithmetic in the arrays' dtype
(the float constants come in ``fs`` in that dtype, so float32 stays float32); ``exp``/``tanh``
are vectorising polynomials in float32 (below), libm's in float64; ``sigmoid(z) = 1 / (1 +
exp(-z))``; the integer spike ``floor(clamp(N z, 0, top) + 0.5) / N`` with ``z = U / th`` in IEEE
round to nearest, as the reference. ``_nrt=False``: no reference counting (nothing is allocated
inside; every buffer comes from the caller), so the many row views cost nothing.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

LANES = 32  # float64 partial sums of a sum over a chunk's neurons (``_lane_sum``: four AVX-512 registers)
CHUNK = 1024  # neurons per chunk (largest): ~40 rows of 4 KiB (fp32) stay in L2 while the chunk walks over time
# indices into ``flags`` (the variant, int64: ``numba_scan.variant_args``)
FLAG_RESET, FLAG_THRESHOLD, FLAG_INTEGER, FLAG_MEMORY_CARRY, FLAG_SLOPE, FLAG_DETACH_RESET, FLAG_SURROGATE = range(7)
# indices into ``fs`` (the float arguments, in the compute dtype)
F_INT_MAX, F_INT_SCALE, F_INT_TOP, F_SURROGATE, F_ZERO, F_ONE, F_TWO, F_HALF, F_HALF_PI = range(9)
NUM_FLOATS = 9
# rows of the [9, P] parameter table, of ``prm`` (its chunk, expanded), of ``acc`` and ``part`` (their
# gradients) and flags of ``used``: ``reference.PARAM_NAMES``' order
P_ALPHA, P_BETA, P_VTH, P_THR_COEF, P_MEM_GAIN, P_ADAPT_DECAY, P_SLOPE, P_RESET_GATE, P_RESET_VALUE = range(9)
NUM_PARAMS = 9
USED_GAIN, USED_BIAS = 0, 1  # flags of ``used_gate``: GLIF's gain's and bias's gradient wanted

# ``scan_forward``'s rows of ``work`` (each a row of the chunk CH)
FWD_PRM = 0  # .. FWD_PRM + NUM_PARAMS - 1: the parameters, expanded over the chunk (``_chunk_params``)
FWD_V, FWD_M = 9, 10  # the states V, M entering the step (double-buffered with FWD_V_NEXT, FWD_M_NEXT)
FWD_PRE = 11  # P = beta V + alpha X, the charge before KLIF's slope (U itself without a slope)
FWD_U = 12  # U = relu(k P) (KLIF's slope only)
FWD_TX = 13  # tanh(X) (the adaptive threshold)
FWD_TH = 14  # the threshold th (adaptive thresholds; a fixed one is the vth row of FWD_PRM)
FWD_ARG = 15  # the integer spike's argument U / th
FWD_F = 16  # F = [S > 0] (integer spikes; binary: F is S)
FWD_V_NEXT, FWD_M_NEXT = 17, 18  # the states leaving the step
FWD_RA, FWD_RB, FWD_RC = 19, 20, 21  # ``_reset``'s sigmoids: AR-LIF s(X), s(c X), s(M_t); CLIF s(c U), -, s(M_t)
FWD_XG = 22  # GLIF's gated input x'_t = gain_t x_t + bias
FWD_GAIN, FWD_BIAS = 23, 24  # GLIF's gain (per channel: expanded) and bias, over the chunk

# ``scan_backward``'s rows of ``work``
BWD_PRM = 0  # .. BWD_PRM + NUM_PARAMS - 1: the parameters, expanded over the chunk
BWD_ACC = 9  # .. BWD_ACC + NUM_PARAMS - 1: the parameter gradients, accumulated per element over time
BWD_GAIN, BWD_BIAS = 23, 24  # GLIF's gain (per channel: expanded) and bias, over the chunk
BWD_G_U = 25  # dL/dU_t
BWD_G_SP = 26  # dL/dS_t's share through the spike function
BWD_G_TH = 28  # dL/dth_t
BWD_G_X = 29  # dL/dX_t's terms besides alpha's
BWD_AMP = 30  # dL/dM_{t-1} (variants with M)
BWD_T1, BWD_T2, BWD_T3, BWD_T4 = 31, 32, 33, 34  # ``_adjoint``'s temporaries
BWD_AV, BWD_AM = 35, 36  # the adjoints dL/dV_t, dL/dM_t carried from step to step
BWD_ZERO = 37  # a row of zeros (no spike cotangent; AR-LIF's memory without carry)
BWD_ACC_BIAS = 38  # GLIF's bias gradient, accumulated per element over time
WORK_ROWS = 40  # rows of ``work`` (rows 27 and 39 unused)

# ``scan_backward``'s rows of ``traj`` [TRAJ_ROWS, T, CH]: what the replay keeps of each step for the adjoint
TRAJ_U, TRAJ_S, TRAJ_ARG, TRAJ_TH, TRAJ_TX, TRAJ_PRE, TRAJ_F = range(7)  # as the FWD_ rows of the same names
TRAJ_RA, TRAJ_RB, TRAJ_RC = 7, 8, 9  # ``_reset``'s sigmoids (as FWD_RA, FWD_RB, FWD_RC; also CLIF's replay's)
TRAJ_XG = 10  # GLIF's gated input x'_t
TRAJ_ROWS = 11

_JIT = dict(cache=True, fastmath=False, nogil=True, error_model="numpy", _nrt=False)  # numpy: x / 0 is inf, no branch
_JIT_INLINE = dict(_JIT, inline="always")  # inlined into numba's IR at each call: constant arguments fold there


# ---------------------------------------------------------------------------------------------
# exp and tanh that vectorise. libm's expf/tanhf are calls the loop vectoriser cannot widen (5 and
# 16 ns an element on this project's machine, most of AR-LIF's time); in float32 they are a
# Cephes-style polynomial instead (``_expf``: relative error ~2 ulp, arguments clamped to
# [-87.3, 88.3], so sigmoid(z) = 1 / (1 + exp(-z)) saturates to exactly 1 and to < 1e-38), and
# tanh(x) = 2 / (1 + exp(-2x)) - 1 (absolute error ~1e-7, as the Triton kernel's). float64 keeps
# libm's exp and tanh (the gradient checks' precision; no speed wanted there).
# ---------------------------------------------------------------------------------------------
@intrinsic
def _int_bits_as_float32(typingctx, i):
    """The float32 whose bits are the integer ``i``'s low 32 (an LLVM bitcast: vectorises)."""
    if not isinstance(i, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        low = builder.trunc(args[0], ir.IntType(32)) if i.bitwidth > 32 else args[0]
        return builder.bitcast(low, ir.FloatType())

    return types.float32(i), codegen


@intrinsic
def _claim(typingctx, counter):
    """``counter[0]`` (int64), atomically incremented: the next block for the calling thread."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        return builder.atomic_rmw("add", data, ir.Constant(ir.IntType(64), 1), "monotonic")

    return types.int64(counter), codegen


_E_LO, _E_HI = np.float32(-87.3), np.float32(88.3)
_LOG2E, _LN2_HI, _LN2_LO = np.float32(1.44269504088896341), np.float32(0.693359375), np.float32(-2.12194440e-4)
_P0, _P1, _P2 = np.float32(1.9875691500e-4), np.float32(1.3981999507e-3), np.float32(8.3334519073e-3)
_P3, _P4, _P5 = np.float32(4.1665795894e-2), np.float32(1.6666665459e-1), np.float32(5.0000001201e-1)
_F1, _F2, _FM2, _FHALF = np.float32(1.0), np.float32(2.0), np.float32(-2.0), np.float32(0.5)


@njit(**_JIT)
def _expf(x):
    """exp of a float32 (Cephes expf: 2^n e^r, |r| <= ln2 / 2, degree-7 polynomial)."""
    x = min(max(x, _E_LO), _E_HI)
    fx = np.floor(x * _LOG2E + _FHALF)
    r = x - fx * _LN2_HI
    r = r - fx * _LN2_LO
    y = ((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5
    y = y * (r * r) + r + _F1
    return y * _int_bits_as_float32((np.int32(fx) + 127) << 23)


@njit(**_JIT)
def _tanhf(x):
    """tanh of a float32: 2 / (1 + exp(-2x)) - 1."""
    return _F2 / (_F1 + _expf(x * _FM2)) - _F1


def exp(x):
    """exp in x's precision (see above); compiled through the overload below."""
    return math.exp(x)


def tanh(x):
    return math.tanh(x)


@overload(exp, jit_options=_JIT)
def _exp_impl(x):
    if x == types.float32:
        return lambda x: _expf(x)
    return lambda x: math.exp(x)


@overload(tanh, jit_options=_JIT)
def _tanh_impl(x):
    if x == types.float32:
        return lambda x: _tanhf(x)
    return lambda x: math.tanh(x)


@njit(**_JIT)
def _next_chunk(claim, block, c0, c1, ci, last):
    """(the chunk to run after ``ci``, the end of its block): ``ci + 1`` within its block (ending at
    ``last``), else the first of the next unclaimed block of ``block`` chunks of c0 .. c1 - 1 (the
    counter ``claim``); a chunk >= its end: none left."""
    if ci + 1 < last:
        return ci + 1, last
    first = c0 + _claim(claim) * block
    return first, min(first + block, c1)


@njit(**_JIT)
def _chunk_params(table, i0, n, C, S, prm):
    """The rows of ``prm`` (``P_*``): the table's parameters of neurons ``i0 .. i0 + n - 1``."""
    P = table.shape[1]
    for k in range(NUM_PARAMS):
        row = prm[k]
        if P == 1:
            val = table[k, 0]
            for j in range(n):
                row[j] = val
        else:
            for j in range(n):
                row[j] = table[k, ((i0 + j) // S) % C]


# Every loop below writes one or two arrays and reads few: LLVM vectorises a loop over arrays it
# cannot prove distinct only behind runtime overlap checks, which it gives up on past a few arrays.
# Measured here (``_adjoint_loops``): a loop writing two rows runs as fast as one writing one; a
# third row, or two more rows written under a flag (even one that is off), make it 2-3 times slower.


@njit(**_JIT)
def _fill(a, n, value):
    for j in range(n):
        a[j] = value


@njit(**_JIT)
def _copy(dst, src, n):
    for j in range(n):
        dst[j] = src[j]


@njit(**_JIT)
def _sigmoid_of(dst, src, n, fs):
    one = fs[F_ONE]
    for j in range(n):
        dst[j] = one / (one + exp(-src[j]))


@njit(**_JIT)
def _expand(vals, i0, n, C, S, out):
    """``out[j]`` = ``vals``' entry of neuron ``i0 + j``: ``vals[0]`` (one entry) or its channel's
    ``vals[((i0 + j) // S) % C]``, filled run by run (a channel's neurons are runs of S)."""
    if vals.shape[0] == 1:
        val = vals[0]
        for j in range(n):
            out[j] = val
        return
    j = 0
    while j < n:
        i = i0 + j
        val = vals[(i // S) % C]
        stop = min(n, j + S - i % S)
        for jj in range(j, stop):
            out[jj] = val
        j = stop


@njit(**_JIT)
def _gate(xt, gain_t, brow, i0, n, C, S, grow, out):
    """GLIF's gated input of one step, ``out = gain_t x_t + bias`` (``brow``: the bias row of the
    chunk), as ``SpikingNeuron.glif_input``'s ``addcmul(bias, gain, x)``."""
    if gain_t.shape[0] == 1:
        g = gain_t[0]
        for j in range(n):
            out[j] = g * xt[j] + brow[j]
    else:
        _expand(gain_t, i0, n, C, S, grow)
        for j in range(n):
            out[j] = grow[j] * xt[j] + brow[j]


@njit(**_JIT)
def _lane_sum(a, b, HAS_B, n, lanes):
    """sum_j a[j] (b[j] with ``HAS_B``) in float64: ``LANES`` interleaved partial sums (a loop that
    vectorises, where one float64 accumulator is a serial chain), then the tail; the products in
    the arrays' dtype. The order depends on n only: deterministic."""
    for l in range(LANES):
        lanes[l] = 0.0
    nb = n - n % LANES
    if HAS_B:
        for o in range(0, nb, LANES):
            ab = a[o:o + LANES]
            bb = b[o:o + LANES]
            for l in range(LANES):
                lanes[l] += ab[l] * bb[l]
    else:
        for o in range(0, nb, LANES):
            ab = a[o:o + LANES]
            for l in range(LANES):
                lanes[l] += ab[l]
    total = 0.0
    for l in range(LANES):
        total += lanes[l]
    for j in range(nb, n):
        total += a[j] * b[j] if HAS_B else a[j]
    return total


@njit(**_JIT)
def _channel_sums(a, b, HAS_B, i0, n, C, S, P, lanes, out):
    """``out[c] += sum_j a[j] (b[j])`` over the chunk's neurons of channel c (P = 1: all into out[0])."""
    if P == 1:
        out[0] += _lane_sum(a, b, HAS_B, n, lanes)
        return
    j = 0
    while j < n:
        i = i0 + j
        stop = min(n, j + S - i % S)
        out[(i // S) % C] += _lane_sum(a[j:stop], b[j:stop], HAS_B, stop - j, lanes)
        j = stop


@njit(**_JIT)
def _charge_fire(xt, v, m, n, prm, TH, INTEGER, SLOPE, WANT_F, fs, pre, u, tx, th, arg, s, f):
    """Charge, threshold and fire of one step over a chunk (``_charge_fire`` of the Triton kernel).

    Writes P (``pre``, with SLOPE; else ``pre`` may be ``u``), U, tanh(X) (TH 1), th (TH 1, 2; with
    TH 0 the caller passes the vth row as ``th``), S, with integer spikes the spike function's
    argument U/th (``arg``; binary: the adjoint reads U - th from U and th) and, with ``WANT_F``,
    F = [S > 0] (binary: F is S, the caller passes ``s`` as ``f``)."""
    alpha, beta, vth, k, sl = prm[P_ALPHA], prm[P_BETA], prm[P_VTH], prm[P_THR_COEF], prm[P_SLOPE]
    zero, one = fs[F_ZERO], fs[F_ONE]
    if SLOPE:
        for j in range(n):
            pre[j] = beta[j] * v[j] + alpha[j] * xt[j]
        for j in range(n):
            u[j] = max(sl[j] * pre[j], zero)
    else:
        for j in range(n):
            u[j] = beta[j] * v[j] + alpha[j] * xt[j]
    if TH == 1:  # AR-LIF: vth + k tanh(X)
        for j in range(n):
            tx[j] = tanh(xt[j])
        for j in range(n):
            th[j] = vth[j] + k[j] * tx[j]
    elif TH == 2:  # ALIF: vth + gamma a, the trace a in M
        for j in range(n):
            th[j] = vth[j] + k[j] * m[j]
    if INTEGER:
        scale, top, half = fs[F_INT_SCALE], fs[F_INT_TOP], fs[F_HALF]
        for j in range(n):
            arg[j] = u[j] / th[j]
        for j in range(n):
            s[j] = np.floor(min(max(arg[j] * scale, zero), top) + half) / scale
        if WANT_F:
            for j in range(n):
                f[j] = one if s[j] > zero else zero
    else:  # S = [U - th >= 0] = [U >= th] (IEEE: a difference of distinct floats is never 0)
        for j in range(n):
            s[j] = one if u[j] >= th[j] else zero


@njit(**_JIT)
def _reset(xt, u, th, s, f, m, vn, mn, n, prm, RESET, TH, CARRY, fs, ra, rb, rc):
    """The state update of one step: ``vn`` (and ``mn``) from U, th, S, F and M_{t-1} (``m``).
    ``vn``, ``mn`` must not be any of the inputs. Rows written for the adjoint: AR-LIF ``ra`` =
    sigmoid(X), ``rb`` = sigmoid(c X), ``rc`` = sigmoid(M_t); CLIF ``ra`` = sigmoid(c U), ``rc`` =
    sigmoid(M_t)."""
    c, rho, r, val = prm[P_MEM_GAIN], prm[P_ADAPT_DECAY], prm[P_RESET_GATE], prm[P_RESET_VALUE]
    zero, one, two = fs[F_ZERO], fs[F_ONE], fs[F_TWO]
    if RESET == 0:  # hard
        for j in range(n):
            vn[j] = u[j] * (one - f[j])
    elif RESET == 1:  # soft
        for j in range(n):
            vn[j] = u[j] - s[j] * th[j]
    elif RESET == 2 or RESET == 3:
        if RESET == 2:  # AR-LIF memory: relu(M') g - relu(-M') (1 - g) + (2F - 1) sigmoid(X), g = sigmoid(c X)
            _sigmoid_of(ra, xt, n, fs)
            if CARRY:
                for j in range(n):
                    rb[j] = one / (one + exp(-(c[j] * xt[j])))
                for j in range(n):
                    mp = m[j]
                    mn[j] = max(mp, zero) * rb[j] - max(-mp, zero) * (one - rb[j]) + (two * f[j] - one) * ra[j]
            else:  # memory restarts at 0 every step (g not needed)
                for j in range(n):
                    mn[j] = (two * f[j] - one) * ra[j]
        else:  # CLIF complementary potential: M = M' sigmoid(c U) + S
            for j in range(n):
                ra[j] = one / (one + exp(-(c[j] * u[j])))
            for j in range(n):
                mn[j] = m[j] * ra[j] + s[j]
        _sigmoid_of(rc, mn, n, fs)
        for j in range(n):  # V = U - S (th + sigmoid(M))
            vn[j] = u[j] - s[j] * (th[j] + rc[j])
    elif RESET == 4:  # GLIF gated reset
        for j in range(n):
            vn[j] = u[j] - s[j] * (r[j] * u[j] + (one - r[j]) * val[j])
    else:  # none
        _copy(vn, u, n)
    if TH == 2:  # ALIF trace a_{t+1} = rho a_t + (1 - rho) S_t
        for j in range(n):
            mn[j] = rho[j] * m[j] + (one - rho[j]) * s[j]


@njit(**_JIT)
def _simple_step(xt, v, s, n, prm, RESET, INTEGER, SCALAR, fs):
    """One forward step of the variants with a fixed threshold and a hard or soft reset, fused
    into one loop per case (the same operations as ``_charge_fire`` + ``_reset``); V in place.
    ``SCALAR`` (per-layer parameters): alpha, beta and vth read once, not from their expanded rows."""
    alpha, beta, vth = prm[P_ALPHA], prm[P_BETA], prm[P_VTH]
    zero, one = fs[F_ZERO], fs[F_ONE]
    if INTEGER:
        scale, top, half = fs[F_INT_SCALE], fs[F_INT_TOP], fs[F_HALF]
        if SCALAR:
            a, b, th = alpha[0], beta[0], vth[0]
            for j in range(n):
                u = b * v[j] + a * xt[j]
                sv = np.floor(min(max((u / th) * scale, zero), top) + half) / scale
                s[j] = sv
                v[j] = u * (one - (one if sv > zero else zero)) if RESET == 0 else u - sv * th
        elif RESET == 0:
            for j in range(n):
                u = beta[j] * v[j] + alpha[j] * xt[j]
                sv = np.floor(min(max((u / vth[j]) * scale, zero), top) + half) / scale
                s[j] = sv
                v[j] = u * (one - (one if sv > zero else zero))
        else:
            for j in range(n):
                u = beta[j] * v[j] + alpha[j] * xt[j]
                sv = np.floor(min(max((u / vth[j]) * scale, zero), top) + half) / scale
                s[j] = sv
                v[j] = u - sv * vth[j]
    elif RESET == 0 and SCALAR:
        a, b, th = alpha[0], beta[0], vth[0]
        for j in range(n):
            u = b * v[j] + a * xt[j]
            sv = one if u >= th else zero
            s[j] = sv
            v[j] = u * (one - sv)
    elif RESET == 0:
        for j in range(n):
            u = beta[j] * v[j] + alpha[j] * xt[j]
            sv = one if u >= vth[j] else zero
            s[j] = sv
            v[j] = u * (one - sv)
    elif SCALAR:
        a, b, th = alpha[0], beta[0], vth[0]
        for j in range(n):
            u = b * v[j] + a * xt[j]
            sv = one if u >= th else zero
            s[j] = sv
            v[j] = u - sv * th
    else:
        for j in range(n):
            u = beta[j] * v[j] + alpha[j] * xt[j]
            sv = one if u >= vth[j] else zero
            s[j] = sv
            v[j] = u - sv * vth[j]


@njit(**_JIT)
def _gated_step(xt, v, s, n, prm, fs):
    """One forward step of GLIF's binary gated reset with a fixed threshold in one loop (the same
    operations as ``_charge_fire`` + ``_reset``'s RESET 4); V in place."""
    alpha, beta, vth, r, val = prm[P_ALPHA], prm[P_BETA], prm[P_VTH], prm[P_RESET_GATE], prm[P_RESET_VALUE]
    zero, one = fs[F_ZERO], fs[F_ONE]
    for j in range(n):
        u = beta[j] * v[j] + alpha[j] * xt[j]
        sv = one if u >= vth[j] else zero
        s[j] = sv
        v[j] = u - sv * (r[j] * u + (one - r[j]) * val[j])


@njit(**_JIT)
def _complementary_step(xt, v, m, s, n, prm, fs):
    """One forward step of CLIF's binary complementary reset with a fixed threshold in one loop (the
    same operations as ``_charge_fire`` + ``_reset``'s RESET 3); V and M in place."""
    alpha, beta, vth, c = prm[P_ALPHA], prm[P_BETA], prm[P_VTH], prm[P_MEM_GAIN]
    zero, one = fs[F_ZERO], fs[F_ONE]
    for j in range(n):
        u = beta[j] * v[j] + alpha[j] * xt[j]
        sv = one if u >= vth[j] else zero
        s[j] = sv
        q = one / (one + exp(-(c[j] * u)))
        mn = m[j] * q + sv
        m[j] = mn
        v[j] = u - sv * (vth[j] + one / (one + exp(-mn)))


@njit(**_JIT)
def _gated_replay(xt, v, u, s, vn, n, prm, fs):
    """``_gated_step`` for the backward's replay: U and S kept (``traj``), V_t into ``vn``."""
    alpha, beta, vth, r, val = prm[P_ALPHA], prm[P_BETA], prm[P_VTH], prm[P_RESET_GATE], prm[P_RESET_VALUE]
    zero, one = fs[F_ZERO], fs[F_ONE]
    for j in range(n):
        uu = beta[j] * v[j] + alpha[j] * xt[j]
        u[j] = uu
        sv = one if uu >= vth[j] else zero
        s[j] = sv
        vn[j] = uu - sv * (r[j] * uu + (one - r[j]) * val[j])


@njit(**_JIT)
def _complementary_replay(xt, v, m, u, s, q, mn, sm, vn, n, prm, fs):
    """``_complementary_step`` for the backward's replay: U, S, q = sigmoid(c U), sigmoid(M_t) kept
    (``traj``, as ``_reset`` writes them), M_t and V_t into ``mn``, ``vn``."""
    alpha, beta, vth, c = prm[P_ALPHA], prm[P_BETA], prm[P_VTH], prm[P_MEM_GAIN]
    zero, one = fs[F_ZERO], fs[F_ONE]
    for j in range(n):
        uu = beta[j] * v[j] + alpha[j] * xt[j]
        u[j] = uu
        sv = one if uu >= vth[j] else zero
        s[j] = sv
        qq = one / (one + exp(-(c[j] * uu)))
        q[j] = qq
        mm = m[j] * qq + sv
        mn[j] = mm
        sg = one / (one + exp(-mm))
        sm[j] = sg
        vn[j] = uu - sv * (vth[j] + sg)


@njit(**_JIT)
def _integer_fire(uu, th, fs):
    """The integer spike of U as ``_charge_fire`` computes it: (U / th, S)."""
    zero, scale, top, half = fs[F_ZERO], fs[F_INT_SCALE], fs[F_INT_TOP], fs[F_HALF]
    a = uu / th
    return a, np.floor(min(max(a * scale, zero), top) + half) / scale


@njit(**_JIT)
def _reset_of(uu, sv, th, HARD, fs):
    """V_t of the hard or soft reset as ``_reset`` computes it (F = [S > 0]: S itself for binary spikes)."""
    zero, one = fs[F_ZERO], fs[F_ONE]
    return uu * (one - (one if sv > zero else zero)) if HARD else uu - sv * th


@njit(**_JIT)
def _simple_replay(xt, v, pre, u, vn, n, prm, HARD, INTEGER, SLOPE, fs):
    """``_simple_step`` (and KLIF's slope, U = relu(k P)) for the backward's replay, one loop: U kept
    (and P, with SLOPE), V_t into ``vn``. S and the integer spike's argument are not kept: the
    adjoint recomputes them from U and th (the same operations, the same values)."""
    alpha, beta, vth, sl = prm[P_ALPHA], prm[P_BETA], prm[P_VTH], prm[P_SLOPE]
    zero, one = fs[F_ZERO], fs[F_ONE]
    if SLOPE:
        for j in range(n):
            p = beta[j] * v[j] + alpha[j] * xt[j]
            pre[j] = p
            uu = max(sl[j] * p, zero)
            u[j] = uu
            sv = _integer_fire(uu, vth[j], fs)[1] if INTEGER else (one if uu >= vth[j] else zero)
            vn[j] = _reset_of(uu, sv, vth[j], HARD, fs)
    elif INTEGER:
        for j in range(n):
            uu = beta[j] * v[j] + alpha[j] * xt[j]
            u[j] = uu
            vn[j] = _reset_of(uu, _integer_fire(uu, vth[j], fs)[1], vth[j], HARD, fs)
    else:
        for j in range(n):
            uu = beta[j] * v[j] + alpha[j] * xt[j]
            u[j] = uu
            vn[j] = _reset_of(uu, one if uu >= vth[j] else zero, vth[j], HARD, fs)


@njit(**_JIT)
def _simple_replay_scalar(xt, v, u, vn, n, prm, HARD, INTEGER, fs):
    """``_simple_replay`` without a slope, for per-layer parameters: alpha, beta and vth read once (a
    function of its own: its branches in ``_simple_replay`` made KLIF's slope loop there slower)."""
    a, b, th = prm[P_ALPHA][0], prm[P_BETA][0], prm[P_VTH][0]
    zero, one = fs[F_ZERO], fs[F_ONE]
    if INTEGER:
        for j in range(n):
            uu = b * v[j] + a * xt[j]
            u[j] = uu
            vn[j] = _reset_of(uu, _integer_fire(uu, th, fs)[1], th, HARD, fs)
    else:
        for j in range(n):
            uu = b * v[j] + a * xt[j]
            u[j] = uu
            vn[j] = _reset_of(uu, one if uu >= th else zero, th, HARD, fs)


@njit(**_JIT)
def scan_forward(x, table, C, S, flags, fs, spikes, v_out, m_out, work, gain, bias, claim, block, c0, c1):
    """x, spikes: [T, N] (x: [1, N] for a static input, its one step read at every step); table: [9, P];
    v_out, m_out: [N] (m_out written when M is an output);
    work: [WORK_ROWS, CH] scratch (CH: the chunk); gain [T, Pg], bias [Pg] (Pg = 1 or C): GLIF's
    gated input x'_t = gain_t x_t + bias, the scan's input in x's place (``gain`` [0, 1]: none). All
    in the compute dtype. Runs chunks c0 .. c1 - 1 only (of ceil(N / CH): the neurons
    ``c0 CH .. min(c1 CH, N) - 1``), in blocks of ``block`` chunks that the threads sharing
    ``claim`` (int64 [1], zeroed) take in turn (``_next_chunk``)."""
    T, N = spikes.shape
    STATIC = x.shape[0] == 1  # a static input: its one step read at every step
    GATED = gain.shape[0] != 0
    xg, grow, brow = work[FWD_XG], work[FWD_GAIN], work[FWD_BIAS]
    RESET, TH, INTEGER, CARRY = flags[FLAG_RESET], flags[FLAG_THRESHOLD], flags[FLAG_INTEGER], flags[FLAG_MEMORY_CARRY]
    SLOPE = flags[FLAG_SLOPE]
    has_m = RESET == 2 or RESET == 3 or TH == 2
    CH = work.shape[1]
    prm = work[FWD_PRM:FWD_PRM + NUM_PARAMS]
    pre, ub, tx, thb, arg, fb = work[FWD_PRE], work[FWD_U], work[FWD_TX], work[FWD_TH], work[FWD_ARG], work[FWD_F]
    ra, rb, rc = work[FWD_RA], work[FWD_RB], work[FWD_RC]
    u = ub if SLOPE else pre
    th = prm[P_VTH] if TH == 0 else thb
    want_f = INTEGER != 0 and (RESET == 0 or RESET == 2)  # integer F = [S > 0], where the reset reads it
    # lif, plif, hard_lif, da_lif, soft_lif, i_lif, ib_ra_lif: fixed threshold, hard or soft reset
    simple = TH == 0 and not SLOPE and (RESET == 0 or RESET == 1)
    gated = TH == 0 and not SLOPE and not INTEGER and RESET == 4  # glif
    complementary = TH == 0 and not SLOPE and not INTEGER and RESET == 3  # clif
    per_layer = table.shape[1] == 1  # one value per parameter: the simple step reads it as a scalar
    zero = fs[F_ZERO]
    ci, last = c0 - 1, c0
    while True:
        ci, last = _next_chunk(claim, block, c0, c1, ci, last)
        if ci >= last:
            break
        i0 = ci * CH
        n = min(CH, N - i0)
        _chunk_params(table, i0, n, C, S, prm)
        v, m, vn, mn = work[FWD_V], work[FWD_M], work[FWD_V_NEXT], work[FWD_M_NEXT]  # the states, double-buffered
        _fill(v, n, zero)
        _fill(m, n, zero)
        if GATED:
            _expand(bias, i0, n, C, S, brow)
        for t in range(T):
            xt = x[0 if STATIC else t, i0:i0 + n]
            if GATED:
                _gate(xt, gain[t], brow, i0, n, C, S, grow, xg)
                xt = xg
            s = spikes[t, i0:i0 + n]
            if simple:  # the whole step in one loop, V in place
                _simple_step(xt, v, s, n, prm, RESET, INTEGER, per_layer, fs)
                continue
            if gated:
                _gated_step(xt, v, s, n, prm, fs)
                continue
            if complementary:
                _complementary_step(xt, v, m, s, n, prm, fs)
                continue
            f = fb if INTEGER else s
            _charge_fire(xt, v, m, n, prm, TH, INTEGER, SLOPE, want_f, fs, pre, u, tx, th, arg, s, f)
            _reset(xt, u, th, s, f, m, vn, mn, n, prm, RESET, TH, CARRY, fs, ra, rb, rc)
            v, vn = vn, v
            if has_m:
                m, mn = mn, m
        for j in range(n):
            v_out[i0 + j] = v[j]
        if has_m:
            for j in range(n):
                m_out[i0 + j] = m[j]


@njit(**_JIT)
def _surrogate(u, th, gsum, n, SURR, sp, fs, out):
    """``out = gsum * dS/du`` of the surrogate at U - th (``surrogate.py``)."""
    zero, one, two = fs[F_ZERO], fs[F_ONE], fs[F_TWO]
    if SURR == 0:  # rectangle of width w: 1/w on |d| < w/2
        half_w = sp / two
        inv_w = one / sp
        for j in range(n):
            out[j] = gsum[j] * (inv_w if abs(u[j] - th[j]) < half_w else zero)
    elif SURR == 1:  # triangle of width w: max(0, w - |d|) / w^2
        w2 = sp * sp
        for j in range(n):
            out[j] = gsum[j] * (max(sp - abs(u[j] - th[j]), zero) / w2)
    elif SURR == 2:  # sigmoid, alpha: alpha sig(alpha d) (1 - sig(alpha d))
        for j in range(n):
            sig = one / (one + exp(-(sp * (u[j] - th[j]))))
            out[j] = gsum[j] * (sp * sig * (one - sig))
    else:  # atan, alpha: alpha / 2 / (1 + (pi/2 alpha d)^2)
        qa = fs[F_HALF_PI] * sp
        a2 = sp / two
        for j in range(n):
            q = qa * (u[j] - th[j])
            out[j] = gsum[j] * (a2 / (one + q * q))


@njit(**_JIT)
def _surrogate_add(u, th, gsum, n, SURR, sp, fs, out):
    """``out += gsum * dS/du`` (``_surrogate`` fused with the sum, where dL/dth is not wanted)."""
    zero, one, two = fs[F_ZERO], fs[F_ONE], fs[F_TWO]
    if SURR == 0:
        half_w = sp / two
        inv_w = one / sp
        for j in range(n):
            out[j] += gsum[j] * (inv_w if abs(u[j] - th[j]) < half_w else zero)
    elif SURR == 1:
        w2 = sp * sp
        for j in range(n):
            out[j] += gsum[j] * (max(sp - abs(u[j] - th[j]), zero) / w2)
    elif SURR == 2:
        for j in range(n):
            sig = one / (one + exp(-(sp * (u[j] - th[j]))))
            out[j] += gsum[j] * (sp * sig * (one - sig))
    else:
        qa = fs[F_HALF_PI] * sp
        a2 = sp / two
        for j in range(n):
            q = qa * (u[j] - th[j])
            out[j] += gsum[j] * (a2 / (one + q * q))


@njit(**_JIT)
def _adjoint(xt, v, m, gs, has_gs, av, am, n, prm, flags, fs, used, pre, u, tx, th, arg, s, f, ra, rb, rc,
             g_u, g_sp, g_th, g_x, amp, t1, t2, t3, t4, gx, acc):
    """The adjoint of one step over a chunk (``_backward_step`` of the Triton kernel).

    In: the step's entering states ``v``, ``m`` (AR-LIF without memory carry: a zero row), its
    charge, fire and memory terms from the replay (binary: ``f`` is ``s``; ``ra``, ``rb``, ``rc`` as
    ``_reset`` writes them), dL/dS_t (``gs``), dL/dV_t (``av``) and
    dL/dM_t (``am``). Out: dL/dX_t into ``gx``, dL/dV_{t-1} and dL/dM_{t-1} into ``av`` and ``am``
    (in place), the parameter terms added to the rows of ``acc`` flagged in ``used``.

    Rows: ``g_u`` = dL/dU (then dL/dP); ``g_sp`` = the gradient into the spike function (the state's
    share of dL/dS and, binary, of dL/dF (integer: F has none), then the output's dL/dS); ``g_th`` = dL/dth (kept only
    where a threshold term or vth's gradient reads it); ``g_x`` = dL/dX's terms besides alpha dL/dP
    (AR-LIF only); ``amp`` = dL/dM_{t-1} (variants with M); t1..t4 scratch."""
    RESET, TH, INTEGER, CARRY = flags[FLAG_RESET], flags[FLAG_THRESHOLD], flags[FLAG_INTEGER], flags[FLAG_MEMORY_CARRY]
    SLOPE, DETACH, SURR = flags[FLAG_SLOPE], flags[FLAG_DETACH_RESET], flags[FLAG_SURROGATE]
    alpha, beta, k, c = prm[P_ALPHA], prm[P_BETA], prm[P_THR_COEF], prm[P_MEM_GAIN]
    rho, sl, r, val = prm[P_ADAPT_DECAY], prm[P_SLOPE], prm[P_RESET_GATE], prm[P_RESET_VALUE]
    zero, one, two = fs[F_ZERO], fs[F_ONE], fs[F_TWO]
    need_th = TH != 0 or used[P_VTH] != 0
    has_gx = RESET == 2 or TH == 1
    has_m = RESET == 2 or RESET == 3 or TH == 2
    # ---- reset: dL/dU, the state's share of dL/dS and dL/dF, dL/dth, dL/dX, dL/dM_{t-1}
    if RESET == 0:  # V = U (1 - F): dL/dF = -av U
        for j in range(n):
            g_u[j] = av[j] * (one - f[j])
        if INTEGER:  # F = [S > 0] carries no gradient
            _fill(g_sp, n, zero)
        else:
            for j in range(n):
                g_sp[j] = -av[j] * u[j]
        if need_th:
            _fill(g_th, n, zero)
    elif RESET == 1:  # V = U - S th
        _copy(g_u, av, n)
        for j in range(n):
            g_sp[j] = -av[j] * th[j]
        if need_th:
            for j in range(n):
                g_th[j] = -av[j] * s[j]
    elif RESET == 2:  # M = relu(M') g - relu(-M') (1 - g) + (2F - 1) sig(x);  V = U - S (th + sig(M))
        sx, g, sm, g_m = ra, rb, rc, t4
        if not CARRY:  # the replay skipped g (M' = 0 needs none); dL/dc still reads it (times |M'| = 0)
            for j in range(n):
                g[j] = one / (one + exp(-(c[j] * xt[j])))
        for j in range(n):  # dL/dM_t (total)
            g_m[j] = am[j] - av[j] * s[j] * sm[j] * (one - sm[j])
        _copy(g_u, av, n)
        if INTEGER:  # dL/dS share -av (th + sm); F = [S > 0] carries no gradient
            for j in range(n):
                g_sp[j] = -av[j] * (th[j] + sm[j])
        else:  # and dL/dF = 2 g_m sx
            for j in range(n):
                g_sp[j] = -av[j] * (th[j] + sm[j]) + two * g_m[j] * sx[j]
        for j in range(n):
            g_th[j] = -av[j] * s[j]
        for j in range(n):  # through sigmoid(X), and through g = sigmoid(c X): relu(M') + relu(-M') = |M'|
            g_x[j] = g_m[j] * (two * f[j] - one) * sx[j] * (one - sx[j]) + \
                g_m[j] * abs(m[j]) * g[j] * (one - g[j]) * c[j]
        if used[P_MEM_GAIN]:
            acc4 = acc[P_MEM_GAIN]
            for j in range(n):
                acc4[j] += g_m[j] * abs(m[j]) * g[j] * (one - g[j]) * xt[j]
        if CARRY:
            for j in range(n):
                mp = m[j]
                amp[j] = g_m[j] * ((g[j] if mp > zero else zero) + ((one - g[j]) if mp < zero else zero))
        else:
            _fill(amp, n, zero)
    elif RESET == 3:  # M = M' q + S, q = sig(c U);  V = U - S (th + sig(M))
        q, sm, g_m, g_q = ra, rc, t3, t4
        for j in range(n):
            g_m[j] = am[j] - av[j] * s[j] * sm[j] * (one - sm[j])
        for j in range(n):
            g_q[j] = g_m[j] * m[j] * q[j] * (one - q[j])
        for j in range(n):
            g_u[j] = av[j] + g_q[j] * c[j]
        if used[P_MEM_GAIN]:
            acc4 = acc[P_MEM_GAIN]
            for j in range(n):
                acc4[j] += g_q[j] * u[j]
        for j in range(n):
            g_sp[j] = -av[j] * (th[j] + sm[j]) + g_m[j]
        if need_th:
            for j in range(n):
                g_th[j] = -av[j] * s[j]
        for j in range(n):
            amp[j] = g_m[j] * q[j]
    elif RESET == 4:  # V = U - S (r U + (1 - r) v_sub)
        for j in range(n):
            g_u[j] = av[j] * (one - s[j] * r[j])
        for j in range(n):
            g_sp[j] = -av[j] * (r[j] * u[j] + (one - r[j]) * val[j])
        if used[P_RESET_GATE]:
            acc7 = acc[P_RESET_GATE]
            for j in range(n):
                acc7[j] += -av[j] * s[j] * (u[j] - val[j])
        if used[P_RESET_VALUE]:
            acc8 = acc[P_RESET_VALUE]
            for j in range(n):
                acc8[j] += -av[j] * s[j] * (one - r[j])
        if need_th:
            _fill(g_th, n, zero)
    else:  # V = U
        _copy(g_u, av, n)
        _fill(g_sp, n, zero)
        if need_th:
            _fill(g_th, n, zero)
    if TH == 2:  # M_t = rho M_{t-1} + (1 - rho) S_t; am = dL/dM_t (RESET is not 2 or 3 here)
        for j in range(n):
            g_sp[j] += am[j] * (one - rho[j])
        for j in range(n):
            amp[j] = am[j] * rho[j]
        if used[P_ADAPT_DECAY]:
            acc5 = acc[P_ADAPT_DECAY]
            for j in range(n):
                acc5[j] += am[j] * (m[j] - s[j])
    # ---- the state's share is dropped with detach_reset; the output's dL/dS joins
    if DETACH:
        if has_gs:
            _copy(g_sp, gs, n)
        else:
            _fill(g_sp, n, zero)
    elif has_gs:
        for j in range(n):
            g_sp[j] += gs[j]
    # ---- fire
    if INTEGER:  # S = Q(U / th), straight-through on 0 <= z <= D; F = [S > 0] carries no gradient
        int_max = fs[F_INT_MAX]
        for j in range(n):
            g_sp[j] = g_sp[j] if (arg[j] >= zero and arg[j] <= int_max) else zero
        for j in range(n):
            g_u[j] += g_sp[j] / th[j]
        if need_th:
            for j in range(n):
                g_th[j] -= g_sp[j] * u[j] / (th[j] * th[j])
    elif need_th:  # S = H(U - th) with the surrogate; F = S
        _surrogate(u, th, g_sp, n, SURR, fs[F_SURROGATE], fs, t1)
        for j in range(n):
            g_u[j] += t1[j]
        for j in range(n):
            g_th[j] -= t1[j]
    else:
        _surrogate_add(u, th, g_sp, n, SURR, fs[F_SURROGATE], fs, g_u)
    # ---- threshold, slope and charge
    if TH == 1:
        if RESET == 2:
            for j in range(n):
                g_x[j] += g_th[j] * k[j] * (one - tx[j] * tx[j])
        else:  # g_x's first term
            for j in range(n):
                g_x[j] = g_th[j] * k[j] * (one - tx[j] * tx[j])
        if used[P_THR_COEF]:
            acc3 = acc[P_THR_COEF]
            for j in range(n):
                acc3[j] += g_th[j] * tx[j]
    elif TH == 2:
        for j in range(n):
            amp[j] += g_th[j] * k[j]
        if used[P_THR_COEF]:
            acc3 = acc[P_THR_COEF]
            for j in range(n):
                acc3[j] += g_th[j] * m[j]
    if used[P_VTH]:
        acc2 = acc[P_VTH]
        for j in range(n):
            acc2[j] += g_th[j]
    if SLOPE:  # U = relu(k P)
        if used[P_SLOPE]:
            acc6 = acc[P_SLOPE]
            for j in range(n):
                acc6[j] += g_u[j] * pre[j] if sl[j] * pre[j] > zero else zero
        for j in range(n):
            g_u[j] = g_u[j] * sl[j] if sl[j] * pre[j] > zero else zero
    # g_u is now dL/dP
    if has_gx:
        for j in range(n):
            gx[j] = g_x[j] + g_u[j] * alpha[j]
        for j in range(n):
            av[j] = g_u[j] * beta[j]
    else:
        for j in range(n):
            gx[j] = g_u[j] * alpha[j]
        for j in range(n):
            av[j] = g_u[j] * beta[j]
    if used[P_ALPHA] and used[P_BETA]:
        acc0, acc1 = acc[P_ALPHA], acc[P_BETA]
        for j in range(n):
            acc0[j] += g_u[j] * xt[j]
        for j in range(n):
            acc1[j] += g_u[j] * v[j]
    elif used[P_ALPHA]:
        acc0 = acc[P_ALPHA]
        for j in range(n):
            acc0[j] += g_u[j] * xt[j]
    elif used[P_BETA]:
        acc1 = acc[P_BETA]
        for j in range(n):
            acc1[j] += g_u[j] * v[j]
    if has_m:
        _copy(am, amp, n)


@njit(**_JIT)
def _binary_terms(a, g, uu, th, d, HARD, DETACH, fs):
    """One neuron's adjoint of a binary simple step up to the charge (``_adjoint``'s reset, detach
    and fire stages, the same operations): (dL/dU, dL/dth) from dL/dV_t ``a``, dL/dS_t ``g``, U, th
    and the surrogate's dS/dU ``d``; the reset and detach chosen by selects."""
    zero, one = fs[F_ZERO], fs[F_ONE]
    sv = one if uu >= th else zero
    base = a * (one - sv) if HARD else a  # the reset's dL/dU
    gsp = g if DETACH else (-a * uu if HARD else -a * th) + g  # into the spike function
    t1 = gsp * d
    return base + t1, (zero if HARD else -a * sv) - t1


@njit(**_JIT)
def _integer_terms(a, g, uu, th, HARD, DETACH, fs):
    """``_binary_terms`` of the integer spike: straight-through on 0 <= U / th <= D; F = [S > 0]
    carries no gradient (the hard reset's share of dL/dS is 0)."""
    zero, one = fs[F_ZERO], fs[F_ONE]
    arg, sv = _integer_fire(uu, th, fs)
    base = a * (one - (one if sv > zero else zero)) if HARD else a
    gsp = g if (DETACH or HARD) else -a * th + g
    gsp = gsp if (arg >= zero and arg <= fs[F_INT_MAX]) else zero
    return base + gsp / th, (zero if HARD else -a * sv) - gsp * uu / (th * th)


@njit(**_JIT)
def _step_terms(a, g, uu, th, KIND, HARD, DETACH, c1, c2, fs):
    """(dL/dU, dL/dth) of one neuron: ``KIND`` 0..3 a binary spike with that surrogate
    (``_surrogate``'s factors, ``c1``, ``c2`` their constants), 4 the integer spike."""
    zero, one, sp = fs[F_ZERO], fs[F_ONE], fs[F_SURROGATE]
    if KIND == 4:
        return _integer_terms(a, g, uu, th, HARD, DETACH, fs)
    dd = uu - th
    if KIND == 0:  # rectangle of width w: 1/w on |d| < w/2 (c1 = w/2, c2 = 1/w)
        d = c2 if abs(dd) < c1 else zero
    elif KIND == 1:  # triangle of width w: max(0, w - |d|) / w^2 (c1 = w^2)
        d = max(sp - abs(dd), zero) / c1
    elif KIND == 2:  # sigmoid: alpha sig(alpha d) (1 - sig(alpha d))
        sig = one / (one + exp(-(sp * dd)))
        d = sp * sig * (one - sig)
    else:  # atan: alpha / 2 / (1 + (pi/2 alpha d)^2) (c1 = pi/2 alpha, c2 = alpha / 2)
        q = c1 * dd
        d = c2 / (one + q * q)
    return _binary_terms(a, g, uu, th, d, HARD, DETACH, fs)


@njit(**_JIT_INLINE)
def _adjoint_loops(u, gs, av, n, prm, KIND, OUT, HARD, DETACH, SCALAR, c1, c2, fs, o1, o2):
    """The loop of ``_simple_adjoint`` for one spike kind (inlined where ``KIND`` is a constant, so
    that each kind compiles to its own loop): ``OUT`` 0 writes dL/dX_t into ``o1`` and dL/dV_{t-1}
    into ``av``, 1 dL/dU into ``o1``, 2 dL/dU into ``o1`` and dL/dth into ``o2`` (at most two rows
    written per loop: more stop it vectorising). ``SCALAR`` (per-layer parameters): OUT 0 reads alpha,
    beta and vth once before its loop (lif's case); OUT 1 and 2 read the rows."""
    alpha, beta, vth = prm[P_ALPHA], prm[P_BETA], prm[P_VTH]
    if OUT == 0 and SCALAR:
        a, b, th = alpha[0], beta[0], vth[0]
        for j in range(n):
            gu = _step_terms(av[j], gs[j], u[j], th, KIND, HARD, DETACH, c1, c2, fs)[0]
            o1[j] = gu * a
            av[j] = gu * b
    elif OUT == 0:
        for j in range(n):
            gu = _step_terms(av[j], gs[j], u[j], vth[j], KIND, HARD, DETACH, c1, c2, fs)[0]
            o1[j] = gu * alpha[j]
            av[j] = gu * beta[j]
    elif OUT == 1:
        for j in range(n):
            o1[j] = _step_terms(av[j], gs[j], u[j], vth[j], KIND, HARD, DETACH, c1, c2, fs)[0]
    else:
        for j in range(n):
            gu, gth = _step_terms(av[j], gs[j], u[j], vth[j], KIND, HARD, DETACH, c1, c2, fs)
            o1[j] = gu
            o2[j] = gth


@njit(**_JIT)
def _charge_adjoint(xt, v, pre, g_u, g_th, n, prm, SLOPE, used, fs, acc, gx, av):
    """The rest of a simple step's adjoint where parameter gradients or a slope are wanted, from
    dL/dU (``g_u``) and dL/dth (``g_th``, read where vth's gradient is wanted): the slope (SLOPE),
    dL/dX into ``gx``, dL/dV_{t-1} into ``av``, the parameter terms into ``acc`` (``_adjoint``'s
    last stages), each parameter's term in the loop of the row it shares a factor with."""
    alpha, beta, sl = prm[P_ALPHA], prm[P_BETA], prm[P_SLOPE]
    zero = fs[F_ZERO]
    if used[P_VTH]:
        acc2 = acc[P_VTH]
        for j in range(n):
            acc2[j] += g_th[j]
    if SLOPE and used[P_SLOPE]:  # U = relu(k P)
        acc6 = acc[P_SLOPE]
        for j in range(n):
            gu, p, k = g_u[j], pre[j], sl[j]
            acc6[j] += gu * p if k * p > zero else zero
            g_u[j] = gu * k if k * p > zero else zero
    elif SLOPE:
        for j in range(n):
            g_u[j] = g_u[j] * sl[j] if sl[j] * pre[j] > zero else zero
    # g_u is now dL/dP = dL/d(beta V_{t-1} + alpha X_t)
    _scale_and_accumulate(g_u, alpha, gx, acc[P_ALPHA], xt, n, used[P_ALPHA])  # dL/dX_t, alpha's term
    _scale_and_accumulate(g_u, beta, av, acc[P_BETA], v, n, used[P_BETA])  # dL/dV_{t-1}, beta's term


@njit(**_JIT_INLINE)
def _scale_and_accumulate(g, w, out, acc_row, factor, n, ACC):
    """``out = g w`` and, where ``ACC``, ``acc_row += g factor``: one loop writing two rows."""
    if ACC:
        for j in range(n):
            gj = g[j]
            out[j] = gj * w[j]
            acc_row[j] += gj * factor[j]
    else:
        for j in range(n):
            out[j] = g[j] * w[j]


@njit(**_JIT)
def _simple_adjoint(xt, v, pre, u, gs, av, n, prm, flags, used, SCALAR, fs, acc, gx, g_u, g_th):
    """The adjoint of one step of the simple variants over a chunk: from the replay's U (and P,
    SLOPE) and V_{t-1} (``v``), dL/dS_t (``gs``) and dL/dV_t (``av``), dL/dX_t into ``gx``,
    dL/dV_{t-1} into ``av`` (in place), the parameter terms into ``acc``. One loop (``_adjoint_loops``)
    where no parameter gradient and no slope is wanted; else that loop writes dL/dU (``g_u``, and
    dL/dth into ``g_th`` where vth's gradient is wanted) and ``_charge_adjoint`` does the rest."""
    HARD, INTEGER, SLOPE = flags[FLAG_RESET] == 0, flags[FLAG_INTEGER], flags[FLAG_SLOPE]
    DETACH, SURR = flags[FLAG_DETACH_RESET], flags[FLAG_SURROGATE]
    zero, one, two, sp = fs[F_ZERO], fs[F_ONE], fs[F_TWO], fs[F_SURROGATE]
    OUT = 2 if used[P_VTH] else 1 if (SLOPE or used[P_ALPHA] or used[P_BETA]) else 0
    o1 = gx if OUT == 0 else g_u
    if INTEGER:
        _adjoint_loops(u, gs, av, n, prm, 4, OUT, HARD, DETACH, SCALAR, zero, zero, fs, o1, g_th)
    elif SURR == 0:
        _adjoint_loops(u, gs, av, n, prm, 0, OUT, HARD, DETACH, SCALAR, sp / two, one / sp, fs, o1, g_th)
    elif SURR == 1:
        _adjoint_loops(u, gs, av, n, prm, 1, OUT, HARD, DETACH, SCALAR, sp * sp, zero, fs, o1, g_th)
    elif SURR == 2:
        _adjoint_loops(u, gs, av, n, prm, 2, OUT, HARD, DETACH, SCALAR, zero, zero, fs, o1, g_th)
    else:
        _adjoint_loops(u, gs, av, n, prm, 3, OUT, HARD, DETACH, SCALAR, fs[F_HALF_PI] * sp, sp / two, fs, o1, g_th)
    if OUT != 0:
        _charge_adjoint(xt, v, pre, g_u, g_th, n, prm, SLOPE, used, fs, acc, gx, av)


@njit(**_JIT)
def scan_backward(x, table, C, S, flags, fs, gs, has_gs, gv, gm, has_gv, has_gm, used, gx, part, states, traj,
                  work, gain, bias, used_gate, part_gain, part_bias, lanes, fused, claim, block, c0, c1):
    """x, gs, gx: [T, N] (x: [1, N] for a static input, as ``scan_forward``'s); gv, gm: [N] (read where
    ``has_gv``/``has_gm``); used: [9] int (rows of the
    parameter gradient to accumulate); part: [n_chunks, 9, P] float64, zeroed, out; states:
    [2, T + 1, CH] (V, M entering each step); traj: [TRAJ_ROWS, T, CH] (each step's U, S, the spike
    function's argument (integer), th, tanh X, P, F and ``_reset``'s sigmoids, kept by the replay for
    the adjoint; the fused path keeps U and P only); work: [WORK_ROWS, CH]. All but ``part``,
    ``flags``, ``used`` in the compute dtype; CH is the chunk (``work.shape[1]``). GLIF's gated
    input (as ``scan_forward``; ``gain`` [0, 1]: none): the replay keeps x'_t (``traj[TRAJ_XG]``), dL/dx
    = dL/dx' gain; ``used_gate`` [2] int (the gain's, the bias's gradient wanted); part_gain
    [n_chunks, T, Pg], part_bias [n_chunks, Pg]: float64, zeroed, out; lanes: [LANES] float64
    scratch. ``fused``: the simple variants' fused replay and adjoint (else the general ones, as
    for every other variant). Runs chunks c0 .. c1 - 1 only, claimed as ``scan_forward``'s, writing
    their rows of ``gx``, ``part``, ``part_gain``, ``part_bias``."""
    T, N = gx.shape
    STATIC = x.shape[0] == 1  # a static input: its one step read at every step
    GATED = gain.shape[0] != 0
    Pg = gain.shape[1]
    grow, brow, accb = work[BWD_GAIN], work[BWD_BIAS], work[BWD_ACC_BIAS]
    RESET, TH, INTEGER, CARRY = flags[FLAG_RESET], flags[FLAG_THRESHOLD], flags[FLAG_INTEGER], flags[FLAG_MEMORY_CARRY]
    SLOPE = flags[FLAG_SLOPE]
    CH = work.shape[1]
    P = table.shape[1]
    prm = work[BWD_PRM:BWD_PRM + NUM_PARAMS]
    acc = work[BWD_ACC:BWD_ACC + NUM_PARAMS]
    g_u, g_sp, g_th, g_x, amp = work[BWD_G_U], work[BWD_G_SP], work[BWD_G_TH], work[BWD_G_X], work[BWD_AMP]
    t1, t2, t3, t4 = work[BWD_T1], work[BWD_T2], work[BWD_T3], work[BWD_T4]
    av, am, zrow = work[BWD_AV], work[BWD_AM], work[BWD_ZERO]
    want_f = INTEGER != 0 and (RESET == 0 or RESET == 2)
    vs, ms = states[0], states[1]
    zero = fs[F_ZERO]
    _fill(zrow, CH, zero)
    no_carry = RESET == 2 and not CARRY  # AR-LIF's memory restarts every step: M_{t-1} reads as 0
    gated = TH == 0 and not SLOPE and not INTEGER and RESET == 4  # glif: the replay's step in one loop
    complementary = TH == 0 and not SLOPE and not INTEGER and RESET == 3  # clif
    # lif, plif, hard_lif, da_lif, soft_lif, i_lif, ib_ra_lif, klif: the fused replay and adjoint
    simple = fused and TH == 0 and (RESET == 0 or RESET == 1) and not GATED
    HARD = RESET == 0
    any_param = False
    for kk in range(NUM_PARAMS):
        if used[kk]:
            any_param = True
    ci, last = c0 - 1, c0
    while True:
        ci, last = _next_chunk(claim, block, c0, c1, ci, last)
        if ci >= last:
            break
        i0 = ci * CH
        n = min(CH, N - i0)
        _chunk_params(table, i0, n, C, S, prm)
        # ---- replay the forward: the states entering every step, and what each step derives from them
        _fill(vs[0], n, zero)
        _fill(ms[0], n, zero)
        if GATED:
            _expand(bias, i0, n, C, S, brow)
        for t in range(T):
            xt = x[0 if STATIC else t, i0:i0 + n]
            if GATED:
                _gate(xt, gain[t], brow, i0, n, C, S, grow, traj[TRAJ_XG, t])
                xt = traj[TRAJ_XG, t]
            u, s_, arg, tx = traj[TRAJ_U, t], traj[TRAJ_S, t], traj[TRAJ_ARG, t], traj[TRAJ_TX, t]
            th = traj[TRAJ_TH, t] if TH != 0 else prm[P_VTH]
            pre = traj[TRAJ_PRE, t] if SLOPE else u
            f = traj[TRAJ_F, t] if INTEGER else s_  # binary: F is S
            if simple:
                if P == 1 and not SLOPE:
                    _simple_replay_scalar(xt, vs[t], u, vs[t + 1], n, prm, HARD, INTEGER, fs)
                else:
                    _simple_replay(xt, vs[t], traj[TRAJ_PRE, t], u, vs[t + 1], n, prm, HARD, INTEGER, SLOPE, fs)
                continue
            if gated:
                _gated_replay(xt, vs[t], u, s_, vs[t + 1], n, prm, fs)
                continue
            if complementary:
                _complementary_replay(xt, vs[t], ms[t], u, s_, traj[TRAJ_RA, t], ms[t + 1], traj[TRAJ_RC, t], vs[t + 1],
                                      n, prm, fs)
                continue
            _charge_fire(xt, vs[t], ms[t], n, prm, TH, INTEGER, SLOPE, want_f, fs, pre, u, tx, th, arg, s_, f)
            _reset(xt, u, th, s_, f, ms[t], vs[t + 1], ms[t + 1], n, prm, RESET, TH, CARRY, fs, traj[TRAJ_RA, t],
                   traj[TRAJ_RB, t], traj[TRAJ_RC, t])
        # ---- adjoint, last step first
        for j in range(n):
            av[j] = gv[i0 + j] if has_gv else zero
        for j in range(n):
            am[j] = gm[i0 + j] if has_gm else zero
        for kk in range(NUM_PARAMS):
            _fill(acc[kk], n, zero)
        if GATED and used_gate[USED_BIAS]:
            _fill(accb, n, zero)
        for tt in range(T):
            t = T - 1 - tt
            xt = traj[TRAJ_XG, t] if GATED else x[0 if STATIC else t, i0:i0 + n]
            m_t = zrow if no_carry else ms[t]
            u, s_, arg, tx = traj[TRAJ_U, t], traj[TRAJ_S, t], traj[TRAJ_ARG, t], traj[TRAJ_TX, t]
            th = traj[TRAJ_TH, t] if TH != 0 else prm[P_VTH]
            pre = traj[TRAJ_PRE, t] if SLOPE else u
            f = traj[TRAJ_F, t] if INTEGER else s_
            if simple:
                _simple_adjoint(xt, vs[t], pre, u, gs[t, i0:i0 + n] if has_gs else zrow, av, n, prm, flags, used,
                                P == 1, fs, acc, gx[t, i0:i0 + n], g_u, g_th)
                continue
            _adjoint(xt, vs[t], m_t, gs[t, i0:i0 + n], has_gs, av, am, n, prm, flags, fs, used, pre, u, tx, th,
                     arg, s_, f, traj[TRAJ_RA, t], traj[TRAJ_RB, t], traj[TRAJ_RC, t], g_u, g_sp, g_th, g_x, amp,
                     t1, t2, t3, t4, gx[t, i0:i0 + n], acc)
            if GATED:  # gx holds dL/dx'_t: the gain's and the bias's shares, then dL/dx_t = dL/dx'_t gain_t
                gxt = gx[t, i0:i0 + n]
                if used_gate[USED_GAIN]:
                    xt_ = x[0 if STATIC else t, i0:i0 + n]
                    _channel_sums(gxt, xt_, True, i0, n, C, S, Pg, lanes, part_gain[ci, t])
                if used_gate[USED_BIAS]:
                    for j in range(n):
                        accb[j] += gxt[j]
                gain_t = gain[t]
                if Pg == 1:
                    g = gain_t[0]
                    for j in range(n):
                        gxt[j] = gxt[j] * g
                else:
                    _expand(gain_t, i0, n, C, S, grow)
                    for j in range(n):
                        gxt[j] = gxt[j] * grow[j]
        if GATED and used_gate[USED_BIAS]:
            _channel_sums(accb, accb, False, i0, n, C, S, Pg, lanes, part_bias[ci])
        # ---- this chunk's partial sums of the parameter gradients, per channel
        if any_param:
            for kk in range(NUM_PARAMS):
                if used[kk]:
                    row = acc[kk]
                    if P == 1:
                        total = 0.0
                        for j in range(n):
                            total += row[j]
                        part[ci, kk, 0] += total
                    else:
                        for j in range(n):
                            part[ci, kk, ((i0 + j) // S) % C] += row[j]
