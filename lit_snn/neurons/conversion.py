"""Inference conversion of integer spikes into binary spikes over virtual time steps.

- ``unary`` (I-LIF): an integer ``s`` in {0..D} becomes D binary spikes, ``s`` ones then zeros;
  every virtual step has weight 1.
- ``bitserial`` (IB-RA-LIF): the code ``q = N s`` in {0..N D} becomes its K = ceil(log2(N D + 1))
  bits ``b_k`` (least significant first); step k has weight ``2^k / N``.

In both, ``sum_k w_k b_k == s`` exactly, so a bias-free linear layer applied to every virtual
step and summed with the weights gives the layer's output on the integer spikes; bias (and any
normalisation after it) is applied once after the sum. ``BinarySpikeLayer`` does that.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from .family import SpikingNeuron
from .surrogate import integer_top

SCHEMES = ("unary", "bitserial")


def default_scheme(int_scale: float) -> str:
    """Unary for plain integer neurons (N = 1, I-LIF), bit-serial for range-aligned ones (IB-RA-LIF)."""
    return "unary" if int_scale == 1 else "bitserial"


def num_virtual_steps(int_max: float, int_scale: float, scheme: str) -> int:
    top = integer_top(int_max, int_scale)
    if scheme == "unary":
        return top
    if scheme == "bitserial":
        return max(1, math.ceil(math.log2(top + 1)))
    raise ConfigError(f"unknown conversion scheme {scheme!r}; valid: {', '.join(SCHEMES)}")


def virtual_step_weights(int_max: float, int_scale: float, scheme: str) -> Tensor:
    """Weights ``w_k`` of the K virtual steps: ``sum_k w_k b_k`` recovers the integer spike."""
    k = num_virtual_steps(int_max, int_scale, scheme)
    if scheme == "unary":
        return torch.ones(k, dtype=torch.float64) / int_scale
    return 2.0 ** torch.arange(k, dtype=torch.float64) / int_scale


def integer_to_binary(s: Tensor, int_max: float, int_scale: float, scheme: str | None = None) -> Tensor:
    """Binary spikes ``[K, *s.shape]`` (0/1, dtype of ``s``) whose weighted sum over K is ``s``.

    ``s`` holds integer-neuron outputs ``q / N``; values off that grid or outside [0, D] raise.
    """
    scheme = scheme or default_scheme(int_scale)
    k = num_virtual_steps(int_max, int_scale, scheme)
    scaled = s.double() * int_scale
    codes = torch.round(scaled)
    top = integer_top(int_max, int_scale)
    if s.numel() and ((codes - scaled).abs().max() > 1e-3 or codes.min() < 0 or codes.max() > top):
        raise ConfigError(
            f"integer_to_binary: values must be multiples of 1/N in [0, D] (N={int_scale}, D={int_max})"
        )
    codes = codes.long()
    steps = torch.arange(k, device=s.device).reshape((k,) + (1,) * s.dim())
    if scheme == "unary":
        bits = codes.unsqueeze(0) > steps  # s ones, then zeros
    else:
        bits = (codes.unsqueeze(0) >> steps) & 1
    return bits.to(s.dtype)


class BinarySpikeLayer(nn.Module):
    """Runs a Linear or Conv2d layer on the binary virtual steps of an integer neuron's output.

    ``forward(s)`` takes the integer spikes ``[T, B, ...]`` (or any leading dims), expands them to
    ``[K, T, B, ...]`` binary spikes, applies the layer *without bias* to every virtual step,
    sums with the step weights and adds the bias once. Equals ``layer(s)`` to float tolerance.
    """

    def __init__(self, layer: nn.Module, int_max: float, int_scale: float, scheme: str | None = None):
        super().__init__()
        if not isinstance(layer, (nn.Linear, nn.Conv2d)):
            raise TypeError(f"BinarySpikeLayer wraps nn.Linear or nn.Conv2d, got {type(layer).__name__}")
        self.layer = layer
        self.int_max, self.int_scale = int_max, int_scale
        self.scheme = scheme or default_scheme(int_scale)
        self.input_rank = 1 if isinstance(layer, nn.Linear) else 3

    def linear_no_bias(self, x: Tensor) -> Tensor:
        if isinstance(self.layer, nn.Linear):
            return F.linear(x, self.layer.weight)
        conv = self.layer
        return F.conv2d(x, conv.weight, None, conv.stride, conv.padding, conv.dilation, conv.groups)

    def forward(self, s: Tensor) -> Tensor:
        bits = integer_to_binary(s, self.int_max, self.int_scale, self.scheme)  # [K, *lead, *in]
        lead = bits.shape[: bits.dim() - self.input_rank]
        flat = bits.reshape((-1,) + bits.shape[bits.dim() - self.input_rank:])
        out = self.linear_no_bias(flat)
        out = out.reshape(lead + out.shape[1:])  # [K, *lead', *out]
        weights = virtual_step_weights(self.int_max, self.int_scale, self.scheme).to(out)
        out = torch.tensordot(weights, out, dims=([0], [0]))  # [*lead', *out]
        if self.layer.bias is not None:
            bias = self.layer.bias
            out = out + (bias if self.input_rank == 1 else bias.reshape(-1, 1, 1))
        return out


def convert_to_binary_spikes(model: nn.Module, example_input: Tensor | None = None) -> nn.Module:
    """Wrap every Linear/Conv2d that reads an integer ``SpikingNeuron``'s output in a
    ``BinarySpikeLayer`` (in place; returns ``model``).

    With ``example_input`` (a batch the model accepts), one forward pass without gradients traces
    which layers take an integer neuron's output tensor as their input, wherever they sit in the
    module tree (residual blocks included). Without it, only a layer that directly follows an
    integer neuron inside an ``nn.Sequential`` is found. Layers fed through pooling or sums of
    spikes are left alone: their inputs are off the integer grid.
    """
    if example_input is None:
        targets = _sequential_targets(model)
    else:
        targets = _traced_targets(model, example_input)
    modules = dict(model.named_modules())
    for name, neuron in targets.items():
        parent_name, _, attr = name.rpartition(".")
        parent = modules[parent_name] if parent_name else model
        cfg = neuron.config
        setattr(parent, attr, BinarySpikeLayer(getattr(parent, attr), cfg.int_max, cfg.int_scale))
    return model


def _is_integer_neuron(m: nn.Module) -> bool:
    return isinstance(m, SpikingNeuron) and m.config.spike == "integer"


def _sequential_targets(model: nn.Module) -> dict[str, SpikingNeuron]:
    targets = {}
    for seq_name, seq in model.named_modules():
        if not isinstance(seq, nn.Sequential):
            continue
        children = list(seq.named_children())
        for (_, prev), (name, layer) in zip(children, children[1:]):
            if _is_integer_neuron(prev) and isinstance(layer, (nn.Linear, nn.Conv2d)):
                targets[f"{seq_name}.{name}" if seq_name else name] = prev
    return targets


@torch.no_grad()
def _traced_targets(model: nn.Module, example_input: Tensor) -> dict[str, SpikingNeuron]:
    outputs: dict[int, SpikingNeuron] = {}  # storage of an integer neuron's output -> the neuron
    seen: dict[str, list[SpikingNeuron | None]] = {}  # layer -> source neuron of each call (None: other)
    handles = []

    def on_neuron(module, args, out):
        outputs[out.untyped_storage().data_ptr()] = module

    def on_layer(name):
        def hook(module, args, out):
            x = args[0]
            seen.setdefault(name, []).append(outputs.get(x.untyped_storage().data_ptr()))
        return hook

    for name, m in model.named_modules():
        if _is_integer_neuron(m):
            handles.append(m.register_forward_hook(on_neuron))
        elif isinstance(m, (nn.Linear, nn.Conv2d)):
            handles.append(m.register_forward_hook(on_layer(name)))
    try:
        model(example_input)
    finally:
        for h in handles:
            h.remove()
    # a layer is converted only if every call read one and the same integer neuron's output
    return {name: sources[0] for name, sources in seen.items()
            if sources[0] is not None and all(s is sources[0] for s in sources)}
