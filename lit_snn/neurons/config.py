"""The neuron family's configuration: one field per ablation axis of the three papers.

Every preset (``lif``, ``ar_lif``, ``da_lif``, ``ib_ra_lif``, ...) is a point in this space;
see ``presets.py`` and ``docs/neurons.md`` (the axes, their equations and provenance).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields

from ..errors import ConfigError

RESETS = ("hard", "soft", "adaptive", "complementary", "gated", "none")
THRESHOLDS = ("fixed", "learnable", "adaptive", "spike_adaptive")
DECAYS = ("fixed", "learnable", "dual", "gated", "parallel")
SLOPES = ("none", "learnable")
# resets and thresholds that keep a second state per neuron (the kernel's M): at most one of them
STATEFUL_RESETS = {"adaptive": "AR-LIF memory", "complementary": "CLIF complementary potential"}
DECAY_FNS = ("sigmoid", "tanh")
GRANULARITIES = ("layer", "channel")
SPIKES = ("binary", "integer")
SURROGATES = ("rectangle", "triangle", "sigmoid", "atan")
BACKENDS = ("auto", "torch", "triton", "cpu")

_CHOICES = {
    "reset": RESETS,
    "threshold": THRESHOLDS,
    "decay": DECAYS,
    "decay_fn": DECAY_FNS,
    "granularity": GRANULARITIES,
    "spike": SPIKES,
    "slope": SLOPES,
    "surrogate": SURROGATES,
    "backend": BACKENDS,
}


@dataclass
class NeuronConfig:
    """One multi-step spiking neuron; the fields are the papers' ablation axes.

    Charge ``U_t = beta * V_{t-1} + alpha * X_t`` (then ``U_t = relu(k U_t)`` with ``slope:
    learnable``, KLIF); fire against the threshold ``th_t``; reset ``V_t`` by ``reset``. The decay
    axis decides where ``alpha``/``beta`` come from:

    - ``fixed``: the floats ``alpha`` and ``beta``.
    - ``learnable`` (PLIF): ``k = sigmoid(w)``, ``beta = 1 - k``; ``alpha = k`` when
      ``decay_input`` (SpikingJelly's ``U = V + k (X - V)``), else the fixed ``alpha``.
    - ``dual`` (DA-LIF): ``alpha = f(tau_a)``, ``beta = f(tau_b)`` with ``f = decay_fn``,
      both learnable, initialised so that they start at the configured ``alpha``/``beta``.
      [reconstructed: the choice of f and the initialisation are config fields]
    - ``gated`` (GLIF): ``U_t = (1 - a (1 - tau)) V_{t-1} - (1 - a) l + (1 - b (1 - g_t)) X_t``
      with learnable gates ``a``, ``b``, time constant ``tau``, linear decay ``l`` and a
      conductance ``g_t`` per time step (``time_steps`` needed), every one a sigmoid of a logit as
      in GLIF; a learnable threshold is then a sigmoid too. ``beta`` is unused.
    - ``parallel`` (PSN): no recurrence, ``U = W X`` over time with a learnable ``[T, T]`` ``W``
      (``time_steps`` needed), ``reset: none``; a learnable threshold is one per time step.

    Resets: ``hard`` ``V = U (1 - S)``; ``soft`` ``V = U - S th``; ``adaptive`` (AR-LIF memory);
    ``complementary`` (CLIF: ``M = M sigmoid((1 - beta) U) + S``, ``V = U - S (th + sigmoid(M))``);
    ``gated`` (GLIF: ``V = U - S (r U + (1 - r) v_sub)``, a learnable gate ``r`` mixing hard and
    soft reset and a learnable ``v_sub``; with ``decay: gated`` ``v_sub`` is divided by GLIF's leak
    so that the next charge subtracts exactly ``(1 - r) v_sub``, as GLIF does); ``none`` ``V = U``.
    ``detach_reset``: the spike enters the reset (and any memory or trace it feeds) without
    gradient, as in SpikeYOLO's I-LIF and SpikingJelly's option of that name.
    Thresholds: ``fixed``, ``learnable``, ``adaptive`` (AR-LIF ``th = V_th + tanh(a) tanh(X)``),
    ``spike_adaptive`` (ALIF: ``th_t = V_th + adapt_gain a_t``, ``a_t = rho a_{t-1} + (1 - rho) S_{t-1}``).
    """

    # reset mode: hard V = U (1 - S); soft V = U - S th; adaptive: AR-LIF memory M; complementary:
    # CLIF; gated: GLIF; none: V = U
    reset: str = "hard"
    detach_reset: bool = False  # the spike enters the state update without gradient (SpikeYOLO I-LIF)
    # threshold strategy: fixed V_th; learnable V_th; adaptive th = V_th + tanh(a) tanh(X) (AR-LIF);
    # spike_adaptive th = V_th + adapt_gain * trace of the neuron's own spikes (ALIF)
    threshold: str = "fixed"
    v_threshold: float = 1.0
    threshold_coef_init: float = 0.0  # AR-LIF `a` (init 0)
    memory_gain_init: float = 1.0  # AR-LIF `c` (init 1)
    memory_carry: bool = True  # False: M restarts at 0 each step (the authors' DVS variant)
    adapt_decay: float = 0.9  # ALIF rho (or its initial value)
    adapt_gain: float = 1.8  # ALIF gamma (or its initial value)
    adapt_learnable: bool = False  # ALIF: rho = sigmoid(logit) and gamma learnable
    # decay learnability
    decay: str = "fixed"
    beta: float = 0.5  # membrane (temporal) decay, or its initial value
    alpha: float = 1.0  # input (spatial) gain, or its initial value
    decay_input: bool = False  # learnable decay: alpha = k = 1 - beta (PLIF)
    decay_fn: str = "sigmoid"  # dual decay function f
    granularity: str = "layer"  # shape of learnable parameters: one per layer or per channel (dim 2)
    channels: int | None = None  # required for granularity=channel
    time_steps: int | None = None  # T, required by decay=gated (GLIF conductance) and decay=parallel (PSN)
    # GLIF's initial values (decay=gated / reset=gated), SpikingJelly's GatedLIFNode defaults
    gate_init: float = 0.0  # logits of the gates a, b (and r of the gated reset): sigmoid 1/2
    glif_tau_init: float = 0.25
    glif_conduct_init: float = 0.5
    glif_linear_decay_init: float | None = None  # None: v_threshold / (2 T)
    glif_subreset_init: float | None = None  # None: v_threshold
    # KLIF's learnable slope: U = relu(k U)
    slope: str = "none"
    slope_init: float = 1.0
    # spike kind / range alignment
    spike: str = "binary"
    int_max: float = 4.0  # D: integer spikes take values in {0, 1/N, ..., D}
    int_scale: float = 1.0  # N: range alignment (N = 1 is "alignment off")
    # surrogate gradient of the binary spike
    surrogate: str = "sigmoid"
    surrogate_width: float = 1.0  # rectangle / triangle width
    surrogate_alpha: float = 4.0  # sigmoid / atan sharpness
    # execution
    backend: str = "auto"  # auto: Triton on CUDA tensors, the CPU path (neurons/cpu) on CPU ones; torch: the reference
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
                raise ConfigError(
                    f"neuron config: unknown {name}={value!r}; valid values: {', '.join(choices)}"
                )
        for name in ("v_threshold", "beta", "alpha", "int_max", "int_scale", "surrogate_width",
                     "surrogate_alpha", "threshold_coef_init", "memory_gain_init"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ConfigError(f"neuron config: {name} must be a finite number, got {value!r}")
        if self.v_threshold <= 0:
            raise ConfigError(f"neuron config: v_threshold must be > 0, got {self.v_threshold}")
        if self.int_max <= 0 or self.int_scale <= 0:
            raise ConfigError(
                f"neuron config: int_max (D) and int_scale (N) must be > 0, got D={self.int_max}, "
                f"N={self.int_scale}"
            )
        if self.surrogate_width <= 0 or self.surrogate_alpha <= 0:
            raise ConfigError("neuron config: surrogate_width and surrogate_alpha must be > 0")
        if self.decay == "learnable" and not 0.0 < self.beta < 1.0:
            raise ConfigError(f"neuron config: decay=learnable needs 0 < beta < 1 (its init), got {self.beta}")
        if self.decay == "dual":
            for name in ("alpha", "beta"):
                value = getattr(self, name)
                if not 0.0 < value < 1.0:
                    raise ConfigError(
                        f"neuron config: decay=dual initialises {name} = {self.decay_fn}(tau) and needs "
                        f"0 < {name} < 1, got {name}={value}; set {name} to a value in (0, 1)"
                    )
        self._validate_combination()
        if self.granularity == "channel":
            if not isinstance(self.channels, int) or self.channels < 1:
                raise ConfigError(
                    "neuron config: granularity=channel needs channels=<number of channels (dim 2)>, "
                    f"got channels={self.channels!r}"
                )

    def _validate_combination(self) -> None:
        """Axis values that cannot combine: one clear error naming both and what would work."""
        for name in ("adapt_decay", "adapt_gain", "slope_init", "gate_init", "glif_tau_init",
                     "glif_conduct_init"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ConfigError(f"neuron config: {name} must be a finite number, got {value!r}")
        if self.reset in STATEFUL_RESETS and self.threshold == "spike_adaptive":
            raise ConfigError(
                f"neuron config: reset={self.reset} and threshold=spike_adaptive both keep a second state per "
                f"neuron ({STATEFUL_RESETS[self.reset]}, ALIF adaptation trace); combine spike_adaptive with "
                "reset hard, soft, gated or none"
            )
        if not 0.0 <= self.adapt_decay < 1.0:
            raise ConfigError(f"neuron config: adapt_decay (ALIF rho) must be in [0, 1), got {self.adapt_decay}")
        if self.adapt_learnable and self.adapt_decay <= 0:
            raise ConfigError("neuron config: adapt_learnable initialises rho = sigmoid(logit) and needs "
                             f"0 < adapt_decay < 1, got {self.adapt_decay}")
        if self.decay in ("gated", "parallel"):
            if not isinstance(self.time_steps, int) or isinstance(self.time_steps, bool) or self.time_steps < 1:
                raise ConfigError(
                    f"neuron config: decay={self.decay} has a parameter per time step and needs "
                    f"time_steps=<T>, got time_steps={self.time_steps!r}"
                )
        elif self.time_steps is not None and (not isinstance(self.time_steps, int) or self.time_steps < 1):
            raise ConfigError(f"neuron config: time_steps must be a positive integer, got {self.time_steps!r}")
        if self.decay == "parallel":
            if self.reset != "none":
                raise ConfigError(f"neuron config: decay=parallel (PSN) has no membrane to reset: set reset=none, "
                                 f"got reset={self.reset}")
            if self.threshold not in ("fixed", "learnable"):
                raise ConfigError(f"neuron config: decay=parallel (PSN) takes threshold fixed or learnable (one "
                                 f"per time step), got threshold={self.threshold}")
            if self.spike != "binary" or self.slope != "none":
                raise ConfigError("neuron config: decay=parallel (PSN) takes binary spikes and no slope, got "
                                 f"spike={self.spike}, slope={self.slope}")
        if self.decay == "gated":
            for name, value in (("glif_tau_init", self.glif_tau_init), ("glif_conduct_init", self.glif_conduct_init)):
                if not 0.0 < value < 1.0:
                    raise ConfigError(f"neuron config: decay=gated initialises {name} as a sigmoid and needs "
                                     f"0 < {name} < 1, got {value}")
        inits = []
        if self.decay == "gated":
            inits.append(("glif_linear_decay_init", self.linear_decay_start))
        if self.reset == "gated":
            inits.append(("glif_subreset_init", self.subreset_start))
        for name, value in inits:
            if not 0.0 < value < 1.0:
                raise ConfigError(f"neuron config: {name} (default from v_threshold) is a sigmoid in GLIF and "
                                 f"needs a value in (0, 1), got {value}; set {name} or v_threshold")
        if self.sigmoid_params and self.threshold == "learnable" and not 0.0 < self.v_threshold < 1.0:
            raise ConfigError("neuron config: a learnable threshold of GLIF (decay or reset gated) is a sigmoid and "
                             f"needs 0 < v_threshold < 1, got {self.v_threshold}")
        if self.reset == "complementary" and not self.memory_carry:
            raise ConfigError("neuron config: memory_carry=False applies to reset=adaptive only; the complementary "
                             "potential of reset=complementary is always carried")

    @property
    def linear_decay_start(self) -> float:
        """GLIF's initial linear decay: ``glif_linear_decay_init``, else ``v_threshold / (2 T)``."""
        if self.glif_linear_decay_init is not None:
            return float(self.glif_linear_decay_init)
        return self.v_threshold / (2 * (self.time_steps or 1))

    @property
    def subreset_start(self) -> float:
        """GLIF's initial soft-reset value: ``glif_subreset_init``, else ``v_threshold``."""
        return float(self.v_threshold if self.glif_subreset_init is None else self.glif_subreset_init)

    @property
    def sigmoid_params(self) -> bool:
        """GLIF's parametrisation (decay or reset gated): every learnable is a sigmoid of a logit."""
        return self.decay == "gated" or self.reset == "gated"

    @property
    def int_top(self) -> int:
        """Integer spikes: the largest code ``round(N D)`` (``surrogate.integer_top``)."""
        from .surrogate import integer_top

        return integer_top(self.int_max, self.int_scale)

    @property
    def needs_time_steps(self) -> bool:
        """Whether the neuron has parameters per time step (and so needs ``time_steps``)."""
        return self.decay in ("gated", "parallel")

    # ------------------------------------------------------------------ helpers
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name != "extra"]

    def replace(self, **overrides) -> "NeuronConfig":
        """A copy with ``overrides``; unknown field names raise ``ValueError`` listing the valid ones."""
        unknown = sorted(set(overrides) - set(self.field_names()))
        if unknown:
            raise ConfigError(
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
