"""Fused Triton kernels of the PSN (Parallel Spiking Neuron): same math as ``parallel.parallel_reference``.

    H = W X  ([T, T] @ [T, N]),   S = Theta(H - B),   h_last = H_{T-1}

One launch per direction. The input is viewed as ``[T, N]`` (time-major, contiguous). ``T`` is padded
to a power of two ``TP`` (a constexpr, so one compilation per TP, not per T); padded rows of ``W``,
``B`` and ``x`` are loaded as 0 and never stored. The time mixing is an fp32 ``tl.dot`` with IEEE
precision (no TF32) when ``TP >= 16``; for ``TP <= 8`` (below ``tl.dot``'s minimum) a broadcast
product summed over the time axis, ``TP^2`` FMAs per neuron either way.

Forward: a program owns ``BLOCK`` neurons. It loads ``W`` ``[TP, TP]``, ``B`` ``[TP]`` and the
``[TP, BLOCK]`` tile of ``x`` (each x read once), computes ``H`` in registers, and writes each
spike once plus ``h_last`` ``[BLOCK]``.

Backward: kept between forward and backward is nothing but ``x`` (the layer's input, alive anyway)
and the ``[T, T]``/``[T]`` parameters; no spikes and no ``H``. A program owns a contiguous range of
``span`` neurons (a multiple of every backward ``BLOCK``, chosen on the host from ``N`` and the
number of SMs, so the program count does not depend on the autotuned config) and walks it in
``[TP, BLOCK]`` tiles: reads x and dL/dS once, dL/dh_last once, recomputes ``H = W X``, forms
``G_D = G_S sg(H - B)`` and ``G_H = G_D`` (+ dL/dh_last on row T-1), writes ``dL/dX = W^T G_H`` once,
and accumulates ``G_H X^T`` ``[TP, TP]`` and ``-sum_n G_D`` ``[TP]`` in registers (h_last is taken
before the threshold, so its gradient does not reach B). Each program stores its
``[T, T]`` and ``[T]`` partial sums once; one ``torch.sum`` on the host reduces them (deterministic:
no float atomics).

Numerics: fp32 in registers whatever the storage dtype (fp32, bf16, fp16); outputs are stored in
x's dtype; the parameter gradients are returned in the parameters' dtypes. On CPU the kernels run
only in Triton's interpreter (``TRITON_INTERPRET=1`` set before this module is imported).
"""

from __future__ import annotations

import contextlib
import functools

import torch
import triton
import triton.language as tl
from torch import Tensor

from ...errors import ConfigError
from ..surrogate import SURROGATE_IDS
from .multistep import _surrogate_grad, check_device

INTERPRET = bool(triton.knobs.runtime.interpret)  # decided when the kernels below are decorated
MAX_T = 64  # longest sequence: W, a [TP, TP] fp32 tile, lives in registers next to the [TP, BLOCK] tiles


# ---------------------------------------------------------------------------------------------
# helpers (inlined into both kernels)
# ---------------------------------------------------------------------------------------------
@triton.jit
def _mix(a, b, TP: tl.constexpr):
    """``a [TP, TP] @ b [TP, K]`` in fp32: mixes the time rows of ``b``."""
    if TP >= 16:
        out = tl.dot(a, b, input_precision="ieee")
    else:  # below tl.dot's minimum size: [TP, TP, K] products summed over the middle axis
        out = tl.sum(a[:, :, None] * b[None, :, :], axis=1)
    return out


@triton.jit
def _outer_sum(g, x, TP: tl.constexpr):
    """``g [TP, K] @ x[TP, K]^T -> [TP, TP]``: outer products of the time rows summed over K neurons."""
    if TP >= 16:
        out = tl.dot(g, tl.trans(x), input_precision="ieee")
    else:
        out = tl.sum(g[:, None, :] * x[None, :, :], axis=2)
    return out


# ---------------------------------------------------------------------------------------------
# forward kernel
# ---------------------------------------------------------------------------------------------
@triton.jit(do_not_specialize=["T"])
def _forward_kernel(
    x_ptr, s_ptr,  # [T, N]
    h_ptr,  # out h_last = H_{T-1}: [N]
    w_ptr, th_ptr,  # W [T, T] (row-major), B [T]
    T, N,
    TP: tl.constexpr,  # T padded to a power of two
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    t = tl.arange(0, TP)  # [TP] time rows
    t_mask = t < T
    offs = pid * BLOCK + tl.arange(0, BLOCK)  # [BLOCK] neurons (N < 2^30, checked on the host)
    n_mask = offs < N
    tile = t.to(tl.int64)[:, None] * N + offs[None, :]  # [TP, BLOCK] element offsets (T N may exceed 2^31)
    tile_mask = t_mask[:, None] & n_mask[None, :]
    w = tl.load(w_ptr + t[:, None] * T + t[None, :], mask=t_mask[:, None] & t_mask[None, :],
                other=0.0).to(tl.float32)  # [TP, TP]
    th = tl.load(th_ptr + t, mask=t_mask, other=0.0).to(tl.float32)  # [TP]
    x = tl.load(x_ptr + tile, mask=tile_mask, other=0.0).to(tl.float32)  # [TP, BLOCK]
    h = _mix(w, x, TP)  # [TP, BLOCK] H = W X
    s = (h - th[:, None] >= 0).to(tl.float32)
    tl.store(s_ptr + tile, s.to(s_ptr.dtype.element_ty), mask=tile_mask)
    h_last = tl.sum(tl.where(t[:, None] == T - 1, h, 0.0), axis=0)  # [BLOCK] row T-1 (exact: adds zeros)
    tl.store(h_ptr + offs, h_last.to(h_ptr.dtype.element_ty), mask=n_mask)


# ---------------------------------------------------------------------------------------------
# backward kernel
# ---------------------------------------------------------------------------------------------
@triton.jit(do_not_specialize=["T"])
def _backward_kernel(
    x_ptr, gs_ptr,  # x, dL/dS: [T, N] (gs read only with HAS_GS)
    gh_ptr,  # dL/dh_last: [N] (read only with HAS_GH)
    gx_ptr,  # out dL/dX: [T, N] (written only with NEED_GX)
    pw_ptr, pb_ptr,  # out fp32 partial sums per program: dL/dW [G, T, T], dL/dB [G, T] (with NEED_GP)
    w_ptr, th_ptr,  # W [T, T], B [T]
    T, N, span,  # steps, neurons per step, neurons per program (a multiple of BLOCK)
    surrogate_param,
    SURROGATE: tl.constexpr,  # 0 rectangle, 1 triangle, 2 sigmoid, 3 atan
    HAS_GS: tl.constexpr, HAS_GH: tl.constexpr, NEED_GX: tl.constexpr, NEED_GP: tl.constexpr,
    TP: tl.constexpr, BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    t = tl.arange(0, TP)
    t_mask = t < T
    w_mask = t_mask[:, None] & t_mask[None, :]
    w = tl.load(w_ptr + t[:, None] * T + t[None, :], mask=w_mask, other=0.0).to(tl.float32)  # W
    wt = tl.load(w_ptr + t[None, :] * T + t[:, None], mask=w_mask, other=0.0).to(tl.float32)  # W^T
    th = tl.load(th_ptr + t, mask=t_mask, other=0.0).to(tl.float32)
    last = t[:, None] == T - 1  # [TP, 1] the row that h_last reports
    acc_w = tl.zeros([TP, TP], dtype=tl.float32)  # sum_n G_H X^T over this program's neurons
    acc_b = tl.zeros([TP], dtype=tl.float32)  # -sum_n G_D
    lo = pid * span
    hi = tl.minimum(lo + span, N)
    for start in range(lo, hi, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        n_mask = offs < N
        tile = t.to(tl.int64)[:, None] * N + offs[None, :]
        tile_mask = t_mask[:, None] & n_mask[None, :]
        x = tl.load(x_ptr + tile, mask=tile_mask, other=0.0).to(tl.float32)  # [TP, BLOCK]
        gd = tl.zeros([TP, BLOCK], dtype=tl.float32)  # dL/d(H - B): the spikes' path alone
        if HAS_GS:
            h = _mix(w, x, TP)  # recomputed H
            gs = tl.load(gs_ptr + tile, mask=tile_mask, other=0.0).to(tl.float32)  # 0 on padded lanes
            gd = gs * _surrogate_grad(h - th[:, None], SURROGATE, surrogate_param)
        gh = gd  # G_H = dL/dH: the spikes' path plus h_last's (which does not see B)
        if HAS_GH:
            g_last = tl.load(gh_ptr + offs, mask=n_mask, other=0.0).to(tl.float32)  # [BLOCK]
            gh += tl.where(last, g_last[None, :], 0.0)
        if NEED_GX:
            gx = _mix(wt, gh, TP)  # W^T G_H
            tl.store(gx_ptr + tile, gx.to(gx_ptr.dtype.element_ty), mask=tile_mask)
        if NEED_GP:
            acc_w += _outer_sum(gh, x, TP)
            acc_b -= tl.sum(gd, axis=1)
    if NEED_GP:  # every program writes its partials (also an empty range's zeros): nothing to pre-zero
        tl.store(pw_ptr + pid * T * T + t[:, None] * T + t[None, :], acc_w, mask=w_mask)
        tl.store(pb_ptr + pid * T + t, acc_b, mask=t_mask)


# ---------------------------------------------------------------------------------------------
# launchers
# ---------------------------------------------------------------------------------------------
# autotune candidates (BLOCK, num_warps), num_stages=1, pruned per TP by the fp32 values each thread
# holds per [TP, BLOCK] tile (TP^2 BLOCK for the broadcast product of TP <= 8); the backward keeps
# about three such tiles live (x, dL/dS, G_H) against the forward's two, hence the tighter budget.
FWD_CONFIGS = ((64, 2), (128, 4), (256, 4), (256, 8), (512, 8), (1024, 8))
BWD_CONFIGS = ((32, 2), (64, 2), (64, 4), (128, 4), (128, 8), (256, 8), (512, 8))
FWD_BUDGET, BWD_BUDGET = 64, 32  # values per thread per tile
SPAN_MULTIPLE = 512  # a backward program's neuron range is a multiple of every backward BLOCK
PROGRAMS_PER_SM = 4  # backward programs per SM (a program walks its range in tiles)
INTERPRET_BLOCK = 512  # the interpreter's one fixed configuration
INTERPRET_PROGRAMS = 64
_FWD_KEYS = ["N", "TP"]
_BWD_KEYS = ["N", "TP", "SURROGATE", "HAS_GS", "HAS_GH", "NEED_GX", "NEED_GP"]


def _tile_values(tp: int, block: int) -> int:
    return tp * block if tp >= 16 else tp * tp * block


def _pruner(budget: int):
    def prune(configs, named_args, **kwargs):
        tp = kwargs.get("TP", named_args.get("TP"))
        fits = [c for c in configs if _tile_values(tp, c.kwargs["BLOCK"]) <= budget * 32 * c.num_warps]
        return fits or [min(configs, key=lambda c: c.kwargs["BLOCK"] / c.num_warps)]
    return prune


if INTERPRET:  # one fixed configuration: autotuning would benchmark in the (slow) interpreter
    _fwd_runner = _forward_kernel
    _bwd_runner = _backward_kernel
    _FIXED = {"BLOCK": INTERPRET_BLOCK}
else:
    _fwd_runner = triton.autotune(
        configs=[triton.Config({"BLOCK": b}, num_warps=w, num_stages=1) for b, w in FWD_CONFIGS],
        key=_FWD_KEYS, prune_configs_by={"early_config_prune": _pruner(FWD_BUDGET)},
    )(_forward_kernel)
    _bwd_runner = triton.autotune(
        configs=[triton.Config({"BLOCK": b}, num_warps=w, num_stages=1) for b, w in BWD_CONFIGS],
        key=_BWD_KEYS, prune_configs_by={"early_config_prune": _pruner(BWD_BUDGET)},
    )(_backward_kernel)
    _FIXED = {}


def _on_device(x: Tensor):
    """Launch on x's GPU (Triton uses the current device), a no-op on the CPU interpreter."""
    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()


@functools.lru_cache(maxsize=None)
def _max_programs(device: torch.device) -> int:
    if device.type != "cuda":
        return INTERPRET_PROGRAMS
    return PROGRAMS_PER_SM * torch.cuda.get_device_properties(device).multi_processor_count


def _padded_steps(T: int) -> int:
    return max(2, triton.next_power_of_2(T))


def _backward_grid(N: int, device: torch.device) -> tuple[int, int]:
    """(programs, neurons per program): a function of N and the device only, not of the config."""
    per = triton.cdiv(max(N, 1), _max_programs(device))
    span = triton.cdiv(per, SPAN_MULTIPLE) * SPAN_MULTIPLE
    return triton.cdiv(N, span), span


def forward_launch(x: Tensor, weight: Tensor, threshold: Tensor) -> tuple[Tensor, Tensor]:
    """x: [T, N] contiguous -> (spikes [T, N], h_last [N]) in x's dtype."""
    T, N = x.shape
    spikes = torch.empty_like(x)
    h_last = torch.empty(N, device=x.device, dtype=x.dtype)
    if N == 0:
        return spikes, h_last
    grid = lambda meta: (triton.cdiv(N, meta["BLOCK"]),)
    with _on_device(x):
        _fwd_runner[grid](x, spikes, h_last, weight, threshold, T, N, TP=_padded_steps(T), **_FIXED)
    return spikes, h_last


def backward_launch(x: Tensor, weight: Tensor, threshold: Tensor, grad_s: Tensor | None, grad_h: Tensor | None,
                    surrogate: int, surrogate_param: float, need_gx: bool, need_gp: bool):
    """Adjoint of ``forward_launch``: (dL/dx [T, N] in x's dtype or None, dL/dW [T, T] fp32, dL/dB [T] fp32)."""
    T, N = x.shape
    grad_x = torch.empty_like(x) if need_gx else None
    programs, span = _backward_grid(N, x.device)
    pw = torch.empty(programs if need_gp else 0, T, T, device=x.device, dtype=torch.float32)
    pb = torch.empty(programs if need_gp else 0, T, device=x.device, dtype=torch.float32)
    if N > 0 and (need_gx or need_gp):
        with _on_device(x):
            _bwd_runner[(programs,)](
                x, x if grad_s is None else grad_s, x if grad_h is None else grad_h,  # x: never read
                x if grad_x is None else grad_x, pw, pb, weight, threshold, T, N, span, float(surrogate_param),
                SURROGATE=surrogate, HAS_GS=grad_s is not None, HAS_GH=grad_h is not None,
                NEED_GX=need_gx, NEED_GP=need_gp, TP=_padded_steps(T), **_FIXED,
            )
    return grad_x, pw.sum(dim=0), pb.sum(dim=0)  # one deterministic reduction of the partials


# ---------------------------------------------------------------------------------------------
# autograd wiring
# ---------------------------------------------------------------------------------------------
class _ParallelFunction(torch.autograd.Function):
    """Forward and backward kernels; saves only x, W and B."""

    @staticmethod
    def forward(ctx, x, weight, threshold, surrogate: int, surrogate_param: float):
        spikes, h_last = forward_launch(x, weight, threshold)
        ctx.save_for_backward(x, weight, threshold)
        ctx.surrogate, ctx.surrogate_param = surrogate, surrogate_param
        ctx.set_materialize_grads(False)  # an unused output's gradient arrives as None: nothing to read
        return spikes, h_last

    @staticmethod
    def backward(ctx, grad_s, grad_h):
        x, weight, threshold = ctx.saved_tensors
        need_gx, need_w, need_b = ctx.needs_input_grad[:3]
        if grad_s is None and grad_h is None:
            return None, None, None, None, None
        grad_x, grad_w, grad_b = backward_launch(
            x, weight, threshold, None if grad_s is None else grad_s.contiguous(),
            None if grad_h is None else grad_h.contiguous(), ctx.surrogate, ctx.surrogate_param,
            need_gx, need_w or need_b,
        )
        return (grad_x, grad_w.to(weight.dtype) if need_w else None,
                grad_b.to(threshold.dtype) if need_b else None, None, None)


# ---------------------------------------------------------------------------------------------
# public function
# ---------------------------------------------------------------------------------------------
def parallel_triton(
    x: Tensor,  # [T, ...] time-first, float32 / bfloat16 / float16
    weight: Tensor,  # [T, T]  W: H_t = sum_s W[t, s] X_s
    threshold: Tensor,  # [T]  B: S_t = Theta(H_t - B_t)
    surrogate: str = "atan",
    surrogate_param: float = 2.0,
) -> tuple[Tensor, Tensor]:
    """Fused Triton version of ``parallel_reference``: same signature, same math, same outputs.

    Returns ``(spikes [T, ...], h_last [...])`` in ``x``'s dtype (the math runs in fp32 registers),
    ``h_last = H_{T-1}`` before the threshold. Differentiable w.r.t. ``x``, ``weight`` and
    ``threshold`` through both outputs. ``1 <= T <= 64``.

    Raises ``RuntimeError`` when Triton cannot run on ``x``'s device (CPU without
    ``TRITON_INTERPRET=1``), ``ValueError``/``TypeError`` for malformed inputs.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"parallel_triton: x must be a tensor, got {type(x).__name__}")
    check_device(x, "parallel_triton", "lit_snn.neurons.parallel.parallel_reference")
    if x.dim() < 2:
        raise ConfigError(f"parallel_triton: expected x of shape [T, ...] with >= 2 dims, got {tuple(x.shape)}")
    if x.dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise TypeError(
            f"parallel_triton: x must be float32, bfloat16 or float16, got {x.dtype} (use parallel_reference)"
        )
    T = x.shape[0]
    if T < 1:
        raise ConfigError(f"parallel_triton: need at least one time step, got shape {tuple(x.shape)}")
    if T > MAX_T:
        raise ConfigError(f"parallel_triton: T = {T} time steps; the kernel handles at most {MAX_T} "
                         "(use parallel_reference)")
    if surrogate not in SURROGATE_IDS:
        raise ConfigError(f"parallel_triton: unknown surrogate {surrogate!r}; valid: {', '.join(SURROGATE_IDS)}")
    for name, p, shape in (("weight", weight, (T, T)), ("threshold", threshold, (T,))):
        if not isinstance(p, Tensor) or not p.is_floating_point():
            raise TypeError(f"parallel_triton: {name} must be a floating-point tensor of shape {list(shape)}")
        if tuple(p.shape) != shape:
            raise ConfigError(f"parallel_triton: {name} must have shape {list(shape)} for T = {T}, "
                             f"got {list(p.shape)}")
        if p.device != x.device:
            raise ConfigError(f"parallel_triton: {name} is on {p.device}, x on {x.device}")
    N = x[0].numel()
    if N >= 2**30:  # in-kernel neuron indices are int32 (program ranges may overshoot N by a span)
        raise ConfigError(f"parallel_triton: too many neurons per step ({N}); split the batch")
    spikes, h_last = _ParallelFunction.apply(
        x.contiguous().view(T, N), weight.contiguous(), threshold.contiguous(),
        SURROGATE_IDS[surrogate], float(surrogate_param),
    )
    return spikes.view(x.shape), h_last.view(x.shape[1:])
