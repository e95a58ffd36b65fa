"""Spiking backbones, timm-style: ``create_backbone(name, neuron=..., num_classes=..., in_channels=...)``.

Every backbone maps time-first input ``[T, B, C, H, W]`` to per-step logits ``[T, B, num_classes]``;
every spiking neuron in it comes from ``lit_snn.neurons.create_neuron``.
"""

from . import mnist, resnet, small, vgg  # noqa: F401  (register the backbones)
from .layers import (
                     AdaptiveAvgPool2d,
                     AvgPool2d,
                     BatchNorm2d,
                     Conv2d,
                     MaxPool2d,
                     NeuronMaker,
                     TimeFold,
                     fold_time,
)
from .registry import create_backbone, describe_backbones, list_backbones, register_backbone

__all__ = [
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BatchNorm2d",
    "Conv2d",
    "MaxPool2d",
    "NeuronMaker",
    "TimeFold",
    "create_backbone",
    "describe_backbones",
    "fold_time",
    "list_backbones",
    "register_backbone",
]
