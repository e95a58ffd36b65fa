"""The numba path of ``multistep_cpu`` (``cpu/numba_scan.py``, ``cpu/numba_kernels.py``): that it
covers every scan preset (no silent fallback to the reference), that it is the one running, and
the shapes its chunking must get right. Its equivalence to the reference on every preset and axis
is ``test_cpu_path.py``'s, as is the switch to the reference with numba off."""

import pytest
import torch
from test_cpu_path import SCAN_PRESETS, assert_matches_reference, make_case

from lit_snn.memory_layout import dense_copy
from lit_snn.neurons import KernelSpec, create_neuron, multistep_reference, neuron_config
from lit_snn.neurons.cpu import multistep_cpu, numba_scan
from lit_snn.neurons.cpu import scan as cpu_scan
from lit_snn.neurons.cpu.numba_scan import NumbaScan, numba_supports
from lit_snn.neurons.reference import PARAM_NAMES

numba_kernels = pytest.importorskip("lit_snn.neurons.cpu.numba_kernels")


@pytest.fixture
def numba_on(monkeypatch):
    monkeypatch.setattr(cpu_scan, "USE_NUMBA", True)


@pytest.mark.parametrize("preset", SCAN_PRESETS)
def test_every_scan_preset_is_supported(preset):
    assert numba_supports(KernelSpec.from_config(neuron_config(preset)))


def test_unsupported_combination_falls_back():
    """A spike-adaptive threshold with a second-state reset (the Triton kernel rejects it too)."""
    assert not numba_supports(KernelSpec(reset="adaptive", spike_adaptive_threshold=True))


def test_named_rows_follow_the_tables():
    """The kernels' parameter rows are ``PARAM_NAMES``' order (the table ``_table`` builds), their flag
    indices ``variant_args``' order, and each kernel's named ``work`` rows are distinct and fit ``WORK_ROWS``."""
    assert [getattr(numba_kernels, "P_" + name.upper()) for name in PARAM_NAMES] == list(range(len(PARAM_NAMES)))
    assert numba_kernels.NUM_PARAMS == numba_scan.NUM_PARAMS
    spec = KernelSpec(reset="complementary", adaptive_threshold=True, integer=True, slope=True, detach_reset=True)
    flags = numba_scan.variant_args(spec)[0]
    assert flags[numba_kernels.FLAG_RESET] == numba_scan.RESET_IDS["complementary"]
    k = numba_kernels
    assert flags[k.FLAG_THRESHOLD] == flags[k.FLAG_INTEGER] == flags[k.FLAG_SLOPE] == 1
    assert flags[numba_kernels.FLAG_DETACH_RESET] == flags[numba_kernels.FLAG_MEMORY_CARRY] == 1
    for prefix in ("FWD_", "BWD_"):
        rows = []
        for name in dir(numba_kernels):
            if name.startswith(prefix):
                first = getattr(numba_kernels, name)
                block = name in (prefix + "PRM", "BWD_ACC")  # NUM_PARAMS rows from there
                rows += range(first, first + numba_kernels.NUM_PARAMS) if block else [first]
        assert len(rows) == len(set(rows)) and max(rows) < numba_kernels.WORK_ROWS, prefix
    traj = [getattr(numba_kernels, n) for n in dir(numba_kernels) if n.startswith("TRAJ_") and n != "TRAJ_ROWS"]
    assert sorted(traj) == list(range(numba_kernels.TRAJ_ROWS))


@pytest.mark.parametrize("preset", SCAN_PRESETS)
def test_numba_path_is_the_one_running(preset, numba_on, monkeypatch):
    spec, params, x, _ = make_case(neuron_config(preset), (3, 2, 4, 5), dtype=torch.float32)
    x.requires_grad_(True)
    calls = []
    for module, name in ((numba_scan.kernels(), "scan_forward"), (numba_scan.long_kernels(), "long_forward")):
        def counting(*args, forward=getattr(module, name)):
            calls.append(1)
            return forward(*args)

        monkeypatch.setattr(module, name, counting)
    spikes, _, _ = multistep_cpu(x, **params, spec=spec)
    assert calls and type(spikes.grad_fn).__name__ == NumbaScan.__name__ + "Backward"


CHUNK = numba_kernels.CHUNK
ODD_SIZES = {  # N not a multiple of the chunk, T = 1 and 7, per layer and per channel (channel = dim 2)
    "T1-N1": ((1, 1), None),
    "T7-one-chunk-and-a-bit": ((7, CHUNK + 3), None),
    "T1-three-chunks-minus-one": ((1, 3 * CHUNK - 1), None),
    "T7-channel-S-straddles-chunks": ((7, 3, 5, 7, 11), 5),  # 1155 neurons, a channel's run crosses chunk edges
    "T2-channel-many-chunks": ((2, 4, 3, CHUNK // 2 + 1), 3),
}


@pytest.mark.parametrize("size", list(ODD_SIZES))
@pytest.mark.parametrize("preset", ["lif", "ar_lif", "ar_lif_dvs", "i_lif", "clif", "alif", "klif", "glif", "plif"])
def test_odd_sizes_match_reference(preset, size, numba_on):
    shape, channels = ODD_SIZES[size]
    if channels is None and len(shape) == 2:
        spec, params, x, cot = make_case(neuron_config(preset), shape, seed=11)
    else:
        spec, params, x, cot = make_case(neuron_config(preset), shape, channels=channels, seed=11)
    assert_matches_reference(spec, params, x, cot)


@pytest.mark.parametrize("preset", ["lif", "ar_lif", "ib_ra_lif", "clif"])
def test_float32_against_the_float32_reference(preset, numba_on):
    """fp32: the numba path and the reference in fp32 agree to fp32 rounding (their spikes all but
    everywhere: only a neuron within an ulp of its threshold may differ)."""
    spec, params, x, cot = make_case(neuron_config(preset), (7, 3, 6, 29), channels=6, seed=1, dtype=torch.float32)
    from test_cpu_path import run

    ours = run(multistep_cpu, spec, params, x, cot)
    ref = run(multistep_reference, spec, params, x, cot)
    assert (ours[0] != ref[0]).float().mean() < 1e-3
    if torch.equal(ours[0], ref[0]):
        for a, b in zip(ours[1:], ref[1:]):
            scale = max(b.abs().max().item(), 1.0)
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * scale)


def test_no_gradient_wanted_for_parameters(numba_on):
    """Only x requires grad: no parameter gradient is accumulated, dL/dx as the reference's."""
    spec, params, x, cot = make_case(neuron_config("ar_lif"), (4, 2, 3, 5), seed=2)
    xs = [x.clone().requires_grad_(True) for _ in range(2)]
    for fn, xi in zip((multistep_cpu, multistep_reference), xs):
        s, v, m = fn(xi, **params, spec=spec)
        ((s * cot[0]).sum() + (v * cot[1]).sum() + (m * cot[2]).sum()).backward()
    torch.testing.assert_close(xs[0].grad, xs[1].grad, rtol=1e-9, atol=1e-9)



# ------------------------------------------------------------------- the simple variants' fused backward
SIMPLE_PRESETS = ["lif", "plif", "hard_lif", "da_lif", "soft_lif", "i_lif", "ib_ra_lif", "klif"]
FUSED_SIZES = {  # T = 1 and 7, N not a multiple of the chunk, per layer and per channel
    "T7-one-chunk-and-a-bit": ((7, CHUNK + 3), None),
    "T1-three-chunks-minus-one": ((1, 3 * CHUNK - 1), None),
    "T7-channel-S-straddles-chunks": ((7, 3, 5, 7, 11), 5),
}


def grads_of(spec, params, x, cot, learn, state_grads):
    """[spikes, V_T, M_T, dL/dx, dL/d(each parameter in ``learn``)] of one weighted loss."""
    x = x.clone().requires_grad_(True)
    params = {k: v.clone().requires_grad_(k in learn) for k, v in params.items()}
    spikes, v, m = multistep_cpu(x, **params, spec=spec)
    loss = (spikes * cot[0]).sum()
    if state_grads:
        loss = loss + (v * cot[1]).sum() + (m * cot[2]).sum()
    inputs = [x, *(params[k] for k in learn)]
    return [spikes.detach(), v.detach(), m.detach(), *torch.autograd.grad(loss, inputs)]


def assert_fused_matches_general(monkeypatch, spec, params, x, cot, learn, state_grads=True):
    """The fused backward (``numba_scan.FUSED_BACKWARD``) against the general one, to 1e-12."""
    out = []
    for fused in (True, False):
        monkeypatch.setattr(numba_scan, "FUSED_BACKWARD", fused)
        out.append(grads_of(spec, params, x, cot, learn, state_grads))
    assert torch.equal(out[0][0], out[1][0])
    for a, b in zip(out[0][1:], out[1][1:]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12 * max(b.abs().max().item(), 1.0))


@pytest.mark.parametrize("state_grads", [True, False], ids=["state-grads", "spike-loss-only"])
@pytest.mark.parametrize("size", list(FUSED_SIZES))
@pytest.mark.parametrize("preset", SIMPLE_PRESETS)
def test_fused_backward_matches_general(preset, size, state_grads, numba_on, monkeypatch):
    shape, channels = FUSED_SIZES[size]
    spec, params, x, cot = make_case(neuron_config(preset), shape, channels=channels, seed=13)
    learn = ["alpha", "beta", "vth"] + (["slope"] if spec.slope else [])
    assert_fused_matches_general(monkeypatch, spec, params, x, cot, learn, state_grads)


@pytest.mark.parametrize("learn", [(), ("alpha", "beta"), ("vth",), ("slope",)], ids=["none", "decay", "vth", "slope"])
@pytest.mark.parametrize("surrogate", ["rectangle", "triangle", "sigmoid", "atan"])
@pytest.mark.parametrize("detach", [False, True], ids=["attached", "detached"])
@pytest.mark.parametrize("preset", ["lif", "soft_lif", "klif", "i_lif"])
def test_fused_backward_every_axis(preset, detach, surrogate, learn, numba_on, monkeypatch):
    """Each surrogate (binary), detach_reset on and off, hard and soft reset, binary and integer
    spikes, with a slope, and each set of parameter gradients wanted (none, alpha and beta, vth)."""
    if neuron_config(preset).spike != "binary" and surrogate != "sigmoid":
        pytest.skip("integer spikes have no surrogate")
    cfg = neuron_config(preset).replace(detach_reset=detach, surrogate=surrogate)
    spec, params, x, cot = make_case(cfg, (7, 2, 3, CHUNK // 4 + 5), channels=3, seed=17)
    learn = [k for k in learn if k != "slope" or spec.slope]
    assert_fused_matches_general(monkeypatch, spec, params, x, cot, learn)



# --------------------------------------------------------------------------------------------- threads
@pytest.fixture
def torch_threads():
    """Set torch's thread count (the kernels' thread count follows it); restored afterwards."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.mark.parametrize("pool", ["torch_team", "own_pool"])
@pytest.mark.parametrize("preset", ["lif", "i_lif", "klif", "ar_lif", "clif", "glif", "alif"])
def test_threads_give_identical_results(preset, pool, numba_on, torch_threads, monkeypatch):
    """Forward outputs and every gradient bitwise the same on 1, 2 and 3 threads (a multi-chunk case,
    per channel: each thread's range of chunks writes its own partial sums), on torch's OpenMP team
    and on the kernels' own pool."""
    from lit_snn.neurons.cpu import omp_team

    monkeypatch.setattr(omp_team, "_TEAM", [None] if pool == "own_pool" else [])
    spec, params, x, cot = make_case(neuron_config(preset), (5, 2, 3, 2 * CHUNK + 301), channels=3, seed=19)
    from test_cpu_path import run

    chunks = -(-x[0].numel() // CHUNK)
    general = numba_scan.general_kernel(numba_scan.variant_args(spec)[0])
    assert general == (preset in ("ar_lif", "clif", "glif", "alif"))
    torch_threads(3)
    simple_least, general_least = numba_scan.MIN_ELEMENTS_PER_THREAD["own_pool" if omp_team.team() is None else "team"]
    assert numba_scan.threads_for(chunks, x.numel(), general) == 1  # too little work for a second thread
    assert numba_scan.threads_for(chunks, 3 * simple_least) == 3
    assert numba_scan.threads_for(chunks, 2 * simple_least - 1) == 1
    assert numba_scan.threads_for(chunks, 3 * general_least, general=True) == 3
    assert numba_scan.threads_for(chunks, 2 * general_least - 1, general=True) == 1
    monkeypatch.setitem(numba_scan.MIN_ELEMENTS_PER_THREAD, "team", (0, 0))  # threads on this small case
    monkeypatch.setitem(numba_scan.MIN_ELEMENTS_PER_THREAD, "own_pool", (0, 0))
    out = []
    for threads in (1, 2, 3):
        torch_threads(threads)
        assert numba_scan.threads_for(chunks, x.numel(), general) == threads
        out.append(run(multistep_cpu, spec, params, x, cot))
    for other in out[1:]:
        for a, b in zip(out[0], other):
            assert torch.equal(a, b)


# --------------------------------------------------------------------------------------------- PSN
numba_parallel = pytest.importorskip("lit_snn.neurons.cpu.numba_parallel")
PSN_CHUNK = numba_parallel.CHUNK
PSN_ODD_SIZES = {  # T = 1, 3, 7; N not a multiple of the chunk
    "T1-N1": (1, 1),
    "T1-N31": (1, 31),
    "T3-one-chunk-and-a-bit": (3, PSN_CHUNK + 3),
    "T7-three-chunks-minus-one": (7, 3 * PSN_CHUNK - 1),
    "T7-conv-layout": (7, 3, 5, 7, 11),
    "T3-N74": (3, 2, 37),
}


@pytest.mark.parametrize("size", list(PSN_ODD_SIZES))
def test_psn_odd_sizes_match_reference(size, numba_on):
    from test_cpu_path import assert_parallel_matches_reference

    x = torch.randn(PSN_ODD_SIZES[size], generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    assert_parallel_matches_reference(x, seed=5)
    assert_parallel_matches_reference(x, "sigmoid", 4.0, losses=("spikes",), seed=6)


def test_psn_long_sequence_shrinks_the_chunk(numba_on):
    """T = 40: the backward's chunk shrinks below CHUNK (its scratch stays in L2), still exact."""
    assert numba_parallel.chunk_size(40, 10**6) < PSN_CHUNK
    x = torch.randn(40, 2 * numba_parallel.chunk_size(40, 10**6) + 9, generator=torch.Generator().manual_seed(8),
                    dtype=torch.float64)
    from test_cpu_path import assert_parallel_matches_reference

    assert_parallel_matches_reference(x)


def test_psn_float32_against_the_float32_reference(numba_on):
    """fp32: the numba path and the reference in fp32 agree to fp32 rounding (spikes all but everywhere)."""
    from lit_snn.neurons.cpu import parallel_cpu
    from lit_snn.neurons.parallel import init_parallel_params, parallel_reference

    T = 8
    weight, threshold = init_parallel_params(T)
    gen = torch.Generator().manual_seed(9)
    x = torch.randn(T, 3, 7, 61, generator=gen)
    gs, gh = torch.randn(x.shape, generator=gen), torch.randn(x.shape[1:], generator=gen)
    out = []
    for fn in (parallel_cpu, parallel_reference):
        leaves = [t.clone().requires_grad_(True) for t in (x, weight, threshold)]
        spikes, h_last = fn(*leaves)
        out.append([spikes, h_last, *torch.autograd.grad((spikes * gs).sum() + (h_last * gh).sum(), leaves)])
    assert type(out[0][0].grad_fn).__name__ == "_NumbaParallelBackward"
    assert (out[0][0] != out[1][0]).float().mean() < 1e-3
    if torch.equal(out[0][0], out[1][0]):
        for a, b in zip(out[0][1:], out[1][1:]):
            scale = max(b.abs().max().item(), 1.0)
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("preset", ["lif", "plif", "i_lif", "klif", "ar_lif", "glif", "clif"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_static_input_is_read_once_not_copied(preset, layout, numba_on):
    """A static input (one step expanded over T with stride 0, as ``backbones``' direct encoding): the
    kernels read its one step at every step (``numba_scan._steps_read``). Spikes, V_T, dL/dx and every
    parameter's gradient are bitwise what the same input as a dense [T, ...] copy gives, and what
    autograd keeps for the backward holds no [T, ...] copy of it."""
    steps = {"time_steps": 5} if neuron_config(preset).needs_time_steps else {}
    torch.manual_seed(5)
    y = torch.randn(3, 4, 5, 6) * 1.5 + 0.4  # [B, C, H, W]
    if layout == "channels_last":
        y = y.contiguous(memory_format=torch.channels_last)
    results = []
    for dense in (False, True):
        torch.manual_seed(0)
        neuron = create_neuron(preset, **steps)
        base = y.clone().requires_grad_(True)
        x = base.unsqueeze(0).expand(5, *base.shape)  # [T, B, C, H, W], stride 0 over T
        if dense:
            x = dense_copy(x)  # a [T, ...] copy, its steps in y's layout
            assert x.stride(0) != 0
        kept = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t, kept=kept: kept.append(t) or t, lambda t: t):
            spikes, v_last, _ = neuron.forward_with_state(x)
        ((spikes * torch.linspace(-1, 1, spikes.numel()).view_as(spikes)).sum() + v_last.sum()).backward()
        results.append([spikes, v_last, base.grad, *(p.grad for p in neuron.parameters() if p.grad is not None)])
        if not dense:
            assert all(t.untyped_storage().nbytes() < x.numel() * 4 for t in kept), "a [T, ...] copy was saved"
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)
