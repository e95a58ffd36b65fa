"""Named presets of the neuron family (spec section 4) and the public factory.

``create_neuron(name, **overrides)`` builds a ``SpikingNeuron``; overrides are ``NeuronConfig``
fields, so any axis of any preset can be ablated: ``create_neuron("ar_lif", reset="soft")``.
"""

from __future__ import annotations

from typing import Callable

from .config import NeuronConfig
from .family import SpikingNeuron

_PRESETS: dict[str, dict] = {}
_DOCS: dict[str, str] = {}


def register_preset(name: str, doc: str, **fields) -> None:
    """Register a named point of the family; ``fields`` are ``NeuronConfig`` fields."""
    NeuronConfig(**fields)  # fail at import time, not at first use
    _PRESETS[name] = fields
    _DOCS[name] = doc


register_preset(
    "lif", "SpikingJelly's default LIF: U = V + (X - V)/2, hard reset to 0, sigmoid(4) surrogate",
    beta=0.5, alpha=0.5, reset="hard", surrogate="sigmoid", surrogate_alpha=4.0,
)
register_preset(
    "plif", "Parametric LIF: U = V + k (X - V), k = sigmoid(w) learnable per layer, init k = 1/2",
    decay="learnable", beta=0.5, decay_input=True, reset="hard", surrogate="sigmoid", surrogate_alpha=4.0,
)
register_preset(
    "hard_lif", "AR-LIF code's hardLIF control: U = 0.5 V + X, V = U (1 - S), rectangle(1)",
    beta=0.5, alpha=1.0, reset="hard", surrogate="rectangle", surrogate_width=1.0,
)
register_preset(
    "soft_lif", "AR-LIF code's softLIF control: U = 0.5 V + X, V = U - S, rectangle(1)",
    beta=0.5, alpha=1.0, reset="soft", surrogate="rectangle", surrogate_width=1.0,
)
register_preset(
    "ar_lif", "AR-LIF (arXiv 2507.20746): adaptive reset memory + threshold 1 + tanh(a) tanh(X)",
    beta=0.5, alpha=1.0, reset="adaptive", threshold="adaptive", surrogate="rectangle",
    surrogate_width=1.0, memory_carry=True,
)
register_preset(
    "ar_lif_dvs", "AR-LIF authors' DVS configuration: decay 0.2, triangle(1), memory restarts each step",
    beta=0.2, alpha=1.0, reset="adaptive", threshold="adaptive", surrogate="triangle",
    surrogate_width=1.0, memory_carry=False,
)
register_preset(
    "da_lif", "DA-LIF (arXiv 2502.10422): U = f(tau_b) V + f(tau_a) X, f = sigmoid, starts as lif",
    decay="dual", decay_fn="sigmoid", alpha=0.5, beta=0.5, reset="hard", surrogate="sigmoid",
    surrogate_alpha=4.0,
)
register_preset(
    "i_lif", "I-LIF (SpikeYOLO): U = 0.25 V + X, S = round(clamp(U, 0, 4)), V = U - S",
    beta=0.25, alpha=1.0, spike="integer", int_max=4.0, int_scale=1.0, reset="soft",
)
register_preset(
    "ib_ra_lif", "IB-RA-LIF (arXiv 2506.05679): S = round(clamp(100 U, 0, 511)) / 100, V = U - S",
    beta=0.25, alpha=1.0, spike="integer", int_max=5.11, int_scale=100.0, reset="soft",
)


def list_neurons() -> list[str]:
    """Names of the registered presets."""
    return sorted(_PRESETS)


def describe_neurons() -> dict[str, str]:
    """Preset name -> one-line description."""
    return {name: _DOCS[name] for name in list_neurons()}


def neuron_config(name: str, **overrides) -> NeuronConfig:
    """The ``NeuronConfig`` of preset ``name`` with ``overrides`` applied."""
    if isinstance(name, NeuronConfig):
        return name.replace(**overrides)
    if name not in _PRESETS:
        raise ValueError(f"unknown neuron {name!r}; valid neurons: {', '.join(list_neurons())}")
    unknown = sorted(set(overrides) - set(NeuronConfig.field_names()))
    if unknown:
        raise ValueError(
            f"neuron {name!r}: unknown field(s) {', '.join(unknown)}; valid fields: "
            f"{', '.join(NeuronConfig.field_names())}"
        )
    return NeuronConfig(**{**_PRESETS[name], **overrides})


def create_neuron(name: str | NeuronConfig = "lif", **overrides) -> SpikingNeuron:
    """Build a multi-step neuron from a preset name (or a ``NeuronConfig``) and field overrides.

    Raises ``ValueError`` listing the valid names for an unknown preset, field or axis value.
    """
    cfg = neuron_config(name, **overrides)
    return SpikingNeuron(cfg, name=name if isinstance(name, str) else "custom")


NeuronFactory = Callable[..., SpikingNeuron]
