"""Sweeps: seeded TPE within the ranges, the n_trials budget, pruning from a Lightning callback
(optuna_integration's PyTorchLightningPruningCallback: val/acc reported per epoch, pruned trials)."""

from __future__ import annotations

import optuna
import pytest
from mlflow import MlflowClient
from orchestrate_helpers import results_dir, store_args

from lit_snn.orchestrate import sweep_main
from lit_snn.orchestrate.pruning import make_pruner


def test_pruner_factory():
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
    assert (results_dir(tmp_path, path, "sweep") / "trials.csv").is_file()
    assert sweep_main([str(path), *store_args(tmp_path), "--no-compare"]) == 0  # budget spent: nothing new
    assert len(optuna.load_study(study_name=name, storage=storage).trials) == 2

    # a pruner that drops everything: trials end PRUNED at the first epoch, in Optuna and in MLflow
    path = write_study("hopeless", params={"model.lr": {"type": "float", "low": 0.01, "high": 0.1}}, n_trials=2,
                       pruner={"type": "threshold", "lower": 2.0}, budget={"max_epochs": 3})
    assert sweep_main([str(path), *store_args(tmp_path), "--no-compare"]) == 0
    states = [r.data.tags["lit_snn.state"] for r in _runs(tmp_path, "sweep/hopeless")]
    assert states == ["PRUNED", "PRUNED"]
