"""The CPU path (``lit_snn.neurons.cpu``) against the PyTorch reference (the spec): outputs, final
states and every gradient, for every preset and every axis combination the kernel tests cover.

The comparisons run in float64, where no neuron sits within rounding of a threshold, a rounding
point or a surrogate's edge, so spikes must be equal and everything else equal to 1e-9; a few fp32
and half-precision checks follow.

The ``numba`` fixture runs a test on the numba kernels (``scan.USE_NUMBA``, the switch of
``multistep_cpu`` and of PSN's ``parallel_cpu`` both, whatever ``LIT_SNN_CPU_NUMBA`` says); with
numba off (the switch, or numba not importable) the CPU path is the reference itself
(``test_numba_off_runs_the_reference``).
"""

import importlib.util
import math
import re
import warnings

import pytest
import torch
from axis_cases import axis_cases

from lit_snn.neurons import KernelSpec, create_neuron, list_neurons, multistep_reference, neuron_config
from lit_snn.neurons.cpu import multistep_cpu, parallel_cpu, scratch
from lit_snn.neurons.cpu import parallel as cpu_parallel
from lit_snn.neurons.cpu import scan as cpu_scan
from lit_snn.neurons.cpu.scan import uses_numba
from lit_snn.neurons.parallel import init_parallel_params, parallel_reference
from lit_snn.neurons.reference import PARAM_NAMES

SCAN_PRESETS = [name for name in list_neurons() if neuron_config(name).decay != "parallel"]
SIZES = {  # readable id -> input shape [T, ...]: T in {1, 3, 8}, odd sizes, conv and linear layouts
    "T1-N1": (1, 1),
    "T3-B2C5H7W3": (3, 2, 5, 7, 3),
    "T8-B3F37": (8, 3, 37),
}


# --------------------------------------------------------------------------------------------- helpers
@pytest.fixture
def numba(monkeypatch):
    """Run the test on the numba kernels (``scan.USE_NUMBA``: ``multistep_cpu``'s and ``parallel_cpu``'s switch)."""
    monkeypatch.setattr(cpu_scan, "USE_NUMBA", True)
    monkeypatch.setattr(cpu_scan, "_NUMBA_BROKEN", None)
    assert cpu_parallel.uses_numba()


def make_case(cfg, shape, channels=None, seed=0, dtype=torch.float64):
    """(spec, effective parameters as leaves, input, output cotangents) with learnables nudged randomly."""
    if channels is not None:
        cfg = cfg.replace(granularity="channel", channels=channels)
    neuron = create_neuron(cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in neuron.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=gen))
    params = {k: v.detach().to(dtype) for k, v in neuron.effective_params().items()}
    x = (torch.randn(shape, generator=gen, dtype=torch.float64) * 1.5 + 0.5).to(dtype)
    cot = [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype) for s in (shape, shape[1:], shape[1:])]
    return KernelSpec.from_config(cfg), params, x, cot


def run(fn, spec, params, x, cot, state_grads=True):
    """[spikes, V_T, M_T, dL/dx, dL/d(each parameter)] of one weighted loss (None gradients as zeros)."""
    x = x.clone().requires_grad_(True)
    params = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    spikes, v, m = fn(x, **params, spec=spec)
    loss = (spikes * cot[0]).sum()
    if state_grads:
        loss = loss + (v * cot[1]).sum() + (m * cot[2]).sum()
    inputs = [x, *params.values()]
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    grads = [torch.zeros_like(i) if g is None else g for g, i in zip(grads, inputs)]
    return [spikes.detach(), v.detach(), m.detach(), *grads]


def assert_matches_reference(spec, params, x, cot, state_grads=True):
    ours = run(multistep_cpu, spec, params, x, cot, state_grads)
    ref = run(multistep_reference, spec, params, x, cot, state_grads)
    names = ("spikes", "v_final", "m_final", "grad x") + tuple(f"grad {n}" for n in PARAM_NAMES)
    assert torch.equal(ours[0], ref[0]), f"spikes differ at {(ours[0] != ref[0]).sum().item()} places"
    for name, a, b in zip(names[1:], ours[1:], ref[1:]):
        scale = max(b.abs().max().item(), 1.0) if b.numel() else 1.0
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9 * scale, msg=lambda m, n=name: f"{n}: {m}")


# --------------------------------------------------------------------------------------------- presets
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("preset", SCAN_PRESETS)
def test_preset_matches_reference(preset, size, numba):
    spec, params, x, cot = make_case(neuron_config(preset), SIZES[size], seed=len(preset))
    assert_matches_reference(spec, params, x, cot)


@pytest.mark.parametrize("preset", ["ar_lif", "da_lif", "ib_ra_lif", "plif", "klif", "alif"])
def test_preset_per_channel(preset, numba):
    spec, params, x, cot = make_case(neuron_config(preset), (4, 3, 6, 5, 3), channels=6, seed=3)
    assert_matches_reference(spec, params, x, cot)


@pytest.mark.parametrize("preset", ["ar_lif", "da_lif", "i_lif"])
def test_spike_loss_only_and_mixed_granularity(preset, numba):
    """A loss on the spikes alone (the final states' gradients never materialise), and a per-layer
    threshold beside per-channel parameters."""
    spec, params, x, cot = make_case(neuron_config(preset), (5, 2, 4, 3, 3), channels=4, seed=5)
    params["vth"] = params["vth"][:1].clone()
    assert_matches_reference(spec, params, x, cot, state_grads=False)


# --------------------------------------------------------------------------------------------- axes
@pytest.mark.parametrize("fields,channel", axis_cases())
def test_axis_combination(fields, channel, numba):
    spec, params, x, cot = make_case(neuron_config("lif", **fields), (5, 3, 5, 7, 3), channels=5 if channel else None,
                                     seed=7)
    assert_matches_reference(spec, params, x, cot)


# --------------------------------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("preset", ["lif", "ar_lif", "i_lif", "ib_ra_lif"])
def test_float32_matches_reference_but_for_near_ties(preset, numba):
    """fp32 against the float64 reference on the same (fp32) values: the neurons whose spikes agree
    at every step (all but a few near ties) agree in everything, to fp32 accuracy."""
    spec, params, x, cot = make_case(neuron_config(preset), (6, 4, 13, 11), seed=2, dtype=torch.float32)
    with torch.no_grad():
        ref_spikes = multistep_reference(x.double(), **{k: v.double() for k, v in params.items()}, spec=spec)[0]
        ours_spikes = multistep_cpu(x, **params, spec=spec)[0]
    agree = ((ours_spikes.double() - ref_spikes).abs() < 1e-6).all(0)  # [B, ...] neurons (levels k/N in fp32)
    assert agree.float().mean() > 0.99
    masked = [cot[0] * agree, cot[1] * agree, cot[2] * agree]
    ours = run(multistep_cpu, spec, params, x, masked)
    ref = run(multistep_reference, spec, {k: v.double() for k, v in params.items()}, x.double(),
              [c.double() for c in masked])
    for a, b in zip(ours[1:], ref[1:]):
        a = a * agree if a.shape[-agree.dim():] == agree.shape else a
        b = b * agree if b.shape[-agree.dim():] == agree.shape else b
        scale = max(b.abs().max().item(), math.sqrt(x.numel()))
        torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_computes_in_float32(dtype, numba):
    """bf16/fp16 in and out, fp32 inside: exactly the fp32 path on the rounded input, rounded."""
    spec, params, x, cot = make_case(neuron_config("ar_lif"), (4, 2, 3, 5), seed=4, dtype=torch.float32)
    low = x.to(dtype)
    ours = run(multistep_cpu, spec, params, low, [c.to(dtype) for c in cot])
    wide = run(multistep_cpu, spec, params, low.float(), [c.to(dtype).float() for c in cot])
    assert ours[0].dtype == ours[1].dtype == ours[3].dtype == dtype
    for a, b in zip(ours[:4], wide[:4]):
        assert torch.equal(a, b.to(dtype))


# --------------------------------------------------------------------------------------------- PSN
def assert_parallel_matches_reference(x, surrogate="atan", param=2.0, losses=("spikes", "h"), seed=None):
    """parallel_cpu against parallel_reference (float64): spikes equal, h_last and the gradients of
    x, W and B to 1e-10, for a loss on the named outputs."""
    T = x.shape[0]
    weight, threshold = init_parallel_params(T, dtype=torch.float64)
    gen = torch.Generator().manual_seed(T if seed is None else seed)
    with torch.no_grad():
        weight.add_(0.1 * torch.randn(weight.shape, generator=gen, dtype=torch.float64))
        threshold.add_(0.2 * torch.randn(threshold.shape, generator=gen, dtype=torch.float64))
    gs, gh = torch.randn(x.shape, generator=gen, dtype=torch.float64), torch.randn(x.shape[1:], generator=gen,
                                                                                   dtype=torch.float64)
    results = []
    for fn in (parallel_cpu, parallel_reference):
        leaves = [t.clone().requires_grad_(True) for t in (x, weight, threshold)]
        spikes, h_last = fn(*leaves, surrogate, param)
        loss = ((spikes * gs).sum() if "spikes" in losses else 0) + ((h_last * gh).sum() if "h" in losses else 0)
        grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, leaves)]
        results.append([spikes.detach(), h_last.detach(), *grads])
    assert torch.equal(results[0][0], results[1][0])
    for name, a, b in zip(("h_last", "grad x", "grad W", "grad B"), results[0][1:], results[1][1:]):
        scale = max(b.abs().max().item(), 1.0) if b.numel() else 1.0
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10 * scale, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("with_h_grad", [True, False], ids=["h-grad", "spikes-only"])
@pytest.mark.parametrize("T", [1, 3, 8])
def test_parallel_matches_reference(T, with_h_grad, numba):
    gen = torch.Generator().manual_seed(T)
    x = torch.randn(T, 3, 5, 7, generator=gen, dtype=torch.float64)
    assert_parallel_matches_reference(x, losses=("spikes", "h") if with_h_grad else ("spikes",))
    spikes, _ = parallel_cpu(x.clone().requires_grad_(True), *init_parallel_params(T, dtype=torch.float64))
    assert type(spikes.grad_fn).__name__ == "_NumbaParallelBackward"


@pytest.mark.parametrize("surrogate,param", [("rectangle", 1.0), ("triangle", 1.5), ("sigmoid", 4.0),
                                             ("atan", 2.0)])
def test_parallel_surrogates_and_h_loss_only(surrogate, param, numba):
    x = torch.randn(4, 2, 3, 11, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert_parallel_matches_reference(x, surrogate, param)
    assert_parallel_matches_reference(x, surrogate, param, losses=("h",))


def test_parallel_half_precision_computes_in_float32(numba):
    """bf16 in and out, fp32 inside: exactly the fp32 path on the rounded input, rounded."""
    T = 4
    weight, threshold = init_parallel_params(T)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(T, 2, 3, 5, generator=gen).to(torch.bfloat16)
    gs = torch.randn(x.shape, generator=gen).to(torch.bfloat16)
    out = []
    for xi in (x, x.float()):
        xi = xi.clone().requires_grad_(True)
        spikes, h_last = parallel_cpu(xi, weight, threshold)
        (gx,) = torch.autograd.grad((spikes * gs.to(xi.dtype)).sum(), xi)
        out.append((spikes, h_last, gx))
    assert out[0][0].dtype == out[0][1].dtype == out[0][2].dtype == torch.bfloat16
    for a, b in zip(*out):
        assert torch.equal(a, b.to(torch.bfloat16))


# --------------------------------------------------------------------------------------------- module
@pytest.mark.parametrize("channels", [None, 4], ids=["layer", "channel"])
@pytest.mark.parametrize("shape", [(3, 2, 4, 5), (1, 1, 4, 1), (5, 3, 4, 97)], ids=["T3", "T1-N4", "T5-N1164"])
def test_gated_input_matches_glif_input(shape, channels, numba):
    """GLIF's gated input folded into the scan (``input_gain``, ``input_bias``) against the reference
    on ``gated_input(x)`` (what ``glif_input`` computes): outputs and the gradients of x, every
    parameter, the gain and the bias."""
    from lit_snn.neurons.cpu.scan import gated_input

    spec, params, x, cot = make_case(neuron_config("glif"), shape, channels=channels, seed=9)
    P = 1 if channels is None else channels
    gen = torch.Generator().manual_seed(4)
    gain = (torch.rand(shape[0], P, generator=gen, dtype=torch.float64) * 0.8 + 0.2)
    bias = -torch.rand(P, generator=gen, dtype=torch.float64) * 0.3

    def gated(fn):
        def call(x, gain, bias, spec, **params):
            if fn is multistep_cpu:
                return fn(x, **params, spec=spec, input_gain=gain, input_bias=bias)
            return fn(gated_input(x, gain, bias), **params, spec=spec)
        return call

    results = []
    for fn in (multistep_cpu, multistep_reference):
        xs = x.clone().requires_grad_(True)
        leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
        g, b = gain.clone().requires_grad_(True), bias.clone().requires_grad_(True)
        spikes, v, m = gated(fn)(xs, g, b, spec, **leaves)
        loss = (spikes * cot[0]).sum() + (v * cot[1]).sum() + (m * cot[2]).sum()
        inputs = [xs, g, b, *leaves.values()]
        grads = torch.autograd.grad(loss, inputs, allow_unused=True)
        results.append([spikes.detach(), v.detach()] + [torch.zeros_like(i) if d is None else d
                                                        for d, i in zip(grads, inputs)])
    assert torch.equal(results[0][0], results[1][0])
    for a, b in zip(results[0][1:], results[1][1:]):
        scale = max(b.abs().max().item(), 1.0)
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9 * scale)


@pytest.mark.parametrize("preset", ["lif", "ar_lif", "ib_ra_lif", "glif", "psn"])
@pytest.mark.parametrize("channels", [None, 4], ids=["layer", "channel"])
def test_module_cpu_backend_matches_torch(preset, channels, numba):
    """The neuron module on backend ``cpu`` and ``torch`` (float64): spikes and every parameter's
    gradient, through GLIF's gated input and PSN's parallel path too, per layer and per channel."""
    if channels is not None and preset == "psn":
        pytest.skip("PSN has no per-channel parameters")
    steps = {"time_steps": 3} if neuron_config(preset).needs_time_steps else {}
    if channels is not None:
        steps.update(granularity="channel", channels=channels)
    torch.manual_seed(0)
    ref = create_neuron(preset, backend="torch", **steps).double()
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.2 * torch.randn_like(p))
    ours = create_neuron(preset, backend="cpu", **steps).double()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(3, 2, 4, 5, dtype=torch.float64) * 1.5 + 0.5
    weight = torch.randn_like(x)
    out = []
    for neuron in (ours, ref):
        xi = x.clone().requires_grad_(True)
        s = neuron(xi)
        (s * weight).sum().backward()
        out.append([s.detach(), xi.grad] + [p.grad for p in neuron.parameters()])
    assert torch.equal(out[0][0], out[1][0])
    for a, b in zip(out[0][1:], out[1][1:]):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_auto_picks_the_cpu_path_for_storage_dtypes():
    neuron = create_neuron("lif")
    assert neuron.backend_for(torch.zeros(2, 3)) == "cpu"
    assert neuron.backend_for(torch.zeros(2, 3, dtype=torch.bfloat16)) == "cpu"
    assert neuron.backend_for(torch.zeros(2, 3, dtype=torch.float64)) == "torch"  # gradient checks: the oracle
    assert create_neuron("lif", backend="cpu").backend_for(torch.zeros(2, 3, dtype=torch.float64)) == "cpu"
    assert create_neuron("lif", backend="torch").backend_for(torch.zeros(2, 3)) == "torch"


def test_nan_input_still_names_the_layer():
    """The deferred finite check on the CPU path: a NaN input (silenced by the threshold, so the loss
    stays finite) stops training naming the layer, and the check records no autograd node."""
    from lit_snn.module import LitSNN

    model = LitSNN(num_classes=10, in_channels=1)
    neuron = model.net.features[2]
    x = torch.rand(4, 1, 8, 8)
    assert neuron.backend_for(x) == "cpu"
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match=r"train: the input of neuron layer net\.features\.2 contains NaN"):
        model.training_step((x, torch.zeros(4, dtype=torch.long)), 0)
    layer = create_neuron("lif")
    layer.defer_finite_check = True
    layer(torch.randn(3, 2, 5, requires_grad=True))
    flag = layer.nonfinite_input()
    assert flag.grad_fn is None and flag.item() is False  # one reduction, outside the autograd graph
    with pytest.raises(ValueError, match="lif: input contains NaN"):
        create_neuron("lif")(torch.full((2, 3), float("nan")))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("preset", sorted(list_neurons()))
def test_nonfinite_input_is_caught_at_every_step(preset, bad):
    """Every preset on the CPU path refuses a NaN/inf at the first, a middle and the last step,
    directly and deferred, including the variants whose check reads V_T instead of x
    (``nonfinite_reaches_state``: this is the test of that argument), and passes finite inputs,
    also huge ones. The rate of the neuron with the bad value decides nothing: one neuron among many."""
    steps = {"time_steps": 5} if neuron_config(preset).needs_time_steps else {}
    layer = create_neuron(preset, **steps)
    torch.manual_seed(3)
    x = torch.randn(5, 2, 3, 4) * 2
    assert layer.backend_for(x) == "cpu"
    for t in (0, 2, 4):
        xb = x.clone()
        xb[t, 1, 2, 3] = bad
        with pytest.raises(ValueError, match=f"{layer.name}: input contains {'NaN' if bad != bad else 'inf'}"):
            layer(xb)
        layer.defer_finite_check = True
        layer(xb)
        assert layer.nonfinite_input().item() is True
        layer.defer_finite_check = False
    for finite in (x, x * 1e30):
        layer(finite)
        layer.defer_finite_check = True
        layer(finite)
        assert layer.nonfinite_input().item() is False
        layer.defer_finite_check = False


def test_state_check_covers_the_simple_variants_only():
    """The V_T check stands for the x check exactly where the argument holds: lif-like resets on the
    numba path; not KLIF's relu slope, adaptive thresholds or resets, GLIF's gate."""
    reads_state = {p for p in list_neurons() if cpu_scan.nonfinite_reaches_state(create_neuron(
        p, **({"time_steps": 3} if neuron_config(p).needs_time_steps else {})).spec)}
    assert {"lif", "plif", "hard_lif", "soft_lif", "da_lif", "i_lif", "ib_ra_lif"} <= reads_state
    assert not reads_state & {"klif", "ar_lif", "ar_lif_dvs", "alif", "clif", "glif"}


# --------------------------------------------------------------------------------------------- numba off
def _outputs_and_grads(neuron, x, weight):
    xi = x.clone().requires_grad_(True)
    s = neuron(xi)
    (s * weight).sum().backward()
    return [s.detach(), xi.grad] + [p.grad for p in neuron.parameters()]


@pytest.mark.parametrize("preset", ["ar_lif", "glif", "psn"])
def test_numba_off_runs_the_reference(preset, monkeypatch):
    """``LIT_SNN_CPU_NUMBA=0``: ``backend: auto`` on fp32 CPU tensors is the PyTorch reference itself,
    through GLIF's gated input and PSN's parallel path too: bitwise what ``backend: torch`` computes,
    and no numba Function in the graph."""
    monkeypatch.setattr(cpu_scan, "USE_NUMBA", False)
    steps = {"time_steps": 3} if neuron_config(preset).needs_time_steps else {}
    torch.manual_seed(1)
    ours = create_neuron(preset, **steps)
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(0.2 * torch.randn_like(p))
    ref = create_neuron(preset, backend="torch", **steps)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(3, 2, 4, 5) * 1.5 + 0.5
    assert ours.backend_for(x) == "cpu"
    spikes = ours(x.clone().requires_grad_(True))
    assert "Numba" not in type(spikes.grad_fn).__name__
    weight = torch.randn_like(x)
    for a, b in zip(_outputs_and_grads(ours, x, weight), _outputs_and_grads(ref, x, weight)):
        assert torch.equal(a, b)


def test_numba_that_does_not_import_runs_the_reference_with_a_warning(monkeypatch):
    """numba installed but broken (or a Python it does not support): one warning, then the reference
    for the scan and for PSN."""
    from lit_snn.neurons.cpu import numba_scan

    def broken():
        raise ImportError("numba needs a Python < 3.99")

    monkeypatch.setattr(cpu_scan, "USE_NUMBA", True)
    monkeypatch.setattr(cpu_scan, "_NUMBA_BROKEN", None)
    monkeypatch.setattr(numba_scan, "kernels", broken)
    spec, params, x, cot = make_case(neuron_config("ar_lif"), (4, 2, 3, 5), dtype=torch.float32)
    with pytest.warns(RuntimeWarning, match=r"numba unavailable .*numba needs a Python < 3\.99.*PyTorch reference"):
        ours = run(multistep_cpu, spec, params, x, cot)
    assert not uses_numba(spec) and not cpu_parallel.uses_numba()
    for a, b in zip(ours, run(multistep_reference, spec, params, x, cot)):
        assert torch.equal(a, b)
    weight, threshold = init_parallel_params(4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once, not on every call
        spikes, h_last = parallel_cpu(x, weight, threshold)
        run(multistep_cpu, spec, params, x, cot)
    ref_spikes, ref_h = parallel_reference(x, weight, threshold)
    assert torch.equal(spikes, ref_spikes) and torch.equal(h_last, ref_h)


# --------------------------------------------------------------------------------------------- memory
@pytest.mark.parametrize("preset", SCAN_PRESETS)
def test_memory_kept_for_the_backward(preset, numba):
    """Saved for the backward: the parameters and one tensor of x's size, x itself or, in its place,
    the charge U (``numba_scan.SAVE_CHARGE``: lif-like variants without parameter gradients), where
    the reference keeps 1-11 tensors of x's size."""
    spec, params, x, _ = make_case(neuron_config(preset), (4, 2, 3, 5), dtype=torch.float32)
    x.requires_grad_(True)
    alive = {t.untyped_storage().data_ptr() for t in params.values()}
    kept = {}

    def pack(t):
        if t.untyped_storage().data_ptr() not in alive:
            kept[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        multistep_cpu(x, **params, spec=spec)
    assert uses_numba(spec)
    assert list(kept.values()) == [x.untyped_storage().nbytes()]


def test_outputs_never_share_the_scratch_pool(numba):
    """A second call (forward and backward) leaves the first call's outputs and gradients untouched."""
    spec, params, x, cot = make_case(neuron_config("ar_lif"), (4, 2, 3, 5), dtype=torch.float32)
    first = run(multistep_cpu, spec, params, x, cot)
    kept = [t.clone() for t in first]
    run(multistep_cpu, spec, params, x * 2 + 1, cot)
    for a, b in zip(first, kept):
        assert torch.equal(a, b)
    scratch.release()


# --------------------------------------------------------------------------------------------- bench
def test_bench_cpu_mode_prints_its_columns(capsys):
    """``lit-snn bench --device cpu`` (tiny sizes, one round, one thread): every column's time,
    ratio, memory and ``same`` per preset; our eager reference computes exactly ours."""
    pytest.importorskip("spikingjelly.activation_based.neuron")
    from lit_snn.bench import main

    presets = ["lif", "hard_lif", "i_lif", "psn"]
    argv = ["--device", "cpu", "--presets", ",".join(presets), "--T", "3", "--shape", "2,3,4,4",
            "--threads", "1", "--rounds", "1", "--columns", "ours,eager,sj,snntorch"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "threads: 1" in out and "failed" not in out
    for name in ("ours ms", "eager ms", "sj ms", "snntorch ms", "xeager", "xsj", "ours MiB", "eager MiB",
                 "same eager", "same sj", "same snntorch"):
        assert name in out, name
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1] in [[p] for p in presets]}
    assert sorted(rows) == sorted(presets)
    for fields in rows.values():
        times = fields[4:8]  # ours, eager, sj, snntorch (ms)
        assert all(float(t) > 0 for t in times[:2]), fields
        assert fields[-3] == "100.00%", fields  # same eager
    if importlib.util.find_spec("snntorch") is not None:  # snnTorch's Leaky is hard_lif
        assert rows["hard_lif"][7] != "n/a" and rows["hard_lif"][-1] == "100.00%", rows["hard_lif"]
    assert "[lif fp32 T=3] snntorch: n/a" in out


def test_bench_backward_prints_fused_against_general_and_the_copy_fraction(capsys, monkeypatch):
    """``lit-snn bench --backward`` (tiny sizes, one round): each fused preset and lif's/plif's other
    surrogates timed both ways with the ratios of the backward and of forward + backward, lif's
    forward + backward as a fraction of the copy bandwidth, a verdict line; the fused switch is
    left as it was. Presets without a fused backward, or the numba path off, are refused in one
    line (exit 2)."""
    from lit_snn.bench import main
    from lit_snn.neurons.cpu import numba_scan

    monkeypatch.setattr(cpu_scan, "USE_NUMBA", True)
    argv = ["--backward", "--presets", "lif,plif", "--T", "3", "--shape", "2,3,5", "--threads", "1", "--rounds", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()
            if len(line.split()) == 5 and line.split()[0].split(":")[0] in ("lif", "plif")}
    cases = {"lif", "plif"} | {f"{p}:{s}" for p in ("lif", "plif") for s in ("rectangle", "triangle", "atan")}
    assert set(rows) == cases
    for fused, general, ratio, with_forward in rows.values():
        assert float(fused) > 0 and float(general) > 0 and float(ratio) > 0 and float(with_forward) > 0
    assert re.search(r"^lif forward \+ backward [\d.]+ ms: 5 x [\d.]+ MiB at \d+% of the copy bandwidth", out, re.M)
    assert "every fused backward took at most" in out or "fused backward slower than the general adjoint" in out
    assert numba_scan.FUSED_BACKWARD is True
    assert main(["--backward", "--presets", "ar_lif"]) == 2
    assert "ar_lif has none" in capsys.readouterr().out
    monkeypatch.setattr(cpu_scan, "USE_NUMBA", False)
    assert main(argv) == 2
    assert "the numba CPU path is off" in capsys.readouterr().out
