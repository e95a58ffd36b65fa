"""Sweeps: seeded TPE within the ranges, the n_trials budget, pruning from a Lightning callback."""

from __future__ import annotations

from types import SimpleNamespace

import optuna
import pytest
import torch
from mlflow import MlflowClient
from orchestrate_helpers import store_args

from lit_snn.orchestrate import sweep_main
from lit_snn.orchestrate.pruning import MetricRecorder, OptunaPruning, make_pruner


def _trainer(epoch: int, metrics: dict, sanity: bool = False):
    return SimpleNamespace(sanity_checking=sanity, current_epoch=epoch,
                           callback_metrics={k: torch.tensor(v) for k, v in metrics.items()})


def test_pruning_callback_reports_and_raises():
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=0.5))
    trial = study.ask()
    callback = OptunaPruning(trial, "val/acc")
    callback.on_validation_end(_trainer(0, {"val/acc": 0.1}, sanity=True), None)  # sanity check: ignored
    callback.on_validation_end(_trainer(0, {"val/acc": 0.8}), None)
    with pytest.raises(optuna.TrialPruned):
        callback.on_validation_end(_trainer(1, {"val/acc": 0.2}), None)
    assert callback.pruned and study.trials[0].intermediate_values == pytest.approx({0: 0.8, 1: 0.2})


def test_metric_recorder_and_pruner_factory():
    recorder = MetricRecorder()
    for epoch, acc in enumerate([0.3, 0.7, 0.5]):
        recorder.on_validation_end(_trainer(epoch, {"val/acc": acc, "val/loss": 1 - acc}), None)
    assert recorder.metrics() == pytest.approx({"val/acc": 0.5, "val/loss": 0.5, "val/acc_best": 0.7})
    assert isinstance(make_pruner({"type": "none"}, 3), optuna.pruners.NopPruner)
    hyperband = make_pruner({"type": "hyperband", "monitor": "val/acc", "min_resource": 1}, 8)
    assert isinstance(hyperband, optuna.pruners.HyperbandPruner) and hyperband._max_resource == 8


def _runs(tmp_path, experiment):
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}")
    exp = client.get_experiment_by_name(experiment)
    return [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("lit_snn.role") == "trial"]


def test_sweep_tpe_budget_and_pruning(tmp_path, write_study):
    params = {"model.lr": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
              "model.neuron_overrides.v_threshold": {"type": "float", "low": 0.5, "high": 1.5},
              "model.time_steps": [1, 2]}
    path = write_study("search", params=params, n_trials=2, sampler={"type": "tpe", "seed": 3, "n_startup_trials": 1},
                       pruner={"type": "median", "n_startup_trials": 1}, budget={"max_epochs": 2})
    assert sweep_main([str(path), *store_args(tmp_path)]) == 0
    storage = f"sqlite:///{tmp_path / 'store' / 'optuna.db'}"
    (name,) = optuna.get_all_study_names(storage)
    study = optuna.load_study(study_name=name, storage=storage)
    assert len(study.trials) == 2 and all(t.state.is_finished() for t in study.trials)
    for trial in study.trials:
        assert 0.01 <= trial.params["model.lr"] <= 0.3 and trial.params["model.time_steps"] in (1, 2)
        assert set(trial.intermediate_values) <= {0, 1} and trial.intermediate_values  # val/acc per epoch
    runs = _runs(tmp_path, "sweep/search")
    assert sorted(r.data.tags["lit_snn.state"] for r in runs) == sorted(t.state.name for t in study.trials)
    assert sorted(float(r.data.params["model.lr"]) for r in runs) == pytest.approx(
        sorted(t.params["model.lr"] for t in study.trials))
    assert (tmp_path / "results" / "sweep" / "search" / "trials.csv").is_file()
    assert sweep_main([str(path), *store_args(tmp_path), "--no-compare"]) == 0  # budget spent: nothing new
    assert len(optuna.load_study(study_name=name, storage=storage).trials) == 2

    # a pruner that drops everything: trials end PRUNED at the first epoch, in Optuna and in MLflow
    path = write_study("hopeless", params={"model.lr": {"type": "float", "low": 0.01, "high": 0.1}}, n_trials=2,
                       pruner={"type": "threshold", "lower": 2.0}, budget={"max_epochs": 3})
    assert sweep_main([str(path), *store_args(tmp_path), "--no-compare"]) == 0
    states = [r.data.tags["lit_snn.state"] for r in _runs(tmp_path, "sweep/hopeless")]
    assert states == ["PRUNED", "PRUNED"]
