"""timm-style registry of spiking backbones: ``@register_backbone(name)``, ``create_backbone(name)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from ..errors import ConfigError
from ..neurons import NeuronConfig
from .layers import NeuronMaker

BackboneBuilder = Callable[..., nn.Module]
_BACKBONES: dict[str, BackboneBuilder] = {}


def register_backbone(name: str) -> Callable[[BackboneBuilder], BackboneBuilder]:
    """Register ``fn(make_neuron: NeuronMaker, *, num_classes, in_channels, **kwargs) -> nn.Module``."""

    def decorator(fn: BackboneBuilder) -> BackboneBuilder:
        if name in _BACKBONES:
            raise ConfigError(f"backbone {name!r} is already registered")
        _BACKBONES[name] = fn
        return fn

    return decorator


def list_backbones() -> list[str]:
    """Names of the registered backbones."""
    return sorted(_BACKBONES)


def describe_backbones() -> dict[str, str]:
    """Backbone name -> first paragraph of its builder's docstring, on one line."""
    def summary(fn: BackboneBuilder) -> str:
        return " ".join((fn.__doc__ or "").strip().split("\n\n")[0].split())

    return {n: summary(_BACKBONES[n]) for n in list_backbones()}


def create_backbone(
    name: str,
    *,
    neuron: str | NeuronConfig = "lif",
    neuron_overrides: dict[str, Any] | None = None,
    num_classes: int = 10,
    in_channels: int = 3,
    **kwargs: Any,
) -> nn.Module:
    """Build backbone ``name`` with every spiking neuron from ``create_neuron(neuron, **neuron_overrides)``.

    The model maps time-first input ``[T, B, in_channels, H, W]`` to per-step logits
    ``[T, B, num_classes]``. ``kwargs`` are backbone-specific (see each builder's docstring).
    Raises ``ValueError`` listing the valid names for an unknown backbone (and, from the neuron
    factory, for an unknown neuron preset or field).
    """
    if name not in _BACKBONES:
        raise ConfigError(f"unknown backbone {name!r}; valid backbones: {', '.join(list_backbones())}")
    make_neuron = NeuronMaker(neuron, neuron_overrides)
    return _BACKBONES[name](make_neuron, num_classes=num_classes, in_channels=in_channels, **kwargs)
