"""``mnist_conv``: a spiking conv net sized for a CPU, for 28x28 greyscale (MNIST, Fashion-MNIST)."""

from __future__ import annotations

from torch import Tensor, nn

from ..errors import ConfigError
from .layers import BatchNorm2d, Conv2d, MaxPool2d, NeuronMaker, flatten_features, init_weights
from .registry import register_backbone


class MNISTConvSNN(nn.Module):
    """[conv3x3-BN-maxpool2-neuron] x 2, then linear (optionally a spiking hidden linear layer first).

    Pooling sits before each neuron, so the neurons (the costly part on a CPU) run at a quarter
    of the conv resolution: 14x14 then 7x7 at 28x28 input. One ``nn.Sequential`` with the first
    neuron -> conv pair adjacent, for ``convert_to_binary_spikes``.
    """

    def __init__(self, make_neuron: NeuronMaker, num_classes: int, in_channels: int, width: int = 32,
                 hidden: int = 0, input_size: int = 28) -> None:
        super().__init__()
        if input_size % 4:
            raise ConfigError(f"mnist_conv: input_size must be a multiple of 4, got {input_size}")
        w1, w2, side = width, 2 * width, input_size // 4
        self.features = nn.Sequential(
            Conv2d(in_channels, w1, 3, padding=1, bias=False),  # [T, B, w1, H, W]
            BatchNorm2d(w1),
            MaxPool2d(2),  # [T, B, w1, H/2, W/2]
            make_neuron(w1),
            Conv2d(w1, w2, 3, padding=1, bias=False),  # [T, B, w2, H/2, W/2]
            BatchNorm2d(w2),
            MaxPool2d(2),  # [T, B, w2, H/4, W/4]
            make_neuron(w2),
        )
        layers: list[nn.Module] = [flatten_features()]
        features = w2 * side * side
        if hidden > 0:
            layers += [nn.Linear(features, hidden), make_neuron(hidden)]
            features = hidden
        layers.append(nn.Linear(features, num_classes))
        self.classifier = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:  # [T, B, C, H, W] -> [T, B, num_classes]
        return self.classifier(self.features(x))


@register_backbone("mnist_conv")
def mnist_conv(make_neuron: NeuronMaker, *, num_classes: int, in_channels: int, width: int = 32,
               hidden: int = 0, input_size: int = 28) -> nn.Module:
    """Spiking conv net sized for a CPU, for 28x28 MNIST / Fashion-MNIST (two conv layers of
    ``width`` and ``2 * width`` channels, each conv-BN-maxpool-neuron, then linear).

    ``hidden`` > 0 adds a spiking hidden linear layer of that size; ``input_size``: side of the
    (square) input, a multiple of 4 (default 28).
    """
    return MNISTConvSNN(make_neuron, num_classes, in_channels, width=width, hidden=hidden, input_size=input_size)
