"""NIR export and import of lit_snn backbones (``to_nir``, ``from_nir``).

``to_nir`` runs the model once on an example input ``[T, B, ...]`` and records the modules it
calls, in order, with their shapes, and every tensor operation that runs outside them; it exports
chains of Conv2d (with a following BatchNorm2d folded in), Linear, Flatten, average pooling (an
identity pooling is left out) and the neurons of ``neurons.not_exportable_reason``. Anything else
(an operation between layers, in place or not, a view or a reshape; a module called twice; max
pooling, residual sums, soft-reset or integer neurons, ...) is a ``ValueError`` that names the
module and the reason: never an approximation. Layer names that are NIR's reserved node keys
(``input``, ``output``) are renamed. NIR describes one sample, so shapes drop the time and batch
dims. ``from_nir`` builds a time-first lit_snn module from such a graph with ``nirtorch``.
"""

from __future__ import annotations

import nir
import nirtorch
import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_weights
from torch.overrides import TorchFunctionMode

from ..backbones import AvgPool2d, Conv2d
from ..errors import ConfigError
from ..neurons import SpikingNeuron
from .neurons import check_exportable, neuron_from_nir, neuron_to_nir

DEFAULT_DT = 1e-4  # seconds per time step; snnTorch's NIR importer and exporter assume this dt
_SKIPPED = (nn.Dropout, nn.Identity)  # nothing to export in eval mode
_LEAVES = (nn.Conv2d, nn.BatchNorm2d, nn.Linear, nn.Flatten, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.MaxPool2d,
           nn.AdaptiveMaxPool2d, SpikingNeuron) + _SKIPPED


class _Recorder(TorchFunctionMode):
    """Records the leaf layers ``model`` calls, in order, and every tensor operation run outside them.

    The graph comes from the modules' calls, not from tensor identity: an operation between two
    layers (an in-place ``relu_``, a view such as a transpose, a reshape, a sum), even one that
    keeps the tensor object or its storage, is seen here and refused, since NIR would drop it.
    Hand-written because neither torch.fx (the time-folding layers branch on the input's strides)
    nor nirtorch's tracer reports operations that run outside modules.
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, nn.Module, Tensor, Tensor]] = []  # (name, leaf, input, output)
        self.stack: list[tuple[str, nn.Module]] = []  # the modules being run, outermost first
        self.inside_leaf = 0
        self.stray: list[tuple[str, str, int]] = []  # (operation, innermost module, layers called before it)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not self.inside_leaf and isinstance(out, Tensor):  # metadata (shape, dim, ...) is no operation
            where = self.stack[-1][0] if self.stack else ""
            self.stray.append((getattr(func, "__name__", str(func)), where, len(self.calls)))
        return out

    def enter(self, name: str, module: nn.Module) -> None:
        self.stack.append((name, module))
        self.inside_leaf += isinstance(module, _LEAVES)

    def leave(self, name: str, module: nn.Module, args: tuple, output) -> None:
        self.stack.pop()
        if isinstance(module, _LEAVES):
            self.inside_leaf -= 1
            if not self.inside_leaf:
                self.calls.append((name, module, args[0] if args else None, output))


def _describe(name: str, model: nn.Module) -> str:
    module = model.get_submodule(name) if name else model
    return f"{name!r} ({type(module).__name__})" if name else f"the model's own forward ({type(module).__name__})"


def _call_order(model: nn.Module, example_input: Tensor) -> list[tuple[str, nn.Module, tuple, tuple]]:
    """``(name, module, input shape, output shape)`` of every leaf layer in the order ``model`` calls
    them on ``example_input``; raises ``ValueError`` naming the module and the reason unless the
    model is a chain of leaf layers, each called once on the previous one's output, nothing between."""
    recorder = _Recorder()
    handles = []
    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(lambda m, a, name=name: recorder.enter(name, m)))
        handles.append(module.register_forward_hook(lambda m, a, o, name=name: recorder.leave(name, m, a, o)))
    try:
        with torch.no_grad(), recorder:
            output = model(example_input)
    finally:
        for h in handles:
            h.remove()
    names = [name for name, *_ in recorder.calls]
    if recorder.stray:
        op, where, before = recorder.stray[0]
        after = f"after layer {names[before - 1]!r}" if before else "before the first layer"
        raise ConfigError(f"operation {op!r} in {_describe(where, model)} runs {after}, outside any layer NIR maps: "
                         "NIR export handles chains of Conv2d, BatchNorm2d, Linear, Flatten, average pooling and "
                         "spiking neurons with nothing between them (no in-place op, view, reshape or sum)")
    seen: dict[int, str] = {}
    previous = example_input
    for name, module, x, out in recorder.calls:
        if id(module) in seen:
            raise ConfigError(f"layer {name!r} ({type(module).__name__}) is called twice: a NIR graph holds each "
                             "node once (use one module per call)")
        seen[id(module)] = name
        if x is not previous:
            raise ConfigError(f"layer {name!r} ({type(module).__name__}) does not read the previous layer's output: "
                             "NIR export handles chains of layers (no residual sums or branches)")
        previous = out
    if output is not previous:
        raise ConfigError("the model's output is not its last layer's output: NIR export handles chains of layers")
    return [(name, m, tuple(x.shape[2:]), tuple(o.shape[2:])) for name, m, x, o in recorder.calls]


def _pool_geometry(name: str, module: nn.Module, in_shape: tuple, out_shape: tuple) -> tuple[tuple, tuple, tuple]:
    """(kernel, stride, padding) of an average pooling, adaptive ones resolved for the traced shape."""
    if isinstance(module, nn.AdaptiveAvgPool2d):
        if any(i % o for i, o in zip(in_shape[1:], out_shape[1:])):
            raise ConfigError(f"layer {name!r}: adaptive average pooling {in_shape[1:]} -> {out_shape[1:]} has "
                             "uneven windows, which NIR's AvgPool2d cannot express")
        kernel = tuple(i // o for i, o in zip(in_shape[1:], out_shape[1:]))
        return kernel, kernel, (0, 0)
    pair = nn.modules.utils._pair
    if module.ceil_mode or (any(pair(module.padding)) and module.count_include_pad is False) \
            or module.divisor_override is not None:
        raise ConfigError(f"layer {name!r}: AvgPool2d with ceil_mode, count_include_pad=False or divisor_override has "
                         "no NIR equivalent")
    return pair(module.kernel_size), pair(module.stride or module.kernel_size), pair(module.padding)


def _conv_node(conv: nn.Conv2d, bn: nn.BatchNorm2d | None, in_shape: tuple) -> nir.Conv2d:
    weight, bias = conv.weight.detach(), conv.bias.detach() if conv.bias is not None else None
    if bn is not None:  # inference BatchNorm: running statistics folded into the convolution
        weight, bias = fuse_conv_bn_weights(weight, bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias)
    if bias is None:
        bias = torch.zeros(conv.out_channels)
    if conv.padding_mode != "zeros":
        raise ConfigError(f"Conv2d with padding_mode={conv.padding_mode!r}: NIR's Conv2d pads with zeros")
    return nir.Conv2d(input_shape=tuple(in_shape[1:]), weight=weight.detach().numpy().astype(np.float32),
                      stride=conv.stride, padding=conv.padding, dilation=conv.dilation, groups=conv.groups,
                      bias=bias.detach().numpy().astype(np.float32))


RESERVED_KEYS = ("input", "output")  # NIR's Input and Output nodes


def _node_keys(names: list[str]) -> list[str]:
    """A NIR node key per layer name: dots become ``_``; a key that is one of NIR's reserved nodes
    (``input``, ``output``) or repeats an earlier key gets a ``_layer`` / ``_2`` suffix."""
    taken: set[str] = set(RESERVED_KEYS)
    keys = []
    for name in names:
        key = name.replace(".", "_") or "layer"
        if key in RESERVED_KEYS:
            key += "_layer"
        base, n = key, 2
        while key in taken:
            key, n = f"{base}_{n}", n + 1
        taken.add(key)
        keys.append(key)
    return keys


def _layer_nodes(layers: list[tuple[str, nn.Module, tuple, tuple]], dt: float) -> list[tuple[str, nir.NIRNode]]:
    nodes: list[tuple[str, nir.NIRNode]] = []
    keys = _node_keys([name for name, *_ in layers])
    for i, (name, module, in_shape, out_shape) in enumerate(layers):
        key = keys[i]
        following = layers[i + 1][1] if i + 1 < len(layers) else None
        if isinstance(module, _SKIPPED):
            continue
        if isinstance(module, nn.Conv2d):
            bn = following if isinstance(following, nn.BatchNorm2d) else None
            nodes.append((key, _conv_node(module, bn, in_shape)))
        elif isinstance(module, nn.BatchNorm2d):
            if not isinstance(layers[i - 1][1], nn.Conv2d) if i else True:
                raise ConfigError(f"layer {name!r}: BatchNorm2d not after a Conv2d cannot be folded, and NIR has no "
                                 "normalisation node")
        elif isinstance(module, nn.Linear):
            weight = module.weight.detach().numpy().astype(np.float32)
            nodes.append((key, nir.Linear(weight=weight) if module.bias is None else
                          nir.Affine(weight=weight, bias=module.bias.detach().numpy().astype(np.float32))))
        elif isinstance(module, nn.Flatten):
            if module.start_dim < 2:
                raise ConfigError(f"layer {name!r}: Flatten(start_dim={module.start_dim}) merges time or batch dims")
            end = module.end_dim - 2 if module.end_dim >= 0 else module.end_dim
            nodes.append((key, nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=module.start_dim - 2,
                                           end_dim=end)))
        elif isinstance(module, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
            kernel, stride, padding = _pool_geometry(name, module, in_shape, out_shape)
            if kernel == stride == (1, 1) and padding == (0, 0):
                continue  # the identity: some NIR readers map no 1x1 pooling and would run half the graph
            nodes.append((key, nir.AvgPool2d(kernel_size=np.array(kernel), stride=np.array(stride),
                                             padding=np.array(padding))))
        elif isinstance(module, SpikingNeuron):
            nodes.append((key, neuron_to_nir(module, in_shape, dt)))
        else:
            raise ConfigError(f"layer {name!r}: {type(module).__name__} has no NIR node (NIR has no max pooling)")
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
    names = [*RESERVED_KEYS[:1], *(k for k, _ in nodes), *RESERVED_KEYS[1:]]
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
