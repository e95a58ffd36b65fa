"""LitSNN's metrics and input handling, checked by hand."""

import pytest
import torch

from lit_snn.module import LitSNN


def test_accuracy_is_plain_accuracy_and_top5_is_separate():
    model = LitSNN(num_classes=6, in_channels=1)
    metrics = model.test_metrics
    # batch 1: all correct at top-1 (this is what used to merge top-1/top-5 states)
    metrics.update(torch.eye(6)[[0, 1, 2]], torch.tensor([0, 1, 2]))
    # batch 2: imbalanced classes; label 5 is never ranked in the top 5 (score -1 everywhere else 0..)
    logits = torch.tensor([[5.0, 4, 3, 2, 1, 0]] * 4)
    metrics.update(logits, torch.tensor([0, 0, 1, 5]))
    result = metrics.compute()
    assert result["test/acc"].item() == pytest.approx(5 / 7)  # 3 + 2 correct of 7 (per-class mean: 0.6)
    assert result["test/acc_top5"].item() == pytest.approx(6 / 7)  # all but the label-5 sample


def test_best_validation_accuracy_is_kept_in_checkpoints():
    model = LitSNN(num_classes=10, in_channels=1)
    model.val_acc_best.update(torch.tensor(0.8))
    state = model.state_dict()
    clone = LitSNN(num_classes=10, in_channels=1)
    clone.load_state_dict(state)
    assert clone.val_acc_best.compute().item() == pytest.approx(0.8)


def test_metric_names_are_what_fit_and_test_log():
    """The names a study may optimise (the orchestrator checks a study's metric against them)."""
    names = LitSNN(num_classes=10, in_channels=1, neuron="i_lif").metric_names()
    assert {"train/loss", "val/acc", "val/acc_best", "test/acc", "test/acc_top5", "test/energy_mj",
            "test/firing_rate", "test/firing_rate/features.2", "val/high_code_fraction"} <= names
    assert "val/energy_mj" not in names  # energy is counted at test time only
    assert "test/high_code_fraction" not in LitSNN(num_classes=10, in_channels=1).metric_names()  # binary spikes


def test_dvs_batch_must_match_time_steps():
    model = LitSNN(num_classes=10, in_channels=2, time_steps=4)
    assert model(torch.rand(3, 4, 2, 8, 8)).shape == (4, 3, 10)  # [B, T, P, H, W] -> [T, B, K]
    assert model(torch.rand(3, 2, 8, 8)).shape == (4, 3, 10)  # static: direct encoding over T
    with pytest.raises(ValueError, match="5 frames per sample but model.time_steps is 4"):
        model(torch.rand(3, 5, 2, 8, 8))


def test_nan_input_stops_training_with_a_clear_error():
    model = LitSNN(num_classes=10, in_channels=1)
    x = torch.rand(4, 1, 8, 8)
    x[0, 0, 0, 0] = float("nan")
    # the spike threshold would turn the NaN into silence (finite loss): the neurons' flags catch it
    with pytest.raises(FloatingPointError, match=r"train: the input of neuron layer net\.features\.2 contains NaN"):
        model.training_step((x, torch.zeros(4, dtype=torch.long)), 0)


@pytest.mark.parametrize("decay_1d", [True, False])
def test_weight_decay_1d_decides_whether_norms_and_neuron_parameters_decay(decay_1d):
    lr, wd = 0.1, 0.01
    model = LitSNN(num_classes=10, in_channels=1, neuron="ar_lif", lr=lr, weight_decay=wd,
                   weight_decay_1d=decay_1d)
    opt = model.configure_optimizers()["optimizer"]
    assert all(group["params"] for group in opt.param_groups)  # no empty group
    assert len(opt.param_groups) == (1 if decay_1d else 2)
    params = dict(model.net.named_parameters())
    bn, neuron_c, neuron_a, conv = "features.1.weight", "features.2.mem_c", "features.2.thr_a", "features.0.weight"
    assert model.net.features[2] in model.neurons.values() and params[bn].dim() == params[neuron_c].dim() == 1
    with torch.no_grad():
        params[bn].fill_(2.0)
        params[neuron_c].fill_(1.5)
        params[neuron_a].fill_(0.5)
    before = {name: p.detach().clone() for name, p in params.items()}
    for p in params.values():
        p.grad = torch.zeros_like(p)
    opt.step()  # zero gradient: only weight decay moves a parameter, by lr * wd * p (first momentum step)
    shrink = 1 - lr * wd
    for name in (bn, neuron_c, neuron_a):
        expect = before[name] * shrink if decay_1d else before[name]
        assert torch.allclose(params[name].detach(), expect, rtol=0, atol=1e-7), name
    assert torch.allclose(params[conv].detach(), before[conv] * shrink, rtol=0, atol=1e-7)  # always decayed


def test_weight_decay_1d_defaults_to_exempt():
    assert LitSNN(num_classes=10, in_channels=1).hparams.weight_decay_1d is False


@pytest.mark.parametrize("neuron,shape_of", [("glif", "glif_conduct"), ("psn", "psn_weight")])
def test_neurons_with_per_step_parameters_take_the_models_time_steps(neuron, shape_of):
    """GLIF's conductance and PSN's mixing have one entry per step: LitSNN builds them for its T."""
    model = LitSNN(num_classes=10, in_channels=1, neuron=neuron, time_steps=3)
    layers = list(model.neurons.values())
    assert layers and all(getattr(m, shape_of).shape[0] == 3 and m.config.time_steps == 3 for m in layers)
    outputs = model(torch.rand(2, 1, 8, 8))
    assert outputs.shape == (3, 2, 10)
    with pytest.raises(ValueError, match="neuron_overrides.time_steps=5 differs from time_steps=3"):
        LitSNN(num_classes=10, in_channels=1, neuron=neuron, time_steps=3, neuron_overrides={"time_steps": 5})


def test_memory_format_auto_is_channels_last_on_the_cpu_and_changes_only_the_layout():
    torch.manual_seed(0)
    contiguous = LitSNN(num_classes=10, in_channels=1, neuron="plif", memory_format="contiguous")
    auto = LitSNN(num_classes=10, in_channels=1, neuron="plif")
    auto.load_state_dict(contiguous.state_dict())
    contiguous.apply_memory_format()
    auto.apply_memory_format()
    conv = auto.net.features[3].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert contiguous.net.features[3].weight.is_contiguous()
    x, y = torch.rand(6, 1, 8, 8), torch.randint(0, 10, (6,))
    losses = [model.training_step((x, y), 0) for model in (contiguous, auto)]
    for loss in losses:
        loss.backward()
    torch.testing.assert_close(losses[1], losses[0])
    for (name, a), b in zip(auto.named_parameters(), contiguous.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5, msg=name)
    with pytest.raises(ValueError, match="unknown memory_format 'nhwc'; valid: auto, channels_last, contiguous"):
        LitSNN(memory_format="nhwc")
