"""Spiking VGGs: VGG-11/13 with BN (AR-LIF's DVS128 Gesture / Tiny-ImageNet models) and TET's VGGSNN.

Every conv is 3x3 / stride 1 / padding 1 with bias (as in both codes), then BN and a neuron;
``"A"`` is a 2x2 average pool (both codes pool by averaging). One ``nn.Sequential`` holds the
features, so each neuron -> conv pair is adjacent for ``convert_to_binary_spikes``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from .layers import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    NeuronMaker,
    flatten_features,
    init_weights,
)
from .registry import register_backbone

# AR-LIF code (models/spiking_vgg_bn.py): five stages, each ending in a 2x2 average pool
VGG11 = (64, "A", 128, "A", 256, 256, "A", 512, 512, "A", 512, 512, "A")
VGG13 = (64, 64, "A", 128, 128, "A", 256, 256, "A", 512, 512, "A", 512, 512, "A")
# TET code (models/VGG_models.py, class VGGSNN): four pools, 48x48 input -> 3x3 x 512
VGGSNN = (64, 128, "A", 256, 256, "A", 512, 512, "A", 512, 512, "A")


class SpikingVGG(nn.Module):
    """``layout`` of conv widths and ``"A"`` pools, then adaptive average pool to ``pool x pool``,
    flatten and one linear classifier ``512 * pool^2 -> num_classes``."""

    def __init__(self, make_neuron: NeuronMaker, layout: Sequence[int | str], num_classes: int,
                 in_channels: int, pool: int):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for v in layout:
            if v == "A":
                layers.append(AvgPool2d(2))  # [T, B, C, H/2, W/2]
            else:
                layers += [Conv2d(cin, int(v), 3, 1, 1), BatchNorm2d(int(v)), make_neuron(int(v))]
                cin = int(v)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            AdaptiveAvgPool2d(pool),  # [T, B, 512, pool, pool]; identity at the design input size
            flatten_features(),  # [T, B, 512 * pool^2]
            nn.Linear(cin * pool * pool, num_classes),
        )
        init_weights(self)
        for m in self.classifier.modules():  # AR-LIF code: classifier weights N(0, 0.01)
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)

    def forward(self, x: Tensor) -> Tensor:  # [T, B, C, H, W] -> [T, B, num_classes]
        return self.classifier(self.features(x))


@register_backbone("vgg11_bn")
def vgg11_bn(make_neuron: NeuronMaker, *, num_classes: int, in_channels: int, pool: int = 1) -> nn.Module:
    """Spiking VGG-11 with BN (AR-LIF's DVS128 Gesture model, 128x128 frames, 2 channels).

    Head: adaptive average pool to ``pool x pool`` then one linear layer. Default ``pool=1``
    (global average pool, ``Linear(512, num_classes)``) so small inputs (32-128 px, where the
    feature map is 1-4 px) do not pay for a 25088-wide classifier; ``pool=7`` reproduces the AR-LIF
    code's ``AdaptiveAvgPool2d(7) + Linear(512*7*7, num_classes)``.
    """
    return SpikingVGG(make_neuron, VGG11, num_classes, in_channels, pool)


@register_backbone("vgg13_bn")
def vgg13_bn(make_neuron: NeuronMaker, *, num_classes: int, in_channels: int, pool: int = 1) -> nn.Module:
    """Spiking VGG-13 with BN (AR-LIF's Tiny-ImageNet model, 64x64). Head as ``vgg11_bn``."""
    return SpikingVGG(make_neuron, VGG13, num_classes, in_channels, pool)


@register_backbone("vggsnn")
def vggsnn(make_neuron: NeuronMaker, *, num_classes: int, in_channels: int,
           input_size: int = 48) -> nn.Module:
    """TET's VGGSNN for CIFAR10-DVS (48x48, 2 channels): 64, 128, A, 256, 256, A, 512, 512, A,
    512, 512, A, then flatten and ``Linear(512 * 3 * 3, num_classes)``.

    ``input_size``: the design side (classifier on ``(input_size // 16)^2`` positions; 64 for
    Tiny-ImageNet gives 4x4). Other sizes are average-pooled to that grid. Parameter count with
    ``lif``, 2 input channels, 10 classes: 9,271,498.
    """
    side = max(1, input_size // 16)
    return SpikingVGG(make_neuron, VGGSNN, num_classes, in_channels, side)
