"""lit_snn's NIR graphs read by two independent NIR readers, Norse (1.1.0) and Sinabs (3.1.3).

Each reader reproduces every spike of a trained ``small_conv`` once its own conventions are met
(docs/export.md, "Reading the graphs in Norse and Sinabs"):

- both leave LIF's ``r`` out (input scaled by ``dt / tau`` only), so ``fold_r`` moves each LIF's
  ``r`` into the weights and bias of the node before it (the same network, r = 1);
- Norse integrates with its ``dt`` argument (default 1e-3), not the graph's ``metadata["dt"]``;
  its importer maps NIR's per-sample ``Flatten(start_dim=0)`` to ``torch.nn.Flatten(0)``, so it
  runs one sample at a time without a batch dim (as snnTorch's importer);
- Sinabs reads ``tau`` as a number of time steps of an exact exponential decay
  (``exp(-1/tau)``), adds the input unscaled, and emits multi-spikes with a subtractive reset;
  ``sinabs_network`` sets each layer to decay ``1 - dt/tau`` per step (the graph's Euler step),
  scale its input by ``1 - decay`` (``norm_input``), emit one spike and reset to 0. Its importer
  also tests ``any(v_leak)`` over the first dim only, which fails on a conv layer's [C, H, W]
  array: the (all-zero) ``v_leak`` is handed to it flat.

The readers skip, with the reason, where Norse or Sinabs is not installed (``make venv`` installs both).
"""

from __future__ import annotations

import copy

import nir
import numpy as np
import pytest
import torch
from test_export_nir import EXPORTABLE, example_digits, record_spikes, train_small_conv
from torch import nn

from lit_snn.export import to_nir
from lit_snn.neurons import SpikingNeuron

pytestmark = pytest.mark.filterwarnings("ignore:nirtorch.load is being deprecated:DeprecationWarning")  # the readers'
INSTALL = "make venv installs it (pip install --no-deps norse==1.1.0 sinabs==3.1.3 pbr)"


def reader(module: str):
    return pytest.importorskip(module, reason=f"{module} is not installed: {INSTALL}")


def fold_r(graph: nir.NIRGraph) -> nir.NIRGraph:
    """A copy of ``graph`` whose LIF nodes have ``r = 1``, each ``r`` multiplied into the weights and
    bias of the Conv2d or Affine node before it (``r`` is one value per output channel there)."""
    graph = copy.deepcopy(graph)
    source = {after: before for before, after in graph.edges}
    for key, node in graph.nodes.items():
        if not isinstance(node, nir.LIF):
            continue
        before = graph.nodes[source[key]]
        assert isinstance(before, (nir.Conv2d, nir.Affine)), f"{key}: r folds into a Conv2d or Affine before it"
        r = np.asarray(node.r).reshape(len(node.r), -1)  # [C, H*W] (conv) or [N, 1] (affine)
        assert (r == r[:, :1]).all(), f"{key}: r differs inside one channel"
        before.weight = before.weight * r[:, 0].reshape(-1, *[1] * (before.weight.ndim - 1))
        before.bias = before.bias * r[:, 0]
        node.r = np.ones_like(node.r)
    return graph


def run_norse(graph: nir.NIRGraph, x: torch.Tensor, dt: float) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Norse's network of ``graph`` at step ``dt``, one sample at a time: logits [T, B, K] and the
    spikes of each LIF layer [T, B, ...]."""
    norse = reader("norse.torch")
    net = norse.from_nir(graph, dt=dt)
    records, handles = record_spikes(net, norse.LIFBoxCell)
    outputs = []
    with torch.no_grad():
        for b in range(x.shape[1]):
            state, steps = None, []
            for step in x[:, b]:  # [C, H, W]
                out, state = net(step, state)
                steps.append(out)
            outputs.append(torch.stack(steps))  # [T, K]
    for h in handles:
        h.remove()
    spikes = [torch.stack(r).unflatten(0, (x.shape[1], x.shape[0])).transpose(0, 1) for r in records]
    return torch.stack(outputs, 1), spikes


def sinabs_network(graph: nir.NIRGraph, batch_size: int) -> nn.Module:
    """Sinabs' network of ``graph`` with lit_snn's (and NIR's) neuron: decay ``1 - dt/tau`` per step,
    input scaled by ``1 - decay`` after ``fold_r``, one spike per step, reset to 0."""
    sinabs_nir = reader("sinabs.nir")
    from sinabs.activation import MembraneReset, SingleSpike

    graph, dt = fold_r(graph), np.float32(graph.metadata["dt"])
    for node in graph.nodes.values():
        if isinstance(node, nir.LIF):
            node.v_leak = np.ravel(node.v_leak)  # its importer's any(v_leak) check reads a flat array only
    net = sinabs_nir.from_nir(graph, batch_size=batch_size)
    for key, node in graph.nodes.items():
        if isinstance(node, nir.LIF):
            layer = net.get_submodule(key)
            layer.tau_mem.data = torch.as_tensor(-1 / np.log(1 - dt / node.tau))  # steps: exp(-1/tau_mem) = decay
            layer.norm_input, layer.spike_fn, layer.reset_fn = True, SingleSpike, MembraneReset()
    return net


def run_sinabs(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """A Sinabs network on ``x`` [T, B, ...] (Sinabs reads [B * T, ...], batch-major): logits
    [T, B, K] and the spikes of each LIF layer [T, B, ...]."""
    layers = reader("sinabs.layers")
    steps, batch = x.shape[:2]
    records, handles = record_spikes(net, layers.LIFSqueeze)
    with torch.no_grad():
        out = net(x.transpose(0, 1).flatten(0, 1))
    for h in handles:
        h.remove()
    time_first = lambda t: t.unflatten(0, (batch, steps)).transpose(0, 1)
    return time_first(out[0] if isinstance(out, tuple) else out), [time_first(r[0]) for r in records]


def run_ours(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    records, handles = record_spikes(net, SpikingNeuron)
    with torch.no_grad():
        logits = net(x)
    for h in handles:
        h.remove()
    spikes = [r[0] for r in records]
    assert sum(float(s.sum()) for s in spikes) > 0, "the trained net must fire for the check to mean anything"
    return logits, spikes


def assert_same_run(peer: tuple, ours: tuple) -> None:
    (peer_logits, peer_spikes), (logits, spikes) = peer, ours
    assert len(peer_spikes) == len(spikes) == 2
    for mine, theirs in zip(spikes, peer_spikes):
        assert torch.equal(mine, theirs)  # the same spikes, every element
    # the same spikes through the same Linear; folding r and the readers' leak order change only the rounding
    torch.testing.assert_close(peer_logits, logits, rtol=0, atol=1e-6)


def spike_mismatches(peer: tuple, ours: tuple) -> int:
    return sum(int((mine != theirs).sum()) for mine, theirs in zip(ours[1], peer[1]))


@pytest.fixture(scope="module")
def norse():
    return reader("norse.torch")


@pytest.fixture(scope="module")
def sinabs():
    return reader("sinabs.nir")


@pytest.fixture(scope="module")
def trained():
    return {name: train_small_conv(name) for name in EXPORTABLE}


@pytest.mark.parametrize("neuron", EXPORTABLE)
def test_norse_runs_the_graph_the_same_at_its_dt_with_r_folded(norse, trained, neuron):
    net, x = trained[neuron], example_digits()
    graph = to_nir(net, x)
    assert_same_run(run_norse(fold_r(graph), x, dt=graph.metadata["dt"]), run_ours(net, x))


@pytest.mark.parametrize("neuron", EXPORTABLE)
def test_sinabs_runs_the_graph_the_same_with_our_neuron_conventions(sinabs, trained, neuron):
    net, x = trained[neuron], example_digits()
    graph = to_nir(net, x)
    assert_same_run(run_sinabs(sinabs_network(graph, x.shape[1]), x), run_ours(net, x))


def test_each_reader_convention_is_needed(norse, sinabs, trained):  # the readers first: they skip before training
    """hard_lif (alpha = 1, beta = 0.5: r = 2): each convention the docs name changes the spikes when left out."""
    from sinabs.activation import MembraneSubtract, MultiSpike

    net, x = trained["hard_lif"], example_digits()
    graph, ours = to_nir(net, x), run_ours(net, x)
    assert np.all(graph.nodes["features_2"].r == 2)
    assert spike_mismatches(run_norse(graph, x, dt=graph.metadata["dt"]), ours) > 0  # r left out
    assert spike_mismatches(run_norse(fold_r(graph), x, dt=1e-3), ours) > 0  # Norse's default dt
    sinabs_defaults = sinabs_network(graph, x.shape[1])
    for layer in lif_layers(sinabs_defaults):
        layer.spike_fn, layer.reset_fn = MultiSpike, MembraneSubtract()  # what Sinabs' importer builds
    assert spike_mismatches(run_sinabs(sinabs_defaults, x), ours) > 0
    tau_in_steps = sinabs_network(graph, x.shape[1])
    for layer, node in zip(lif_layers(tau_in_steps), (n for n in graph.nodes.values() if isinstance(n, nir.LIF))):
        layer.tau_mem.data = torch.as_tensor(node.tau)  # the graph's tau in seconds read as steps
    assert spike_mismatches(run_sinabs(tau_in_steps, x), ours) > 0


def lif_layers(net: nn.Module) -> list[nn.Module]:
    layers = reader("sinabs.layers")
    return [m for m in net.modules() if isinstance(m, layers.LIFSqueeze)]
