"""The per-layer simple variants on long chunks: the forward walked over time per long row, and a
backward that reads the saved charge U instead of replaying the forward.

The variants (``numba_scan.long_path``): a fixed threshold, a hard or soft reset, no slope, no
gated input, one value per parameter (lif, hard_lif, soft_lif, i_lif, ib_ra_lif; plif and da_lif
forward). Their step needs no per-neuron parameter row, so a chunk is a long row of ``LONG_CHUNK``
neurons (only V, 128 KiB in fp32, stays in cache): per chunk, for each step, one loop over the row
(``numba_kernels._simple_step``, the same function as ``scan_forward``'s: the same operations,
bitwise the same spikes and V_T). Measured on this project's 2-core VM (lif, x fp32 [8, 16, 64, 16,
16], one thread), the walk over T with rows of 1024 neurons took 2.5x a copy of the same bytes and
rows of 32768 1.6x: every row of 4 KiB is a new page for the hardware prefetcher, a long row
streams.

``long_forward`` also writes U_t = beta V_{t-1} + alpha X_t (the charge before the spike) where
``numba_scan`` asks for it (``SAVE_CHARGE``: no parameter gradient wanted, a dense fp32/fp64 x):
then the backward needs U alone (``_simple_adjoint``'s loop without parameter terms reads U, dL/dS_t
and dL/dV_t only), and ``saved_backward`` runs the adjoint over U, last step first, without the
replay that ``scan_backward`` makes of the forward. ``NumbaScan`` then saves U in x's place: the same
memory between forward and backward, one more tensor written by the forward, x read once less and
the replay's arithmetic gone from the backward. The adjoint is ``numba_kernels._simple_adjoint``
itself: the same gradients, bitwise, as the replaying backward.

Threads, chunks and claiming as ``numba_kernels`` (``_next_chunk``): a chunk's results depend on
that chunk alone, so they are bitwise the same for any thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .numba_kernels import (
    _JIT,
    F_HALF,
    F_INT_SCALE,
    F_INT_TOP,
    F_ONE,
    F_ZERO,
    FLAG_INTEGER,
    FLAG_RESET,
    P_ALPHA,
    P_BETA,
    P_VTH,
    _fill,
    _next_chunk,
    _simple_adjoint,
    _simple_step,
)

LONG_CHUNK = 32768  # neurons per chunk: V's row (128 KiB fp32) stays in L2 while the chunk walks over time


@njit(**_JIT)
def _charge_step(xt, v, u, s, n, prm, RESET, INTEGER, fs):
    """``_simple_step`` with per-layer parameters that also writes U (the same operations: U, then
    S and V from it), V in place."""
    a, b, th = prm[P_ALPHA][0], prm[P_BETA][0], prm[P_VTH][0]
    zero, one = fs[F_ZERO], fs[F_ONE]
    if INTEGER:
        scale, top, half = fs[F_INT_SCALE], fs[F_INT_TOP], fs[F_HALF]
        for j in range(n):
            uu = b * v[j] + a * xt[j]
            u[j] = uu
            sv = np.floor(min(max((uu / th) * scale, zero), top) + half) / scale
            s[j] = sv
            v[j] = uu * (one - (one if sv > zero else zero)) if RESET == 0 else uu - sv * th
    elif RESET == 0:
        for j in range(n):
            uu = b * v[j] + a * xt[j]
            u[j] = uu
            sv = one if uu >= th else zero
            s[j] = sv
            v[j] = uu * (one - sv)
    else:
        for j in range(n):
            uu = b * v[j] + a * xt[j]
            u[j] = uu
            sv = one if uu >= th else zero
            s[j] = sv
            v[j] = uu - sv * th


@njit(**_JIT)
def long_forward(x, table, flags, fs, spikes, charge, v_out, SAVE, claim, block, c0, c1):
    """x, spikes, charge: [T, N] (x: [1, N] for a static input, its one step read at every step;
    ``charge`` written where ``SAVE``, else never touched); table: [9, 1]; v_out: [N], the state V
    itself while a chunk walks over time (V_T at the end). Chunks of ``LONG_CHUNK`` neurons c0 .. c1
    - 1, claimed as ``scan_forward``'s. All in the compute dtype."""
    T, N = spikes.shape
    STATIC = x.shape[0] == 1
    RESET, INTEGER = flags[FLAG_RESET], flags[FLAG_INTEGER]
    zero = fs[F_ZERO]
    CH = LONG_CHUNK
    ci, last = c0 - 1, c0
    while True:
        ci, last = _next_chunk(claim, block, c0, c1, ci, last)
        if ci >= last:
            break
        i0 = ci * CH
        n = min(CH, N - i0)
        v = v_out[i0:i0 + n]
        _fill(v, n, zero)
        for t in range(T):
            xt = x[0 if STATIC else t, i0:i0 + n]
            if SAVE:
                _charge_step(xt, v, charge[t, i0:i0 + n], spikes[t, i0:i0 + n], n, table, RESET, INTEGER, fs)
            else:
                _simple_step(xt, v, spikes[t, i0:i0 + n], n, table, RESET, INTEGER, True, fs)


@njit(**_JIT)
def saved_backward(charge, table, flags, fs, gs, has_gs, gv, has_gv, used, gx, av, zrow, spare, claim, block,
                   c0, c1):
    """dL/dx [T, N] into ``gx`` from the forward's U (``charge`` [T, N]), dL/dS (``gs`` [T, N], read
    where ``has_gs``) and dL/dV_T (``gv`` [N], read where ``has_gv``); table [9, 1]; used: [9] int,
    all 0 (no parameter gradient: the variants ``long_forward`` saves U for); av, zrow: [LONG_CHUNK]
    scratch (dL/dV_t of the chunk, a row of zeros); spare: [9, 1] scratch the loop does not write
    (``_simple_adjoint``'s parameter rows). Chunks of ``LONG_CHUNK`` neurons, claimed as above."""
    T, N = gx.shape
    zero = fs[F_ZERO]
    CH = LONG_CHUNK
    _fill(zrow, CH, zero)
    ci, last = c0 - 1, c0
    while True:
        ci, last = _next_chunk(claim, block, c0, c1, ci, last)
        if ci >= last:
            break
        i0 = ci * CH
        n = min(CH, N - i0)
        for j in range(n):
            av[j] = gv[i0 + j] if has_gv else zero
        for tt in range(T):
            t = T - 1 - tt
            u = charge[t, i0:i0 + n]
            _simple_adjoint(u, u, u, u, gs[t, i0:i0 + n] if has_gs else zrow, av, n, table, flags, used, True, fs,
                            spare, gx[t, i0:i0 + n], zrow, zrow)
