"""The neuron family's configuration: one field per ablation axis of the three papers.

Every preset (``lif``, ``ar_lif``, ``da_lif``, ``ib_ra_lif``, ...) is a point in this space;
see ``presets.py`` and ``../shared/spec/neurons.md`` section 4.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields

RESETS = ("hard", "soft", "adaptive")
THRESHOLDS = ("fixed", "learnable", "adaptive")
DECAYS = ("fixed", "learnable", "dual")
DECAY_FNS = ("sigmoid", "tanh")
GRANULARITIES = ("layer", "channel")
SPIKES = ("binary", "integer")
SURROGATES = ("rectangle", "triangle", "sigmoid", "atan")
BACKENDS = ("auto", "torch", "triton")

_CHOICES = {
    "reset": RESETS,
    "threshold": THRESHOLDS,
    "decay": DECAYS,
    "decay_fn": DECAY_FNS,
    "granularity": GRANULARITIES,
    "spike": SPIKES,
    "surrogate": SURROGATES,
    "backend": BACKENDS,
}


@dataclass
class NeuronConfig:
    """One multi-step spiking neuron; the fields are the papers' ablation axes.

    Charge ``U_t = beta * V_{t-1} + alpha * X_t``; fire against the threshold ``th_t``;
    reset ``V_t`` by ``reset``. The decay axis decides where ``alpha``/``beta`` come from:

    - ``fixed``: the floats ``alpha`` and ``beta``.
    - ``learnable`` (PLIF): ``k = sigmoid(w)``, ``beta = 1 - k``; ``alpha = k`` when
      ``decay_input`` (SpikingJelly's ``U = V + k (X - V)``), else the fixed ``alpha``.
    - ``dual`` (DA-LIF): ``alpha = f(tau_a)``, ``beta = f(tau_b)`` with ``f = decay_fn``,
      both learnable, initialised so that they start at the configured ``alpha``/``beta``.
      [reconstructed: the choice of f and the initialisation are config fields]
    """

    # reset mode: hard V = U (1 - S); soft V = U - S th; adaptive: AR-LIF memory M
    reset: str = "hard"
    # threshold strategy: fixed V_th; learnable V_th; adaptive th = V_th + tanh(a) tanh(X) (AR-LIF)
    threshold: str = "fixed"
    v_threshold: float = 1.0
    threshold_coef_init: float = 0.0  # AR-LIF `a` (init 0)
    memory_gain_init: float = 1.0  # AR-LIF `c` (init 1)
    memory_carry: bool = True  # False: M restarts at 0 each step (the authors' DVS variant)
    # decay learnability
    decay: str = "fixed"
    beta: float = 0.5  # membrane (temporal) decay, or its initial value
    alpha: float = 1.0  # input (spatial) gain, or its initial value
    decay_input: bool = False  # learnable decay: alpha = k = 1 - beta (PLIF)
    decay_fn: str = "sigmoid"  # dual decay function f
    granularity: str = "layer"  # shape of learnable parameters: one per layer or per channel (dim 2)
    channels: int | None = None  # required for granularity=channel
    # spike kind / range alignment
    spike: str = "binary"
    int_max: float = 4.0  # D: integer spikes take values in {0, 1/N, ..., D}
    int_scale: float = 1.0  # N: range alignment (N = 1 is "alignment off")
    # surrogate gradient of the binary spike
    surrogate: str = "sigmoid"
    surrogate_width: float = 1.0  # rectangle / triangle width
    surrogate_alpha: float = 4.0  # sigmoid / atan sharpness
    # execution
    backend: str = "auto"  # auto: Triton on CUDA tensors, PyTorch reference otherwise
    validate: bool = True  # check rank/dtype/NaN of every input (one extra read of x)
    extra: dict = field(default_factory=dict, repr=False)  # free-form notes kept with the config

    def __post_init__(self) -> None:
        self.validate_fields()

    # ------------------------------------------------------------------ checks
    def validate_fields(self) -> None:
        """Raise ``ValueError`` naming the field, the bad value and the valid ones."""
        for name, choices in _CHOICES.items():
            value = getattr(self, name)
            if value not in choices:
                raise ValueError(
                    f"neuron config: unknown {name}={value!r}; valid values: {', '.join(choices)}"
                )
        for name in ("v_threshold", "beta", "alpha", "int_max", "int_scale", "surrogate_width",
                     "surrogate_alpha", "threshold_coef_init", "memory_gain_init"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"neuron config: {name} must be a finite number, got {value!r}")
        if self.v_threshold <= 0:
            raise ValueError(f"neuron config: v_threshold must be > 0, got {self.v_threshold}")
        if self.int_max <= 0 or self.int_scale <= 0:
            raise ValueError(
                f"neuron config: int_max (D) and int_scale (N) must be > 0, got D={self.int_max}, "
                f"N={self.int_scale}"
            )
        if self.surrogate_width <= 0 or self.surrogate_alpha <= 0:
            raise ValueError("neuron config: surrogate_width and surrogate_alpha must be > 0")
        if self.decay == "learnable" and not 0.0 < self.beta < 1.0:
            raise ValueError(f"neuron config: decay=learnable needs 0 < beta < 1 (its init), got {self.beta}")
        if self.decay == "dual":
            for name in ("alpha", "beta"):
                value = getattr(self, name)
                if not 0.0 < value < 1.0:
                    raise ValueError(
                        f"neuron config: decay=dual initialises {name} = {self.decay_fn}(tau) and needs "
                        f"0 < {name} < 1, got {name}={value}; set {name} to a value in (0, 1)"
                    )
        if self.granularity == "channel":
            if not isinstance(self.channels, int) or self.channels < 1:
                raise ValueError(
                    "neuron config: granularity=channel needs channels=<number of channels (dim 2)>, "
                    f"got channels={self.channels!r}"
                )

    # ------------------------------------------------------------------ helpers
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name != "extra"]

    def replace(self, **overrides) -> "NeuronConfig":
        """A copy with ``overrides``; unknown field names raise ``ValueError`` listing the valid ones."""
        unknown = sorted(set(overrides) - set(self.field_names()))
        if unknown:
            raise ValueError(
                f"neuron config: unknown field(s) {', '.join(unknown)}; valid fields: "
                f"{', '.join(self.field_names())}"
            )
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.field_names()}

    @property
    def num_params(self) -> int:
        """Size P of each learnable parameter vector: 1 (layer) or C (channel)."""
        return self.channels if self.granularity == "channel" else 1
