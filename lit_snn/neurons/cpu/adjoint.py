"""The CPU path's backward: the adjoint of ``forward.run_scan``, last step first.

``scan_adjoint`` reads the trajectory the backward's ``run_scan`` rebuilt (``keep``: every step's
charge, threshold, spikes and memory terms, from the recorded states or a replay) and runs the
Triton kernel's ``_backward_step`` (``kernels/multistep.py``) term for term, one step at a time, on
a handful of step-sized rows that every step reuses (hot in cache). Each gradient of a step is a
``rows.Grad`` that starts as zero or as an alias of another row and is built by fused in-place
ops, so a term costs one pass over memory and a copy costs none. Parameter gradients accumulate
per element over time in one row per parameter and are reduced once at the end.

Names follow the kernel: ``av``/``am`` = dL/dV_t, dL/dM_t flowing in from the future; ``g_u``,
``g_s``, ``g_x`` = the gradients into U, S (the output's share and the state's) and X; ``ng_th``
= -dL/dth (negated, so that every term the chain adds to it is one fused op); ``g_m`` = dL/dM_t
in total.

Nothing here assumes the spikes are 0/1 (the gradient check swaps in smooth ones).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..reference import PARAM_NAMES, KernelSpec
from ..surrogate import surrogate_grad_parts
from . import scratch
from .forward import Trajectory, threshold_at, unit_threshold
from .params import StepParams, reduce_to_param
from .rows import Coef, Grad


def scan_adjoint(x: Tensor, traj: Trajectory, prm: StepParams, spec: KernelSpec, grad_s: Tensor | None,
                 grad_v: Tensor | None, grad_m: Tensor | None, needs: dict, params: dict):
    """``(dL/dX [T, ...], {name: gradient [P]})`` from the output gradients (None: zero).

    ``needs``: name -> whether that parameter's gradient is wanted; ``params``: the ``[P]`` tensors."""
    T, step = x.shape[0], x[0]
    reset = spec.reset
    has_m = traj.m is not None
    carry = has_m and (spec.memory_carry or reset != "adaptive")
    unit = unit_threshold(spec, prm)
    state_s = not spec.detach_reset  # the state's share of dL/dS flows (detach_reset: it does not)
    track_th = needs["vth"] or spec.adaptive_threshold or spec.spike_adaptive_threshold
    xt = traj.xterms  # kept [T, ...] arrays, filled by the replay
    x_extra = reset == "adaptive" or spec.adaptive_threshold  # dL/dX has terms besides alpha dL/dP
    direct = prm.fixed_at("alpha", 1.0) and not x_extra and not spec.slope  # dL/dX_t = dL/dP_t: build it in place

    grad_x = torch.empty_like(x)
    x_rows, gx_rows, s_rows = x.unbind(0), grad_x.unbind(0), traj.spikes.unbind(0)
    gs_rows = grad_s.unbind(0) if grad_s is not None else None
    wanted = [name for name in PARAM_NAMES if needs[name]]
    rows = scratch.take((12 + len(wanted), *step.shape), step).unbind(0)  # every row this backward uses
    av, av_next, am, am_next, g_m, t1, t2, t3 = rows[:8]
    # g_th is kept negated (ng = -dL/dth): every term the chain adds to it is then a plain fused op
    g_u, g_s, ng_th, g_x = (Grad(r) for r in rows[8:12])
    acc = {name: r.zero_() for name, r in zip(wanted, rows[12:])}
    av.zero_() if grad_v is None else av.copy_(grad_v)
    if has_m:
        am.zero_() if grad_m is None else am.copy_(grad_m)
    r = prm.values.get("reset_gate")
    gated_offset = (1.0 - r) * prm["reset_value"] if reset == "gated" else None
    one_minus_r = 1.0 - r if reset == "gated" else None
    one_minus_rho = 1.0 - prm["adapt_decay"] if spec.spike_adaptive_threshold else None
    neg_gamma = -prm["thr_coef"] if spec.spike_adaptive_threshold else None
    k2 = 2.0 * prm["thr_coef"] if spec.adaptive_threshold else None  # th = (vth - k) + 2 k sigmoid(2X)

    for t in range(T - 1, -1, -1):
        x_t, v_prev, u, s = x_rows[t], traj.v[t], traj.u[t], s_rows[t]
        m_prev = traj.m[t] if has_m else None
        f = s if traj.fired is traj.spikes else traj.fired[t]
        th = threshold_at(traj, prm, spec, t)
        if direct:
            g_u.buf = gx_rows[t]
        g_u.start(av)
        g_s.start(gs_rows[t] if gs_rows is not None else None)  # dL/dS_t from the output; the state's share follows
        ng_th.start()
        g_x.start()
        # ---- reset: dL/dU, the state's share of dL/dS and of dL/dF
        if reset == "hard":  # V = U (1 - F)
            g_u.start()
            g_u.add(av)
            g_u.add_product(av, f, -1.0)
        elif reset == "soft":  # V = U - S th
            if state_s:
                g_s.add_product(av, th, -1.0)
            if track_th:
                ng_th.add_product(av, s)
        elif reset in ("adaptive", "complementary"):  # V = U - S (th + sigmoid(M))
            sm = traj.sm[t]
            torch.addcmul(sm, sm, sm, value=-1.0, out=t1).mul_(s)  # S sm (1 - sm)
            torch.addcmul(am, av, t1, value=-1.0, out=g_m)  # dL/dM_t (total)
            if state_s:
                g_s.add_product(av, torch.add(sm, th, out=t1), -1.0)
            if track_th:
                ng_th.add_product(av, s)
            if reset == "adaptive":  # M = min(M', 0) + g |M'| + (2F - 1) sigmoid(X), g = sigmoid(c X)
                sx, gate = xt.row("sx", t), xt.row("gate", t)
                torch.addcmul(sx, sx, sx, value=-1.0, out=t2)  # sx (1 - sx)
                torch.mul(f, t2, out=t1).mul_(2.0).sub_(t2)  # (2F - 1) sx (1 - sx): through sigmoid(X)
                if carry:
                    torch.abs(m_prev, out=t3).mul_(torch.addcmul(gate, gate, gate, value=-1.0, out=t2))
                    _add_scaled(t1, t3, prm["mem_gain"])  # + c |M'| g (1 - g): through g
                    if needs["mem_gain"]:
                        acc["mem_gain"].addcmul_(g_m, t3.mul_(x_t))
                    # dM_t / dM_{t-1} = [M' < 0] + g sign(M')
                    keep_share = torch.lt(m_prev, 0.0, out=t2).addcmul_(gate, torch.sign(m_prev, out=t3))
                    torch.mul(g_m, keep_share, out=am_next)
                g_x.add_product(g_m, t1)
            else:  # CLIF: M = M' q + S, q = sigmoid(c U)
                q = traj.q[t]
                g_q = torch.addcmul(q, q, q, value=-1.0, out=t1).mul_(m_prev).mul_(g_m)
                g_u.add(g_q, prm["mem_gain"])
                if needs["mem_gain"]:
                    acc["mem_gain"].addcmul_(g_q, u)
                if state_s:
                    g_s.add(g_m)
                torch.mul(g_m, q, out=am_next)
        elif reset == "gated":  # V = U - S (r U + (1 - r) v_sub)
            g_u.add_product(av, torch.mul(s, r, out=t1), -1.0)
            if state_s:
                g_s.add_product(av, torch.mul(u, r, out=t1).add_(gated_offset), -1.0)
            if needs["reset_gate"]:
                acc["reset_gate"].addcmul_(av, torch.sub(u, prm["reset_value"], out=t1).mul_(s), value=-1.0)
            if needs["reset_value"]:
                acc["reset_value"].addcmul_(av, torch.mul(s, one_minus_r, out=t1), value=-1.0)
        if spec.spike_adaptive_threshold:  # M_t = rho M_{t-1} + (1 - rho) S_t: am = dL/dM_t
            if state_s:
                g_s.add(am, one_minus_rho)
            if needs["adapt_decay"]:
                acc["adapt_decay"].addcmul_(am, torch.sub(m_prev, s, out=t1))
            torch.mul(am, prm["adapt_decay"], out=am_next)
        # ---- fire
        if spec.integer:  # S = Q(U / th), straight-through on 0 <= z <= D; F = [S > 0] carries no gradient
            z = u if unit else traj.z[t]
            if g_s.value is not None:
                inside = torch.eq(torch.clamp(z, 0.0, spec.int_max, out=t1), z, out=t1)
                inv_th = 1.0 if unit else torch.reciprocal(th, out=t2) if th.shape == t2.shape else \
                    torch.reciprocal(th)
                if not track_th:  # g_u += g_z / th with g_z = [inside] g_s, fused
                    g_u.add_product(inside, g_s.value, inv_th) if isinstance(inv_th, float) else \
                        g_u.add_product(inside.mul_(g_s.value), inv_th)
                else:
                    g_z = inside.mul_(g_s.value)
                    g_u.add(g_z, inv_th)
                    ng_th.add_product(g_z, torch.mul(u, inv_th, out=t3).mul_(inv_th))  # g_z U / th^2
        else:  # S = H(U - th) with the surrogate; F = S: its gradient joins the spike's
            if state_s and reset == "hard":
                g_s.add_product(av, u, -1.0)  # dL/dF = -av U
            elif state_s and reset == "adaptive":
                g_s.add_product(g_m, xt.row("sx", t), 2.0)  # dL/dF = 2 g_m sigmoid(X)
            if g_s.value is not None:  # dS/dU = c sg (c folded into the next op)
                c = surrogate_grad_parts(u, th, spec.surrogate, spec.surrogate_param, out=t1)
                if track_th:
                    g_d = t1.mul_(g_s.value)
                    g_u.add(g_d, c)
                    ng_th.add(g_d, c)
                else:
                    g_u.add_product(t1, g_s.value, c)
        # ---- threshold (ng = -dL/dth)
        if ng_th.value is not None:
            ng = ng_th.value
            if spec.adaptive_threshold:  # th = (vth - k) + 2 k sigmoid(2X): dth/dX = 4 k s2 (1 - s2)
                s2x = xt.row("s2x", t)
                dsig = torch.addcmul(s2x, s2x, s2x, value=-1.0, out=t2)
                g_x.add_product(ng, dsig.mul_(k2), -2.0)
                if needs["thr_coef"]:  # dth/dk = tanh X = 2 s2 - 1
                    acc["thr_coef"].add_(ng).addcmul_(ng, s2x, value=-2.0)
            elif spec.spike_adaptive_threshold:  # th = vth + gamma a_t
                am_next.addcmul_(ng, neg_gamma)
                if needs["thr_coef"]:
                    acc["thr_coef"].addcmul_(ng, m_prev, value=-1.0)
            if needs["vth"]:
                acc["vth"].sub_(ng)
        # ---- slope: U = relu(k P), active where U > 0
        if spec.slope:
            active = torch.gt(u, 0.0, out=t1)
            g_pre = g_u.own().mul_(active)
            if needs["slope"]:
                acc["slope"].addcmul_(g_pre, traj.pre[t])
            g_pre.mul_(prm["slope"])
        # ---- charge P = beta V + alpha X (g_u is now dL/dP)
        g_pre = g_u.value if g_u.value is not None else g_u.own()
        gx_t = gx_rows[t]
        if direct:
            if g_pre is not gx_t:
                gx_t.copy_(g_pre)
        elif g_x.value is not None:
            torch.addcmul(g_x.value, g_pre, prm["alpha"], out=gx_t)
        else:
            torch.mul(g_pre, prm["alpha"], out=gx_t)
        if needs["alpha"]:
            acc["alpha"].addcmul_(g_pre, x_t)
        if needs["beta"]:
            acc["beta"].addcmul_(g_pre, v_prev)
        torch.mul(g_pre, prm["beta"], out=av_next)
        av, av_next = av_next, av
        if carry:
            am, am_next = am_next, am
        elif has_m:  # AR-LIF's memory restarts each step: nothing flows into M_{t-1}
            am.zero_()
    return grad_x, {name: reduce_to_param(a, params[name]) for name, a in acc.items()}


def _add_scaled(out: Tensor, value: Tensor, coef: Coef) -> Tensor:
    """``out += coef * value``."""
    return out.add_(value, alpha=coef) if isinstance(coef, float) else out.addcmul_(value, coef)
