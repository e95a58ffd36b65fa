"""The family as a whole: every axis combination runs, conversion to binary spikes is exact, bad
input is rejected with clear errors."""

import copy
import itertools
import warnings

import pytest
import torch
from torch import nn

from lit_snn.neurons import (
    BinarySpikeLayer,
    NeuronConfig,
    convert_to_binary_spikes,
    create_neuron,
    integer_to_binary,
    list_neurons,
    neuron_config,
    virtual_step_weights,
)
from lit_snn.neurons.config import DECAYS, GRANULARITIES, RESETS, SPIKES, SURROGATES, THRESHOLDS

ALL_COMBOS = list(itertools.product(RESETS, THRESHOLDS, DECAYS, SPIKES, SURROGATES, GRANULARITIES))


def invalid_reason(reset, threshold, decay, spike, slope):
    """The axis values a combination must be rejected for (an error naming them), or None."""
    if reset in ("adaptive", "complementary") and threshold == "spike_adaptive":
        return (reset, "spike_adaptive")
    if decay == "parallel" and reset != "none":
        return ("parallel", "reset=none")
    if decay == "parallel" and threshold not in ("fixed", "learnable"):
        return ("parallel", threshold)
    if decay == "parallel" and (spike != "binary" or slope != "none"):
        return ("parallel", f"spike={spike}")
    return None


@pytest.mark.parametrize("reset,threshold,decay,spike,surrogate,granularity", ALL_COMBOS,
                         ids=["-".join(c) for c in ALL_COMBOS])
def test_every_axis_combination_runs_forward_and_backward(reset, threshold, decay, spike, surrogate, granularity):
    """Every combination either runs forward and backward with finite values, or is rejected at
    construction with one ValueError naming the values that do not combine. The slope axis rotates
    with the surrogate (learnable for sigmoid and atan)."""
    slope = "learnable" if surrogate in ("sigmoid", "atan") else "none"
    fields = dict(reset=reset, threshold=threshold, decay=decay, spike=spike, surrogate=surrogate,
                  granularity=granularity, channels=3, slope=slope, time_steps=3, v_threshold=0.8)
    reason = invalid_reason(reset, threshold, decay, spike, slope)
    if reason:
        with pytest.raises(ValueError) as err:
            create_neuron("lif", **fields)
        assert all(word in str(err.value) for word in reason), str(err.value)
        return
    neuron = create_neuron("lif", **fields)
    x = (torch.rand(3, 2, 3, 4) * 3).requires_grad_(True)
    out = neuron(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    size = 3 if granularity == "channel" else 1
    for name, p in neuron.named_parameters():
        expected = {"psn_weight": (3, 3), "glif_conduct": (3, size), "v_th": (3,) if decay == "parallel" else (size,)}
        assert p.shape == expected.get(name, (size,)), name
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("name", list_neurons())
def test_presets_move_with_to_and_half(name):
    steps = {"time_steps": 2} if neuron_config(name).needs_time_steps else {}  # GLIF, PSN: built for T
    neuron = create_neuron(name, **steps).to(torch.float64)
    x = torch.rand(2, 3, 5, dtype=torch.float64) * 2
    assert neuron(x).dtype == torch.float64
    assert create_neuron(name, **steps).to(torch.bfloat16)(x.to(torch.bfloat16)).dtype == torch.bfloat16


@pytest.mark.parametrize("name", list_neurons())
def test_state_dict_round_trip(name):
    neuron = create_neuron(name)
    with torch.no_grad():
        for p in neuron.parameters():
            p.add_(0.25)
    clone = create_neuron(name)
    clone.load_state_dict(neuron.state_dict())
    x = torch.rand(4, 2, 10) * 2
    assert torch.equal(clone(x), neuron(x))


# ---------------------------------------------------------------- binary conversion
def test_integer_to_binary_unary_and_bitserial():
    s = torch.tensor([0.0, 1.0, 3.0, 4.0])
    bits = integer_to_binary(s, 4.0, 1.0)  # unary: s ones then zeros
    assert bits.shape == (4, 4)
    assert bits[:, 2].tolist() == [1, 1, 1, 0]
    assert torch.equal((bits * virtual_step_weights(4.0, 1.0, "unary").float()[:, None]).sum(0), s)
    codes = torch.tensor([0, 1, 2, 255, 256, 511], dtype=torch.float64)
    bits = integer_to_binary(codes / 100, 5.11, 100.0)
    assert bits.shape == (9, 6)  # K = ceil(log2(512)) = 9
    assert bits[:, 5].tolist() == [1] * 9 and bits[:, 4].tolist() == [0] * 8 + [1]
    weights = virtual_step_weights(5.11, 100.0, "bitserial")
    assert torch.allclose((bits * weights[:, None]).sum(0), codes / 100)


def test_integer_to_binary_rejects_off_grid_values():
    with pytest.raises(ValueError, match="multiples of 1/N"):
        integer_to_binary(torch.tensor([0.5]), 4.0, 1.0)


@pytest.mark.parametrize("preset", ["i_lif", "ib_ra_lif"])
def test_network_on_binary_spikes_gives_same_logits(preset):
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(6, 16), create_neuron(preset), nn.Linear(16, 12), create_neuron(preset), nn.Linear(12, 3),
    ).double()
    x = torch.randn(3, 5, 6, dtype=torch.float64) * 2  # [T, B, F]
    logits = net(x)
    binary = convert_to_binary_spikes(copy.deepcopy(net))
    assert sum(isinstance(m, BinarySpikeLayer) for m in binary.modules()) == 2
    assert torch.allclose(binary(x), logits, atol=1e-10)
    # the integer outputs really are multi-level, and their virtual steps really are binary
    s = net[:2](x)
    assert len(torch.unique(s)) > 2
    bits = integer_to_binary(s, net[1].config.int_max, net[1].config.int_scale)
    assert set(torch.unique(bits).tolist()) <= {0.0, 1.0}


def test_binary_spike_conv_layer_matches_conv():
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 4, 3, padding=1).double()
    codes = torch.randint(0, 512, (2, 2, 3, 5, 5)).double()  # [T, B, C, H, W]
    s = codes / 100
    expected = conv(s.flatten(0, 1)).unflatten(0, (2, 2))
    out = BinarySpikeLayer(conv, 5.11, 100.0)(s)
    assert torch.allclose(out, expected, atol=1e-10)


# ---------------------------------------------------------------- bad input
def test_unknown_preset_lists_valid_names():
    with pytest.raises(ValueError, match="unknown neuron 'nope_lif'.*ar_lif.*ib_ra_lif"):
        create_neuron("nope_lif")


@pytest.mark.parametrize("field,value,match", [
    ("reset", "zero", "unknown reset='zero'; valid values: hard, soft, adaptive"),
    ("surrogate", "gauss", "valid values: rectangle, triangle, sigmoid, atan"),
    ("spike", "ternary", "valid values: binary, integer"),
    ("decay", "triple", "valid values: fixed, learnable, dual"),
    ("threshold", "dynamic", "valid values: fixed, learnable, adaptive"),
    ("v_threshold", float("nan"), "finite number"),
    ("v_threshold", -1.0, "v_threshold must be > 0"),
    ("int_max", 0.0, "must be > 0"),
])
def test_bad_axis_values(field, value, match):
    with pytest.raises(ValueError, match=match):
        create_neuron("lif", **{field: value})


def test_unknown_field_and_invalid_combinations():
    with pytest.raises(ValueError, match="unknown field.*tau.*valid fields"):
        create_neuron("lif", tau=2.0)
    with pytest.raises(ValueError, match="decay=dual.*0 < alpha < 1"):
        create_neuron("hard_lif", decay="dual")  # hard_lif has alpha = 1
    with pytest.raises(ValueError, match="granularity=channel needs channels"):
        create_neuron("lif", granularity="channel")
    with pytest.raises(ValueError, match="unknown backend"):
        NeuronConfig(backend="cuda")


def test_bad_inputs():
    neuron = create_neuron("lif")
    with pytest.raises(ValueError, match=r"time-first input \[T, \.\.\.\].*shape \(5,\)"):
        neuron(torch.rand(5))
    with pytest.raises(TypeError, match="floating-point.*torch.int64"):
        neuron(torch.ones(2, 3, dtype=torch.long))
    x = torch.rand(2, 3)
    x[1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        neuron(x)
    x[1, 2] = float("inf")
    with pytest.raises(ValueError, match="inf"):
        neuron(x)
    with pytest.raises(TypeError, match="torch.Tensor"):
        neuron([[1.0]])
    channel = create_neuron("da_lif", granularity="channel", channels=4)
    with pytest.raises(ValueError, match=r"4 channels need input \[T, B, 4, \.\.\.\]"):
        channel(torch.rand(2, 1, 3, 5))


@pytest.mark.parametrize("preset", ["i_lif", "ib_ra_lif"])
def test_traced_conversion_reaches_residual_blocks(preset):
    """With an example input, conversion finds the convs inside PreAct blocks too; logits unchanged."""
    from lit_snn.backbones import create_backbone

    torch.manual_seed(0)
    net = create_backbone("preact_resnet18", neuron=preset, num_classes=10, in_channels=3).double().eval()
    x = torch.randn(1, 2, 3, 32, 32, dtype=torch.float64)  # [T, B, C, H, W]
    logits = net(x)
    by_adjacency = sum(isinstance(m, BinarySpikeLayer) for m in convert_to_binary_spikes(copy.deepcopy(net)).modules())
    traced = convert_to_binary_spikes(copy.deepcopy(net), example_input=x)
    converted = sum(isinstance(m, BinarySpikeLayer) for m in traced.modules())
    assert converted >= 16 and converted > by_adjacency  # every block conv reads a neuron's output
    assert torch.allclose(traced(x), logits, atol=1e-8)


def test_half_precision_spike_levels():
    """bfloat16 cannot hold IB-RA-LIF's 512 levels k/100 apart (the top of [0, 5.11] collapses);
    float16 can, and I-LIF's 0..4 are exact in both."""
    from lit_snn.neurons.precision import recoverable_spike_levels

    assert recoverable_spike_levels(5.11, 100.0, torch.float16) == (512, 512)
    exact, total = recoverable_spike_levels(5.11, 100.0, torch.bfloat16)
    assert total == 512 and exact < 400
    assert recoverable_spike_levels(4.0, 1.0, torch.bfloat16) == (5, 5)
    x = torch.randn(2, 3, 4)
    with pytest.warns(UserWarning, match=rf"ib_ra_lif: bfloat16 storage keeps only {exact} of its 512"):
        create_neuron("ib_ra_lif")(x.bfloat16())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        create_neuron("ib_ra_lif")(x.half())
        create_neuron("i_lif")(x.bfloat16())


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_deferred_finite_check(bad, dtype):
    """The deferred check records NaN/inf on the device and clears on read; large finite
    half-precision inputs (whose own-dtype sum would overflow fp16) do not flag."""
    neuron = create_neuron("lif")
    neuron.defer_finite_check = True
    big = torch.full((4, 64, 1000), 60000.0 if dtype == torch.float16 else 1e30, dtype=dtype)
    neuron(big)
    assert neuron.nonfinite_input().item() is False
    x = torch.randn(3, 2, 5, dtype=dtype)
    x[2, 1, 3] = bad
    neuron(torch.randn(3, 2, 5, dtype=dtype))
    neuron(x)  # flags are OR-ed over calls until read
    assert neuron.nonfinite_input().item() is True
    assert neuron.nonfinite_input() is None


def test_fixed_parameters_are_cached_on_the_input_device():
    """A neuron without learnable parameters builds its constants once per device, not per call."""
    neuron = create_neuron("lif")
    a = neuron.effective_params(torch.device("cpu"))
    b = neuron.effective_params(torch.device("cpu"))
    assert all(a[k] is b[k] for k in a) and a["alpha"].dtype == torch.float32
    plif = create_neuron("plif").double()
    assert plif.effective_params()["vth"].dtype == torch.float64  # constants follow the learnable ones
