"""PSN (Parallel Spiking Neuron): the PyTorch reference against SpikingJelly 2.0 and by hand, and the
fused Triton kernel against the float64 reference (outputs and every gradient).

The kernels run in Triton's CPU interpreter where there is no GPU (``TRITON_INTERPRET=1`` is set
below, before anything imports Triton), on CUDA otherwise. Comparisons skip "near-tie" neurons,
whose ``H - B`` passes within ``EPS`` of a discontinuity (the threshold, the rectangle's edges),
where an ulp of difference legitimately flips a spike or a surrogate branch.
"""

import os

if "TRITON_INTERPRET" not in os.environ:  # must precede the first import of triton
    import torch

    if not torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"

import math

import pytest
import torch

pytest.importorskip("triton")

from lit_snn.doctor.ties import parallel_near_ties as near_tie_lanes  # the rule doctor applies too
from lit_snn.neurons.kernels import parallel as kernel_module  # noqa: E402
from lit_snn.neurons.kernels.parallel import INTERPRET, parallel_triton  # noqa: E402
from lit_snn.neurons.parallel import init_parallel_params, parallel_reference  # noqa: E402

DEVICE = "cpu" if INTERPRET else "cuda"
needs_kernel = pytest.mark.skipif(
    not INTERPRET and not torch.cuda.is_available(),
    reason="Triton kernels need CUDA or TRITON_INTERPRET=1 set before triton is imported",
)
EPS = 1e-5 if INTERPRET else 1e-4  # margin below which a neuron counts as a near tie
RTOL = 1e-5 if INTERPRET else 1e-4
SURROGATE_PARAMS = {"rectangle": 1.0, "triangle": 1.0, "sigmoid": 4.0, "atan": 2.0}


# --------------------------------------------------------------------------------------------- helpers
def make_case(shape, seed=0, dtype=torch.float64):
    """x [T, ...], W [T, T], B [T]: inputs around the threshold, so neurons both fire and stay silent."""
    gen = torch.Generator().manual_seed(seed)
    T = shape[0]
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * 1.5 + 0.5
    w = 0.5 * torch.eye(T, dtype=torch.float64) + torch.randn(T, T, generator=gen, dtype=torch.float64) / (2 * T**0.5)
    b = 0.5 + 0.3 * torch.randn(T, generator=gen, dtype=torch.float64)
    return x.to(dtype), w.to(dtype), b.to(dtype)


def run(fn, x, w, b, gs, gh, surrogate="atan", param=2.0, device="cpu", dtype=None):
    """Outputs and the gradients (x, W, B) of ``sum(S gs) + sum(h_last gh)`` as float64 CPU tensors."""
    dtype = dtype or x.dtype
    leaves = [t.detach().to(device, dtype).requires_grad_(True) for t in (x, w, b)]
    spikes, h_last = fn(*leaves, surrogate, param)
    assert spikes.dtype == h_last.dtype == dtype
    assert spikes.shape == x.shape and h_last.shape == x.shape[1:]
    loss = (spikes.double() * gs.to(device)).sum() + (h_last.double() * gh.to(device)).sum()
    grads = torch.autograd.grad(loss, leaves)
    return [t.detach().double().cpu() for t in (spikes, h_last, *grads)]


def assert_close(actual, expected, what, rtol=RTOL, terms=1):
    """Close within ``rtol`` relative to the largest entry, or to the natural size of the quantity
    (``terms``: how many O(1) contributions each entry sums; their random-sign sum is O(sqrt(terms)))."""
    scale = expected.abs().max().item() if expected.numel() else 0.0
    atol = rtol * max(scale, math.sqrt(terms))
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, msg=lambda m: f"{what}: {m}")


def cotangents(shape, keep, seed):
    gen = torch.Generator().manual_seed(seed + 2)
    gs = torch.randn(shape, generator=gen, dtype=torch.float64) * keep.view(shape[1:])
    gh = torch.randn(shape[1:], generator=gen, dtype=torch.float64) * keep.view(shape[1:])
    return gs, gh


# --------------------------------------------------------------------------------------------- reference
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["fp64", "fp32"])
def test_reference_matches_spikingjelly_psn(dtype):
    psn_module = pytest.importorskip("spikingjelly.activation_based.neuron.psn")
    T, shape = 4, (4, 3, 4, 5, 5)
    torch.manual_seed(0)
    psn = psn_module.PSN(T).to(dtype)  # its own init: kaiming W, b = -1 ...
    with torch.no_grad():  # ... with b nudged so that each step has its own threshold
        psn.bias.add_(0.2 * torch.randn(T, 1, dtype=dtype))
    gen = torch.Generator().manual_seed(1)
    x = (torch.randn(shape, generator=gen, dtype=torch.float64) * 1.5 + 0.5).to(dtype).requires_grad_(True)
    grad = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)
    weight = psn.weight.detach().clone().requires_grad_(True)
    threshold = (-psn.bias.detach().reshape(T)).clone().requires_grad_(True)
    # no neuron within 1e-5 of its threshold: equality of the spikes does not hinge on an ulp
    margin = (psn.weight.double() @ x.double().reshape(T, -1) + psn.bias.double()).abs().min()
    assert margin > 1e-5

    theirs = psn(x)
    g_theirs = torch.autograd.grad(theirs, [x, psn.weight, psn.bias], grad)
    ours, h_last = parallel_reference(x, weight, threshold, "atan", 2.0)
    g_ours = torch.autograd.grad(ours, [x, weight, threshold], grad)

    assert torch.equal(ours, theirs)
    assert 0 < ours.mean() < 1
    fired = ours.reshape(T, -1).amax(dim=0)  # neurons that fire at least once
    assert 0 < fired.float().mean() < 1, "want neurons that fire and neurons that stay silent"
    h = psn.weight @ x.reshape(T, -1)  # H = W X
    torch.testing.assert_close(h_last, h[-1].view(shape[1:]))
    tol = dict(rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g_ours[0], g_theirs[0], **tol)
    torch.testing.assert_close(g_ours[1], g_theirs[1], **tol)
    torch.testing.assert_close(g_ours[2], -g_theirs[2].reshape(T), **tol)  # B = -b


def hand_case():
    """T = 2, N = 1: H = [0.6, 1.0], B = [1, 1] -> S = [0, 1] (1.0 >= 1 fires), loss S0 + S1 + 2 h_last."""
    x = torch.tensor([[0.6], [0.7]])
    w = torch.tensor([[1.0, 0.0], [0.5, 1.0]])
    b = torch.tensor([1.0, 1.0])
    gs = torch.ones(2, 1, dtype=torch.float64)
    gh = torch.full((1,), 2.0, dtype=torch.float64)
    sg0 = 1 / (1 + (math.pi / 2 * 2.0 * (0.6 - 1.0)) ** 2)  # atan, alpha 2, at H0 - B0 = -0.4
    sg1 = 1.0  # at H1 - B1 = 0: alpha / 2
    gd = [sg0, sg1]  # dL/d(H - B)
    gH = [sg0, sg1 + 2.0]  # + dL/dh_last on the last row
    expected = dict(
        spikes=[[0.0], [1.0]], h_last=[1.0],
        gx=[[1.0 * gH[0] + 0.5 * gH[1]], [0.0 * gH[0] + 1.0 * gH[1]]],  # W^T G_H
        gw=[[gH[0] * 0.6, gH[0] * 0.7], [gH[1] * 0.6, gH[1] * 0.7]],  # G_H x^T
        gb=[-gd[0], -gd[1]],
    )
    return (x, w, b, gs, gh), {k: torch.tensor(v, dtype=torch.float64) for k, v in expected.items()}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["fp64", "fp32"])
def test_reference_hand_computed(dtype):
    (x, w, b, gs, gh), expected = hand_case()
    out = run(parallel_reference, x, w, b, gs, gh, "atan", 2.0, dtype=dtype)
    for (name, want), got in zip(expected.items(), out):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7, msg=lambda m, n=name: f"{n}: {m}")


def test_reference_errors():
    x, w, b = make_case((3, 4))
    with pytest.raises(ValueError, match="weight must have shape"):
        parallel_reference(x, w[:2], b)
    with pytest.raises(ValueError, match="threshold must have shape"):
        parallel_reference(x, w, b[:, None])
    with pytest.raises(ValueError, match="unknown surrogate"):
        parallel_reference(x, w, b, "relu")
    with pytest.raises(ValueError, match="shape"):
        parallel_reference(x[:, 0], w, b)


def test_init_like_spikingjelly():
    w, b = init_parallel_params(8)
    assert w.shape == (8, 8) and torch.equal(b, torch.ones(8))
    assert w.abs().max() <= 1 / math.sqrt(8)  # kaiming_uniform(a=sqrt(5)): bound 1/sqrt(fan_in)


# --------------------------------------------------------------------------------------------- kernel
def check_against_reference(shape, surrogate="atan", seed=0):
    """Triton (fp32, DEVICE) vs the float64 reference: spikes, h_last and the three gradients."""
    param = SURROGATE_PARAMS[surrogate]
    x, w, b = make_case(shape, seed)
    bad = near_tie_lanes(x, w, b, surrogate, param, EPS)
    assert bad.double().mean() < 0.3, "test input too close to ties; change the seed"
    keep = ~bad
    gs, gh = cotangents(shape, keep, seed)
    ref = run(parallel_reference, x, w, b, gs, gh, surrogate, param)
    ours = run(parallel_triton, x, w, b, gs, gh, surrogate, param, device=DEVICE, dtype=torch.float32)
    T, N = shape[0], keep.numel()
    spikes_ours, spikes_ref = ours[0].reshape(T, N)[:, keep], ref[0].reshape(T, N)[:, keep]
    assert torch.equal(spikes_ours, spikes_ref), f"spikes differ at {(spikes_ours != spikes_ref).sum().item()} places"
    if N > 100:
        assert 0 < spikes_ref.mean() < 1
    assert_close(ours[1], ref[1], "h_last")
    assert_close(ours[2], ref[2], "grad x")
    assert_close(ours[3], ref[3], "grad W", terms=N)
    assert_close(ours[4], ref[4], "grad threshold", terms=N)


STEPS = {"T1": 1, "T3": 3, "T7": 7}
NEURONS = {"N1": (1,), "N1000": (2, 5, 10, 10), "N4097": (17, 241)}


@needs_kernel
@pytest.mark.parametrize("neurons", list(NEURONS))
@pytest.mark.parametrize("steps", list(STEPS))
def test_kernel_matches_reference(steps, neurons):
    check_against_reference((STEPS[steps], *NEURONS[neurons]), seed=STEPS[steps] + len(neurons))


@needs_kernel
@pytest.mark.parametrize("surrogate", list(SURROGATE_PARAMS))
def test_kernel_surrogates(surrogate):
    check_against_reference((7, 17, 241), surrogate, seed=3)


@needs_kernel
@pytest.mark.parametrize("size", ["T16-N1000", "T20-N4097", "T64-N300"])
def test_kernel_dot_path(size):
    """TP >= 16: the time mixing goes through tl.dot (IEEE fp32)."""
    steps, neurons = (int(p[1:]) for p in size.split("-"))
    check_against_reference((steps, neurons), "sigmoid", seed=steps)


@pytest.mark.skipif(not INTERPRET, reason="sets the interpreter's fixed BLOCK")
@pytest.mark.parametrize("size", ["T3-N4097", "T20-N1500"])
def test_kernel_programs_walk_several_tiles(size, monkeypatch):
    """BLOCK below the backward's per-program span: each program accumulates over several tiles."""
    monkeypatch.setattr(kernel_module, "_FIXED", {"BLOCK": 128})
    programs, span = kernel_module._backward_grid(4097, torch.device(DEVICE))
    assert span // 128 >= 4 and programs > 1
    steps, neurons = (int(p[1:]) for p in size.split("-"))
    check_against_reference((steps, neurons), "triangle", seed=steps + 1)


@needs_kernel
def test_kernel_hand_computed():
    (x, w, b, gs, gh), expected = hand_case()
    out = run(parallel_triton, x, w, b, gs, gh, "atan", 2.0, device=DEVICE, dtype=torch.float32)
    for (name, want), got in zip(expected.items(), out):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7, msg=lambda m, n=name: f"{n}: {m}")


@needs_kernel
def test_kernel_partial_gradient_paths():
    """Loss through the spikes only / h_last only; no parameter gradients; no input gradient."""
    shape = (5, 3, 70)
    x, w, b = make_case(shape, seed=5)
    keep = ~near_tie_lanes(x, w, b, "atan", 2.0, EPS)
    gs, gh = cotangents(shape, keep, 5)
    for use_s, use_h in ((True, False), (False, True)):
        a = [t.float().to(DEVICE).requires_grad_(True) for t in (x, w, b)]
        r = [t.clone().requires_grad_(True) for t in (x, w, b)]
        losses = []
        for fn, leaves in ((parallel_triton, a), (parallel_reference, r)):
            s, h = fn(*leaves)
            loss = (s.double() * gs.to(s.device)).sum() * use_s + (h.double() * gh.to(s.device)).sum() * use_h
            losses.append(torch.autograd.grad(loss, leaves))
        for name, g_ours, g_ref in zip(("x", "W", "threshold"), *losses):
            assert_close(g_ours.double().cpu(), g_ref, f"grad {name} (spikes {use_s}, h_last {use_h})",
                         terms=1 if name == "x" else 210)
    # x only / parameters only
    xs = x.float().to(DEVICE).requires_grad_(True)
    s, h = parallel_triton(xs, w.float().to(DEVICE), b.float().to(DEVICE))
    (gx,) = torch.autograd.grad((s.double() * gs.to(DEVICE)).sum(), xs)
    xr = x.clone().requires_grad_(True)
    (gx_ref,) = torch.autograd.grad((parallel_reference(xr, w, b)[0] * gs).sum(), xr)
    assert_close(gx.double().cpu(), gx_ref, "grad x alone")
    wp = w.float().to(DEVICE).requires_grad_(True)
    s, h = parallel_triton(x.float().to(DEVICE), wp, b.float().to(DEVICE))
    (gw,) = torch.autograd.grad((h.double() * gh.to(DEVICE)).sum(), wp)
    wr = w.clone().requires_grad_(True)
    (gw_ref,) = torch.autograd.grad((parallel_reference(x, wr, b)[1] * gh).sum(), wr)
    assert_close(gw.double().cpu(), gw_ref, "grad W alone", terms=210)


@needs_kernel
def test_kernel_backward_is_deterministic():
    x, w, b = (t.float().to(DEVICE) for t in make_case((7, 3000), seed=9))
    grads = []
    for _ in range(2):
        leaves = [t.clone().requires_grad_(True) for t in (w, b)]
        s, h = parallel_triton(x, *leaves)
        grads.append(torch.autograd.grad(s.sum() + h.sum(), leaves))
    assert all(torch.equal(p, q) for p, q in zip(*grads))


@needs_kernel
def test_kernel_empty_batch():
    x = torch.zeros(3, 0, 4, device=DEVICE, requires_grad=True)
    w = torch.eye(3, device=DEVICE, requires_grad=True)
    b = torch.ones(3, device=DEVICE, requires_grad=True)
    s, h = parallel_triton(x, w, b)
    assert s.shape == (3, 0, 4) and h.shape == (0, 4)
    gx, gw, gb = torch.autograd.grad(s.sum() + h.sum(), [x, w, b])
    assert gx.shape == x.shape and not gw.any() and not gb.any()


@needs_kernel
def test_kernel_bf16_storage():
    """bf16 in and out, fp32 inside: error vs float64 no worse than twice the bf16 reference's (+ 1e-3)."""
    shape = (6, 4, 300)
    low = torch.bfloat16
    x, w, b = (t.to(low).double() for t in make_case(shape, seed=11))  # exactly representable in bf16
    keep = ~near_tie_lanes(x, w, b, "atan", 2.0, 1e-4)
    gs, gh = cotangents(shape, keep, 11)
    truth = run(parallel_reference, x, w, b, gs, gh)
    ref = run(parallel_reference, x, w, b, gs, gh, dtype=low)
    ours = run(parallel_triton, x, w, b, gs, gh, device=DEVICE, dtype=low)  # asserts bf16 outputs
    names = ("spikes", "h_last", "grad x", "grad W", "grad threshold")
    T, N = shape[0], keep.numel()
    for i, name in enumerate(names):
        t, r, o = truth[i], ref[i], ours[i]
        if i == 0:
            t, r, o = (a.reshape(T, N)[:, keep] for a in (t, r, o))
        scale = t.norm()
        e_ours, e_ref = ((o - t).norm() / scale).item(), ((r - t).norm() / scale).item()
        assert e_ours <= 2 * e_ref + 1e-3, f"{name}: ours {e_ours:.2e} vs PyTorch bf16 reference {e_ref:.2e}"


@needs_kernel
def test_kernel_errors():
    x = torch.zeros(3, 4, device=DEVICE)
    w, b = torch.eye(3, device=DEVICE), torch.ones(3, device=DEVICE)
    with pytest.raises(TypeError, match="float32, bfloat16 or float16"):
        parallel_triton(x.double(), w, b)
    with pytest.raises(ValueError, match="shape"):
        parallel_triton(x[:, 0], w, b)
    with pytest.raises(ValueError, match="at least one time step"):
        parallel_triton(x[:0], w[:0, :0], b[:0])
    with pytest.raises(ValueError, match="at most 64"):
        parallel_triton(torch.zeros(65, 2, device=DEVICE), torch.eye(65, device=DEVICE), torch.ones(65, device=DEVICE))
    with pytest.raises(ValueError, match=r"weight must have shape \[3, 3\]"):
        parallel_triton(x, w[:2], b)
    with pytest.raises(ValueError, match=r"threshold must have shape \[3\]"):
        parallel_triton(x, w, b[:, None])
    with pytest.raises(TypeError, match="weight must be a floating-point tensor"):
        parallel_triton(x, w.long(), b)
    with pytest.raises(ValueError, match="threshold is on meta"):
        parallel_triton(x, w, b.to("meta"))
    with pytest.raises(ValueError, match="unknown surrogate 'relu'"):
        parallel_triton(x, w, b, "relu")


def test_kernel_cpu_without_interpreter_raises(monkeypatch):
    from lit_snn.neurons.kernels import multistep  # the device check both kernel families share

    monkeypatch.setattr(multistep, "INTERPRET", False)
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        parallel_triton(torch.zeros(2, 3), torch.eye(2), torch.ones(2))
