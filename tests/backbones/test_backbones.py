"""Every backbone builds, runs forward and backward at its real input size, and has the published size.

Parameter counts (with ``lif``, which has no learnable parameters):
- resnet34, 1000 classes: 21,797,672 = torchvision's ResNet-34 (same convs, BNs and fc).
- resnet19, 10 classes: 12,697,994 with the 128-channel stem of tdBN / GLIF; 12,630,858 with the
  64-channel stem of TET's released code, the "12.63M" quoted for ResNet-19 in the SNN literature.
- preact_resnet18, 10 classes: 11,176,906, the AR-LIF code's PreAct ResNet-18 (CIFAR ResNet-18:
  11,173,962 = "11.2M"; this one has conv biases, no shortcut/stem BN, one BN before the head).
- vggsnn, 2 input channels, 10 classes: 9,271,498 = convs 2*64*9 + 64*128*9 + 128*256*9 +
  256*256*9 + 256*512*9 + 3 * 512*512*9 weights + 2752 biases, BN 2 * 2752, fc 512*9*10 + 10.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from lit_snn.backbones import (
    AdaptiveAvgPool2d,
    BatchNorm2d,
    Conv2d,
    TimeFold,
    create_backbone,
    describe_backbones,
    list_backbones,
)
from lit_snn.backbones.layers import MaxPool2d, one_copy
from lit_snn.backbones.layers import folded as folded_time
from lit_snn.energy import FiringRateMonitor, SynOpsCounter
from lit_snn.neurons import (
    BinarySpikeLayer,
    NeuronConfig,
    SpikingNeuron,
    convert_to_binary_spikes,
    list_neurons,
    neuron_config,
)

EXPECTED = {"preact_resnet18", "resnet19", "resnet34", "small_conv", "vgg11_bn", "vgg13_bn", "vggsnn"}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registry_lists_every_backbone_with_a_description():
    assert EXPECTED <= set(list_backbones())
    assert all(describe_backbones()[name].strip() for name in list_backbones())


def test_unknown_backbone_lists_valid_names():
    with pytest.raises(ValueError, match="unknown backbone 'nope'.*resnet19.*vggsnn"):
        create_backbone("nope")


def test_unknown_neuron_is_reported():
    with pytest.raises(ValueError, match="unknown neuron"):
        create_backbone("small_conv", neuron="nope")


# (name, kwargs, input shape [T, B, C, H, W]): each backbone at the input size it is used at
REAL_SIZE = [
    ("small_conv", {"in_channels": 1}, (2, 2, 1, 8, 8)),  # embedded digits
    ("small_conv", {"in_channels": 2}, (2, 2, 2, 32, 32)),  # DVS digits
    ("mnist_conv", {"in_channels": 1}, (2, 2, 1, 28, 28)),  # MNIST / Fashion-MNIST
    ("preact_resnet18", {"num_classes": 100}, (2, 1, 3, 32, 32)),  # CIFAR-100
    ("resnet19", {}, (2, 1, 3, 32, 32)),  # CIFAR-10
    ("vgg13_bn", {"num_classes": 200}, (2, 1, 3, 64, 64)),  # Tiny-ImageNet
    ("vgg11_bn", {"in_channels": 3}, (2, 1, 3, 32, 32)),  # CIFAR
    ("vgg11_bn", {"in_channels": 2, "num_classes": 11}, (2, 1, 2, 128, 128)),  # DVS128 Gesture
    ("vggsnn", {"in_channels": 2}, (2, 1, 2, 48, 48)),  # CIFAR10-DVS
    ("resnet34", {"num_classes": 1000}, (1, 1, 3, 224, 224)),  # ImageNet, T = 1
]
DEFAULT_SIZE = ({"in_channels": 3}, (2, 1, 3, 32, 32))  # a registered backbone not listed above: CIFAR-sized
CASES = [case for name in list_backbones()
         for case in ([c for c in REAL_SIZE if c[0] == name] or [(name, *DEFAULT_SIZE)])]


@pytest.mark.parametrize("name,kwargs,shape", CASES, ids=[f"{n}-{'x'.join(map(str, s[2:]))}" for n, _, s in CASES])
def test_forward_backward_real_size(name, kwargs, shape):
    torch.manual_seed(0)
    model = create_backbone(name, **kwargs)
    x = torch.rand(shape)
    out = model(x)
    t, b = shape[:2]
    assert out.shape == (t, b, kwargs.get("num_classes", 10))
    assert torch.isfinite(out).all()
    out.sum().backward()  # not a loss of out itself: out can be exactly 0 when a late layer is silent
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.weight.grad.abs().sum() > 0  # gradient reaches the stem through every neuron


def test_parameter_counts_match_published():
    assert n_params(create_backbone("resnet34", num_classes=1000)) == 21_797_672
    assert n_params(create_backbone("resnet34", num_classes=1000, style="standard")) == 21_797_672
    assert n_params(create_backbone("resnet19")) == 12_697_994
    tet = n_params(create_backbone("resnet19", stem_channels=64))
    assert tet == 12_630_858 and abs(tet / 12.63e6 - 1) < 1e-3
    pre = n_params(create_backbone("preact_resnet18"))
    assert pre == 11_176_906 and abs(pre / 11.2e6 - 1) < 0.005
    assert n_params(create_backbone("vggsnn", in_channels=2)) == 9_271_498


def test_resnet34_ann_macs_match_torchvision():
    """ResNet-34 at 224x224: 3.66 GMACs (torchvision's "3.6 GFLOPs"; convs + fc, no BN)."""
    model = create_backbone("resnet34", num_classes=1000).eval()
    with SynOpsCounter(model) as ops, torch.no_grad():
        model(torch.rand(1, 1, 3, 224, 224))
    assert ops.report()["ann_macs"] == 3_663_761_408


@pytest.mark.parametrize("neuron", list_neurons())
def test_every_neuron_preset_through_small_conv(neuron):
    torch.manual_seed(0)
    steps = {"time_steps": 3} if neuron_config(neuron).needs_time_steps else {}  # GLIF, PSN: built for T
    model = create_backbone("small_conv", neuron=neuron, in_channels=1, neuron_overrides=steps)
    x = 2 * torch.rand(3, 4, 1, 8, 8)
    out = model(x)
    assert out.shape == (3, 4, 10) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    neurons = [m for m in model.modules() if isinstance(m, SpikingNeuron)]
    assert len(neurons) == 2 and all(m.config == neuron_config(neuron, **steps) for m in neurons)


CHANNEL_CONFIG = neuron_config("da_lif", granularity="channel", channels=1)  # channels reset per layer


@pytest.mark.parametrize("neuron", ["plif", "ar_lif", "da_lif", CHANNEL_CONFIG],
                         ids=["plif", "ar_lif", "da_lif", "config"])
def test_channel_granularity_sets_channels_per_layer(neuron):
    overrides = {} if isinstance(neuron, NeuronConfig) else {"granularity": "channel"}
    model = create_backbone("small_conv", neuron=neuron, neuron_overrides=overrides, in_channels=1, width=8)
    neurons = [m for m in model.modules() if isinstance(m, SpikingNeuron)]
    assert [m.config.channels for m in neurons] == [8, 16]
    assert all(p.shape == (m.config.channels,) for m in neurons for p in m.parameters())
    out = model(torch.rand(2, 3, 1, 8, 8))
    out.sum().backward()
    assert out.shape == (2, 3, 10) and torch.isfinite(out).all()


def test_channel_granularity_after_linear_layers():
    """ResNet-19's fc1 neuron gets channels = 256 features (dim 2 of [T, B, 256])."""
    model = create_backbone("resnet19", neuron="da_lif", neuron_overrides={"granularity": "channel"})
    widths = {m.config.channels for m in model.modules() if isinstance(m, SpikingNeuron)}
    assert widths == {128, 256, 512}
    assert model.head[-2].config.channels == 256 and model.head[-2].tau_a.shape == (256,)
    out = model(torch.rand(1, 1, 3, 8, 8))
    out.sum().backward()
    assert out.shape == (1, 1, 10) and torch.isfinite(out).all()


def test_neuron_overrides_reach_every_layer():
    model = create_backbone("vggsnn", in_channels=2, neuron="ar_lif", neuron_overrides={"reset": "soft"})
    neurons = [m for m in model.modules() if isinstance(m, SpikingNeuron)]
    assert len(neurons) == 8 and all(m.config.reset == "soft" and m.name == "ar_lif" for m in neurons)


def test_time_folded_layers_equal_per_step_layers():
    torch.manual_seed(0)
    x = torch.randn(3, 2, 4, 6, 6)  # [T, B, C, H, W]
    conv = Conv2d(4, 5, 3, padding=1)
    per_step = torch.stack([conv(x_t) for x_t in x])
    torch.testing.assert_close(conv(x), per_step)
    torch.testing.assert_close(TimeFold(conv, nn.AvgPool2d(2))(x), nn.AvgPool2d(2)(per_step.flatten(0, 1))
                               .unflatten(0, (3, 2)))
    assert isinstance(conv, nn.Conv2d)


@pytest.mark.parametrize("momentum", [0.1, None], ids=["momentum", "cumulative"])
def test_a_static_input_runs_the_stem_once(momentum):
    """Direct encoding (a stride-0 ``expand`` over T): conv runs once and expands, and batch norm
    normalises once, with the outputs, gradients and running statistics of both on the
    materialised input (the running variance's n - 1 correction counts the T copies)."""
    torch.manual_seed(0)  # float64: the sums over T are taken in another order
    image = torch.randn(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)  # [B, C, H, W]
    static = image.unsqueeze(0).expand(4, *image.shape)  # [T, B, C, H, W], stride 0 over T
    conv, bn = Conv2d(3, 5, 3, padding=1).double(), BatchNorm2d(5, momentum=momentum).double()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5), bn.bias.uniform_(-0.5, 0.5)
    twin_conv, twin_bn = copy.deepcopy(conv), copy.deepcopy(bn)
    twin_image = image.detach().clone().requires_grad_(True)
    for _ in range(2):  # two updates of the running statistics
        out = bn(conv(static))
        twin = twin_bn(twin_conv(twin_image.unsqueeze(0).repeat(4, 1, 1, 1, 1)))  # materialised copies
    assert conv(static).stride(0) == 0 and out.stride(0) == 0  # both ran once
    torch.testing.assert_close(out, twin, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(bn.running_mean, twin_bn.running_mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(bn.running_var, twin_bn.running_var, rtol=1e-12, atol=1e-12)
    assert bn.num_batches_tracked == twin_bn.num_batches_tracked == 2
    cot = torch.randn_like(out)
    (out * cot).sum().backward()
    (twin * cot).sum().backward()
    for name, a, b in [("image", image, twin_image), ("conv", conv.weight, twin_conv.weight),
                       ("bn.weight", bn.weight, twin_bn.weight), ("bn.bias", bn.bias, twin_bn.bias)]:
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-10, atol=1e-12, msg=name)
    bn.eval(), twin_bn.eval()  # running statistics
    with torch.no_grad():
        stem = conv(static)
        torch.testing.assert_close(bn(stem), twin_bn(stem.contiguous()), rtol=1e-12, atol=1e-12)


def test_a_static_channels_last_input_folds_channels_last():
    """Batch norm after the stem under ``memory_format="channels_last"``: folding a stride-0
    channels-last input copies it once and keeps it channels-last (a plain flatten would hand the
    norm and everything after it a contiguous tensor), with the plain flatten's values."""
    x = torch.randn(2, 3, 4, 5).contiguous(memory_format=torch.channels_last)  # [B, C, H, W]
    static = x.unsqueeze(0).expand(4, *x.shape)  # [T, B, C, H, W], stride 0 over T
    folded = folded_time(static)
    assert folded.is_contiguous(memory_format=torch.channels_last) and not folded.is_contiguous()
    assert torch.equal(folded, static.flatten(0, 1))
    assert folded_time(torch.randn(4, 2, 3, 4, 5)).is_contiguous()  # contiguous: a view, as before


def test_adaptive_pool_to_its_own_size_is_the_identity():
    x = torch.randn(3, 2, 4, 5, 5)
    assert AdaptiveAvgPool2d(5)(x) is x and AdaptiveAvgPool2d((None, 5))(x) is x
    torch.testing.assert_close(AdaptiveAvgPool2d(1)(x), x.mean((-2, -1), keepdim=True))
    torch.testing.assert_close(AdaptiveAvgPool2d((5, 1))(x), x.mean(-1, keepdim=True))


@pytest.mark.parametrize("name,kwargs,shape", [
    ("small_conv", {"in_channels": 1}, (2, 3, 1, 8, 8)),
    ("resnet34", {"stem": "cifar"}, (1, 1, 3, 16, 16)),
], ids=["small_conv", "resnet34"])
def test_binary_spike_conversion_is_exact(name, kwargs, shape):
    """IB-RA-LIF backbones give the same logits on bit-serial binary spikes (float64: no rounding flips)."""
    torch.manual_seed(0)
    model = create_backbone(name, neuron="ib_ra_lif", **kwargs).double()
    x = 3 * torch.rand(shape, dtype=torch.float64)
    model(x)  # BN running statistics, so that eval mode fires
    model.eval()
    converted = convert_to_binary_spikes(copy.deepcopy(model))
    assert any(isinstance(m, BinarySpikeLayer) for m in converted.modules())
    with torch.no_grad(), FiringRateMonitor(model) as fr:
        torch.testing.assert_close(converted(x), model(x), rtol=0, atol=1e-9)
    assert fr.mean_rate() > 0.01 and max(fr.high_code_fraction().values()) > 0  # not a vacuous check


@pytest.mark.parametrize("name,kwargs,size", [
    ("small_conv", {"in_channels": 1}, 8),
    ("preact_resnet18", {}, 16),
    ("resnet19", {}, 16),
    ("resnet34", {"stem": "cifar"}, 16),
    ("resnet34", {"style": "standard"}, 32),
    ("vgg11_bn", {}, 32),
    ("vgg13_bn", {}, 32),
    ("vggsnn", {"in_channels": 2}, 16),
], ids=lambda v: str(v) if not isinstance(v, dict) else "-".join(f"{k}={w}" for k, w in v.items()))
def test_only_the_stem_sees_analog_input(name, kwargs, size):
    """Every conv/linear after the first is fed by spikes (possibly pooled): the energy count relies on it."""
    model = create_backbone(name, **kwargs).eval()
    x = torch.rand(1, 1, kwargs.get("in_channels", 3), size, size)
    with SynOpsCounter(model) as ops, torch.no_grad():
        model(x)
    layers = ops.layers()
    first = next(n for n, m in model.named_modules() if isinstance(m, nn.Conv2d))
    assert [n for n, s in layers.items() if not s["spiking"]] == [first]
    assert len(layers) == sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())


def test_one_copy_is_the_tensor_a_static_input_expands():
    """A stride-0 input's layers run on the expanded tensor itself (its gradient then skips the T
    zero-filled copies of ``x[0]``'s backward) where it is a whole tensor, else on ``x[0]``; the
    pooling of a static input gives the gradients of pooling the materialised copies."""
    y = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    static = y.unsqueeze(0).expand(4, *y.shape)
    assert one_copy(static) is y
    part = torch.randn(3, 3, 4, 4)[1:]  # a view: the expand's base is the larger tensor, so x[0]
    torch.testing.assert_close(one_copy(part.unsqueeze(0).expand(4, *part.shape)), part)
    twin = y.detach().clone().requires_grad_(True)
    pooled, twin_pooled = MaxPool2d(2)(static), MaxPool2d(2)(twin.unsqueeze(0).repeat(4, 1, 1, 1, 1))
    assert pooled.stride(0) == 0
    cot = torch.randn_like(twin_pooled)
    (pooled * cot).sum().backward()
    (twin_pooled * cot).sum().backward()
    torch.testing.assert_close(y.grad, twin.grad, rtol=1e-12, atol=1e-12)
