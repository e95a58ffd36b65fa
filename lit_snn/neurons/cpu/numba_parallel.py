"""The numba-compiled kernels of PSN on the CPU path (``parallel.parallel_cpu``): one fused loop per direction.

The CPU analogue of the Triton PSN kernel (``kernels/parallel.py``), the same math as
``parallel.parallel_reference``:

    H = W X  ([T, T] times [T, N]),   S = [H_t >= B_t],   h_last = H_{T-1}
    G_D = G_S sg(H - B),   G_H = G_D (+ dL/dh_last on row T-1)
    dL/dX = W^T G_H,   dL/dW = G_H X^T,   dL/dB = -sum_n G_D

Layout and conventions as ``numba_kernels.py`` (read its docstring): ``x`` is a contiguous ``[T, N]``
numpy view of the torch tensor (zero copy), the neurons are processed in chunks of ``CH``
contiguous neurons (``work.shape[1]``), every loop runs over a chunk-sized row and writes one
array (LLVM vectorises it), one compiled function per compute dtype (``cache=True``, no closures,
``_JIT``'s options: no fma contraction, IEEE division), the surrogate flag and its parameter as
plain arguments (``fs``: ``numba_kernels.F_*``, in the compute dtype; sigmoid's ``exp`` the
vectorising float32 polynomial).

Forward, per chunk: for each output step t, H_t = sum_k W[t, k] x_k into one chunk row (k in groups
of four: ``_mix_row``), then S_t and (t = T - 1) h_last. Nothing is kept for the backward but x (and W, B).

Backward, per chunk: H recomputed row by row as in the forward, ``G_H`` ``[T, CH]`` (work rows),
dL/dX_k = sum_t W[t, k] G_H_t straight into ``gx``; the parameter gradients accumulate neuron by
neuron into float64 rows of the chunk's width (``acc [T (T + 1), CH]``: G_H_t X_k for dL/dW, -G_D_t
for dL/dB, four neurons' products summed in the compute dtype per float64 add (``_accumulate``);
long loops that vectorise, where one float64 accumulator per entry would be a serial chain),
summed once at the end: deterministic (the order depends on N and the chunk only), no atomics.
"""

from __future__ import annotations

from numba import njit

from .numba_kernels import _JIT, F_HALF_PI, F_ONE, F_SURROGATE, F_TWO, F_ZERO, exp

CHUNK = 1024  # neurons per chunk (largest): x's and G_H's [T, CH] tiles stay in L2


def chunk_size(T: int, N: int) -> int:
    """Neurons per chunk: ``CHUNK``, halved while the backward's [T, CH] tiles (x, G_H, fp32) and its
    float64 rows ``acc`` would outgrow ~1 MiB (long sequences), at least 64; at most N."""
    chunk = CHUNK
    while chunk > 64 and (2 * T * 4 + T * (T + 1) * 8) * chunk > 2**20:
        chunk //= 2
    return max(1, min(chunk, N))


@njit(**_JIT)
def _mix_row(x, w_row, i0, n, out):
    """``out = sum_k w_row[k] x[k, i0:i0 + n]`` (one row of H = W X, or of W^T G): k in groups of
    four, ``(w_k x_k + w_k+1 x_k+1) + (w_k+2 x_k+2 + w_k+3 x_k+3)`` added to ``out`` in k order, then
    the T % 4 last one by one (a quarter of the passes over ``out``)."""
    T = x.shape[0]
    K4 = T - T % 4
    for k in range(0, K4, 4):
        x0, x1, x2, x3 = x[k, i0:i0 + n], x[k + 1, i0:i0 + n], x[k + 2, i0:i0 + n], x[k + 3, i0:i0 + n]
        c0, c1, c2, c3 = w_row[k], w_row[k + 1], w_row[k + 2], w_row[k + 3]
        if k == 0:
            for j in range(n):
                out[j] = (c0 * x0[j] + c1 * x1[j]) + (c2 * x2[j] + c3 * x3[j])
        else:
            for j in range(n):
                out[j] += (c0 * x0[j] + c1 * x1[j]) + (c2 * x2[j] + c3 * x3[j])
    for k in range(K4, T):
        xk = x[k, i0:i0 + n]
        c = w_row[k]
        if k == 0:
            for j in range(n):
                out[j] = c * xk[j]
        else:
            for j in range(n):
                out[j] += c * xk[j]


@njit(**_JIT)
def _accumulate(g, x, i0, n, acc):
    """The chunk's share of dL/dW and -dL/dB into float64 rows (``acc [T (T + 1), CH]``): the chunk's
    neurons in four quarters of q = n // 4, the four products of neurons j, j + q, j + 2q, j + 3q
    summed pairwise in the compute dtype, then added to ``acc[t T + k, j]`` (G_t X_k) and
    ``acc[T T + t, j]`` (-G_t) in float64; the tail (n % 4 neurons) at its own positions 4q... The
    rows are summed once at the end (``psn_backward``): the order depends on N and the chunk only."""
    T = x.shape[0]
    q = n // 4
    for t in range(T):
        gt = g[t]
        g0, g1, g2, g3 = gt[0:q], gt[q:2 * q], gt[2 * q:3 * q], gt[3 * q:4 * q]
        for k in range(T):
            xk = x[k, i0:i0 + n]
            x0, x1, x2, x3 = xk[0:q], xk[q:2 * q], xk[2 * q:3 * q], xk[3 * q:4 * q]
            row = acc[t * T + k]
            for j in range(q):
                row[j] += (g0[j] * x0[j] + g1[j] * x1[j]) + (g2[j] * x2[j] + g3[j] * x3[j])
            for j in range(4 * q, n):
                row[j] += gt[j] * xk[j]
        row = acc[T * T + t]
        for j in range(q):
            row[j] -= (g0[j] + g1[j]) + (g2[j] + g3[j])
        for j in range(4 * q, n):
            row[j] -= gt[j]


@njit(**_JIT)
def _surrogate_times(h, b, gs, n, SURR, fs, out):
    """``out = gs * dS/du`` at u = H - B (``surrogate.surrogate_grad``), B a scalar."""
    zero, one, two = fs[F_ZERO], fs[F_ONE], fs[F_TWO]
    sp = fs[F_SURROGATE]
    if SURR == 0:  # rectangle of width w: 1/w on |u| < w/2
        half_w = sp / two
        inv_w = one / sp
        for j in range(n):
            out[j] = gs[j] * (inv_w if abs(h[j] - b) < half_w else zero)
    elif SURR == 1:  # triangle of width w: max(0, w - |u|) / w^2
        w2 = sp * sp
        for j in range(n):
            out[j] = gs[j] * (max(sp - abs(h[j] - b), zero) / w2)
    elif SURR == 2:  # sigmoid, alpha: alpha sig(alpha u) (1 - sig(alpha u))
        for j in range(n):
            sig = one / (one + exp(-(sp * (h[j] - b))))
            out[j] = gs[j] * (sp * sig * (one - sig))
    else:  # atan, alpha: alpha / 2 / (1 + (pi/2 alpha u)^2)
        qa = fs[F_HALF_PI] * sp
        a2 = sp / two
        for j in range(n):
            q = qa * (h[j] - b)
            out[j] = gs[j] * (a2 / (one + q * q))


@njit(**_JIT)
def psn_forward(x, w, th, fs, spikes, h_last, work):
    """x, spikes: [T, N]; w: [T, T]; th: [T]; h_last: [N]; work: [1, CH] scratch. All in the
    compute dtype."""
    T, N = x.shape
    CH = work.shape[1]
    h = work[0]
    zero, one = fs[F_ZERO], fs[F_ONE]
    for i0 in range(0, N, CH):
        n = min(CH, N - i0)
        for t in range(T):
            _mix_row(x, w[t], i0, n, h)
            s = spikes[t, i0:i0 + n]
            b = th[t]
            for j in range(n):  # S = [H - B >= 0] = [H >= B] (IEEE: a difference of distinct floats is never 0)
                s[j] = one if h[j] >= b else zero
        hl = h_last[i0:i0 + n]
        for j in range(n):  # the last row left in h is H_{T-1}
            hl[j] = h[j]


@njit(**_JIT)
def psn_backward(x, w, wt, th, fs, SURR, gs, has_gs, gh, has_gh, need_gx, need_gp, gx, pw, pb, g, work, acc):
    """x, gs, gx: [T, N] (gs read where ``has_gs``, gx written where ``need_gx``); w, wt: W and W^T
    [T, T] (contiguous); th: [T]; gh: [N] (read where ``has_gh``); pw [T, T], pb [T]:
    float64, out (written where ``need_gp``); g: [T, CH] scratch (G_H of the chunk);
    work: [1, CH] scratch (a row of H); acc: [T (T + 1), CH] float64 scratch. All but ``pw``,
    ``pb``, ``acc`` in the compute dtype."""
    T, N = x.shape
    CH = g.shape[1]
    h = work[0]
    zero = fs[F_ZERO]
    if need_gp:
        for r in range(acc.shape[0]):
            for j in range(CH):
                acc[r, j] = 0.0
    for ci in range(0, (N + CH - 1) // CH):
        i0 = ci * CH
        n = min(CH, N - i0)
        for t in range(T):
            gt = g[t]
            if has_gs:
                _mix_row(x, w[t], i0, n, h)  # H_t recomputed
                _surrogate_times(h, th[t], gs[t, i0:i0 + n], n, SURR, fs, gt)  # G_D_t
            else:
                for j in range(n):
                    gt[j] = zero
        if need_gp and has_gs:  # -dL/dB from G_D (h_last's share does not reach B)
            _accumulate(g, x, i0, n, acc)  # and dL/dW's share of G_D
        if has_gh:  # G_H_{T-1} = G_D_{T-1} + dL/dh_last
            gl = g[T - 1]
            ghc = gh[i0:i0 + n]
            for j in range(n):
                gl[j] += ghc[j]
        if need_gx:
            for k in range(T):  # dL/dX_k = sum_t W[t, k] G_H_t
                _mix_row(g, wt[k], 0, n, gx[k, i0:i0 + n])
        if need_gp and has_gh:  # dL/dW[T - 1, k]'s share of dL/dh_last
            ghc = gh[i0:i0 + n]
            for k in range(T):
                xk = x[k, i0:i0 + n]
                row = acc[(T - 1) * T + k]
                for j in range(n):
                    row[j] += ghc[j] * xk[j]
    if need_gp:
        for t in range(T):
            for k in range(T):
                total = 0.0
                for j in range(CH):
                    total += acc[t * T + k, j]
                pw[t, k] = total
            total = 0.0
            for j in range(CH):
                total += acc[T * T + t, j]
            pb[t] = total
