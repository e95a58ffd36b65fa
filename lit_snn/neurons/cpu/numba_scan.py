"""The numba path of ``multistep_cpu``: the neuron scan as one fused, compiled loop per direction.

``NumbaScan`` is an autograd Function with the outputs of ``reference.multistep_reference`` (spikes,
``V_T``, ``M_T``; ``M_T`` a read-only broadcast zero without a second state) that runs the kernels
of ``numba_kernels.py`` on zero-copy numpy views of the tensors. Saved for the backward: ``x`` and
the parameters (and their ``[9, P]`` table, a few floats), nothing else: the backward replays the
forward per chunk, as the Triton kernel. The per-layer simple variants (``long_path``: lif, hard_lif,
soft_lif, i_lif, ib_ra_lif, plif, da_lif) run ``numba_long.py``'s forward on long rows, and where no
parameter gradient is wanted (lif's case) it keeps the charge U [T, N] in x's place
(``SAVE_CHARGE``, ``_saves_charge``): the same memory between forward and backward, one tensor more
written by the forward, and a backward without the replay (lif, x fp32 [8, 16, 64, 16, 16], one
thread: forward + backward 6.6 -> 4.1 ms; docs/benchmarks.md). The kernels' scratch (a few hundred KiB) comes from the
CPU path's pool (``scratch.py``), so its pages stay mapped from call to call.

Every variant the Triton kernel covers runs here (``numba_supports``: every reset, threshold and
spike kind, the four surrogates, slope, detach_reset, memory carry, per-layer, per-channel and
mixed parameters); only the combination the kernel rejects too (a spike-adaptive threshold with a
second-state reset) runs the PyTorch reference. Compute dtype: float64 for float64 inputs,
float32 otherwise (bf16/fp16 inputs are widened on entry, outputs rounded back to the input's dtype).

Threads: with torch's thread count above 1 the kernels run on up to that many threads, torch's own
OpenMP team (``omp_team``; where it is not found, a persistent pool of Python threads), at least two
chunks and ``MIN_ELEMENTS_PER_THREAD`` elements per thread (fewer for the general kernel's heavier
variants, ``threads_for``), each with its own scratch, taking blocks of chunks in turn
(``run_chunks``); the results are bitwise those of one thread. The outputs
(spikes, states, dL/dx) are fresh numpy-allocated tensors (``fresh``: huge pages, where a fresh
``torch.empty`` of a few MiB costs more in page faults than the scan itself).

The kernels are compiled on first use (numba is imported lazily, so importing ``lit_snn`` does
not pay for it) and cached on disk by numba, one compilation per compute dtype for every variant.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np
import torch
from torch import Tensor

from ...memory_layout import CHANNELS_LAST, dense_copy, memory_order
from ..reference import PARAM_NAMES, RESET_IDS, SECOND_STATE_RESETS, KernelSpec
from ..surrogate import SURROGATE_IDS, integer_top
from . import omp_team, scratch

NUM_PARAMS = len(PARAM_NAMES)

_kernels = None  # the numba_kernels module, imported (and numba with it) on first use
_VARIANTS: dict = {}  # spec -> (flags, floats): derived once per spec
FUSED_BACKWARD = True  # the simple variants' fused backward (False: the general one, for the tests)
# lif-like variants without parameter gradients keep U (the charge before the spike) for the backward
# in x's place (``numba_long``): the same memory, no replay (False: keep x and replay, for the tests)
SAVE_CHARGE = True
_long = None  # the numba_long module, imported on first use


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """What the kernels compute in for a storage dtype: float64 for float64, else float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def numba_supports(spec: KernelSpec) -> bool:
    """Whether the numba kernels run this variant (else ``multistep_cpu`` runs the PyTorch reference)."""
    return (isinstance(spec, KernelSpec) and spec.reset in RESET_IDS and spec.surrogate in SURROGATE_IDS
            and not (spec.spike_adaptive_threshold and spec.reset in SECOND_STATE_RESETS))


def kernels():
    """The compiled kernels' module (imports numba; compiles or loads from the cache on first call)."""
    global _kernels
    if _kernels is None:
        from . import numba_kernels

        _kernels = numba_kernels
    return _kernels


def variant_args(spec: KernelSpec) -> tuple[np.ndarray, tuple]:
    """(flags [7] int64: RESET, THRESHOLD, INTEGER, MEMORY_CARRY, SLOPE, DETACH_RESET, SURROGATE;
    the float arguments int_max, int_scale, int_top, surrogate_param), normalised as ``Variant.from_spec``."""
    if spec not in _VARIANTS:
        integer = bool(spec.integer)
        flags = np.array([
            RESET_IDS[spec.reset],
            1 if spec.adaptive_threshold else 2 if spec.spike_adaptive_threshold else 0,
            int(integer),
            int(bool(spec.memory_carry) or spec.reset != "adaptive"),
            int(bool(spec.slope)),
            int(bool(spec.detach_reset)),
            0 if integer else SURROGATE_IDS[spec.surrogate],
        ], dtype=np.int64)
        floats = (float(spec.int_max), float(spec.int_scale), float(integer_top(spec.int_max, spec.int_scale)),
                  1.0 if integer else float(spec.surrogate_param))
        _VARIANTS[spec] = (flags, floats)
    return _VARIANTS[spec]


def _float_args(floats: tuple, dtype: np.dtype) -> np.ndarray:
    """``fs`` of the kernels (``numba_kernels.F_*``) in the compute dtype."""
    return np.array([*floats, 0.0, 1.0, 2.0, 0.5, math.pi / 2], dtype=dtype)


_POOL: list = [None, 0, 0]  # run_chunks' worker threads: [executor, its size, the process it runs in]
_POOL_LOCK = threading.Lock()


# The least elements (T * neurons) per thread for a call to take another thread: (the fused variants,
# the general kernel's: adaptive thresholds and resets, clif, glif, whose tanh and sigmoids per element
# and step are several times lif's arithmetic). On torch's OpenMP team (``omp_team``) the second
# thread is one that already spins on its core: lif fwd + bwd behind an elementwise op took on two
# threads 0.95 of its one-thread time at 262k elements, 0.69-0.90 from 524k to 2.1M, 1.03 at 4.2M
# (memory-bound); ar_lif 0.61-0.75 from 262k to 4.2M (this project's 2-core VM, idle; docs/cpu-path.md).
MIN_ELEMENTS_PER_THREAD = {"team": (1 << 18, 1 << 17),
                           # On the kernels' own pool the second thread shares its core with torch's
                           # spinning ones: lif behind a conv at 0.83x one thread's speed at 262k,
                           # 0.96x at 2.1M, 1.14x at 4.2M; ar_lif's --e2e step took 0.70-0.95 of its
                           # time with 2^19 against 2^21.
                           "own_pool": (1 << 21, 1 << 19)}


def general_kernel(flags: np.ndarray) -> bool:
    """Whether a variant runs the general kernel's stages (not a fixed threshold with a hard or soft
    reset: those have the fused one-loop step)."""
    return not (flags[1] == 0 and flags[0] in (0, 1))


def threads_for(chunks: int, elements: int, general: bool = False) -> int:
    """Threads a kernel call runs on: torch's thread count, at most one per two chunks and per
    ``MIN_ELEMENTS_PER_THREAD`` of the call's ``elements`` (for the threads ``run_chunks`` uses, a
    ``general`` kernel's variant or not)."""
    least = MIN_ELEMENTS_PER_THREAD["own_pool" if omp_team.team() is None else "team"][1 if general else 0]
    by_work = elements // least if least else chunks
    return max(1, min(torch.get_num_threads(), chunks // 2, by_work))


def _executor(workers: int) -> ThreadPoolExecutor:
    """The persistent pool of at least ``workers`` threads (made anew after a fork: a child has none)."""
    with _POOL_LOCK:
        pool, size, pid = _POOL
        if pool is None or size < workers or pid != os.getpid():
            if pool is not None and pid == os.getpid():
                pool.shutdown(wait=False)
            _POOL[:] = [ThreadPoolExecutor(workers, thread_name_prefix="lit_snn_cpu"), workers, os.getpid()]
        return _POOL[0]


def run_chunks(kernel, args_of, chunks: int, threads: int) -> None:
    """``kernel(*args_of(i), claim, block, 0, chunks)`` on ``threads`` threads, this one and torch's
    OpenMP team's (``omp_team``; the kernels' own pool where that is not found): they take blocks
    of contiguous chunks in turn from the shared counter ``claim``, four blocks per thread (the
    kernels release the GIL); ``args_of(i)`` (called here) gives thread i its own scratch. A
    chunk's results depend on that chunk alone: the same for any thread count."""
    claim = np.zeros(1, dtype=np.int64)
    if threads <= 1:
        kernel(*args_of(0), claim, chunks, 0, chunks)
        return
    block = -(-chunks // (4 * threads))
    shared = omp_team.team()
    if shared is not None:
        argsets = [args_of(i) for i in range(threads)]  # here: the scratch pool is not thread-safe
        shared.run(lambda i: kernel(*argsets[i], claim, block, 0, chunks), threads)
        return
    pool = _executor(threads - 1)
    futures = [pool.submit(kernel, *args_of(i), claim, block, 0, chunks) for i in range(1, threads)]
    try:
        kernel(*args_of(0), claim, block, 0, chunks)
    finally:
        wait(futures)  # the scratch stays taken until every thread is done
    for f in futures:
        f.result()


def fresh(shape, dtype: torch.dtype) -> Tensor:
    """An uninitialised output tensor (float32 or float64) in numpy's memory: numpy asks the kernel
    for huge pages on large blocks (``madvise``), where a fresh ``torch.empty`` faults its pages in
    4 KiB at a time on first touch (0.4 against 4 ms to fill 8 MiB on this project's VM)."""
    return torch.from_numpy(np.empty(shape, dtype=np.float64 if dtype == torch.float64 else np.float32))


def _layout(x: Tensor, params, bias: Tensor | None = None) -> tuple[int, int, int]:
    """(N, C, S): neurons per step, channels of the table (1 per layer), and the channel's stride
    in memory (neuron i of a step is in channel ``(i // S) % C``: S = H*W contiguous, 1 channels-last)."""
    N = x[0].numel()
    per_channel = any(p is not None and p.numel() > 1 for p in params) or (bias is not None and bias.numel() > 1)
    if not per_channel:
        return N, 1, 1
    B, C = x.shape[1], x.shape[2]
    return N, C, 1 if memory_order(x) == CHANNELS_LAST else N // (B * C)


def _table(params, C: int, dtype: torch.dtype) -> np.ndarray:
    """[9, C] parameter table in the compute dtype; parameters the variant does not read are 1."""
    table = np.ones((NUM_PARAMS, C), dtype=np.float64 if dtype == torch.float64 else np.float32)
    for k, p in enumerate(params):
        if p is not None:
            table[k] = p.detach().to(dtype).reshape(-1).numpy()  # broadcasts [1] over C
    return table


def chunk_size(largest: int, T: int, N: int) -> int:
    """Neurons per chunk of the backward: ``largest``, halved while its per-step scratch (about 12
    rows of T steps) would outgrow ~512 KiB of fp32 (long sequences), at least 128; at most N."""
    chunk = largest
    while chunk > 128 and 12 * T * chunk * 4 > 2**19:
        chunk //= 2
    return max(1, min(chunk, N))


def _flat(t: Tensor, dtype: torch.dtype, shape, order: tuple[int, ...]) -> Tensor:
    """``t`` in the compute dtype, its dims in x's memory ``order``, contiguous, viewed as
    ``shape`` (no copy where it already is)."""
    return t.detach().to(dtype).permute(order).contiguous().view(shape)


def _unflat(t: Tensor, like: Tensor | torch.Size, order: tuple[int, ...], steps: int | None = None) -> Tensor:
    """A kernel output ``t`` (memory ``order``) as a tensor of ``like``'s shape (a tensor's or a
    shape) and strides (with ``steps`` in its first dim: the steps of an x whose one step ``like`` is)."""
    like_shape = like.shape if isinstance(like, Tensor) else like
    shape = list(like_shape) if steps is None else [steps, *like_shape[1:]]
    return t.view([shape[d] for d in order]).permute([order.index(d) for d in range(len(order))])


def _gate_args(gain: Tensor | None, bias: Tensor | None, T: int, dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray]:
    """GLIF's gated input as the kernels take it: gain [T, Pg], bias [Pg] in the compute dtype (Pg
    = 1 or C, the bias broadcast to the gain's Pg or back); none: gain [0, 1], bias [1]."""
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    if gain is None:
        return np.zeros((0, 1), dtype=np_dtype), np.zeros(1, dtype=np_dtype)
    g = gain.detach().to(dtype).reshape(T, -1)
    b = bias.detach().to(dtype).reshape(-1)
    P = max(g.shape[1], b.numel())
    return g.expand(T, P).contiguous().numpy(), b.expand(P).contiguous().numpy()


def _steps_read(x: Tensor) -> Tensor:
    """What the kernels read of x [T, ...]: ``x[:1]`` where x repeats one step (a stride-0 expand over
    T: a static image's first layer, ``backbones``' direct encoding), so that step is neither copied T
    times nor saved T times (the kernels read row 0 at every step: ``scan_forward``); else x as a
    dense tensor in one of the two layouts (``dense_copy``)."""
    if x.shape[0] > 1 and x.stride(0) == 0:
        return dense_copy(x[:1])
    return dense_copy(x)


def long_kernels():
    """``numba_long``: the per-layer simple variants' kernels on long chunks (imports numba)."""
    global _long
    if _long is None:
        from . import numba_long

        _long = numba_long
    return _long


def long_path(flags: np.ndarray, C: int, gain: Tensor | None) -> bool:
    """Whether a call runs ``numba_long``'s forward: a fixed threshold, a hard or soft reset, no
    slope, no gated input, per-layer parameters (``C`` 1)."""
    return C == 1 and gain is None and flags[4] == 0 and not general_kernel(flags)


def _saves_charge(ctx, xs: Tensor, T: int, dtype: torch.dtype) -> bool:
    """Whether the forward keeps U [T, N] for the backward instead of x (``SAVE_CHARGE``): dL/dx is
    wanted and no parameter's gradient (the adjoint then reads U alone), x is dense over T (a
    static input keeps its one step: U would be T times its size) and in the compute dtype (so U
    takes x's bytes), and the fused backward is on."""
    needs = ctx.needs_input_grad
    return (SAVE_CHARGE and FUSED_BACKWARD and needs[0] and not any(needs[4:]) and xs.shape[0] == T
            and xs.dtype == dtype)


def _charge_backward(ctx, grad_s, grad_v):
    """``NumbaScan.backward`` from the saved U (``numba_long.saved_backward``): dL/dx only."""
    kl = long_kernels()
    charge, gain, bias, *params = ctx.saved_tensors  # charge: U [T, N] in the compute dtype
    N, C, S, order = ctx.layout
    step_order = tuple(d - 1 for d in order[1:])
    T = ctx.steps
    dtype = charge.dtype
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    flags, floats = variant_args(ctx.spec)
    u = charge.numpy()
    gs = u if grad_s is None else _flat(grad_s, dtype, (T, N), order).numpy()  # u: a stand-in never read
    gv = u[0] if grad_v is None else _flat(grad_v, dtype, (N,), step_order).numpy()
    grad_x = fresh((T, N), dtype)
    chunks = -(-N // kl.LONG_CHUNK)
    args = (u, ctx.table, flags, _float_args(floats, np_dtype), gs, grad_s is not None, gv, grad_v is not None,
            np.zeros(NUM_PARAMS, dtype=np.int64), grad_x.numpy())
    spare = np.zeros((NUM_PARAMS, 1), dtype=np_dtype)
    with scratch.scope():
        run_chunks(kl.saved_backward, lambda i: (*args, scratch.take((kl.LONG_CHUNK,), charge).numpy(),
                                                 scratch.take((kl.LONG_CHUNK,), charge).numpy(), spare),
                   chunks, threads_for(chunks, T * N))
    return (_unflat(grad_x, ctx.x_shape, order).to(ctx.x_dtype), None, None, None, *([None] * len(params)))


class NumbaScan(torch.autograd.Function):
    """Inputs: x, the spec, GLIF's gated input (gain [T, Pg] and bias [Pg], or None, None: see
    ``multistep_cpu``), then the nine parameters (or None)."""

    @staticmethod
    def forward(ctx, x: Tensor, spec: KernelSpec, gain: Tensor | None, bias: Tensor | None, *params):
        k = kernels()
        T = x.shape[0]
        xs = _steps_read(x)  # [T or 1, ...]: one step where every step is the same (a static input's expand)
        dtype = compute_dtype(x.dtype)
        N, C, S = _layout(xs, params, bias if gain is not None else None)
        if gain is not None and gain[0].numel() > 1 and C == 1:
            N, C, S = _layout(xs, (gain[0],))
        flags, floats = variant_args(spec)
        np_dtype = np.float64 if dtype == torch.float64 else np.float32
        order = memory_order(xs)
        xc = _flat(xs, dtype, (xs.shape[0], N), order)
        table = _table(params, C, dtype)
        gain_np, bias_np = _gate_args(gain, bias, T, dtype)
        has_m = spec.keeps_memory
        spikes = fresh((T, N), dtype)
        v = fresh(N, dtype)
        m = fresh(N, dtype) if has_m else v
        fa = _float_args(floats, np_dtype)
        if long_path(flags, C, gain):  # per-layer simple variants: long rows, and U saved where only U is needed
            kl = long_kernels()
            save = _saves_charge(ctx, xs, T, dtype)
            charge = fresh((T, N), dtype) if save else spikes  # not touched unless saved
            chunks = -(-N // kl.LONG_CHUNK)
            run_chunks(kl.long_forward, lambda i: (xc.numpy(), table, flags, fa, spikes.numpy(), charge.numpy(),
                                                   v.numpy(), save), chunks, threads_for(chunks, T * N))
            ctx.save_for_backward(charge if save else xs, gain, bias, *params)  # U replaces x: the same bytes
            ctx.saved_charge = save
        else:
            chunk = min(k.CHUNK, N)
            chunks = (N + chunk - 1) // chunk
            args = (xc.numpy(), table, C, S, flags, fa, spikes.numpy(), v.numpy(), m.numpy())
            with scratch.scope():  # temporaries from the CPU path's pool: their pages stay mapped between calls
                run_chunks(k.scan_forward, lambda i: (*args, scratch.take((k.WORK_ROWS, chunk), xc).numpy(), gain_np,
                                                      bias_np), chunks,
                           threads_for(chunks, T * N, general_kernel(flags)))
            ctx.save_for_backward(xs, gain, bias, *params)  # xs: x itself, or its one step (nothing copied)
            ctx.saved_charge = False
        ctx.spec, ctx.table, ctx.layout, ctx.gate = spec, table, (N, C, S, order), (gain_np, bias_np)
        ctx.steps, ctx.x_shape, ctx.x_dtype = T, xs.shape, x.dtype
        ctx.set_materialize_grads(False)
        step_order = tuple(d - 1 for d in order[1:])  # of a step [B, C, ...]
        m_out = _unflat(m, xs[0], step_order).to(x.dtype) if has_m else x.new_zeros(()).expand(x.shape[1:])
        return (_unflat(spikes, xs, order, T).to(x.dtype), _unflat(v, xs[0], step_order).to(x.dtype), m_out)

    @staticmethod
    def backward(ctx, grad_s, grad_v, grad_m):
        if ctx.saved_charge:
            return _charge_backward(ctx, grad_s, grad_v)
        k = kernels()
        x, gain, bias, *params = ctx.saved_tensors
        spec, table = ctx.spec, ctx.table
        gain_np, bias_np = ctx.gate
        N, C, S, order = ctx.layout
        step_order = tuple(d - 1 for d in order[1:])
        T = ctx.steps  # x: [T, ...], or the one step of a static input ([1, ...]: ``_steps_read``)
        dtype = compute_dtype(x.dtype)
        np_dtype = np.float64 if dtype == torch.float64 else np.float32
        flags, floats = variant_args(spec)
        xc = _flat(x, dtype, (x.shape[0], N), order)
        x_np = xc.numpy()
        # no dL/dS: a [T, N] of zeros the kernel never reads (calloc: no page is touched)
        gs = np.zeros((T, N), np_dtype) if grad_s is None else _flat(grad_s, dtype, (T, N), order).numpy()
        gv = x_np[0] if grad_v is None else _flat(grad_v, dtype, (N,), step_order).numpy()
        has_gm = grad_m is not None and spec.keeps_memory
        gm = _flat(grad_m, dtype, (N,), step_order).numpy() if has_gm else x_np[0]
        needs = ctx.needs_input_grad
        used = np.array([int(p is not None and needs[4 + i]) for i, p in enumerate(params)], dtype=np.int64)
        used_gate = np.array([int(gain is not None and needs[2]), int(bias is not None and needs[3])], dtype=np.int64)
        chunk = chunk_size(k.CHUNK, T, N)
        chunks = (N + chunk - 1) // chunk
        Pg = gain_np.shape[1]
        part_gain = np.zeros((chunks if used_gate[0] else 0, T, Pg), dtype=np.float64)
        part_bias = np.zeros((chunks if used_gate[1] else 0, Pg), dtype=np.float64)
        part = np.zeros((chunks, NUM_PARAMS, C), dtype=np.float64)
        grad_x = fresh((T, N), dtype)
        args = (x_np, table, C, S, flags, _float_args(floats, np_dtype), gs, grad_s is not None, gv, gm,
                grad_v is not None, has_gm, used, grad_x.numpy(), part)

        def args_of(i):  # thread i's arguments, with its own scratch
            scratches = [scratch.take(shape, xc).numpy()
                         for shape in ((2, T + 1, chunk), (k.TRAJ_ROWS, T, chunk), (k.WORK_ROWS, chunk))]
            return (*args, *scratches, gain_np, bias_np, used_gate, part_gain, part_bias,
                    np.empty(k.LANES, dtype=np.float64), FUSED_BACKWARD)

        with scratch.scope():  # temporaries from the CPU path's pool: their pages stay mapped between calls
            run_chunks(k.scan_backward, args_of, chunks, threads_for(chunks, T * N, general_kernel(flags)))
        grads = []
        if used.any():
            total = part.sum(axis=0)  # [9, C], one deterministic reduction
        for i, p in enumerate(params):
            if not used[i]:
                grads.append(None)
                continue
            g = torch.from_numpy(total[i])
            if p.numel() == 1:
                g = g.sum()
            grads.append(g.reshape(p.shape).to(p.dtype))
        gx = _unflat(grad_x, x, order, T).to(x.dtype) if needs[0] else None
        g_gain = g_bias = None
        if used_gate[0]:  # [T, Pg] summed back to the gain's own shape
            g = torch.from_numpy(part_gain.sum(axis=0))
            g_gain = (g if gain[0].numel() > 1 else g.sum(1, keepdim=True)).reshape(gain.shape).to(gain.dtype)
        if used_gate[1]:
            g = torch.from_numpy(part_bias.sum(axis=0))
            g_bias = (g if bias.numel() > 1 else g.sum()).reshape(bias.shape).to(bias.dtype)
        return (gx, None, g_gain, g_bias, *grads)
