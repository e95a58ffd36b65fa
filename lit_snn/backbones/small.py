"""``small_conv``: a cheap spiking conv net for the embedded 8x8 digits and 32x32 DVS digits."""

from __future__ import annotations

from torch import Tensor, nn

from .layers import (
    AdaptiveAvgPool2d,
    BatchNorm2d,
    Conv2d,
    NeuronMaker,
    flatten_features,
    init_weights,
)
from .registry import register_backbone


class SmallConvSNN(nn.Module):
    """conv(w)-BN-neuron, conv(2w, stride 2)-BN-neuron, adaptive avgpool to ``pool x pool``, linear.

    One ``nn.Sequential`` with the neuron -> conv pair adjacent, for ``convert_to_binary_spikes``.
    Per step and sample: 0.32 MMACs at 8x8 (1 channel), 5.3 MMACs at 32x32 (2 channels), width 32.
    """

    def __init__(self, make_neuron: NeuronMaker, num_classes: int, in_channels: int, width: int = 32,
                 pool: int = 4) -> None:
        super().__init__()
        w1, w2 = width, 2 * width
        self.features = nn.Sequential(
            Conv2d(in_channels, w1, 3, padding=1, bias=False),  # [T, B, w1, H, W]
            BatchNorm2d(w1),
            make_neuron(w1),
            Conv2d(w1, w2, 3, stride=2, padding=1, bias=False),  # [T, B, w2, H/2, W/2]: 4x cheaper
            BatchNorm2d(w2),
            make_neuron(w2),
            AdaptiveAvgPool2d(pool),  # [T, B, w2, pool, pool]
        )
        self.classifier = nn.Sequential(flatten_features(), nn.Linear(w2 * pool * pool, num_classes))
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:  # [T, B, C, H, W] -> [T, B, num_classes]
        return self.classifier(self.features(x))


@register_backbone("small_conv")
def small_conv(make_neuron: NeuronMaker, *, num_classes: int, in_channels: int, width: int = 32,
               pool: int = 4) -> nn.Module:
    """Small spiking conv net for 8x8 digits / 32x32 DVS digits (29,162 parameters at width 32, 1
    input channel, 10 classes).

    ``width``: channels of the first conv (the second has twice as many); ``pool``: side of the
    adaptive average pool in front of the linear classifier (any input size works).
    """
    return SmallConvSNN(make_neuron, num_classes, in_channels, width=width, pool=pool)
