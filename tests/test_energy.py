"""Firing rates, synaptic operations and energy on tiny nets whose numbers are computed by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lit_snn.backbones import AvgPool2d, Conv2d
from lit_snn.energy import E_AC_PJ, E_MAC_PJ, FiringRateMonitor, SynOpsCounter, conv_fanout, energy_report
from lit_snn.neurons import create_neuron

PJ_TO_MJ = 1e-9


def linear(weight) -> nn.Linear:
    w = torch.tensor(weight, dtype=torch.float32)
    layer = nn.Linear(w.shape[1], w.shape[0], bias=False)
    with torch.no_grad():
        layer.weight.copy_(w)
    return layer


def binary_mlp() -> tuple[nn.Module, torch.Tensor]:
    """Linear(2->3) -> hard_lif -> Linear(3->2), input [T=2, B=1, 2].

    h_0 = W1 [1, 0] = [2, 0, 1.5] -> U = h_0 -> S_0 = [1, 0, 1], V_0 = [0, 0, 0];
    h_1 = W1 [0, 1] = [0, 0.5, 1.5] -> U = h_1 -> S_1 = [0, 0, 1]: 3 spikes of 6 -> rate 1/2.
    Linear 1 (analog input): 2 steps x 3 outputs x 2 inputs = 12 MACs.
    Linear 2: 2 steps x 2 outputs x 3 inputs = 12 MACs dense -> 12 x 1/2 = 6 ACs
    (= 3 spikes x fan-out 2). E = 4.6 x 12 + 0.9 x 6 = 60.6 pJ; ANN: (12 + 12) / 2 steps = 12 MACs.
    """
    model = nn.Sequential(linear([[2.0, 0.0], [0.0, 0.5], [1.5, 1.5]]), create_neuron("hard_lif"),
                          linear([[1.0, 1.0, 1.0], [1.0, -1.0, 0.5]]))
    x = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])  # [T=2, B=1, 2]
    return model, x


def test_firing_rates_exact():
    model, x = binary_mlp()
    with FiringRateMonitor(model) as fr:
        model(x)
        assert fr.rates() == {"1": 0.5} and fr.spike_counts() == {"1": 3.0} and fr.mean_rate() == 0.5
        model(x)  # accumulates over batches
        assert fr.rates() == {"1": 0.5} and fr.spike_counts() == {"1": 6.0}
        fr.reset()
        assert fr.rates() == {} and fr.mean_rate() == 0.0


def test_synops_and_energy_exact():
    model, x = binary_mlp()
    with SynOpsCounter(model) as ops:
        model(torch.cat([x, x], dim=1))  # B = 2 identical samples: per-sample numbers unchanged
    r = ops.report()
    assert (r["macs"], r["sops"], r["ann_macs"], r["samples"], r["time_steps"]) == (12, 6, 12, 2, 2)
    assert r["energy_mj"] == pytest.approx(60.6 * PJ_TO_MJ, rel=1e-12)
    assert r["ann_energy_mj"] == pytest.approx(55.2 * PJ_TO_MJ, rel=1e-12)
    assert r["energy_ratio"] == pytest.approx(55.2 / 60.6, rel=1e-12)
    layers = ops.layers()
    assert layers["0"] == {"macs": 12, "acs": 0, "analog_macs": 12, "connection_macs": 12, "spiking": False,
                           "input_rate": pytest.approx(float("nan"), nan_ok=True)}
    assert layers["2"]["acs"] == 6 and layers["2"]["input_rate"] == 0.5 and layers["2"]["spiking"]
    assert E_MAC_PJ == 4.6 and E_AC_PJ == 0.9


def test_energy_report_runs_once_and_restores_mode():
    model, x = binary_mlp()
    model.train()
    r = energy_report(model, x)
    assert model.training
    assert (r["macs"], r["sops"], r["ann_macs"]) == (12, 6, 12)
    assert r["energy_mj"] == pytest.approx(60.6 * PJ_TO_MJ) and r["mean_firing_rate"] == 0.5
    assert r["firing_rates"] == {"1": 0.5} and set(r["layers"]) == {"0", "2"}
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_conv_with_pooled_spikes_exact():
    """conv3x3(1->2, pad 1) -> hard_lif -> avgpool 2 -> conv1x1(2->1), input [T=1, B=2, 1, 4, 4].

    Channel 0 copies the input (centre tap 1), channel 1 is zero. Sample 0 holds four 2.0s -> 4
    spikes; sample 1 is zero. Rate 4 / 64. conv1: 64 outputs x 9 = 576 MACs (288 per sample).
    conv2: 8 outputs x 2 = 16 MACs dense; pooled input mean (4 / 4) / 16 -> 1 AC (0.5 per sample).
    """
    conv1 = Conv2d(1, 2, 3, padding=1, bias=False)
    conv2 = Conv2d(2, 1, 1, bias=False)
    with torch.no_grad():
        conv1.weight.zero_()
        conv1.weight[0, 0, 1, 1] = 1.0
        conv2.weight.fill_(0.5)
    model = nn.Sequential(conv1, create_neuron("hard_lif"), AvgPool2d(2), conv2)
    x = torch.zeros(1, 2, 1, 4, 4)
    x[0, 0, 0, 0, :] = 2.0
    with SynOpsCounter(model) as ops, FiringRateMonitor(model) as fr:
        model(x)
    assert fr.rates() == {"1": 4 / 64}
    r = ops.report()
    assert (r["macs"], r["sops"], r["ann_macs"]) == (288, 0.5, (576 + 16) / 2)
    assert r["energy_mj"] == pytest.approx((4.6 * 288 + 0.9 * 0.5) * PJ_TO_MJ, rel=1e-12)
    assert ops.layers()["3"]["input_rate"] == 1 / 16


def test_residual_sum_of_spikes_and_input_is_analog():
    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.neuron = create_neuron("hard_lif")
            self.fc = nn.Linear(3, 2)

        def forward(self, x):  # spikes + analog membrane -> analog input for fc
            return self.fc(self.neuron(x) + x)

    model = Mixed()
    with SynOpsCounter(model) as ops:
        model(torch.rand(2, 1, 3))
    assert ops.layers()["fc"]["spiking"] is False and ops.report()["macs"] == 2 * 2 * 3


IB_INPUT = [0.0, 0.03, 0.05, 0.06, 1.0, 5.2]  # codes q = round(100 U) clamped to 511: 0 3 5 6 100 511


def test_integer_code_histogram_and_bit_serial_ops():
    """IB-RA-LIF (N = 100, D = 5.11), one step: codes 0, 3, 5, 6, 100, 511; values sum to 6.25.

    Bit-serial binary spikes = popcount: 0 + 2 + 2 + 2 + 3 + 9 = 18 -> Linear(6->1) does 18 ACs
    (integer_ops="value": 6 MACs x mean value 6.25 / 6 = 6.25 ACs). 3 of 6 codes exceed 5.
    """
    model = nn.Sequential(create_neuron("ib_ra_lif"), linear([[1.0] * 6]))
    x = torch.tensor(IB_INPUT).reshape(1, 1, 6)  # [T=1, B=1, 6]
    with FiringRateMonitor(model) as fr, SynOpsCounter(model) as ops, SynOpsCounter(model, "value") as ops_v:
        model(x)
    hist = fr.code_histograms()["0"]
    assert hist.shape == (512,) and hist.sum() == 6
    assert hist.nonzero().flatten().tolist() == [0, 3, 5, 6, 100, 511]
    assert fr.high_code_fraction() == {"0": 0.5}
    assert fr.high_code_fraction(among_nonzero=True) == {"0": pytest.approx(0.6)}
    assert fr.rates()["0"] == pytest.approx(6.25 / 6, rel=1e-6)
    r = ops.report()
    assert r["macs"] == 0 and r["sops"] == pytest.approx(18, rel=1e-9) and r["ann_macs"] == 6
    assert r["energy_mj"] == pytest.approx(0.9 * 18 * PJ_TO_MJ, rel=1e-9)
    assert ops_v.report()["sops"] == pytest.approx(6.25, rel=1e-6)


def test_unary_integer_ops_equal_the_integer_values():
    """I-LIF (N = 1, D = 4): S = round(clamp(U, 0, 4)) = 0 1 1 3 4 4 -> 13 unary spikes -> 13 ACs."""
    model = nn.Sequential(create_neuron("i_lif"), linear([[1.0] * 6]))
    x = torch.tensor([0.0, 0.6, 1.4, 2.6, 3.7, 9.0]).reshape(1, 1, 6)
    with FiringRateMonitor(model) as fr, SynOpsCounter(model) as ops:
        model(x)
    assert fr.code_histograms()["0"].tolist() == [1, 2, 0, 1, 2]
    assert fr.high_code_fraction() == {"0": 0.0} and fr.rates()["0"] == 13 / 6
    assert ops.report()["sops"] == 13


def test_hooks_are_removed_cleanly():
    model, x = binary_mlp()
    reference = model(x)
    fr, ops = FiringRateMonitor(model), SynOpsCounter(model)
    assert any(m._forward_hooks for m in model.modules())
    torch.testing.assert_close(model(x), reference)  # hooks only observe
    fr.remove()
    ops.remove()
    ops.remove()  # idempotent
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    model(x)
    assert fr.spike_counts() == {"1": 3.0} and ops.report()["samples"] == 1  # nothing counted after removal


def test_unknown_integer_ops():
    with pytest.raises(ValueError, match="integer_ops"):
        SynOpsCounter(nn.Linear(1, 1), integer_ops="nope")


# outputs fed by each position of a 4x4 input under a 3x3 kernel, stride 1, zero padding 1
FANOUT_4X4_PAD1 = torch.tensor([[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]], dtype=torch.float64)


def test_dvs_event_frames_count_accumulates_not_macs():
    """Event-count input: the first layer does one AC per event and real connection, no MACs."""
    torch.manual_seed(0)
    net = nn.Sequential(Conv2d(2, 3, 3, padding=1, bias=False))  # time-folded conv, [T, B, 2, 4, 4]
    frames = torch.randint(0, 3, (2, 5, 2, 4, 4)).float()  # event counts
    macs_per_sample = 2 * (3 * 4 * 4) * 2 * 9  # T x out elements x in channels x kernel
    with SynOpsCounter(net) as analog:
        net(frames)
    report = analog.report()
    assert report["macs"] == macs_per_sample and report["sops"] == 0
    assert report["connection_macs"] == 2 * 2 * 3 * FANOUT_4X4_PAD1.sum()  # T x C_in x C_out x taps on real inputs
    assert report["connection_macs"] / report["macs"] == pytest.approx(1200 / 1728)  # 31% fewer than dense on 4x4
    with SynOpsCounter(net, event_input=True) as events:
        net(frames)
    report = events.report()
    assert report["macs"] == 0
    expected = (frames.double().sum(dim=(0, 1, 2)) * FANOUT_4X4_PAD1).sum() * 3 / 5  # x C_out, per sample
    assert report["sops"] == pytest.approx(float(expected), rel=1e-12)


def test_padded_conv_counts_real_connections():
    """One spike in a corner of a 4x4 map feeds 4 outputs per channel of a padded 3x3 conv, one in
    the middle 9; a stride-2 conv without padding: the fan-out of its kernel windows."""
    conv = Conv2d(1, 2, 3, padding=1, bias=False)
    model = nn.Sequential(create_neuron("hard_lif"), conv)
    x = torch.zeros(1, 1, 1, 4, 4)  # [T, B, C, H, W]
    x[..., 0, 0] = x[..., 1, 1] = 1.0  # two spikes: corner and interior
    with SynOpsCounter(model) as ops:
        model(x)
    assert ops.report()["sops"] == 2 * (4 + 9)
    strided = nn.Conv2d(1, 1, 3, stride=2)
    torch.testing.assert_close(conv_fanout(strided, 5, 5), torch.tensor(
        [[1, 1, 2, 1, 1]] * 2 + [[2, 2, 4, 2, 2]] + [[1, 1, 2, 1, 1]] * 2, dtype=torch.float64))


def test_integer_neurons_nonzero_counts():
    """i_lif outputs 0, 2, 1: firing rate averages values (1), activation sparsity counts nonzeros
    (1/3 zero); ``integer_ops="nonzero"`` counts one AC per nonzero input, ``value`` weights by it."""
    model = nn.Sequential(create_neuron("i_lif"), linear([[1.0, 1.0, 1.0]]))
    x = torch.tensor([[[0.0, 2.0, 1.0]]])  # [T=1, B=1, 3]
    with FiringRateMonitor(model) as fr, SynOpsCounter(model, integer_ops="nonzero") as nonzero, \
            SynOpsCounter(model, integer_ops="value") as value:
        model(x)
    assert fr.mean_rate() == 1.0 and fr.activation_sparsity() == pytest.approx(1 / 3)
    assert (nonzero.report()["sops"], value.report()["sops"]) == (2, 3)
