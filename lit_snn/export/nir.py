"""NIR export and import of lit_snn backbones (``to_nir``, ``from_nir``).

``to_nir`` runs the model once on an example input ``[T, B, ...]`` to record its layers in call
order and their shapes; it exports chains of Conv2d (with a following BatchNorm2d folded in),
Linear, Flatten, average pooling and the neurons of ``neurons.not_exportable_reason``. Anything
else (max pooling, residual sums, soft-reset or integer neurons, ...) is a ``ValueError`` that
names it: never an approximation. NIR describes one sample, so shapes drop the time and batch
dims. ``from_nir`` builds a time-first lit_snn module from such a graph with ``nirtorch``.
"""

from __future__ import annotations

import nir
import nirtorch
import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from ..backbones import AvgPool2d, Conv2d
from ..neurons import SpikingNeuron
from .neurons import check_exportable, neuron_from_nir, neuron_to_nir

DEFAULT_DT = 1e-4  # seconds per time step; snnTorch's NIR importer and exporter assume this dt
_SKIPPED = (nn.Dropout, nn.Identity)  # nothing to export in eval mode
_LEAVES = (nn.Conv2d, nn.BatchNorm2d, nn.Linear, nn.Flatten, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.MaxPool2d,
           nn.AdaptiveMaxPool2d, SpikingNeuron) + _SKIPPED


def _call_order(model: nn.Module, example_input: Tensor) -> list[tuple[str, nn.Module, tuple, tuple]]:
    """``(name, module, input shape, output shape)`` of every leaf layer in the order ``model`` calls
    them on ``example_input``; raises ``ValueError`` unless each layer reads the previous one's output."""
    calls: list[tuple[str, nn.Module, Tensor, Tensor]] = []
    handles = [m.register_forward_hook(lambda m, i, o, name=name: calls.append((name, m, i[0], o)))
               for name, m in model.named_modules() if isinstance(m, _LEAVES)]
    try:
        with torch.no_grad():
            output = model(example_input)
    finally:
        for h in handles:
            h.remove()
    previous = example_input
    for name, module, x, out in calls:
        if x is not previous and x.data_ptr() != previous.data_ptr():
            raise ValueError(f"layer {name!r} ({type(module).__name__}) does not read the previous layer's output: "
                             "NIR export handles chains of layers (no residual sums or branches)")
        previous = out
    if output is not previous:
        raise ValueError("the model's output is not its last layer's output: NIR export handles chains of layers")
    return [(name, m, tuple(x.shape[2:]), tuple(o.shape[2:])) for name, m, x, o in calls]


def _pool_geometry(name: str, module: nn.Module, in_shape: tuple, out_shape: tuple) -> tuple[tuple, tuple, tuple]:
    """(kernel, stride, padding) of an average pooling, adaptive ones resolved for the traced shape."""
    if isinstance(module, nn.AdaptiveAvgPool2d):
        if any(i % o for i, o in zip(in_shape[1:], out_shape[1:])):
            raise ValueError(f"layer {name!r}: adaptive average pooling {in_shape[1:]} -> {out_shape[1:]} has "
                             "uneven windows, which NIR's AvgPool2d cannot express")
        kernel = tuple(i // o for i, o in zip(in_shape[1:], out_shape[1:]))
        return kernel, kernel, (0, 0)
    pair = nn.modules.utils._pair
    if module.ceil_mode or (any(pair(module.padding)) and module.count_include_pad is False) \
            or module.divisor_override is not None:
        raise ValueError(f"layer {name!r}: AvgPool2d with ceil_mode, count_include_pad=False or divisor_override has "
                         "no NIR equivalent")
    return pair(module.kernel_size), pair(module.stride or module.kernel_size), pair(module.padding)


def _conv_node(conv: nn.Conv2d, bn: nn.BatchNorm2d | None, in_shape: tuple) -> nir.Conv2d:
    weight, bias = conv.weight.detach(), conv.bias.detach() if conv.bias is not None else None
    if bn is not None:  # inference BatchNorm: running statistics folded into the convolution
        weight, bias = fuse_conv_bn_weights(weight, bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias)
    if bias is None:
        bias = torch.zeros(conv.out_channels)
    if conv.padding_mode != "zeros":
        raise ValueError(f"Conv2d with padding_mode={conv.padding_mode!r}: NIR's Conv2d pads with zeros")
    return nir.Conv2d(input_shape=tuple(in_shape[1:]), weight=weight.detach().numpy().astype(np.float32),
                      stride=conv.stride, padding=conv.padding, dilation=conv.dilation, groups=conv.groups,
                      bias=bias.detach().numpy().astype(np.float32))


def _layer_nodes(layers: list[tuple[str, nn.Module, tuple, tuple]], dt: float) -> list[tuple[str, nir.NIRNode]]:
    nodes: list[tuple[str, nir.NIRNode]] = []
    for i, (name, module, in_shape, out_shape) in enumerate(layers):
        key = name.replace(".", "_")
        following = layers[i + 1][1] if i + 1 < len(layers) else None
        if isinstance(module, _SKIPPED):
            continue
        if isinstance(module, nn.Conv2d):
            bn = following if isinstance(following, nn.BatchNorm2d) else None
            nodes.append((key, _conv_node(module, bn, in_shape)))
        elif isinstance(module, nn.BatchNorm2d):
            if not isinstance(layers[i - 1][1], nn.Conv2d) if i else True:
                raise ValueError(f"layer {name!r}: BatchNorm2d not after a Conv2d cannot be folded, and NIR has no "
                                 "normalisation node")
        elif isinstance(module, nn.Linear):
            weight = module.weight.detach().numpy().astype(np.float32)
            nodes.append((key, nir.Linear(weight=weight) if module.bias is None else
                          nir.Affine(weight=weight, bias=module.bias.detach().numpy().astype(np.float32))))
        elif isinstance(module, nn.Flatten):
            if module.start_dim < 2:
                raise ValueError(f"layer {name!r}: Flatten(start_dim={module.start_dim}) merges time or batch dims")
            end = module.end_dim - 2 if module.end_dim >= 0 else module.end_dim
            nodes.append((key, nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=module.start_dim - 2,
                                           end_dim=end)))
        elif isinstance(module, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
            kernel, stride, padding = _pool_geometry(name, module, in_shape, out_shape)
            nodes.append((key, nir.AvgPool2d(kernel_size=np.array(kernel), stride=np.array(stride),
                                             padding=np.array(padding))))
        elif isinstance(module, SpikingNeuron):
            nodes.append((key, neuron_to_nir(module, in_shape, dt)))
        else:
            raise ValueError(f"layer {name!r}: {type(module).__name__} has no NIR node (NIR has no max pooling)")
    return nodes


def to_nir(model: nn.Module, example_input: Tensor, dt: float = DEFAULT_DT) -> nir.NIRGraph:
    """The ``nir.NIRGraph`` of a lit_snn backbone, traced on ``example_input`` ``[T, B, ...]``.

    BatchNorm is folded into the preceding convolution (inference statistics); learned decays
    and thresholds are exported frozen. ``dt`` (seconds per time step) sets the time constants
    (``neurons.py``: ``tau = dt / (1 - beta)``, ``r = alpha / (1 - beta)``) and is stated in the
    graph's metadata. Raises ``ValueError`` naming the layer or the neuron preset (and why) for
    anything NIR does not represent exactly.
    """
    for _, neuron in ((n, m) for n, m in model.named_modules() if isinstance(m, SpikingNeuron)):
        check_exportable(neuron)  # before running anything: the clearest error first
    was_training = model.training
    model.eval()
    try:
        layers = _call_order(model, example_input)
    finally:
        model.train(was_training)
    nodes = _layer_nodes(layers, dt)
    names = ["input"] + [k for k, _ in nodes] + ["output"]
    graph_nodes = {"input": nir.Input(input_type={"input": np.array(example_input.shape[2:])}), **dict(nodes),
                   "output": nir.Output(output_type={"output": np.array(layers[-1][3])})}
    neurons = sorted({m.name for _, m, _, _ in layers if isinstance(m, SpikingNeuron)})
    metadata = {"source": "lit_snn", "dt": float(dt), "time_steps": int(example_input.shape[0]),
                "neurons": ",".join(neurons),
                "discretisation": "forward Euler over dt: v_t = (1 - dt/tau) v_{t-1} + (dt r / tau) I_t; "
                                  "spike when v >= v_threshold, then v = v_reset"}
    return nir.NIRGraph(nodes=graph_nodes, edges=list(zip(names[:-1], names[1:])), metadata=metadata)


class NIRNetwork(nn.Module):
    """A NIR graph as a lit_snn module: time-first input ``[T, B, ...]`` -> output ``[T, B, ...]``."""

    def __init__(self, graph_module: nn.Module) -> None:
        super().__init__()
        self.graph = graph_module

    def forward(self, x: Tensor) -> Tensor:
        out = self.graph(x)
        return out[0] if isinstance(out, tuple) else out


def _affine(node) -> nn.Linear:
    layer = nn.Linear(node.weight.shape[1], node.weight.shape[0], bias=isinstance(node, nir.Affine))
    layer.weight.data = torch.as_tensor(np.asarray(node.weight, dtype=np.float32))
    if layer.bias is not None:
        layer.bias.data = torch.as_tensor(np.asarray(node.bias, dtype=np.float32))
    return layer


def _conv(node: nir.Conv2d) -> Conv2d:
    weight = np.asarray(node.weight, dtype=np.float32)
    layer = Conv2d(weight.shape[1] * node.groups, weight.shape[0], tuple(weight.shape[2:]), stride=node.stride,
                   padding=node.padding, dilation=node.dilation, groups=node.groups)
    layer.weight.data = torch.as_tensor(weight)
    layer.bias.data = torch.as_tensor(np.asarray(node.bias, dtype=np.float32))
    return layer


def _avg_pool(node: nir.AvgPool2d) -> AvgPool2d:
    as_pair = lambda v: tuple(int(i) for i in np.broadcast_to(np.asarray(v), (2,)))
    return AvgPool2d(as_pair(node.kernel_size), as_pair(node.stride), as_pair(node.padding))


def _flatten(node: nir.Flatten) -> nn.Flatten:  # NIR's dims are per sample; ours lead with [T, B]
    return nn.Flatten(node.start_dim + 2, node.end_dim + 2 if node.end_dim >= 0 else node.end_dim)


def from_nir(graph: nir.NIRGraph, dt: float | None = None) -> NIRNetwork:
    """A lit_snn module (time-first ``[T, B, ...]``) executing ``graph``: LIF/IF nodes become
    hard-reset ``SpikingNeuron``s (``beta = 1 - dt/tau``, ``alpha = r dt / tau``), Conv2d, Affine,
    Linear, Flatten and AvgPool2d the time-folded layers of ``lit_snn.backbones``; ``nirtorch``
    wires them. ``dt`` defaults to the graph's ``metadata["dt"]``, else ``DEFAULT_DT`` (snnTorch's).
    Raises ``ValueError`` for nodes lit_snn cannot execute exactly (leak voltage, per-neuron values)."""
    step = float(dt if dt is not None else (graph.metadata or {}).get("dt", DEFAULT_DT))
    neuron = lambda node: neuron_from_nir(node, step)
    node_map = {nir.Affine: _affine, nir.Linear: _affine, nir.Conv2d: _conv, nir.Flatten: _flatten,
                nir.AvgPool2d: _avg_pool, nir.LIF: neuron, nir.IF: neuron}
    return NIRNetwork(nirtorch.nir_to_torch(graph, node_map)).eval()
