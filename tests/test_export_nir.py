"""NIR export and import against a real peer: snnTorch's own NIR importer and exporter.

A small ``small_conv`` is trained for a few batches on the embedded digits, exported with
``lit_snn.export.to_nir``, imported with ``snntorch.import_nir.import_from_nir`` and both run on
the same test digits; a graph written by ``snntorch.export_nir.export_to_nir`` is read with
``from_nir``. snnTorch's importer maps NIR's per-sample ``Flatten(start_dim=0)`` to
``torch.nn.Flatten(0)``, which would merge a batch dim, so its networks run one sample at a time.
"""

from __future__ import annotations

import contextlib
import io
import re

import nir
import numpy as np
import pytest
import snntorch
import snntorch.utils
import torch
from snntorch.export_nir import export_to_nir
from snntorch.import_nir import import_from_nir
from torch import nn

from lit_snn.backbones import create_backbone
from lit_snn.data import DigitsDataModule
from lit_snn.export import DEFAULT_DT, from_nir, to_nir
from lit_snn.export.neurons import not_exportable_reason
from lit_snn.neurons import SpikingNeuron, create_neuron, list_neurons, neuron_config

T = 4
EXPORTABLE = ("lif", "hard_lif", "plif", "da_lif")


def digits(split: str, batches: int, batch_size: int = 32) -> list[tuple[torch.Tensor, torch.Tensor]]:
    dm = DigitsDataModule(batch_size=batch_size, seed=0)
    dm.setup("fit" if split == "train" else "test")
    loader = dm.train_dataloader() if split == "train" else dm.test_dataloader()
    return [batch for _, batch in zip(range(batches), loader)]


def train_small_conv(neuron: str, batches: int = 15) -> nn.Module:
    """``small_conv`` (width 8) trained with Adam on the mean-over-T cross-entropy; returned in eval mode."""
    torch.manual_seed(0)
    net = create_backbone("small_conv", neuron=neuron, num_classes=10, in_channels=1, width=8)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    for x, y in digits("train", batches):
        logits = net(x.unsqueeze(0).expand(T, *x.shape)).mean(0)  # [B, 10]
        loss = nn.functional.cross_entropy(logits, y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return net.eval()


def example_digits() -> torch.Tensor:
    x, _ = digits("test", 1, batch_size=16)[0]
    return x.unsqueeze(0).expand(T, *x.shape).contiguous()  # [T, B, 1, 8, 8]


def record_spikes(model: nn.Module, kind: type) -> tuple[list[list[torch.Tensor]], list]:
    """Forward hooks appending every output of each ``kind`` layer (in module order)."""
    layers = [m for m in model.modules() if isinstance(m, kind)]
    records: list[list[torch.Tensor]] = [[] for _ in layers]
    handles = [m.register_forward_hook(lambda m, i, o, r=r: r.append((o[0] if isinstance(o, tuple) else o).detach()))
               for m, r in zip(layers, records)]
    return records, handles


def run_snntorch(net: nn.Module, x: torch.Tensor, per_sample: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """An snnTorch network, one step per call: logits [T, B, K] and the spikes of each Leaky layer
    [T, B, ...]. ``per_sample``: one sample at a time without a batch dim (networks from snnTorch's
    importer, see the module docstring); else the whole batch per step."""
    records, handles = record_spikes(net, snntorch.Leaky)
    groups = [x[:, b] for b in range(x.shape[1])] if per_sample else [x]  # [T, ...] each
    outputs = []
    with torch.no_grad():
        for inputs in groups:
            snntorch.utils.reset(net)
            steps = [net(step) for step in inputs]
            outputs.append(torch.stack([s[0] if isinstance(s, tuple) else s for s in steps]))  # [T, (B,) K]
    for h in handles:
        h.remove()
    if per_sample:
        spikes = [torch.stack(r).unflatten(0, (x.shape[1], x.shape[0])).transpose(0, 1) for r in records]
        return torch.stack(outputs, 1), spikes
    return outputs[0], [torch.stack(r) for r in records]


def quiet(fn, *args):
    """snnTorch's importer prints its parameter arrays: keep the test log readable."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args)


@pytest.fixture(scope="module")
def trained():
    return {name: train_small_conv(name) for name in EXPORTABLE}


@pytest.mark.parametrize("neuron", EXPORTABLE)
def test_trained_export_runs_the_same_in_snntorch(trained, neuron):
    net, x = trained[neuron], example_digits()
    graph = to_nir(net, x)
    assert graph.metadata["dt"] == DEFAULT_DT and graph.metadata["neurons"] == neuron
    assert not any(isinstance(n, nir.ir.graph.NIRGraph) for n in graph.nodes.values())
    ours_spikes, handles = record_spikes(net, SpikingNeuron)
    with torch.no_grad():
        ours = net(x)
    for h in handles:
        h.remove()
    assert sum(float(s[0].sum()) for s in ours_spikes) > 0, "the trained net must fire for the check to mean anything"
    peer, peer_spikes = run_snntorch(quiet(import_from_nir, graph), x, per_sample=True)
    assert len(peer_spikes) == len(ours_spikes) == 2
    for mine, theirs in zip(ours_spikes, peer_spikes):
        assert torch.equal(mine[0], theirs)  # the same spikes, every element
    # logits: the same spikes through the same Linear; the folded BN changes only the membranes' rounding
    torch.testing.assert_close(peer, ours, rtol=0, atol=1e-6)


@pytest.mark.parametrize("neuron", EXPORTABLE)
def test_trained_export_reimports_into_lit_snn(trained, neuron, tmp_path):
    net, x = trained[neuron], example_digits()
    path = tmp_path / "net.nir"
    nir.write(path, to_nir(net, x))
    again = from_nir(nir.read(path))
    with torch.no_grad():
        torch.testing.assert_close(again(x), net(x), rtol=0, atol=1e-6)


def leaky(shape: tuple[int, ...], beta: float, threshold: float) -> snntorch.Leaky:
    """A hard-reset snnTorch Leaky with one beta and threshold per neuron: its exporter (with
    nir 1.0.8's type inference) needs parameters of the layer's shape, scalars fail ``infer_types``."""
    return snntorch.Leaky(beta=torch.full(shape, beta), threshold=torch.full(shape, threshold), init_hidden=True,
                          reset_mechanism="zero")


def snntorch_net() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), leaky((4, 8, 8), 0.9, 1.0), nn.AvgPool2d(2), nn.Flatten(),
        nn.Linear(4 * 4 * 4, 10), leaky((10,), 0.8, 0.5), nn.Linear(10, 10),
    ).eval()


def test_snntorch_export_imports_into_lit_snn():
    net, x = snntorch_net(), 2 * example_digits()
    graph = quiet(export_to_nir, net, x[0, :1], "snntorch", [], [0])  # ignore_dims=[0]: NIR shapes per sample
    ours_net = from_nir(graph)
    ours_spikes, handles = record_spikes(ours_net, SpikingNeuron)
    with torch.no_grad():
        ours = ours_net(x)
    for h in handles:
        h.remove()
    peer, peer_spikes = run_snntorch(net, x, per_sample=False)
    assert sum(float(s.sum()) for s in peer_spikes) > 0
    for mine, theirs in zip(ours_spikes, peer_spikes):
        assert torch.equal(mine[0], theirs)
    torch.testing.assert_close(ours, peer, rtol=0, atol=1e-6)
    leak = [m for m in ours_net.modules() if isinstance(m, SpikingNeuron)][0].config
    # snnTorch writes tau = dt / (1 - beta), r = tau / dt in float32: alpha = r dt / tau = 1 and beta to float32
    assert (leak.reset, leak.v_threshold) == ("hard", 1.0)
    assert (leak.alpha, leak.beta) == (pytest.approx(1.0, abs=1e-7), pytest.approx(0.9, abs=1e-7))


@pytest.mark.parametrize("preset", [p for p in list_neurons() if p not in EXPORTABLE])
def test_every_other_preset_is_refused_by_name(preset):
    overrides = {"time_steps": T} if neuron_config(preset).needs_time_steps else {}
    reason = not_exportable_reason(neuron_config(preset, **overrides))
    assert reason
    net = nn.Sequential(nn.Linear(4, 3), create_neuron(preset, **overrides), nn.Linear(3, 2))
    with pytest.raises(ValueError, match=re.escape(f"neuron '{preset}' cannot be exported to NIR exactly: {reason}")):
        to_nir(net, torch.randn(T, 2, 4))


def test_layers_without_a_nir_node_are_refused():
    net = create_backbone("mnist_conv", neuron="lif", num_classes=10, in_channels=1, width=4)
    with pytest.raises(ValueError, match="MaxPool2d has no NIR node"):
        to_nir(net, torch.randn(2, 1, 1, 28, 28))
    with pytest.raises(ValueError, match=r"operation 'add' in the model's own forward \(Residual\) runs after layer "
                                         r"'linear'"):
        to_nir(Residual(), torch.randn(T, 2, 3))


class Between(nn.Module):
    """linear1 -> lif -> ``between`` -> linear2: whatever runs between two layers NIR maps."""

    def __init__(self, between=None, *, twice: bool = False, names: tuple[str, str] = ("first", "second")) -> None:
        super().__init__()
        self.names, self.between, self.twice = names, between, twice
        setattr(self, names[0], nn.Linear(3, 3))
        self.neuron = create_neuron("lif")
        setattr(self, names[1], nn.Linear(3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [T, B, 3] -> [T, B, 3]
        first, second = (getattr(self, n) for n in self.names)
        h = self.neuron(first(x))
        h = self.between(h) if self.between is not None else h
        return first(h) if self.twice else second(h)


@pytest.mark.parametrize("between, message", [
    (nn.ReLU(inplace=True), r"operation 'relu' in 'between' \(ReLU\) runs after layer 'neuron'"),
    (nn.ReLU(), r"operation 'relu' in 'between' \(ReLU\) runs after layer 'neuron'"),
    (lambda h: h.transpose(0, 1).transpose(0, 1), r"operation 'transpose' in the model's own forward \(Between\)"),
    (lambda h: h.reshape(h.shape), r"operation 'reshape' in the model's own forward"),
], ids=["in-place", "not-in-place", "view", "reshape"])
def test_an_operation_between_layers_is_refused_by_name(between, message):
    """Each of these ran silently into a graph without the operation (a round trip off by ~0.4)."""
    net = Between(between)
    with pytest.raises(ValueError, match=message):
        to_nir(net, torch.randn(T, 2, 3))


def test_a_layer_called_twice_is_refused():
    with pytest.raises(ValueError, match=r"layer 'first' \(Linear\) is called twice"):
        to_nir(Between(twice=True), torch.randn(T, 2, 3))


def test_layer_names_that_are_nir_reserved_are_renamed_and_round_trip():
    torch.manual_seed(0)
    net = Between(names=("input", "output")).eval()
    x = 3 * torch.rand(T, 2, 3)
    graph = to_nir(net, x)
    assert set(graph.nodes) == {"input", "input_layer", "neuron", "output_layer", "output"}
    assert graph.edges == [("input", "input_layer"), ("input_layer", "neuron"), ("neuron", "output_layer"),
                           ("output_layer", "output")]
    with torch.no_grad():
        torch.testing.assert_close(from_nir(graph)(x), net(x), rtol=0, atol=1e-6)


def test_identity_pooling_is_left_out_of_the_graph():
    """small_conv at 8x8 pools 2x2 to its own size: an identity some NIR readers do not map."""
    torch.manual_seed(0)
    net = create_backbone("small_conv", neuron="lif", num_classes=10, in_channels=1, width=4).eval()
    x = example_digits()
    graph = to_nir(net, x)
    pools = [n for n in graph.nodes.values() if isinstance(n, nir.AvgPool2d)]
    assert all(tuple(np.broadcast_to(p.kernel_size, (2,))) != (1, 1) for p in pools)
    with torch.no_grad():
        torch.testing.assert_close(from_nir(graph)(x), net(x), rtol=0, atol=1e-6)


class Residual(nn.Module):
    """x + Linear(lif(x)): a sum that a chain of NIR nodes cannot hold."""

    def __init__(self) -> None:
        super().__init__()
        self.neuron, self.linear = create_neuron("lif"), nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [T, B, 3] -> [T, B, 3]
        return x + self.linear(self.neuron(x))
