"""NeuroBench's own metrics (the neurobench package) against lit_snn's counters on tiny trained nets.

Where the definitions coincide they agree to float rounding: activation sparsity, and ACs of
spiking-input layers over real connections (our padded-conv count). Where they do not, by the
documented amount: NeuroBench's effective MACs are our ``connection_macs`` (not the dense
``macs``), and after integer neurons it counts MACs over nonzero inputs where we count ACs
weighted by the binary spikes of the inference conversion.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lit_snn.backbones import create_backbone
from lit_snn.data import DigitsDataModule
from lit_snn.energy import FiringRateMonitor, SynOpsCounter
from lit_snn.neurobench import flat_metrics, neurobench_metrics

T = 4


def digits_module(batch_size: int = 16) -> DigitsDataModule:
    dm = DigitsDataModule(batch_size=batch_size, seed=0, limit_test=48)
    dm.setup("fit")
    dm.setup("test")
    return dm


def trained(neuron: str, batches: int = 15) -> nn.Module:
    """``small_conv`` (width 8) after a few Adam steps on the digits; eval mode."""
    torch.manual_seed(0)
    net = create_backbone("small_conv", neuron=neuron, num_classes=10, in_channels=1, width=8)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _, (x, y) in zip(range(batches), digits_module(32).train_dataloader()):
        loss = nn.functional.cross_entropy(net(x.unsqueeze(0).expand(T, *x.shape)).mean(0), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return net.eval()


def ours(net: nn.Module, loader, integer_ops: str = "binary") -> dict[str, float]:
    """lit_snn's counters over the same batches, time-first, and the accuracy of LitSNN's rule."""
    correct = total = 0
    with torch.no_grad(), FiringRateMonitor(net) as rates, SynOpsCounter(net, integer_ops=integer_ops) as ops:
        for x, y in loader:
            logits = net(x.unsqueeze(0).expand(T, *x.shape))  # [T, B, K]
            correct += int((logits.sum(0).argmax(1) == y).sum())
            total += len(y)
        return {**ops.report(), "activation_sparsity": rates.activation_sparsity(), "firing_rate": rates.mean_rate(),
                "accuracy": correct / total}


@pytest.fixture(scope="module")
def lif_net():
    return trained("lif")


def test_binary_neurons_agree_with_neurobench(lif_net):
    loader = digits_module().test_dataloader()
    nb, mine = neurobench_metrics(lif_net, loader, T), ours(lif_net, loader)
    synops = nb["SynapticOperations"]
    assert 0 < mine["firing_rate"] < 1
    assert nb["ActivationSparsity"] == pytest.approx(mine["activation_sparsity"], abs=1e-12)
    assert nb["ActivationSparsity"] == pytest.approx(1 - mine["firing_rate"], abs=1e-12)
    assert synops["Effective_ACs"] == pytest.approx(mine["sops"], rel=1e-12)  # padded conv: real connections
    # the first conv reads analog digits (no exact zeros after normalisation): NeuroBench's effective
    # MACs are its real connections; our dense MACs count the 3x3 taps on the zero padding too
    assert synops["Effective_MACs"] == pytest.approx(mine["connection_macs"], rel=1e-12)
    assert mine["connection_macs"] / mine["macs"] == pytest.approx(22 ** 2 / (64 * 9))  # 8x8, pad 1: 84%
    assert nb["ClassificationAccuracy"] == pytest.approx(mine["accuracy"], abs=1e-12)
    params = sum(p.numel() for p in lif_net.parameters())
    assert nb["ParameterCount"] == params and nb["Footprint"] >= 4 * params
    assert 0 <= nb["ConnectionSparsity"] < 1
    flat = flat_metrics(nb)
    assert flat["neurobench/SynapticOperations/Effective_ACs"] == synops["Effective_ACs"]


def test_integer_neurons_differ_by_the_documented_amount():
    net = trained("i_lif")
    loader = digits_module().test_dataloader()
    nb, binary, nonzero = neurobench_metrics(net, loader, T), ours(net, loader), ours(net, loader, "nonzero")
    synops = nb["SynapticOperations"]
    # NeuroBench counts nonzero outputs; our firing rate averages the integer values
    assert nb["ActivationSparsity"] == pytest.approx(binary["activation_sparsity"], abs=1e-12)
    assert nb["ActivationSparsity"] != pytest.approx(1 - binary["firing_rate"], abs=1e-3)
    # NeuroBench: every layer reading integers does MACs over its nonzero inputs = our "nonzero" count
    nb_ops = synops["Effective_MACs"] + synops["Effective_ACs"]
    assert nb_ops == pytest.approx(nonzero["connection_macs"] + nonzero["sops"], rel=1e-12)
    assert binary["sops"] > nonzero["sops"]  # unary I-LIF: a value s is s binary spikes, s ACs
