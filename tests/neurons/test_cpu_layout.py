"""Channels-last inputs on the CPU path (``LitSNN(memory_format=...)`` lays conv nets out so on the
CPU): the numba kernels take them without a copy, return spikes, states and dL/dx in the input's
layout, and compute what they compute on the contiguous copy, per-channel parameters included
(a neuron's channel is then the innermost dim in memory)."""

import pytest
import torch
from test_cpu_path import SCAN_PRESETS, make_case, run

from lit_snn.memory_layout import CHANNELS_LAST, dense_copy, memory_order
from lit_snn.neurons import neuron_config
from lit_snn.neurons.cpu import multistep_cpu
from lit_snn.neurons.cpu import scan as cpu_scan

pytest.importorskip("lit_snn.neurons.cpu.numba_kernels")


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """[T, B, C, H, W] with each step channels-last in memory (strides of the layout conv nets use)."""
    return x.permute(CHANNELS_LAST).contiguous().permute(0, 1, 4, 2, 3)


def test_memory_order_names_the_two_layouts_and_copies_any_other():
    x = torch.randn(3, 2, 5, 4, 6)
    assert memory_order(x) == (0, 1, 2, 3, 4)
    assert memory_order(channels_last(x)) == CHANNELS_LAST
    odd = x.transpose(3, 4)  # neither: a contiguous copy
    assert memory_order(odd) is None and dense_copy(odd).is_contiguous()
    cl = channels_last(x)
    assert dense_copy(cl).data_ptr() == cl.data_ptr()  # taken as it is


def test_a_static_channels_last_input_is_copied_channels_last(monkeypatch):
    """A stride-0 expand of a channels-last image (batch norm behind the stem of a static input):
    one dense copy in the channels-last layout, and spikes returned in it (so the next conv gets the
    layout it runs fastest in), equal to those of the contiguous copy."""
    monkeypatch.setattr(cpu_scan, "USE_NUMBA", True)
    image = channels_last(torch.randn(1, 2, 5, 4, 6))[0]  # [B, C, H, W], channels-last
    static = image.expand(3, *image.shape)  # [T, B, C, H, W], stride-0 T
    assert memory_order(static) is None
    dense = dense_copy(static)
    assert memory_order(dense) == CHANNELS_LAST and torch.equal(dense, static)
    assert memory_order(dense_copy(torch.randn(2, 3).expand(4, 2, 3))) == (0, 1, 2)  # else contiguous
    spec, params, _, _ = make_case(neuron_config("lif"), (3, 2, 5, 4, 6))
    spikes, _, _ = multistep_cpu(static, **params, spec=spec)
    assert memory_order(spikes) == CHANNELS_LAST
    assert torch.equal(spikes, multistep_cpu(static.contiguous(), **params, spec=spec)[0])


@pytest.mark.parametrize("channels", [None, 5], ids=["per-layer", "per-channel"])
@pytest.mark.parametrize("preset", SCAN_PRESETS)
def test_channels_last_input_gives_the_contiguous_results_in_its_own_layout(preset, channels, monkeypatch):
    monkeypatch.setattr(cpu_scan, "USE_NUMBA", True)
    spec, params, x, cot = make_case(neuron_config(preset), (4, 2, 5, 3, 7), channels=channels)
    expected = run(multistep_cpu, spec, params, x, cot)
    x_cl = channels_last(x)
    cot_cl = [channels_last(cot[0]), channels_last(cot[1][None])[0], channels_last(cot[2][None])[0]]
    spikes, v, _ = multistep_cpu(x_cl, **params, spec=spec)
    assert memory_order(spikes) == CHANNELS_LAST and v.permute(0, 2, 3, 1).is_contiguous()
    got = run(multistep_cpu, spec, params, x_cl, cot_cl)
    assert memory_order(got[3]) == CHANNELS_LAST  # dL/dx in x's layout
    assert torch.equal(got[0], expected[0])
    for name, a, b in zip(["V_T", "M_T", "dL/dx", *params], got[1:], expected[1:]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=f"{preset}: {name}")


def test_a_contiguous_cotangent_of_channels_last_spikes_is_read_in_their_layout(monkeypatch):
    """The gradient arriving from the next layer may be in either layout: dL/dx is the same."""
    monkeypatch.setattr(cpu_scan, "USE_NUMBA", True)
    spec, params, x, cot = make_case(neuron_config("plif"), (3, 2, 4, 3, 3), channels=4)
    x_cl = channels_last(x).requires_grad_(True)
    spikes, _, _ = multistep_cpu(x_cl, **params, spec=spec)
    (grad_from_contiguous,) = torch.autograd.grad(spikes, x_cl, cot[0].contiguous())
    spikes, _, _ = multistep_cpu(x_cl, **params, spec=spec)
    (grad_from_channels_last,) = torch.autograd.grad(spikes, x_cl, channels_last(cot[0]))
    assert torch.equal(grad_from_contiguous, grad_from_channels_last)


@pytest.mark.parametrize("preset", ["lif", "ar_lif"])
def test_inputs_in_neither_layout_give_the_results_of_their_dense_copy(preset, monkeypatch):
    """A transposed view and a stride-0 expand go through the kernels as a dense copy made inside
    the Function: the same spikes as the copy's and dL/dx in the input's own shape."""
    monkeypatch.setattr(cpu_scan, "USE_NUMBA", True)
    spec, params, _, _ = make_case(neuron_config(preset), (4, 2, 3, 6, 5))
    for x in (torch.randn(4, 2, 3, 5, 6).transpose(3, 4), torch.randn(2, 3, 6, 5).expand(4, 2, 3, 6, 5)):
        assert memory_order(x) is None
        results = []
        for inp in (x, x.contiguous()):
            inp = inp.detach().requires_grad_(True)
            spikes, v, _ = multistep_cpu(inp, **params, spec=spec)
            (spikes * torch.arange(spikes.numel()).reshape(spikes.shape).sin()).sum().backward()
            results.append((spikes.detach(), v.detach(), inp.grad))
        for a, b in zip(*results):
            assert a.shape == b.shape
            torch.testing.assert_close(a, b, rtol=0, atol=0)
