"""Which neurons of the family NIR represents exactly, and their NIR parameters.

Our discrete update (spec ``neurons.md`` section 4) of a hard-reset neuron with a constant
threshold is ``U_t = beta V_{t-1} + alpha X_t``, ``S_t = [U_t >= th]``, ``V_t = U_t (1 - S_t)``.
NIR's LIF ``tau dv/dt = (v_leak - v) + r I`` integrated by forward Euler over one step ``dt`` is
``v_t = (1 - dt/tau) v_{t-1} + (dt r / tau) I_t``, so

    tau = dt / (1 - beta),   r = alpha / (1 - beta),   v_leak = 0,   v_reset = 0,   v_threshold = th

and ``beta = 1`` (no leak) is NIR's IF ``dv/dt = r I`` with ``r = alpha / dt``. The one
difference left is the tie: NIR (and snnTorch) fire when ``v > v_threshold``, we fire when
``U >= th``; the two disagree only when a membrane equals the threshold exactly.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError
from ..neurons import NeuronConfig, SpikingNeuron

_RESET_REASONS = {
    "soft": "soft reset (V = U - S th): NIR's LIF/IF nodes reset to v_reset",
    "adaptive": "AR-LIF's adaptive reset memory has no NIR node",
    "complementary": "CLIF's complementary potential has no NIR node",
    "gated": "GLIF's gated reset has no NIR node",
    "none": "no reset (PSN) has no NIR node",
}
_THRESHOLD_REASONS = {
    "adaptive": "adaptive threshold th = V_th + tanh(a) tanh(X) (AR-LIF) has no NIR node",
    "spike_adaptive": "spike-adaptive threshold (ALIF) has no NIR node",
}
_DECAY_REASONS = {
    "gated": "GLIF's gated leak and per-step conductance have no NIR node",
    "parallel": "PSN's [T, T] mixing over time has no NIR node",
}


def not_exportable_reason(config: NeuronConfig) -> str | None:
    """Why NIR cannot represent this neuron exactly, or ``None`` when it can (a hard-reset,
    binary, constant-threshold LIF/IF; learned decays and thresholds are exported frozen)."""
    if config.spike != "binary":
        return f"integer spikes (S in {{0, 1/N, ..., D}}, D={config.int_max}, N={config.int_scale}): NIR nodes emit " \
               "binary events"
    if config.reset != "hard":
        return _RESET_REASONS[config.reset]
    if config.threshold in _THRESHOLD_REASONS:
        return _THRESHOLD_REASONS[config.threshold]
    if config.decay in _DECAY_REASONS:
        return _DECAY_REASONS[config.decay]
    if config.slope != "none":
        return "KLIF's learnable slope relu(k U) has no NIR node"
    return None


def check_exportable(neuron: SpikingNeuron) -> None:
    """Raise ``ValueError`` naming the preset and the reason when NIR cannot represent ``neuron``."""
    reason = not_exportable_reason(neuron.config)
    if reason is not None:
        raise ConfigError(f"neuron {neuron.name!r} cannot be exported to NIR exactly: {reason}")


def _per_element(values: torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
    """One per-layer (``[1]``) or per-channel (``[C]``) parameter broadcast to the sample shape."""
    values = values.detach().to(torch.float32).cpu()
    if values.numel() > 1:  # per channel: dim 0 of the sample shape [C, ...]
        values = values.reshape((-1,) + (1,) * (len(shape) - 1))
    return np.ascontiguousarray(np.broadcast_to(values.numpy(), shape), dtype=np.float32)


def neuron_to_nir(neuron: SpikingNeuron, shape: tuple[int, ...], dt: float):
    """The ``nir.LIF`` (or ``nir.IF`` without leak) of ``neuron`` for one sample of ``shape``."""
    import nir

    check_exportable(neuron)
    params = neuron.effective_params()
    alpha, beta = _per_element(params["alpha"], shape), _per_element(params["beta"], shape)
    threshold = _per_element(params["vth"], shape)
    zeros = np.zeros(shape, dtype=np.float32)
    dt32 = np.float32(dt)
    if np.all(beta == 1):
        return nir.IF(r=alpha / dt32, v_threshold=threshold, v_reset=zeros)
    if np.any(beta >= 1) or np.any(beta < 0):
        raise ConfigError(f"neuron {neuron.name!r}: decay beta must lie in [0, 1) for NIR's LIF (or be 1 for IF), "
                         f"got values in [{beta.min()}, {beta.max()}]")
    return nir.LIF(tau=dt32 / (1 - beta), r=alpha / (1 - beta), v_leak=zeros, v_threshold=threshold, v_reset=zeros)


def _uniform(name: str, values: np.ndarray, node_kind: str) -> float:
    flat = np.unique(np.asarray(values, dtype=np.float64))
    if flat.size != 1:
        raise ConfigError(f"NIR {node_kind}: {name} differs between neurons of one layer ({flat.size} values); "
                         "lit_snn's fixed-decay neuron takes one value per layer")
    return float(flat[0])


def neuron_from_nir(node, dt: float) -> SpikingNeuron:
    """A multi-step ``SpikingNeuron`` (hard reset, fixed decay) equal to a NIR LIF/IF node at step ``dt``."""
    import nir

    kind = type(node).__name__
    if not np.allclose(node.v_reset, 0):
        raise ConfigError(f"NIR {kind}: v_reset must be 0 (lit_snn's hard reset goes to 0)")
    threshold = _uniform("v_threshold", node.v_threshold, kind)
    if isinstance(node, nir.IF):
        beta, alpha = 1.0, _uniform("r", node.r, kind) * dt
    else:
        if not np.allclose(node.v_leak, 0):
            raise ConfigError(f"NIR {kind}: v_leak must be 0 (lit_snn's neurons leak towards 0)")
        tau, r = _uniform("tau", node.tau, kind), _uniform("r", node.r, kind)
        beta, alpha = 1.0 - dt / tau, r * dt / tau
    config = NeuronConfig(beta=beta, alpha=alpha, reset="hard", v_threshold=threshold)
    return SpikingNeuron(config, name=f"nir_{kind.lower()}")
