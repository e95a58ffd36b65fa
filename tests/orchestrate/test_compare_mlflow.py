"""The comparison in MLflow: compare's files and per-arm summaries on the study's parent run, a sweep's
best trial named there, trial params without None or linked copies, optuna-dashboard's objective names."""

from __future__ import annotations

from collections import Counter

import optuna
import pytest
from mlflow import MlflowClient
from orchestrate_helpers import planted_training, results_dir, store_args

from lit_snn.orchestrate import ablate_main, compare, load_spec, sweep_main
from lit_snn.orchestrate.stored_report import STAMP
from lit_snn.orchestrate.tracking import COMPARISON_DIR, LINKED_PARAMS

PLANTED = "lit_snn.orchestrate.study.run_training"


def _store(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}"


def _runs(tmp_path, experiment: str):
    client = MlflowClient(tracking_uri=_store(tmp_path))
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    parent = next(r for r in runs if r.data.tags.get("lit_snn.role") == "study")
    return client, parent, [r for r in runs if r.data.tags.get("lit_snn.role") == "trial"]


def test_ablation_parent_run_carries_the_comparison(tmp_path, write_study, monkeypatch, capsys):
    monkeypatch.setattr(PLANTED, planted_training({"ar_lif": 0.05}))
    path = write_study("arms", axes={"model.neuron": ["lif", "ar_lif"]}, seeds=[0, 1, 2], budget={"max_epochs": 2})
    assert ablate_main([str(path), *store_args(tmp_path)]) == 0
    assert "one nested run per arm (2, named 'arm ...'" in capsys.readouterr().out
    client, parent, _ = _runs(tmp_path, "ablation/arms")
    run_id = parent.info.run_id

    logged = {a.path for a in client.list_artifacts(run_id, COMPARISON_DIR)}
    local = {p.name for p in results_dir(tmp_path, path).iterdir()} - {STAMP}  # the stamp is local bookkeeping
    assert {f"{COMPARISON_DIR}/{name}" for name in local} == logged
    assert {"report.md", "stats.csv", "runs.csv", "grid.csv", "axis_model.neuron.csv", "axis_model.neuron.png",
            "acc_vs_energy.png", "learning_curves.png"} <= local
    report = client.download_artifacts(run_id, f"{COMPARISON_DIR}/report.md", str(tmp_path / "dl"))
    assert open(report).read() == (results_dir(tmp_path, path) / "report.md").read_text()

    assert not [k for k in parent.data.metrics if k.startswith("best")]  # no luckiest seed on an ablation's run
    # one nested run per arm, its summaries as metrics: MLflow's chart view puts the arms side by side
    arm_runs = client.search_runs([parent.info.experiment_id], "tags.`lit_snn.role` = 'arm'")
    assert {r.info.run_name for r in arm_runs} == {"arm model.neuron=lif", "arm model.neuron=ar_lif"}
    assert all(r.data.tags["mlflow.parentRunId"] == run_id and r.info.status == "FINISHED" for r in arm_runs)
    arm_metrics = {r.data.tags["axis.model.neuron"]: r.data.metrics for r in arm_runs}
    spec = load_spec(path, "ablation")
    stats = compare(spec, _store(tmp_path), results_dir=tmp_path / "results", log=lambda _: None).stats
    for row in stats.to_dict("records"):
        metrics, key = arm_metrics[row["value"]], row["metric"]
        assert metrics[f"{key}/mean"] == pytest.approx(row["mean"])
        assert metrics[f"{key}/n"] == 3
        assert metrics[f"{key}/ci_low"] == pytest.approx(row["ci_low"])
        assert metrics[f"{key}/ci_high"] == pytest.approx(row["ci_high"])
        if row["value"] == "lif":  # the baseline: no difference to itself
            assert f"{key}/delta" not in metrics
        else:
            assert metrics[f"{key}/delta"] == pytest.approx(row["delta"])
            assert metrics[f"{key}/delta_ci_low"] < metrics[f"{key}/delta"] < metrics[f"{key}/delta_ci_high"]
    assert arm_metrics["ar_lif"]["test/acc/delta"] == pytest.approx(0.05, abs=0.03)

    # optuna-dashboard names the objective by the study's metric names
    storage = f"sqlite:///{tmp_path / 'store' / 'optuna.db'}"
    assert optuna.load_study(study_name=spec.default_study_name, storage=storage).metric_names == ["test/acc"]

    # a second compare replaces the folder: a file it no longer writes does not stay behind
    stale = tmp_path / "old_plot.png"
    stale.write_bytes(b"x")
    client.log_artifact(run_id, str(stale), COMPARISON_DIR)
    assert compare(spec, _store(tmp_path), results_dir=tmp_path / "results", log=lambda _: None).logged
    assert {a.path for a in client.list_artifacts(run_id, COMPARISON_DIR)} == logged
    again = client.search_runs([parent.info.experiment_id], "tags.`lit_snn.role` = 'arm'")
    assert sorted(r.info.run_id for r in again) == sorted(r.info.run_id for r in arm_runs)  # updated, not added
    # the arm runs are no trials: the comparison reads the same 6 trial runs
    assert len(compare(spec, _store(tmp_path), results_dir=tmp_path / "results", log=lambda _: None).runs) == 6


def test_trial_params_hold_each_value_once_and_no_none(tmp_path, write_study, monkeypatch):
    monkeypatch.setattr(PLANTED, planted_training({}))
    path = write_study("params", axes={"model.neuron": ["lif"]}, seeds=[0])
    assert ablate_main([str(path), *store_args(tmp_path), "--no-compare"]) == 0
    _, _, (trial,) = _runs(tmp_path, "ablation/params")
    params = trial.data.params
    assert "None" not in params.values()
    assert not set(LINKED_PARAMS) & set(params) and params["model.time_steps"] == "2"
    assert params["repro.torch_threads"] and params["seed_everything"] == "0" and params["model.neuron"] == "lif"
    # a linked copy is the same field under another path: same last part, same value
    same = Counter((key.rsplit(".", 1)[-1], value) for key, value in params.items())
    assert [pair for pair, n in same.items() if n > 1] == []


def test_sweep_parent_run_names_its_best_trial(tmp_path, write_study, monkeypatch):
    monkeypatch.setattr(PLANTED, planted_training({"ar_lif": 0.05}))
    path = write_study("best", params={"model.neuron": ["lif", "ar_lif"]}, n_trials=3,
                       sampler={"type": "random", "seed": 1})
    assert sweep_main([str(path), *store_args(tmp_path), "--no-compare"]) == 0
    _, parent, trials = _runs(tmp_path, "sweep/best")
    metric = load_spec(path, "sweep").metric
    tags, metrics = parent.data.tags, parent.data.metrics
    (best,) = [r for r in trials if r.info.run_id == tags["lit_snn.best_trial_run_id"]]
    assert best.data.metrics[metric] == max(r.data.metrics[metric] for r in trials)  # ties: Optuna's first
    assert tags["lit_snn.best_trial"] == best.data.tags["optuna.trial_number"]
    assert metrics["best_trial/number"] == int(best.data.tags["optuna.trial_number"])
    assert metrics[f"best_trial/{metric}"] == pytest.approx(best.data.metrics[metric])
    assert f"best/{metric}" not in metrics


def test_compare_keeps_its_files_when_mlflow_refuses(tmp_path, write_study, monkeypatch):
    monkeypatch.setattr(PLANTED, planted_training({}))
    path = write_study("refused", axes={"model.neuron": ["lif", "ar_lif"]}, seeds=[0, 1])
    assert ablate_main([str(path), *store_args(tmp_path), "--no-compare"]) == 0

    def refuse(self, run_id, local_path, artifact_path=None):
        raise PermissionError(13, "Permission denied", str(local_path))

    monkeypatch.setattr(MlflowClient, "log_artifact", refuse)
    lines: list[str] = []
    result = compare(load_spec(path, "ablation"), _store(tmp_path), results_dir=tmp_path / "results",
                     log=lines.append)
    assert result is not None and not result.logged
    (line,) = [x for x in lines if "MLflow" in x and "could not" in x]
    assert line.startswith("compare: could not log the comparison to MLflow run ")
    assert "Permission denied" in line and line.endswith(f"it is in {result.out_dir}/ only")
    assert all(f.is_file() for f in result.files) and (result.out_dir / "report.md").is_file()
