"""Spikes and membrane potentials of every spiking layer of a model, over T, on a few samples."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..energy import FiringRateMonitor, spiking_neurons
from ..neurons import SpikingNeuron
from ..neurons.reference import broadcast_param, multistep_reference


@dataclass
class LayerRecord:
    """One spiking layer on the inspected samples.

    ``spikes`` and ``membrane`` are ``[T, B, ...]`` (the layer's output shape: ``[T, B, C, H, W]``
    for a conv layer, ``[T, B, F]`` for a linear one); ``membrane`` is ``V_t`` after each step's
    reset (``None`` for PSN, which has none); ``threshold`` the base ``v_th`` per layer or channel
    ``[P]``; ``rate`` and ``codes`` are ``FiringRateMonitor``'s firing rate and (integer neurons)
    counts of each level ``q = S N`` in ``0..N D``.
    """

    name: str
    neuron: SpikingNeuron
    spikes: Tensor
    membrane: Tensor | None
    charge: Tensor | None
    threshold: Tensor
    rate: float
    codes: Tensor | None

    @property
    def integer(self) -> bool:
        return self.neuron.config.spike == "integer"

    @property
    def conv(self) -> bool:
        return self.spikes.dim() == 5


@torch.no_grad()
def membrane_trace(neuron: SpikingNeuron, x: Tensor) -> Tensor | None:
    """``V_t`` after each step ``t`` of ``neuron`` on its input ``x [T, ...]``: ``[T, ...]`` (``None`` for PSN).

    The modules return only the last state (keeping every step would cost the training memory), but
    their states start at zero on every call and step ``t`` reads only ``x[:t+1]``: the last state of
    the reference recurrence on that prefix is ``V_t``. T calls of the reference, O(T^2) steps: a few
    samples at small T cost milliseconds.
    """
    if neuron.config.decay == "parallel":
        return None
    x, params = _recurrence_input(neuron, x)
    return torch.stack([multistep_reference(x[: t + 1], **params, spec=neuron.spec)[1] for t in range(x.shape[0])])


@torch.no_grad()
def charge_trace(neuron: SpikingNeuron, x: Tensor, membrane: Tensor) -> Tensor:
    """``U_t = beta V_{t-1} + alpha X_t`` (KLIF: ``relu(k U_t)``), the charge before the spike and the
    reset, from the input ``x [T, ...]`` and ``membrane_trace``'s ``V [T, ...]``: the first lines of the
    recurrence (``neurons.reference``), which its kernels return no trace of."""
    x, params = _recurrence_input(neuron, x)
    p = {k: broadcast_param(v, x[0]) for k, v in params.items()}
    v_prev = torch.cat([torch.zeros_like(membrane[:1]), membrane[:-1]])
    u = p["beta"] * v_prev + p["alpha"] * x
    return torch.relu(p["slope"] * u) if neuron.spec.slope else u


def _recurrence_input(neuron: SpikingNeuron, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """What the recurrence of ``neuron`` reads: its input (GLIF: gated) and its effective parameters."""
    if neuron.config.decay == "gated":  # GLIF's per-step gating acts on the input, before the recurrence
        x = neuron.glif_input(x)
    return x, {k: v.to(device=x.device, dtype=x.dtype) for k, v in neuron.effective_params(x.device).items()}


@torch.no_grad()
def record_layers(net: nn.Module, x: Tensor) -> list[LayerRecord]:
    """Run ``net`` on the time-first input ``x [T, B, ...]`` once; a ``LayerRecord`` per spiking layer
    (in the order of ``net.named_modules()``). Forward hooks keep each neuron's input and output."""
    seen: dict[str, tuple[Tensor, Tensor]] = {}
    neurons = dict(spiking_neurons(net))

    def keep(name: str):
        def hook(module, inputs, out):
            seen[name] = (inputs[0].detach(), out.detach())

        return hook

    handles = [m.register_forward_hook(keep(name)) for name, m in neurons.items()]
    monitor = FiringRateMonitor(net)
    try:
        net(x)
    finally:
        monitor.remove()
        for handle in handles:
            handle.remove()
    rates, codes = monitor.rates(), monitor.code_histograms()
    out = []
    for name, neuron in neurons.items():
        if name not in seen:
            continue
        inp, spikes = seen[name]
        threshold = neuron.effective_params(inp.device)["vth"].detach().float().cpu()
        membrane = membrane_trace(neuron, inp)
        charge = None if membrane is None else charge_trace(neuron, inp, membrane).float().cpu()
        out.append(LayerRecord(name, neuron, spikes.float().cpu(), None if membrane is None else membrane.float().cpu(),
                               charge, threshold, rates[name], codes.get(name)))
    return out
