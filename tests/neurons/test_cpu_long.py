"""The per-layer simple variants' long-chunk kernels (``cpu/numba_long.py``): the forward on long rows
gives the chunked forward's outputs and gradients bitwise, and the backward from the saved charge U
(``numba_scan.SAVE_CHARGE``) gives the replaying backward's gradients bitwise and the reference's;
U is kept in x's place only where the adjoint needs nothing else."""

import pytest
import torch
from test_cpu_path import make_case

from lit_snn.neurons import multistep_reference, neuron_config
from lit_snn.neurons.cpu import multistep_cpu, numba_scan
from lit_snn.neurons.cpu import scan as cpu_scan

numba_long = pytest.importorskip("lit_snn.neurons.cpu.numba_long")
LONG = numba_long.LONG_CHUNK
LONG_PRESETS = ["lif", "hard_lif", "soft_lif", "i_lif", "ib_ra_lif", "plif", "da_lif"]  # per layer: the long path


@pytest.fixture(autouse=True)
def numba_on(monkeypatch):
    monkeypatch.setattr(cpu_scan, "USE_NUMBA", True)


def outputs(spec, params, x, cot, learn=(), loss="all"):
    """[spikes, V_T, dL/dx, dL/d(each of ``learn``)] of one weighted loss: ``loss`` "all" (spikes and
    V_T), "spikes" (no dL/dV_T reaches the backward) or "state" (no dL/dS)."""
    x = x.clone().requires_grad_(True)
    params = {k: v.clone().requires_grad_(k in learn) for k, v in params.items()}
    spikes, v, _ = multistep_cpu(x, **params, spec=spec)
    terms = {"spikes": [(spikes * cot[0]).sum()], "state": [(v * cot[1]).sum()]}
    total = sum(terms["spikes"] + terms["state"] if loss == "all" else terms[loss])
    grads = torch.autograd.grad(total, [x, *(params[k] for k in learn)])
    return [spikes.detach(), v.detach(), *grads]


def assert_same(a_list, b_list):
    for a, b in zip(a_list, b_list, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("preset", LONG_PRESETS)
def test_long_forward_equals_the_chunked_forward(preset, monkeypatch):
    """Two long chunks and a bit (N = 2 LONG + 3), T = 3: spikes, V_T and every gradient bitwise those
    of ``scan_forward``'s chunks of 1024 (with the replaying backward on both sides)."""
    spec, params, x, cot = make_case(neuron_config(preset), (3, 2 * LONG + 3), seed=3, dtype=torch.float32)
    monkeypatch.setattr(numba_scan, "SAVE_CHARGE", False)
    long = outputs(spec, params, x, cot, learn=("alpha", "beta", "vth"))
    monkeypatch.setattr(numba_scan, "long_path", lambda *args: False)
    assert_same(long, outputs(spec, params, x, cot, learn=("alpha", "beta", "vth")))


@pytest.mark.parametrize("loss", ["all", "spikes", "state"])
@pytest.mark.parametrize("preset", ["lif", "hard_lif", "soft_lif", "i_lif", "ib_ra_lif"])
def test_saved_charge_backward_equals_the_replay(preset, loss, monkeypatch):
    """dL/dx from the saved U bitwise the replaying backward's (float32: the vectorised exp; N across
    two long chunks), with and without a spike or a state cotangent."""
    spec, params, x, cot = make_case(neuron_config(preset), (4, 2, 3, LONG // 6 + 5), seed=5, dtype=torch.float32)
    saved = outputs(spec, params, x, cot, loss=loss)
    monkeypatch.setattr(numba_scan, "SAVE_CHARGE", False)
    assert_same(saved, outputs(spec, params, x, cot, loss=loss))


@pytest.mark.parametrize("surrogate", ["rectangle", "triangle", "sigmoid", "atan"])
@pytest.mark.parametrize("detach", [False, True], ids=["attached", "detached"])
@pytest.mark.parametrize("preset", ["lif", "soft_lif", "i_lif"])
def test_saved_charge_backward_matches_the_reference(preset, detach, surrogate):
    """float64 against the PyTorch reference to 1e-6: every surrogate, detach_reset on and off, hard
    and soft reset, binary and integer spikes."""
    cfg = neuron_config(preset).replace(detach_reset=detach)
    if cfg.spike == "binary":
        cfg = cfg.replace(surrogate=surrogate)
    elif surrogate != "sigmoid":
        pytest.skip("integer spikes have no surrogate")
    spec, params, x, cot = make_case(cfg, (5, 3, 7, 11), seed=7)
    ours = outputs(spec, params, x, cot)
    x_ref = x.clone().requires_grad_(True)
    spikes, v, _ = multistep_reference(x_ref, **params, spec=spec)
    ((spikes * cot[0]).sum() + (v * cot[1]).sum()).backward()
    assert torch.equal(ours[0], spikes.detach())
    torch.testing.assert_close(ours[1], v.detach(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ours[2], x_ref.grad, rtol=1e-6, atol=1e-6)


def saved_for_backward(preset, x, learn=()):
    """The tensors the forward of ``preset`` saved (x or U first, then the parameters), ``learn`` requiring grad."""
    spec, params, _, _ = make_case(neuron_config(preset), (3, 2, 5), dtype=x.dtype)
    params = {k: v.requires_grad_(k in learn) for k, v in params.items()}
    spikes, _, _ = multistep_cpu(x, **params, spec=spec)
    return [t for t in spikes.grad_fn.saved_tensors if t is not None]


def test_charge_saved_in_x_place_only_where_the_adjoint_needs_nothing_else():
    x = torch.randn(3, 2, 5, requires_grad=True)
    kept = saved_for_backward("lif", x)  # no parameter gradient: U, x's size, not x
    assert kept[0].numel() == x.numel() and kept[0].data_ptr() != x.data_ptr()
    kept = saved_for_backward("plif", x, learn=("alpha", "beta"))  # alpha's and beta's terms read x and V
    assert kept[0].data_ptr() == x.data_ptr()
    static = torch.randn(1, 2, 5).expand(3, 2, 5).requires_grad_(True)  # U would be T times the one step kept
    assert saved_for_backward("lif", static)[0].shape[0] == 1
    half = torch.randn(3, 2, 5, dtype=torch.bfloat16, requires_grad=True)  # U in fp32 would double x's bytes
    assert saved_for_backward("lif", half)[0].data_ptr() == half.data_ptr()


@pytest.fixture
def torch_threads():
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.mark.parametrize("save", [True, False], ids=["saved-charge", "replay"])
def test_long_path_threads_give_identical_results(save, torch_threads, monkeypatch):
    """Forward outputs and dL/dx bitwise the same on 1, 2 and 3 threads (six long chunks less a few:
    at least two per thread)."""
    spec, params, x, cot = make_case(neuron_config("lif"), (2, 6 * LONG - 5), seed=11, dtype=torch.float32)
    monkeypatch.setattr(numba_scan, "SAVE_CHARGE", save)
    monkeypatch.setitem(numba_scan.MIN_ELEMENTS_PER_THREAD, "team", (0, 0))  # threads on this small case
    monkeypatch.setitem(numba_scan.MIN_ELEMENTS_PER_THREAD, "own_pool", (0, 0))
    out = []
    for threads in (1, 2, 3):
        torch_threads(threads)
        assert numba_scan.threads_for(6, x.numel()) == threads
        out.append(outputs(spec, params, x, cot))
    for other in out[1:]:
        assert_same(out[0], other)


@pytest.mark.parametrize(("preset", "kernels"), [
    ("lif", ("long_forward", "saved_backward", "scan_backward")),
    ("plif", ("long_forward", "scan_backward")),  # learnable decay: the replay only
    ("ar_lif", ("scan_forward", "scan_backward")),
])
def test_warmup_compiles_the_kernels_a_run_calls(preset, kernels):
    """``precompile_cpu_kernels`` checks (and ``run_once`` compiles) the kernels the preset's training
    calls, the long path's included: after ``run_once`` none of them is cold."""
    from lit_snn.neurons.cpu import warmup

    config = {"model": {"neuron": preset, "time_steps": 3}, "trainer": {"accelerator": "cpu"}}
    _, overrides, dtype = warmup._cpu_neuron(config)
    assert tuple(k.py_func.__name__ for k in warmup._kernels_of(preset, overrides)) == kernels
    warmup.run_once(preset, overrides, dtype)
    assert warmup.cold_neurons([config]) == []
