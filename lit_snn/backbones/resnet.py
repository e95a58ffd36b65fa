"""Spiking ResNets: PreAct ResNet-18 (AR-LIF), ResNet-19 (tdBN / TET / GLIF), ResNet-34 (IB-RA-LIF).

Three residual block styles, all with time-folded conv/BN (``layers.py``):

- ``preact`` (AR-LIF code, ``models/spiking_resnet.py``): ``s = neuron(BN(x))``;
  ``out = conv(neuron(BN(conv(s)))) + shortcut(s)`` where the shortcut is ``s`` itself or a 1x1
  conv of ``s``. Convs carry a bias, as in that code. The residual stream is analog.
- ``standard`` (spiking ResNet of tdBN / TET / GLIF): ``neuron(BN(conv(neuron(BN(conv(x))))) +
  shortcut(x))`` with the shortcut ``x`` or 1x1 conv + BN. Block inputs and outputs are spikes.
- ``ms`` (membrane shortcut, MS-ResNet style): ``BN(conv(neuron(BN(conv(neuron(x)))))) +
  shortcut(x)``, the shortcut ``x`` or ``BN(conv1x1(neuron(x)))``. The residual stream is the
  analog membrane input; every conv after the stem sees spikes, and each neuron -> conv pair sits
  in one ``nn.Sequential`` so that ``convert_to_binary_spikes`` converts all of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ..errors import ConfigError
from .layers import (
    AdaptiveAvgPool2d,
    BatchNorm2d,
    Conv2d,
    MaxPool2d,
    NeuronMaker,
    flatten_features,
    init_weights,
)
from .registry import register_backbone

STYLES = ("standard", "ms")
STEMS = ("cifar", "imagenet")


# ---------------------------------------------------------------------------------------- PreAct (AR-LIF)
class PreActBlock(nn.Module):
    """Pre-activation basic block: BN -> neuron -> conv3x3 -> BN -> neuron -> conv3x3, plus shortcut."""

    def __init__(self, make_neuron: NeuronMaker, cin: int, cout: int, stride: int, bias: bool = True):
        super().__init__()
        self.pre = nn.Sequential(BatchNorm2d(cin), make_neuron(cin))
        self.body = nn.Sequential(
            Conv2d(cin, cout, 3, stride, 1, bias=bias),
            BatchNorm2d(cout),
            make_neuron(cout),
            Conv2d(cout, cout, 3, 1, 1, bias=bias),
        )
        needs_proj = stride != 1 or cin != cout
        self.shortcut = Conv2d(cin, cout, 1, stride, 0, bias=bias) if needs_proj else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:  # [T, B, cin, H, W] -> [T, B, cout, H/s, W/s]
        s = self.pre(x)  # spikes
        return self.body(s) + self.shortcut(s)  # the AR-LIF code adds the spikes, not x, on identity


class PreActResNet(nn.Module):
    """CIFAR PreAct spiking ResNet: conv3x3(64) stem (no BN, no maxpool), four stages of
    ``PreActBlock``, then BN -> neuron -> global average pool -> linear."""

    def __init__(self, make_neuron: NeuronMaker, blocks: Sequence[int], num_classes: int, in_channels: int,
                 widths: Sequence[int] = (64, 128, 256, 512), bias: bool = True):
        super().__init__()
        self.stem = Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)  # [T, B, 64, H, W]
        stages, cin = [], widths[0]
        for i, (n, cout) in enumerate(zip(blocks, widths)):
            strides = [1 if i == 0 else 2] + [1] * (n - 1)
            stages.append(nn.Sequential(*[PreActBlock(make_neuron, cin if j == 0 else cout, cout, s, bias)
                                          for j, s in enumerate(strides)]))
            cin = cout
        self.stages = nn.Sequential(*stages)  # [T, B, 512, H/8, W/8]
        self.head = nn.Sequential(
            BatchNorm2d(cin),
            make_neuron(cin),
            AdaptiveAvgPool2d(1),  # = the code's AvgPool2d(4) on 32x32 input; any size works
            flatten_features(),  # [T, B, 512]
            nn.Linear(cin, num_classes),
        )
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:  # [T, B, C, H, W] -> [T, B, num_classes]
        return self.head(self.stages(self.stem(x)))


# ---------------------------------------------------------------------------------------- standard / MS
class BasicBlock(nn.Module):
    """Two 3x3 convs with BN and a shortcut; ``style`` is ``standard`` or ``ms`` (module docstring)."""

    def __init__(self, make_neuron: NeuronMaker, cin: int, cout: int, stride: int, style: str):
        super().__init__()
        self.style = style
        conv1 = Conv2d(cin, cout, 3, stride, 1, bias=False)
        conv2 = Conv2d(cout, cout, 3, 1, 1, bias=False)
        needs_proj = stride != 1 or cin != cout
        if style == "standard":
            self.body = nn.Sequential(conv1, BatchNorm2d(cout), make_neuron(cout), conv2, BatchNorm2d(cout))
            proj = [Conv2d(cin, cout, 1, stride, 0, bias=False), BatchNorm2d(cout)]
            self.out_neuron = make_neuron(cout)
        else:
            self.body = nn.Sequential(make_neuron(cin), conv1, BatchNorm2d(cout), make_neuron(cout), conv2,
                                      BatchNorm2d(cout))
            proj = [make_neuron(cin), Conv2d(cin, cout, 1, stride, 0, bias=False), BatchNorm2d(cout)]
        self.shortcut = nn.Sequential(*proj) if needs_proj else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:  # [T, B, cin, H, W] -> [T, B, cout, H/s, W/s]
        out = self.body(x) + self.shortcut(x)
        return self.out_neuron(out) if self.style == "standard" else out


class ResNet(nn.Module):
    """Spiking ResNet with basic blocks: stem, stages, global average pool, classifier.

    ``stem="cifar"``: conv3x3 (stride 1) + BN; ``"imagenet"``: conv7x7/2 + BN + maxpool 3/2.
    ``standard`` style fires a neuron after the stem BN; ``ms`` style leaves the stem analog (the
    first block's neuron fires) and fires a neuron before the pool so that the classifier sees
    spikes. ``hidden``: an extra linear -> neuron before the classifier (ResNet-19's fc 256).
    """

    def __init__(self, make_neuron: NeuronMaker, blocks: Sequence[int], widths: Sequence[int],
                 num_classes: int, in_channels: int, *, style: str = "standard", stem: str = "cifar",
                 stem_channels: int | None = None, hidden: int | None = None):
        super().__init__()
        if style not in STYLES:
            raise ConfigError(f"unknown block style {style!r}; valid: {', '.join(STYLES)}")
        if stem not in STEMS:
            raise ConfigError(f"unknown stem {stem!r}; valid: {', '.join(STEMS)}")
        c0 = stem_channels or widths[0]
        if stem == "cifar":
            stem_layers: list[nn.Module] = [Conv2d(in_channels, c0, 3, 1, 1, bias=False), BatchNorm2d(c0)]
        else:
            stem_layers = [Conv2d(in_channels, c0, 7, 2, 3, bias=False), BatchNorm2d(c0)]
        if style == "standard":
            stem_layers.append(make_neuron(c0))
        if stem == "imagenet":
            stem_layers.append(MaxPool2d(3, 2, 1))
        self.stem = nn.Sequential(*stem_layers)  # [T, B, c0, H', W']

        stages, cin = [], c0
        for i, (n, cout) in enumerate(zip(blocks, widths)):
            strides = [1 if i == 0 else 2] + [1] * (n - 1)
            stages.append(nn.Sequential(*[BasicBlock(make_neuron, cin if j == 0 else cout, cout, s, style)
                                          for j, s in enumerate(strides)]))
            cin = cout
        self.stages = nn.Sequential(*stages)

        head: list[nn.Module] = [make_neuron(cin)] if style == "ms" else []
        head += [AdaptiveAvgPool2d(1), flatten_features()]  # [T, B, cin]
        if hidden:
            head += [nn.Linear(cin, hidden), make_neuron(hidden)]
            cin = hidden
        head.append(nn.Linear(cin, num_classes))
        self.head = nn.Sequential(*head)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:  # [T, B, C, H, W] -> [T, B, num_classes]
        return self.head(self.stages(self.stem(x)))


# ---------------------------------------------------------------------------------------- registry
@register_backbone("preact_resnet18")
def preact_resnet18(make_neuron: NeuronMaker, *, num_classes: int, in_channels: int,
                    bias: bool = True) -> nn.Module:
    """PreAct spiking ResNet-18 of the AR-LIF code (CIFAR stem, blocks [2, 2, 2, 2], 64-512 channels).

    Parameter count with ``lif`` and 10 classes: 11,176,906 (the plain CIFAR ResNet-18 has
    11,173,962; this one adds the convs' biases, drops the shortcut BNs and the stem BN, and has
    one BN before the head). ``bias=False`` (11,172,170) drops the conv biases.
    """
    return PreActResNet(make_neuron, (2, 2, 2, 2), num_classes, in_channels, bias=bias)


@register_backbone("resnet19")
def resnet19(make_neuron: NeuronMaker, *, num_classes: int, in_channels: int,
             stem_channels: int = 128, hidden: int | None = 256) -> nn.Module:
    """ResNet-19 of tdBN (Zheng et al., AAAI 2021) as used by TET and GLIF, for CIFAR.

    conv3x3(128)-BN-neuron; stages of [3, 3, 2] standard basic blocks with 128/256/512 channels
    (strides 1, 2, 2; 1x1 conv + BN projection shortcuts); global average pool; fc 512->256,
    neuron, fc 256->classes (TET's ``fc1``/``fc2``; GLIF has no neuron between them).
    Parameter count with ``lif``, 10 classes: 12,697,994. ``stem_channels=64`` is the layout of
    TET's released ``resnet19`` (64-channel stem, projection into stage 1): 12,630,858, the
    "12.63M" quoted in the literature.
    """
    return ResNet(make_neuron, (3, 3, 2), (128, 256, 512), num_classes, in_channels, style="standard",
                  stem="cifar", stem_channels=stem_channels, hidden=hidden)


@register_backbone("resnet34")
def resnet34(make_neuron: NeuronMaker, *, num_classes: int, in_channels: int, style: str = "ms",
             stem: str = "imagenet") -> nn.Module:
    """Spiking ResNet-34 (IB-RA-LIF's ImageNet model): conv7x7/2 + BN + maxpool, [3, 4, 6, 3] basic
    blocks of 64/128/256/512 channels, global average pool, fc.

    Same weights as torchvision's ResNet-34: 21,797,672 parameters for 1000 classes (with a
    neuron preset without learnable parameters). ``style="ms"`` (default, membrane shortcuts, our
    reconstruction of the IB-RA-LIF model: their code lineage, SpikeYOLO / MS-ResNet, uses
    membrane shortcuts) or ``"standard"``; ``stem="cifar"`` for small inputs.
    """
    return ResNet(make_neuron, (3, 4, 6, 3), (64, 128, 256, 512), num_classes, in_channels, style=style,
                  stem=stem)
