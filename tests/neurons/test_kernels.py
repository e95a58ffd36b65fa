"""The fused Triton kernels against the PyTorch reference (the spec): outputs and every gradient.

Runs in Triton's CPU interpreter where there is no GPU (``TRITON_INTERPRET=1`` is set below,
before anything imports Triton), on CUDA otherwise. The reference runs in float64; comparisons
skip "near-tie" neurons (``lit_snn.doctor.ties``, the rule ``lit-snn doctor`` applies too), where an
ulp of difference legitimately flips a spike or a surrogate/STE/relu branch.

The last section (``@pytest.mark.gpu``) runs only with CUDA and compiled kernels (no
``TRITON_INTERPRET``): fp32/bf16/fp16 storage against the float64 reference with the rule "error
no worse than twice the error of the PyTorch reference run in the same precision", long
sequences, determinism, and the benchmark's GPU path.
"""

import os

if "TRITON_INTERPRET" not in os.environ:  # must precede the first import of triton
    import torch

    if not torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"

import math
import zlib

import pytest
import torch
from axis_cases import axis_cases
from torch import nn

pytest.importorskip("triton")

from lit_snn.doctor.ties import scan_near_ties as near_tie_lanes  # the rule doctor applies too
from lit_snn.neurons import (
    KernelSpec,
    create_neuron,
    list_neurons,
    multistep_reference,
    neuron_config,
)
from lit_snn.neurons.kernels import INTERPRET, multistep_triton
from lit_snn.neurons.kernels import multistep as kernel_module
from lit_snn.neurons.reference import PARAM_NAMES

DEVICE = "cpu" if INTERPRET else "cuda"
pytestmark = pytest.mark.skipif(
    not INTERPRET and not torch.cuda.is_available(),
    reason="Triton kernels need CUDA or TRITON_INTERPRET=1 set before triton is imported",
)
# margin below which a neuron counts as a near tie, and comparison tolerances
EPS = 1e-5 if INTERPRET else 1e-4
RTOL = 1e-5 if INTERPRET else 1e-4


# --------------------------------------------------------------------------------------------- helpers
def make_params(name_or_cfg, channels=None, seed=0, **overrides):
    """(spec, {name: leaf fp32 [P] requiring grad}) for a preset with its learnables nudged randomly."""
    if channels is not None:
        overrides = dict(overrides, granularity="channel", channels=channels)
    cfg = neuron_config(name_or_cfg, **overrides)
    neuron = create_neuron(cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in neuron.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=gen))
    params = {k: v.detach().clone().requires_grad_(True) for k, v in neuron.effective_params().items()}
    return KernelSpec.from_config(cfg), params


def make_input(shape, seed=0):
    gen = torch.Generator().manual_seed(seed + 1)
    return torch.randn(shape, generator=gen) * 1.5 + 0.5


def run(fn, x, params, spec, gs, gv=None, gm=None):
    """Outputs and gradients (x, then the five parameters; None -> zeros) of one weighted loss.

    ``gv``/``gm`` None: the loss ignores V_T/M_T (their gradients never materialise).
    """
    x = x.detach().clone().requires_grad_(True)
    params = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    spikes, v, m = fn(x, **params, spec=spec)
    loss = (spikes * gs).sum()
    if gv is not None:
        loss = loss + (v * gv).sum() + (m * gm).sum()
    inputs = [x, *params.values()]
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    grads = [torch.zeros_like(i) if g is None else g for g, i in zip(grads, inputs)]
    return (spikes.detach(), v.detach(), m.detach()), grads


def assert_close(actual, expected, what, rtol=RTOL, terms=1):
    """Close within ``rtol`` relative to the largest entry, or to the natural size of the quantity.

    ``terms``: how many O(1) contributions each entry sums (parameter gradients); a random-sign
    sum of n of them is O(sqrt(n)) however much it cancels, and so is its rounding error.
    """
    expected = expected.to(actual.dtype)
    scale = expected.abs().max().item() if expected.numel() else 0.0
    atol = rtol * max(scale, math.sqrt(terms))
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, msg=lambda m: f"{what}: {m}")


def check_against_reference(spec, params, x, seed=0, state_grads=True):
    """Triton (fp32, DEVICE) vs the float64 reference: spikes, V_T, M_T and all six gradients."""
    shape = x.shape
    bad = near_tie_lanes(x, params, spec, EPS)  # [N]
    assert bad.float().mean() < 0.3, "test input too close to ties; change the seed"
    gen = torch.Generator().manual_seed(seed + 2)
    clean = (~bad).view(shape[1:]).double()
    gs = torch.randn(shape, generator=gen, dtype=torch.float64) * clean
    gv = torch.randn(shape[1:], generator=gen, dtype=torch.float64) * clean
    gm = torch.randn(shape[1:], generator=gen, dtype=torch.float64) * clean * (spec.reset == "adaptive")
    if not state_grads:
        gv = gm = None

    ref_out, ref_grads = run(multistep_reference, x.double(), {k: v.double() for k, v in params.items()},
                             spec, gs, gv, gm)
    to_dev = lambda t: None if t is None else t.to(DEVICE, torch.float32)
    out, grads = run(multistep_triton, to_dev(x), {k: to_dev(v) for k, v in params.items()}, spec,
                     to_dev(gs), to_dev(gv), to_dev(gm))
    keep = ~bad.view(shape[1:])
    for name, a, b in zip(("spikes", "v_final", "m_final"), out, ref_out):
        a, b = a.cpu(), b.float()
        if name == "spikes":
            a, b = a[:, keep], b[:, keep]
            if not spec.integer:
                assert torch.equal(a, b), f"spikes differ at {(a != b).sum().item()} places"
        else:
            a, b = a[keep], b[keep]
        assert_close(a, b, name)
    for name, a, b in zip(("x",) + PARAM_NAMES, grads, ref_grads):
        assert_close(a.cpu(), b.float(), f"grad {name}", terms=x.numel() // b.numel() if name != "x" else 1)


# --------------------------------------------------------------------------------------------- presets
# every preset that runs on the scan kernel (PSN's parallel kernel has its own tests, test_parallel.py)
SCAN_PRESETS = [name for name in list_neurons() if neuron_config(name).decay != "parallel"]
SIZES = {  # readable id -> input shape [T, ...]
    "T1-N1": (1, 1),
    "T3-N1000": (3, 2, 5, 10, 10),
    "T7-N4097": (7, 17, 241),
}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("preset", SCAN_PRESETS)
def test_preset_matches_reference(preset, size):
    spec, params = make_params(preset, seed=zlib.crc32(preset.encode()) % 1000)
    check_against_reference(spec, params, make_input(SIZES[size], seed=len(preset)))


@pytest.mark.parametrize("preset", ["ar_lif", "da_lif", "ib_ra_lif", "plif"])
def test_preset_per_channel(preset):
    shape = (4, 3, 6, 7, 9)  # C = 6, S = 63
    spec, params = make_params(preset, channels=6, seed=3)
    check_against_reference(spec, params, make_input(shape, seed=4))


# --------------------------------------------------------------------------------------------- axes
@pytest.mark.parametrize("fields,channel", axis_cases())
def test_axis_combination(fields, channel):
    shape = (5, 3, 5, 17, 19)  # N = 4845 (several programs), C = 5
    spec, params = make_params(neuron_config("lif", **fields), channels=5 if channel else None, seed=7)
    check_against_reference(spec, params, make_input(shape, seed=8))


@pytest.mark.parametrize("preset", SCAN_PRESETS)
@pytest.mark.parametrize("size", ["T3-N1000", "T7-N4097"])
def test_recompute_backward_matches_reference(preset, size, monkeypatch):
    """The backward's other mode (UNROLL off: each step's state recomputed from reloaded x; the
    autotuner on a GPU picks between the two) against the reference; the default tests run UNROLL on."""
    if not INTERPRET:
        pytest.skip("the mode is chosen by the autotuner on a GPU")
    monkeypatch.setitem(kernel_module._FIXED_BWD, "UNROLL", False)
    spec, params = make_params(preset, seed=zlib.crc32(preset.encode()) % 1000)
    check_against_reference(spec, params, make_input(SIZES[size], seed=len(preset)))


@pytest.mark.parametrize("unroll", [True, False], ids=["unrolled", "recompute"])
@pytest.mark.parametrize("every", [1, 3], ids=lambda k: f"K{k}")
@pytest.mark.parametrize("preset", ["ar_lif", "ar_lif_dvs", "lif", "i_lif"])
def test_checkpoint_chunks(preset, every, unroll, monkeypatch):
    """Other checkpoint intervals (a state every step; chunks of 3 over T = 9) give the same results,
    in both backward modes."""
    if INTERPRET:
        monkeypatch.setitem(kernel_module._FIXED_BWD, "UNROLL", unroll)
    elif not unroll:
        pytest.skip("the mode is chosen by the autotuner on a GPU")
    monkeypatch.setitem(kernel_module.CHECKPOINT_EVERY, "adaptive", every)
    monkeypatch.setitem(kernel_module.CHECKPOINT_EVERY, "default", every)
    spec, params = make_params(preset, seed=11)
    check_against_reference(spec, params, make_input((9, 3, 331), seed=12))


def test_spike_loss_only():
    """A loss on the spikes alone (V_T, M_T unused: their gradients never materialise)."""
    spec, params = make_params("ar_lif", seed=5)
    check_against_reference(spec, params, make_input((6, 2, 777), seed=6), state_grads=False)


def test_mixed_granularity_and_no_param_grads():
    spec, params = make_params("da_lif", channels=4, seed=9)
    params["vth"] = params["vth"][:1].detach().clone().requires_grad_(True)  # per layer beside per channel
    check_against_reference(spec, params, make_input((3, 2, 4, 5, 5), seed=10))
    x = make_input((3, 2, 4, 5, 5)).to(DEVICE).requires_grad_(True)
    frozen = {k: v.detach().to(DEVICE) for k, v in params.items()}
    spikes, _, _ = multistep_triton(x, **frozen, spec=spec)
    (gx,) = torch.autograd.grad(spikes.sum(), x)
    x_ref = x.detach().cpu().double().requires_grad_(True)
    ref, _, _ = multistep_reference(x_ref, **{k: v.cpu().double() for k, v in frozen.items()}, spec=spec)
    (gx_ref,) = torch.autograd.grad(ref.sum(), x_ref)
    keep = ~near_tie_lanes(x_ref, frozen, spec, EPS).view(2, 4, 5, 5)
    assert_close(gx.cpu()[:, keep], gx_ref.float()[:, keep], "grad x (frozen parameters)")


# --------------------------------------------------------------------------------------------- module
@pytest.mark.parametrize("preset,channels", [("ar_lif", 6), ("da_lif", None), ("ib_ra_lif", None), ("plif", 6)])
def test_module_backend_triton_matches_torch(preset, channels):
    overrides = {"granularity": "channel", "channels": channels} if channels else {}
    torch.manual_seed(0)
    ref = create_neuron(preset, backend="torch", **overrides)
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.2 * torch.randn_like(p))
    tri = create_neuron(preset, backend="triton", **overrides).to(DEVICE)
    tri.load_state_dict(ref.state_dict())
    x = make_input((4, 2, 6, 5, 7), seed=1)
    bad = near_tie_lanes(x, {k: v.detach() for k, v in ref.effective_params().items()}, ref.spec, EPS)
    weight = (~bad).view(2, 6, 5, 7).float() * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    outs, grads = [], []
    for neuron, dev in ((ref, "cpu"), (tri, DEVICE)):
        xi = x.to(dev).requires_grad_(True)
        out = neuron(xi)
        (out * weight.to(dev)).sum().backward()
        outs.append(out.detach().cpu())
        grads.append([xi.grad.cpu()] + [p.grad.cpu() for p in neuron.parameters()])
    keep = ~bad.view(2, 6, 5, 7)
    assert_close(outs[1][:, keep], outs[0][:, keep], "spikes", rtol=1e-5)
    for i, (a, b) in enumerate(zip(grads[1], grads[0])):  # fp32 reference: its own rounding counts too
        assert_close(a, b, f"grad {i}", rtol=1e-4, terms=x.numel() // b.numel() if i else 1)


# --------------------------------------------------------------------------------------------- wiring
def test_compile_sees_one_op_without_graph_break():
    spec, params = make_params("ar_lif", seed=1)
    x = make_input((3, 2, 50)).to(DEVICE)
    params = {k: v.detach().to(DEVICE).requires_grad_(True) for k, v in params.items()}

    def f(x, p):
        spikes, v, _ = multistep_triton(x, **p, spec=spec)
        return spikes.sum() + v.square().sum()

    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    ga = torch.autograd.grad(f(xa, params), [xa, *params.values()])
    gb = torch.autograd.grad(compiled(xb, params), [xb, *params.values()])
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b)


def test_errors():
    spec, params = make_params("lif")
    p = {k: v.detach() for k, v in params.items()}
    with pytest.raises(TypeError, match="float32, bfloat16 or float16"):
        multistep_triton(torch.zeros(2, 3, dtype=torch.float64, device=DEVICE), **p, spec=spec)
    with pytest.raises(ValueError, match="per channel"):
        bad = dict(p, alpha=torch.ones(3, device=DEVICE))
        multistep_triton(torch.zeros(2, 4, 5, device=DEVICE), **bad, spec=spec)
    with pytest.raises(ValueError, match="shape"):
        multistep_triton(torch.zeros(3, device=DEVICE), **p, spec=spec)


def test_cpu_without_interpreter_raises(monkeypatch):
    monkeypatch.setattr(kernel_module, "INTERPRET", False)
    spec, params = make_params("lif")
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        multistep_triton(torch.zeros(2, 3), **{k: v.detach() for k, v in params.items()}, spec=spec)


def test_bench_quick_without_gpu(capsys):
    if torch.cuda.is_available():
        pytest.skip("the no-GPU message is only printed without CUDA")
    from lit_snn.bench import main

    assert main(["--quick"]) == 0
    assert "CUDA" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------- dtypes
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def dtype_case(preset, shape, dtype, seed=0):
    """Input and parameters exactly representable in ``dtype``; cotangents zeroed on near-tie neurons.

    Every run sees the same rounded values, so the errors measured against the float64 run are
    those of the arithmetic alone (rounding the parameters themselves moves thresholds by ~1e-3
    and flips spikes in every low-precision run alike).
    """
    spec, params = make_params(preset, seed=seed)
    params = {k: v.detach().to(dtype).double() for k, v in params.items()}
    x = make_input(shape, seed=seed).to(dtype).double()
    keep = ~near_tie_lanes(x, params, spec, 1e-4).view(shape[1:])
    gen = torch.Generator().manual_seed(seed + 7)
    gs = torch.randn(shape, generator=gen, dtype=torch.float64) * keep
    gv = torch.randn(shape[1:], generator=gen, dtype=torch.float64) * keep
    return spec, params, x, gs, gv, keep


def dtype_run(fn, x, params, spec, gs, gv, dtype):
    """[spikes, V_T, M_T, grad x, grads of the five parameters] as float64 CPU tensors."""
    x = x.to(DEVICE, dtype).requires_grad_(True)
    params = {k: v.detach().to(DEVICE, dtype).requires_grad_(True) for k, v in params.items()}
    spikes, v, m = fn(x, **params, spec=spec)
    loss = (spikes.double() * gs.to(DEVICE)).sum() + (v.double() * gv.to(DEVICE)).sum()
    inputs = [x, *params.values()]
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    grads = [torch.zeros_like(i) if g is None else g for g, i in zip(grads, inputs)]
    return [t.detach().double().cpu() for t in (spikes, v, m, *grads)]


def dtype_errors(preset, shape, dtype, seed=0):
    """Relative L2 errors vs the float64 reference: {name: (ours, PyTorch reference in dtype)}."""
    spec, params, x, gs, gv, keep = dtype_case(preset, shape, dtype, seed)
    truth = dtype_run(multistep_reference, x, params, spec, gs, gv, torch.float64)
    ref = dtype_run(multistep_reference, x, params, spec, gs, gv, dtype)
    ours = dtype_run(multistep_triton, x, params, spec, gs, gv, dtype)
    names = ("spikes", "v_final", "m_final", "grad x") + tuple(f"grad {n}" for n in PARAM_NAMES)
    errors = {}
    for i, name in enumerate(names):
        t, r, o = truth[i], ref[i], ours[i]
        if i == 0:
            t, r, o = t[:, keep], r[:, keep], o[:, keep]
        elif i < 3:
            t, r, o = t[keep], r[keep], o[keep]
        if t.norm() > 0:
            scale = t.norm()
            errors[name] = (((o - t).norm() / scale).item(), ((r - t).norm() / scale).item())
    return errors


def assert_dtype_rule(preset, shape, dtype, seed=0):
    """Error no worse than twice the PyTorch reference's in the same precision (plus a floor)."""
    floor = 1e-5 if dtype == "fp32" else 1e-3
    for name, (ours, ref) in dtype_errors(preset, shape, DTYPES[dtype], seed).items():
        assert ours <= 2 * ref + floor, f"{name}: ours {ours:.2e} vs PyTorch {dtype} reference {ref:.2e}"


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
@pytest.mark.parametrize("preset", ["lif", "ar_lif", "ib_ra_lif"])
def test_low_precision_storage(preset, dtype):
    """bf16/fp16 in and out, fp32 inside: outputs keep the dtype, errors obey the rule."""
    spec, params = make_params(preset)
    low = DTYPES[dtype]
    spikes, v, m = multistep_triton(torch.ones(2, 3, device=DEVICE, dtype=low),
                                    **{k: p.detach().to(DEVICE, low) for k, p in params.items()}, spec=spec)
    assert spikes.dtype == v.dtype == m.dtype == low
    assert_dtype_rule(preset, (4, 2, 8, 10, 10), dtype)


# --------------------------------------------------------------------------------------------- GPU only
gpu = pytest.mark.skipif(not torch.cuda.is_available() or INTERPRET,
                         reason="needs CUDA and compiled kernels (TRITON_INTERPRET unset)")


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("preset", SCAN_PRESETS)
def test_gpu_dtype_error_at_most_twice_reference(preset, dtype):
    assert_dtype_rule(preset, (6, 8, 16, 16, 16), dtype)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("preset", ["lif", "ar_lif", "ib_ra_lif"])
def test_gpu_long_sequence(preset):
    """T = 20 crosses several checkpoint chunks of the backward."""
    assert_dtype_rule(preset, (20, 4, 3000), "fp32", seed=3)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("preset", ["plif", "ar_lif"])
def test_gpu_backward_is_deterministic(preset):
    spec, params, x, gs, gv, _ = dtype_case(preset, (4, 16, 32, 32, 32), torch.float32, seed=5)
    first = dtype_run(multistep_triton, x, params, spec, gs, gv, torch.float32)
    second = dtype_run(multistep_triton, x, params, spec, gs, gv, torch.float32)
    for a, b in zip(first, second):
        assert torch.equal(a, b)


@gpu
@pytest.mark.gpu
def test_gpu_module_auto_backend():
    neuron = create_neuron("ar_lif", backend="auto").cuda()
    x = torch.randn(4, 2, 8, 6, 6, device="cuda", requires_grad=True)
    out = neuron(x)
    out.sum().backward()
    assert out.shape == x.shape and x.grad is not None and neuron.thr_a.grad is not None


@gpu
@pytest.mark.gpu
def test_gpu_bench_quick(capsys):
    from lit_snn.bench import main

    assert main(["--quick", "--columns", "ours,eager", "--shape", "8,32,16,16"]) == 0
    assert "lif" in capsys.readouterr().out


@pytest.mark.skipif(not INTERPRET, reason="the CPU check of the benchmark runs our kernels in the interpreter")
def test_bench_cpu_check_runs_every_column(capsys):
    """``lit-snn bench --device cpu``: every column builds, runs forward + backward and, in fp32,
    computes exactly our spikes (SpikingJelly's stand-ins included; ib_ra_lif has none)."""
    pytest.importorskip("spikingjelly.activation_based.neuron")
    from lit_snn.bench import main

    presets = ["lif", "ar_lif", "i_lif", "ib_ra_lif", "clif", "klif", "alif"]
    argv = ["--device", "cpu", "--presets", ",".join(presets), "--dtypes", "fp32", "--T", "3",
            "--shape", "2,3,4,4", "--columns", "ours,eager,compile,sj"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "failed" not in out and "HOP" not in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1] in [[p] for p in presets]}
    assert sorted(rows) == sorted(presets)
    for preset, fields in rows.items():
        times = fields[4:8]  # ours, eager, compile, sj (ms)
        same = fields[-3:]  # eager, compile, sj
        assert all(float(t) > 0 for t in times[:3]), fields
        assert same[:2] == ["100.00%", "100.00%"], fields
        if preset == "ib_ra_lif":
            assert times[3] == "n/a" and same[2] == "n/a"
        else:
            assert float(times[3]) > 0 and same[2] == "100.00%", fields
    assert "ib_ra_lif fp32 T=3] sj: n/a (LookupError" in out


def test_bench_rejects_bad_arguments(capsys):
    from lit_snn.bench import main

    assert main(["--device", "cpu", "--presets", "lif,nope"]) == 2
    assert "unknown presets ['nope']" in capsys.readouterr().out
    assert main(["--device", "cpu", "--T", "four"]) == 2
    assert "comma-separated integers" in capsys.readouterr().out
    assert main(["--device", "cpu", "--T", "0"]) == 2
    assert "positive integers" in capsys.readouterr().out


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_network(dtype):
    """conv -> neuron (Triton) -> conv under autocast: the neuron takes the conv's half-precision
    output, returns spikes in it, and its fp32 parameters get fp32 gradients close to a full fp32 run."""
    if DEVICE == "cpu" and dtype == torch.float16:
        pytest.skip("CPU autocast covers bf16 only")
    torch.manual_seed(0)

    def build():
        torch.manual_seed(0)
        return nn.ModuleDict(dict(
            conv1=nn.Conv2d(3, 6, 3, padding=1), neuron=create_neuron("ar_lif", backend="triton",
                                                                    granularity="channel", channels=6),
            conv2=nn.Conv2d(6, 4, 3, padding=1))).to(DEVICE)

    def run(net, x, autocast):
        with torch.autocast(DEVICE, dtype=dtype, enabled=autocast):
            h = net["conv1"](x.flatten(0, 1)).unflatten(0, x.shape[:2])  # [T, B, 6, H, W]
            s = net["neuron"](h)
            out = net["conv2"](s.flatten(0, 1)).float().square().mean()
        out.backward()
        return h.dtype, s.dtype, out.detach()

    x = torch.randn(3, 2, 3, 8, 8, device=DEVICE) * 2
    full, half = build(), build()
    _, _, loss_full = run(full, x, autocast=False)
    h_dtype, s_dtype, loss_half = run(half, x, autocast=True)
    assert h_dtype == dtype and s_dtype == dtype
    assert abs(loss_half.item() - loss_full.item()) < 0.05 * abs(loss_full.item())
    for name, p in half.named_parameters():
        q = dict(full.named_parameters())[name]
        assert p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all(), name
        cosine = torch.nn.functional.cosine_similarity(p.grad.flatten(), q.grad.flatten(), dim=0)
        assert cosine > 0.9, (name, cosine.item())


def test_eager_calls_skip_the_custom_op(monkeypatch):
    """Eager mode runs the kernels through a plain autograd.Function (the custom-op dispatch costs
    ~150 us of host time per direction); only torch.compile goes through the custom ops."""
    def refuse(*args, **kwargs):
        raise AssertionError("eager call went through the custom op")

    monkeypatch.setattr(kernel_module, "_fwd_op", refuse)
    monkeypatch.setattr(kernel_module, "_bwd_op", refuse)
    spec, params = make_params("ar_lif", seed=2)
    x = make_input((3, 2, 40)).to(DEVICE).requires_grad_(True)
    params = {k: v.detach().to(DEVICE).requires_grad_(True) for k, v in params.items()}
    spikes, v, m = multistep_triton(x, **params, spec=spec)
    (spikes.sum() + v.sum() + m.sum()).backward()
    assert x.grad is not None and params["thr_coef"].grad is not None


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the interpreter's NumPy on inf input
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_finite_check(bad, dtype):
    """With the deferred check (as inside LitSNN) the Triton forward flags NaN/inf while it reads x:
    no extra pass. The flag ORs over calls until read, and the outputs are those of an unchecked call."""
    neuron = create_neuron("ar_lif", backend="triton").to(DEVICE)
    neuron.defer_finite_check = True
    clean = make_input((3, 2, 1030), seed=4).to(DEVICE, dtype)
    neuron(clean * 100)
    assert neuron.nonfinite_input().item() is False
    x = clean.clone()
    x[1, 1, 1029] = bad  # in the last, partial block
    neuron(clean)
    neuron(x)
    assert neuron.nonfinite_input().item() is True
    assert neuron.nonfinite_input() is None
    spec, params = make_params("lif")
    params = {k: v.detach().to(DEVICE) for k, v in params.items()}
    checked = multistep_triton(clean, **params, spec=spec, check_finite=True)
    plain = multistep_triton(clean, **params, spec=spec)
    assert len(checked) == 4 and checked[3].tolist() == [0]
    for a, b in zip(checked[:3], plain):
        assert torch.equal(a, b)


def test_fused_finite_check_compiles():
    spec, params = make_params("lif")
    params = {k: v.detach().to(DEVICE) for k, v in params.items()}
    x = make_input((3, 2, 50)).to(DEVICE)
    x[2, 0, 7] = float("nan")

    def f(x):
        spikes, _, _, flag = multistep_triton(x, **params, spec=spec, check_finite=True)
        return spikes.sum(), flag

    _, flag = torch.compile(f, backend="aot_eager", fullgraph=True)(x)
    assert flag.tolist() == [1]
