"""LitSNN's metrics and input handling, checked by hand."""

import pytest
import torch

from lit_snn.module import LitSNN
from lit_snn.orchestrate.spec import _metric


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


def test_dvs_batch_must_match_time_steps():
    model = LitSNN(num_classes=10, in_channels=2, time_steps=4)
    assert model(torch.rand(3, 4, 2, 8, 8)).shape == (4, 3, 10)  # [B, T, P, H, W] -> [T, B, K]
    assert model(torch.rand(3, 2, 8, 8)).shape == (4, 3, 10)  # static: direct encoding over T
    with pytest.raises(ValueError, match="5 frames per sample but model.time_steps is 4"):
        model(torch.rand(3, 5, 2, 8, 8))


@pytest.mark.parametrize("metric,direction", [
    ("test/acc", "maximize"), ("val/acc_best", "maximize"), ("test/energy_ratio", "maximize"),
    ("test/high_code_fraction", "maximize"), ("test/loss", "minimize"), ("test/energy_mj", "minimize"),
    ("test/sops", "minimize"), ("test/macs", "minimize"), ("test/firing_rate", "minimize"),
])
def test_study_direction_defaults(metric, direction):
    assert _metric({"metric": metric}, "file.yaml", "test/acc") == (metric, direction)


def test_nan_input_stops_training_with_a_clear_error():
    model = LitSNN(num_classes=10, in_channels=1)
    x = torch.rand(4, 1, 8, 8)
    x[0, 0, 0, 0] = float("nan")
    # the spike threshold would turn the NaN into silence (finite loss): the neurons' flags catch it
    with pytest.raises(FloatingPointError, match=r"train: the input of neuron layer net\.features\.2 contains NaN"):
        model.training_step((x, torch.zeros(4, dtype=torch.long)), 0)
