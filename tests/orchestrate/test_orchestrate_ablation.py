"""An ablation end to end: Optuna queue -> real trainings -> MLflow runs -> comparison tables/files."""

from __future__ import annotations

import math
import os
from collections import Counter

import pytest
from mlflow import MlflowClient
from orchestrate_helpers import optuna_trials, results_dir, store_args

from lit_snn.orchestrate import ablate_main, compare, compare_main, load_spec


def _mlflow(tmp_path):
    return MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}")


def _trial_runs(client, experiment_name):
    exp = client.get_experiment_by_name(experiment_name)
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("lit_snn.role") == "study"]
    children = [r for r in runs if r.data.tags.get("lit_snn.role") == "trial"]
    return exp, parents, children


def test_small_grid_end_to_end(tmp_path, write_study):
    path = write_study("grid", description="two neurons x two seeds",
                       axes={"model.neuron": ["lif", "i_lif"]}, seeds=[0, 1])
    assert ablate_main([str(path), *store_args(tmp_path), "--no-compare"]) == 0

    trials = optuna_trials(tmp_path / "store" / "optuna.db")
    assert [t[1] for t in trials] == ["COMPLETE"] * 4
    assert sorted(t[3] for t in trials) == sorted(
        f"model.neuron={n},seed={s}" for n in ("lif", "i_lif") for s in (0, 1))

    client = _mlflow(tmp_path)
    _, parents, children = _trial_runs(client, "ablation/grid")
    assert len(parents) == 1 and len(children) == 4
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["lit_snn.study"].startswith("grid-")
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    for run in children:
        params, tags, metrics = run.data.params, run.data.tags, run.data.metrics
        neuron, seed = tags["axis.model.neuron"], int(params["seed_everything"])
        assert tags["lit_snn.key"] == f"model.neuron={neuron},seed={seed}"
        assert params["model.neuron"] == neuron and params["trainer.max_epochs"] == "1"
        assert params["data.class_path"] == "lit_snn.data.DigitsDataModule"
        assert params["data.init_args.limit_train"] == "96"
        assert tags["lit_snn.state"] == "COMPLETE" and run.info.status == "FINISHED"
        assert tags["repro.seed"] == str(seed) and tags["repro.version.torch"] and tags["repro.git.commit"]
        assert "digits" in tags["repro.dataset"]
        for key in ("test/acc", "test/firing_rate", "test/sops", "test/energy_mj", "val/acc_best"):
            assert key in metrics and math.isfinite(metrics[key]), key
        assert client.get_metric_history(run.info.run_id, "val/acc")  # per-epoch, from Lightning's logger
        assert "config.yaml" in [a.path for a in client.list_artifacts(run.info.run_id)]
    value = {t[3]: t[2] for t in trials}
    assert all(value[r.data.tags["lit_snn.key"]] == pytest.approx(r.data.metrics["test/acc"]) for r in children)

    # the comparison: one row per axis value / grid point, numbers = mean of the runs' metrics
    spec = load_spec(path, "ablation")
    result = compare(spec, f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}", results_dir=tmp_path / "results",
                     log=lambda _: None)
    by_neuron = {n: [r.data.metrics for r in children if r.data.tags["axis.model.neuron"] == n]
                 for n in ("lif", "i_lif")}
    table = result.per_axis["model.neuron"]
    assert list(table["model.neuron"]) == ["lif", "i_lif"] and list(table["n"]) == [2, 2]
    for _, row in table.iterrows():
        runs = by_neuron[row["model.neuron"]]
        for metric in ("test/acc", "test/firing_rate", "test/energy_mj"):
            assert row[f"{metric}_mean"] == pytest.approx(sum(m[metric] for m in runs) / 2)
    assert len(result.grid) == 2
    out = results_dir(tmp_path, path)
    for name in ("report.md", "runs.csv", "grid.csv", "axis_model.neuron.csv", "axis_model.neuron.png",
                 "acc_vs_energy.png", "stats.csv", "learning_curves.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert "| model.neuron |" in (out / "report.md").read_text()
    assert "## Pareto-optimal arms (max test acc, min energy" in (out / "report.md").read_text()
    assert sorted(result.runs["seed"]) == [0, 0, 1, 1]  # from the runs' seed_everything param
    acc = result.stats[result.stats["metric"] == "test/acc"]
    assert list(acc["value"]) == ["lif", "i_lif"] and list(acc["n"]) == [2, 2]
    (comparison,) = [c for c in result.comparisons if c.metric == "test/acc"]
    assert comparison.test == "paired" and comparison.n_pairs == 2 and comparison.baseline == "lif"
    assert f"- {comparison.sentence()}" in (out / "report.md").read_text()

    # the CLI prints the same; a second `ablate` resumes a finished study: nothing new runs
    assert compare_main([str(path), *store_args(tmp_path)]) == 0
    assert ablate_main([str(path), *store_args(tmp_path), "--no-compare"]) == 0
    assert optuna_trials(tmp_path / "store" / "optuna.db") == trials
    _, parents, children = _trial_runs(client, "ablation/grid")
    assert len(children) == 4 and [p.info.run_id for p in parents] == [parent.info.run_id]  # parent reused


def test_two_workers_run_each_point_once(tmp_path, write_study):
    path = write_study("pair", axes={"model.neuron": ["lif", "ar_lif"]}, seeds=[0, 1])
    assert ablate_main([str(path), *store_args(tmp_path), "--workers", "2", "--no-compare"]) == 0
    trials = optuna_trials(tmp_path / "store" / "optuna.db")
    assert Counter(t[1] for t in trials) == {"COMPLETE": 4}
    assert len({t[3] for t in trials}) == 4
    _, _, children = _trial_runs(_mlflow(tmp_path), "ablation/pair")
    assert sorted(r.data.tags["lit_snn.key"] for r in children) == sorted(t[3] for t in trials)
    workers = {r.data.tags["lit_snn.worker"] for r in children}  # host:pid of the process that ran it
    assert 1 <= len(workers) <= 2 and all(int(w.rsplit(":", 1)[1]) != os.getpid() for w in workers)


def test_failed_trial_is_reported_and_retried_on_rerun(tmp_path, write_study, monkeypatch):
    """A trial that raises is FAIL (Optuna and MLflow), the command exits 1; the re-run retries only it."""
    path = write_study("flaky", axes={"model.neuron_overrides.v_threshold": [1.0, 0.5]})
    from lit_snn.orchestrate import study as study_module

    real = study_module.run_training

    def flaky(config, **kwargs):
        if config["model"].get("neuron_overrides", {}).get("v_threshold") == 0.5:
            raise RuntimeError("boom")
        return real(config, **kwargs)

    monkeypatch.setattr(study_module, "run_training", flaky)
    assert ablate_main([str(path), *store_args(tmp_path), "--no-compare"]) == 1
    first = optuna_trials(tmp_path / "store" / "optuna.db")
    assert [t[1] for t in first] == ["COMPLETE", "FAIL"]
    _, _, children = _trial_runs(_mlflow(tmp_path), "ablation/flaky")
    failed = [r for r in children if r.data.tags["lit_snn.state"] == "FAIL"]
    assert len(failed) == 1 and failed[0].info.status == "FAILED" and "boom" in failed[0].data.tags["lit_snn.error"]

    monkeypatch.setattr(study_module, "run_training", real)
    assert ablate_main([str(path), *store_args(tmp_path), "--no-compare"]) == 0
    second = optuna_trials(tmp_path / "store" / "optuna.db")
    assert second[:2] == first and [t[1] for t in second[2:]] == ["COMPLETE"]
    assert second[2][3] == first[1][3]


def test_neurobench_metrics_of_every_trial_reach_mlflow_and_compare(tmp_path, write_study):
    path = write_study("bench", axes={"model.neuron": ["lif", "i_lif"]}, seeds=[0])
    assert ablate_main([str(path), *store_args(tmp_path), "--no-compare", "--no-log-checkpoints",
                        "--neurobench"]) == 0
    _, _, children = _trial_runs(_mlflow(tmp_path), "ablation/bench")
    for run in children:
        metrics = run.data.metrics
        sparsity = metrics["neurobench/ActivationSparsity"]
        assert 0 < sparsity < 1 and metrics["neurobench/SynapticOperations/Effective_ACs"] > 0
        assert sparsity == pytest.approx(metrics["test/activation_sparsity"], abs=1e-9)  # ours, same definition
        if run.data.tags["axis.model.neuron"] == "lif":  # binary spikes: it is 1 - the firing rate
            assert sparsity == pytest.approx(1 - metrics["test/firing_rate"], abs=1e-9)
        else:  # integer spikes: the firing rate averages values, the sparsity counts nonzeros
            assert sparsity > 1 - metrics["test/firing_rate"]
    result = compare(load_spec(path, "ablation"), f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}",
                     results_dir=tmp_path / "results", log=lambda _: None)
    assert "neurobench/ActivationSparsity_mean" in result.per_axis["model.neuron"]
    assert "NeuroBench act. sparsity" in result.markdown


def test_neurobench_and_export_commands_read_a_trial_by_its_run_id(tmp_path, write_study, capsys):
    from lit_snn.cli import main

    path = write_study("byid", axes={"model.neuron": ["plif"]}, seeds=[0])
    assert ablate_main([str(path), *store_args(tmp_path), "--no-compare"]) == 0
    _, _, (run,) = _trial_runs(_mlflow(tmp_path), "ablation/byid")
    uri = f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}"
    capsys.readouterr()
    assert main(["neurobench", run.info.run_id, "--tracking-uri", uri]) == 0
    header, *rows = capsys.readouterr().out.strip().splitlines()
    assert header.startswith("lit-snn neurobench: ")
    table = {row.split()[0]: row.split()[1] for row in rows}  # metric, value, unit
    # the run's own test split (32 samples of limit_test), with the model it logged
    assert float(table["ClassificationAccuracy"]) == pytest.approx(run.data.metrics["test/acc"])
    assert main(["export", run.info.run_id, "--tracking-uri", uri, "--nir", str(tmp_path / "net.nir")]) == 0
    assert (tmp_path / "net.nir").stat().st_size > 0
