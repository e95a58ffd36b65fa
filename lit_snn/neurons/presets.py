"""Named presets of the neuron family (spec section 4) and the public factory.

``create_neuron(name, **overrides)`` builds a ``SpikingNeuron``; overrides are ``NeuronConfig``
fields, so any axis of any preset can be ablated: ``create_neuron("ar_lif", reset="soft")``.
"""

from __future__ import annotations

import difflib

from ..errors import ConfigError
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
    "i_lif", "I-LIF (SpikeYOLO): U = 0.25 V + X, S = round(clamp(U, 0, 4)), V = U - stopgrad(S) (its "
    "mem_update detaches the spike in the reset)",
    beta=0.25, alpha=1.0, spike="integer", int_max=4.0, int_scale=1.0, reset="soft", detach_reset=True,
)
register_preset(
    "ib_ra_lif", "IB-RA-LIF (arXiv 2506.05679): S = round(clamp(100 U, 0, 511)) / 100, V = U - stopgrad(S); "
    "its code is not public, so the reset detaches the spike as in I-LIF's code, which it extends",
    beta=0.25, alpha=1.0, spike="integer", int_max=5.11, int_scale=100.0, reset="soft", detach_reset=True,
)
# ---- baselines beyond the three papers (spec section 7); defaults equal SpikingJelly 2.0's classes
register_preset(
    "clif", "CLIF (Huang et al., ICML 2024; SpikingJelly ComplementaryLIFNode): H = V/2 + X, "
    "M = M sigmoid(H/2) + S, V = H - S (1 + sigmoid(M)), rectangle(1)",
    beta=0.5, alpha=1.0, reset="complementary", surrogate="rectangle", surrogate_width=1.0,
)
register_preset(
    "alif", "ALIF (Bellec et al. 2018, LSNN): U = V/2 + X, th = 1 + 1.8 a, a = 0.9 a + 0.1 S_prev, "
    "V = U - S th, rectangle(1)",
    beta=0.5, alpha=1.0, reset="soft", threshold="spike_adaptive", adapt_decay=0.9, adapt_gain=1.8,
    surrogate="rectangle", surrogate_width=1.0,
)
register_preset(
    "klif", "KLIF (Jiang and Zhang 2023; SpikingJelly KLIFNode): U = relu(k (V + (X - V)/2)), k learnable "
    "init 1, hard reset, sigmoid(4)",
    beta=0.5, alpha=0.5, reset="hard", slope="learnable", slope_init=1.0, surrogate="sigmoid", surrogate_alpha=4.0,
)
register_preset(
    "glif", "GLIF (Yao et al., NeurIPS 2022; SpikingJelly GatedLIFNode): gated leak, integration and reset, "
    "every learnable a sigmoid; gates start at 1/2 (SpikingJelly draws them around 1/2); T from the model",
    decay="gated", reset="gated", threshold="learnable", v_threshold=0.5, time_steps=4, surrogate="sigmoid",
    surrogate_alpha=4.0,
)
register_preset(
    "psn", "PSN (Fang et al., NeurIPS 2023; SpikingJelly PSN): S = H(W X - B), W [T, T], B [T] learnable "
    "(init 1), no reset, atan(2); T from the model",
    decay="parallel", reset="none", threshold="learnable", v_threshold=1.0, time_steps=4, surrogate="atan",
    surrogate_alpha=2.0,
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
        close = difflib.get_close_matches(str(name), list_neurons(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown neuron {name!r}; valid neurons: {', '.join(list_neurons())}{hint}")
    unknown = sorted(set(overrides) - set(NeuronConfig.field_names()))
    if unknown:
        raise ConfigError(
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

