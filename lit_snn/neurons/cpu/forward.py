"""The CPU path's forward recurrence: ``reference.multistep_reference``'s step loop, in place.

``run_scan`` serves both directions: the autograd Function's forward (``keep=False``: one or two
rotating rows per quantity, the spikes written straight into the output; ``record``: the states of
every step kept for the backward) and the backward's rebuild (``keep=True``: every step's charge,
threshold, spikes and memory terms as ``[T, ...]`` rows from the scratch pool, the arrays the
adjoint reads; from the recorded states, ``states``, or replaying the recurrence).

What makes it fast on a CPU, each measured on this project's 2-core machine (one thread,
262,144-element steps):

- every op writes into a row that is reused (``out=``), so the working set stays a few step-sized
  buffers hot in cache, and no memory is freshly mapped (``scratch``);
- parameters are 0-dim tensors (``params``) and every step's row is a view made once (``unbind``):
  dispatch, not arithmetic, bounds the small layers;
- comparisons write float masks: this torch build makes a bool tensor 4x slower than a float one,
  and ``where``/``masked_fill`` on it 30x;
- the terms that depend on ``x`` alone (``alpha X``, AR-LIF's threshold ``vth + k tanh(X)`` and its
  memory gates ``sigmoid(c X)``, ``sigmoid(X)``) are computed for a group of steps at once, the
  group as large as keeps it in cache (``group_steps``), which saves Python calls for small layers;
  AR-LIF's threshold is ``(vth - k) + 2 k sigmoid(2X)`` (``tanh x = 2 sigmoid(2x) - 1``; torch's
  CPU ``tanh`` is 4x slower than a sigmoid; absolute error 2e-7 in fp32, as the Triton kernel's
  exp-based one), and its memory update ``min(M', 0) + g |M'|`` (the spec's
  ``relu(M') g - relu(-M') (1 - g)`` in three ops);
- the integer presets skip ``U / th`` and ``S * th`` where the threshold is the constant 1, and the
  ``fired`` mask where the reset does not read it;
- fused ``add(alpha=)``/``addcmul`` compute ``a + b c`` with one rounding (fma): results differ
  from the reference's two roundings by an ulp, as the Triton kernel's do.

The spike functions ``fire_binary``/``fire_integer`` are module-level so that a gradient check can
swap them for smooth primitives (``tests/neurons/test_cpu_path.py``); nothing else assumes the
spikes are 0/1 or on the integer grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..reference import KernelSpec
from ..surrogate import quantize
from . import scratch
from .params import StepParams
from .rows import Rows, carve

GROUP_ELEMENTS = 2**18  # x-only terms are computed for this many elements at a time (1 MiB in fp32)


def group_steps(T: int, n: int) -> int:
    """Steps per group of x-only terms for ``T`` steps of ``n`` neurons."""
    return max(1, min(T, GROUP_ELEMENTS // max(n, 1)))


def fire_binary(u: Tensor, th: Tensor, out: Tensor) -> Tensor:
    """``S = H(u - th)`` as a float mask written into ``out`` (``u >= th`` is ``u - th >= 0`` in IEEE)."""
    return torch.ge(u, th, out=out)


def fire_integer(z: Tensor, int_max: float, int_scale: float, out: Tensor) -> Tensor:
    """``S = round(clamp(N z, 0, N D)) / N`` written into ``out`` (``surrogate.quantize``)."""
    return quantize(z, int_max, int_scale, out=out)


def axpy(out: Tensor, base: Tensor, value: Tensor, coef: Tensor | float) -> Tensor:
    """``out = base + coef * value`` in one fused op (``coef`` a float or a broadcasting tensor)."""
    if isinstance(coef, float):
        return torch.add(base, value, alpha=coef, out=out)
    return torch.addcmul(base, value, coef, out=out)


class XTerms:
    """The terms of ``x`` alone, filled a group of steps at a time into ``[T, ...]`` arrays (``keep``)
    or group-sized ones (``arrays``: name -> array or absent, from ``xterm_sizes``)."""

    def __init__(self, x: Tensor, prm: StepParams, arrays: dict, keep: bool) -> None:
        self.x, self.prm, self.keep = x, prm, keep
        self.x_rows = x.unbind(0)
        get = arrays.get
        self.ax = get("ax")  # alpha X (None: X itself)
        self.s2x, self.th = get("s2x"), get("th")  # sigmoid(2X) (tanh X = 2 sigmoid(2X) - 1), vth + k tanh(X)
        self.gate, self.sx = get("gate"), get("sx")  # sigmoid(c X), sigmoid(X)
        self.base = 0

    def fill(self, t0: int, t1: int) -> None:
        """Compute the terms of steps ``t0 .. t1 - 1``."""
        self.base = 0 if self.keep else t0
        x, prm, sl = self.x[t0:t1], self.prm, slice(t0 - self.base, t1 - self.base)
        if self.ax is not None:
            torch.mul(x, prm["alpha"], out=self.ax[sl])
        if self.s2x is not None:  # th = (vth - k) + 2 k sigmoid(2X)
            s2x = torch.mul(x, 2.0, out=self.s2x[sl]).sigmoid_()
            torch.addcmul(prm["vth"] - prm["thr_coef"], s2x, 2.0 * prm["thr_coef"], out=self.th[sl])
        if self.gate is not None:
            torch.mul(x, prm["mem_gain"], out=self.gate[sl]).sigmoid_()
            torch.sigmoid(x, out=self.sx[sl])

    def row(self, name: str, t: int) -> Tensor:
        array = getattr(self, name)
        return self.x_rows[t] if array is None and name == "ax" else array[t - self.base]


def xterm_sizes(prm: StepParams, spec: KernelSpec, rows: int) -> dict:
    """Rows of each x-only array a variant needs."""
    names = ([] if prm.fixed_at("alpha", 1.0) else ["ax"]) + (["s2x", "th"] if spec.adaptive_threshold else []) + (
        ["gate", "sx"] if spec.reset == "adaptive" else [])
    return dict.fromkeys(names, rows)


@dataclass
class Trajectory:
    """One run of the recurrence. With ``keep`` every array is ``[T, ...]`` (``v``, ``m``:
    ``[T + 1, ...]``, row t the state entering step t, row 0 the initial state); without it only
    ``spikes`` and the final states are meaningful."""

    spikes: Tensor  # S_t
    v_final: Tensor  # V_T
    m_final: Tensor | None  # M_T (None without a second state)
    v: Rows
    m: Rows | None
    u: Rows  # U_t (after KLIF's relu)
    pre: Rows | None  # KLIF: P_t = beta V_{t-1} + alpha X_t, before relu(k P_t)
    th: Rows | None  # ALIF's threshold per step (AR-LIF's is xterms.th; else the parameter)
    fired: Rows | Tensor  # F_t: the spikes (binary), or [S_t > 0] (integer, where the reset reads it)
    z: Rows | None  # integer: U_t / th_t (None where th is the constant 1, so z = U)
    sm: Rows | None  # sigmoid(M_t): adaptive, complementary
    q: Rows | None  # complementary: sigmoid(c U_t)
    xterms: XTerms


def unit_threshold(spec: KernelSpec, prm: StepParams) -> bool:
    """Integer spikes against the constant threshold 1 (every integer preset): z = U, S th = S."""
    return (spec.integer and not spec.adaptive_threshold and not spec.spike_adaptive_threshold
            and prm.fixed_at("vth", 1.0))


def threshold_at(traj: Trajectory, prm: StepParams, spec: KernelSpec, t: int) -> Tensor:
    """th_t: AR-LIF's per step, ALIF's per step, else the parameter."""
    if spec.adaptive_threshold:
        return traj.xterms.row("th", t)
    if spec.spike_adaptive_threshold:
        return traj.th[t]
    return prm["vth"]


def run_scan(x: Tensor, prm: StepParams, spec: KernelSpec, keep: bool, spikes: Tensor | None = None,
             record: bool = False, states: tuple | None = None) -> Trajectory:
    """The recurrence over ``x`` ``[T, B, C, *S]`` (or ``[T, N]``) from zero states, without autograd.

    ``spikes``: where to write the spikes (default a new tensor; with ``keep``, from the pool).
    ``record``: keep the states ``V`` (and ``M``) of every step in new ``[T + 1, ...]`` tensors
    (``Trajectory.v.all``, ``.m.all``) that may outlive the call. ``states``: such ``(V, M or None)``
    from an earlier run: the states are read, not recomputed (only what a step derives from them)."""
    T, step = x.shape[0], x[0]
    reset = spec.reset
    has_m = spec.keeps_memory
    carry = has_m and (spec.memory_carry or reset != "adaptive")
    unit = unit_threshold(spec, prm)
    needs_fired = spec.integer and reset in ("hard", "adaptive")

    group = group_steps(T, step.numel())
    n_all, n_step = (T, T) if keep else (2, 1)  # rows of a state (+1 when kept) and of a per-step quantity
    own_states = states is None and not record  # the states' rows come from the pool
    sizes = {"v": (n_all + keep) * own_states, "m": (n_all + keep) * (has_m and own_states), "u": n_step,
             "pre": n_step if spec.slope else 0, "th": n_step if spec.spike_adaptive_threshold else 0,
             "z": n_step if spec.integer and not unit else 0, "fired": n_step if needs_fired else 0,
             "sm": n_step if reset in ("adaptive", "complementary") else 0,
             "q": n_step if reset == "complementary" else 0, "scratch": 2,
             "spikes": T if keep and spikes is None else 0}
    sizes = {k: n for k, n in sizes.items() if n}
    xsizes = xterm_sizes(prm, spec, T if keep else group)
    arrays = carve(scratch.take((sum(sizes.values()) + sum(xsizes.values()), *step.shape), step), {**sizes, **xsizes})
    xt = XTerms(x, prm, arrays, keep)
    if spikes is None:
        spikes = arrays["spikes"] if keep else torch.empty_like(x)
    s_rows = spikes.unbind(0)
    rows = {k: Rows(arrays[k]) for k in sizes if k not in ("spikes", "scratch") and k not in xsizes}
    if record:
        rows["v"] = Rows(torch.empty((T + 1, *step.shape), dtype=x.dtype, device=x.device))
        if has_m:
            rows["m"] = Rows(torch.empty((T + 1, *step.shape), dtype=x.dtype, device=x.device))
    elif states is not None:
        rows["v"] = Rows(states[0])
        if has_m:
            rows["m"] = Rows(states[1])
    v, m, u = rows["v"], rows.get("m"), rows["u"]
    if states is None:
        v[0].zero_()
        if m is not None:
            m[0].zero_()
    pre, th_rows, z, sm, q = (rows.get(k) for k in ("pre", "th", "z", "sm", "q"))
    fired = rows["fired"] if needs_fired else spikes
    a, b = arrays["scratch"].unbind(0)  # per-step scratch
    gated_offset = one_minus_rho = None
    if reset == "gated":  # (1 - r) v_sub, the constant part of GLIF's reset
        gated_offset = (1.0 - prm["reset_gate"]) * prm["reset_value"]
    if spec.spike_adaptive_threshold:
        one_minus_rho = 1.0 - prm["adapt_decay"]
    traj = Trajectory(spikes=spikes, v_final=v[T], m_final=None, v=v, m=m, u=u, pre=pre, th=th_rows,
                      fired=fired, z=z, sm=sm, q=q, xterms=xt)

    for t in range(T):
        if t % group == 0:
            xt.fill(t, min(t + group, T))
        v_prev, v_next = v[t], v[t + 1]
        # ---- charge: P = beta V + alpha X;  KLIF: U = relu(k P)
        p_t = pre[t] if pre is not None else u[t]
        axpy(p_t, xt.row("ax", t), v_prev, prm["beta"])
        u_t = u[t]
        if pre is not None:
            torch.mul(p_t, prm["slope"], out=u_t).clamp_min_(0.0)
        # ---- threshold
        if spec.spike_adaptive_threshold:  # ALIF: vth + gamma a_t
            torch.mul(m[t], prm["thr_coef"], out=th_rows[t]).add_(prm["vth"])
        th_t = threshold_at(traj, prm, spec, t)
        # ---- fire
        s_t = s_rows[t]
        if spec.integer:
            z_t = u_t if unit else torch.div(u_t, th_t, out=z[t])
            fire_integer(z_t, spec.int_max, spec.int_scale, out=s_t)
            f_t = torch.gt(s_t, 0.0, out=fired[t]) if needs_fired else s_t
        else:
            f_t = fire_binary(u_t, th_t, out=s_t)
        # ---- reset (and the second state)
        if states is not None:  # known: only what the adjoint reads of the memory
            if reset == "complementary":
                torch.mul(u_t, prm["mem_gain"], out=q[t]).sigmoid_()
            if reset in ("adaptive", "complementary"):
                torch.sigmoid(m[t + 1], out=sm[t])
        elif reset == "hard":  # V = U (1 - F)
            torch.addcmul(u_t, u_t, f_t, value=-1.0, out=v_next)
        elif reset == "soft":  # V = U - S th
            if unit:
                torch.sub(u_t, s_t, out=v_next)
            else:
                torch.addcmul(u_t, s_t, th_t, value=-1.0, out=v_next)
        elif reset == "adaptive":  # AR-LIF: M = relu(M') g - relu(-M') (1 - g) + (2F - 1) sigmoid(X)
            m_next, sx = m[t + 1], xt.row("sx", t)
            if carry:  # relu(M') g - relu(-M') (1 - g) = min(M', 0) + g |M'|
                mp = m[t]
                torch.addcmul(torch.clamp_max(mp, 0.0, out=a), xt.row("gate", t), torch.abs(mp, out=b), out=m_next)
                m_next.sub_(sx)
            else:
                torch.neg(sx, out=m_next)
            m_next.addcmul_(f_t, sx, value=2.0)  # + (2F - 1) sigmoid(X)
            _reset_through_memory(u_t, s_t, th_t, m_next, sm[t], a, v_next)
        elif reset == "complementary":  # CLIF: M = M' sigmoid(c U) + S
            m_next = m[t + 1]
            q_t = torch.mul(u_t, prm["mem_gain"], out=q[t]).sigmoid_()
            torch.addcmul(s_t, m[t], q_t, out=m_next)
            _reset_through_memory(u_t, s_t, th_t, m_next, sm[t], a, v_next)
        elif reset == "gated":  # GLIF: V = U - S (r U + (1 - r) v_sub)
            torch.mul(u_t, prm["reset_gate"], out=a).add_(gated_offset)
            torch.addcmul(u_t, s_t, a, value=-1.0, out=v_next)
        else:  # none
            v_next.copy_(u_t)
        if spec.spike_adaptive_threshold and states is None:  # ALIF trace a_{t+1} = rho a_t + (1 - rho) S_t
            m_next = m[t + 1]
            torch.mul(m[t], prm["adapt_decay"], out=m_next)
            m_next.addcmul_(s_t, one_minus_rho)
    traj.v_final = v[T]
    traj.m_final = m[T] if m is not None else None
    return traj


def _reset_through_memory(u_t, s_t, th_t, m_next, sm_t, scratch_row, v_next) -> None:
    """AR-LIF and CLIF: ``V = U - S (th + sigmoid(M))`` with the memory just updated."""
    torch.sigmoid(m_next, out=sm_t)
    torch.add(sm_t, th_t, out=scratch_row)
    torch.addcmul(u_t, s_t, scratch_row, value=-1.0, out=v_next)
