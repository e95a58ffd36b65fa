"""Multi-objective sweeps: the file format, the non-dominated filter, Pareto fronts in compare and ablations."""

from __future__ import annotations

import math
import re
import shutil

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from orchestrate_helpers import results_dir, store_args, tiny_base

from lit_snn.orchestrate import SpecError, compare, load_spec, sweep_main
from lit_snn.orchestrate.compare import pareto_arms
from lit_snn.orchestrate.pareto import non_dominated, pareto_rows
from lit_snn.orchestrate.spec import spec_from_dict

ACC_ENERGY = [{"metric": "val/acc_best", "direction": "maximize"},
              {"metric": "test/energy_mj", "direction": "minimize"}]


def _optuna_front(points, directions) -> list[int]:
    """Indices of Optuna's own ``best_trials`` for ``points`` added as COMPLETE trials in that order."""
    study = optuna.create_study(directions=list(directions))
    for values in points:
        study.add_trial(optuna.trial.create_trial(values=[float(v) for v in values]))
    return sorted(t.number for t in study.best_trials)


# ---------------------------------------------------------------------- the non-dominated filter
# (max acc, min energy); index: why it is (not) on the front
POINTS = [
    (0.90, 1.0),  # 0: on the front
    (0.90, 1.0),  # 1: a duplicate of 0: equal points do not dominate each other, both stay
    (0.80, 0.5),  # 2: on the front
    (0.90, 2.0),  # 3: same acc as 0 (a tie), more energy: dominated by 0
    (0.70, 0.5),  # 4: same energy as 2, less acc: dominated by 2
    (1.00, 3.0),  # 5: the most accurate: on the front
    (0.50, 0.1),  # 6: the cheapest: on the front
    (0.60, 0.2),  # 7: between 6 and 2, not dominated: on the front
    (0.40, 0.2),  # 8: dominated by 7 (and 6)
    (0.95, 3.0),  # 9: dominated by 5 (tie in energy)
]
FRONT = [0, 1, 2, 5, 6, 7]


def test_non_dominated_on_known_points_matches_optuna():
    directions = ["maximize", "minimize"]
    assert list(np.flatnonzero(non_dominated(POINTS, directions))) == FRONT
    assert _optuna_front(POINTS, directions) == FRONT
    # flipping both directions flips the problem: the same filter still agrees with Optuna
    flipped = ["minimize", "maximize"]
    assert list(np.flatnonzero(non_dominated(POINTS, flipped))) == _optuna_front(POINTS, flipped)
    # all-equal points: all optimal; one point: optimal; none: empty
    assert non_dominated([(1.0, 1.0)] * 3, directions).tolist() == [True] * 3
    assert non_dominated([(0.3, 7.0)], directions).tolist() == [True]
    assert non_dominated(np.empty((0, 2)), directions).tolist() == []
    # a NaN objective is never optimal and dominates nothing
    with_nan = [*POINTS, (math.nan, 0.0), (2.0, math.nan)]
    assert list(np.flatnonzero(non_dominated(with_nan, directions))) == FRONT
    with pytest.raises(ValueError, match="directions must be"):
        non_dominated(POINTS, ["maximise", "minimize"])
    with pytest.raises(ValueError, match="one column per direction"):
        non_dominated(POINTS, ["maximize"])


@pytest.mark.parametrize("directions", [["minimize", "minimize", "maximize"], ["maximize", "minimize"]])
def test_non_dominated_matches_optuna_on_random_points_with_ties(directions):
    rng = np.random.default_rng(7)
    points = rng.integers(0, 5, size=(60, len(directions))).astype(float)  # few levels: many ties and duplicates
    assert list(np.flatnonzero(non_dominated(points, directions))) == _optuna_front(points, directions)


def test_pareto_arms_rings_the_right_ablation_points():
    points = pd.DataFrame({
        "value": ["lif", "ar_lif", "da_lif", "i_lif", "ib_ra_lif", "glif"],
        "test/acc_mean": [0.90, 0.92, 0.85, 0.92, 0.80, math.nan],
        "test/energy_mj_mean": [0.020, 0.030, 0.010, 0.035, 0.015, 0.001],
    })
    # ar_lif beats i_lif (tie in acc, less energy); ib_ra_lif loses to da_lif; glif has no accuracy
    assert points.loc[pareto_arms(points), "value"].tolist() == ["lif", "ar_lif", "da_lif"]
    assert pareto_rows(points.iloc[:0], [("test/acc_mean", "maximize")]).tolist() == []


# ---------------------------------------------------------------------- the file format
def _sweep(tmp_path, **fields) -> dict:
    return {"base": tiny_base(tmp_path / "data"), "n_trials": 2,
            "params": {"model.neuron_overrides.v_threshold": {"type": "float", "low": 0.5, "high": 1.5}}, **fields}


def test_objectives_format(tmp_path):
    spec = spec_from_dict(_sweep(tmp_path, objectives=[{"metric": "val/acc_best"},
                                                       {"metric": "test/energy_mj", "direction": "minimize"}],
                                 sampler={"type": "nsga2", "population_size": 4, "seed": 1}), "sweep")
    assert spec.multi_objective and spec.objectives == [("val/acc_best", "maximize"), ("test/energy_mj", "minimize")]
    assert (spec.metric, spec.direction) == ("val/acc_best", "maximize")  # the first objective: the table order
    assert spec.pruner["type"] == "none" and spec.sampler["type"] == "nsga2"
    assert spec.describe()["objectives"][1] == {"metric": "test/energy_mj", "direction": "minimize"}
    # the objectives are part of the fingerprint (they change what a trial reports)
    other = spec_from_dict(_sweep(tmp_path, objectives=[{"metric": "val/acc_best"}, {"metric": "test/firing_rate"}],
                                  sampler={"type": "nsga2", "population_size": 4, "seed": 1}), "sweep")
    assert other.objectives[1] == ("test/firing_rate", "minimize") and other.fingerprint != spec.fingerprint
    single = spec_from_dict(_sweep(tmp_path, metric="val/acc_best"), "sweep")
    assert not single.multi_objective and single.objectives == [("val/acc_best", "maximize")]
    assert spec_from_dict(_sweep(tmp_path, sampler={"type": "nsga2", "population_size": 4}), "sweep").sampler
    assert spec_from_dict(_sweep(tmp_path, objectives=ACC_ENERGY, sampler={"type": "tpe", "seed": 0}),
                          "sweep").multi_objective  # multi-objective TPE


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"objectives": ACC_ENERGY, "metric": "val/acc_best"}, r"`objectives:` and `metric:` exclude each other"),
        ({"objectives": ACC_ENERGY, "direction": "maximize"}, r"`objectives:` and `direction:` exclude each other"),
        ({"objectives": ACC_ENERGY[:1]}, r"objectives: list should have at least 2 items.*; e.g. \[\{metric: "),
        ({"objectives": {"metric": "val/acc_best"}}, r"objectives: input should be a valid list, got \{"),
        ({"objectives": [*ACC_ENERGY[:1], "test/energy_mj"]},
         r"objectives\[1\]: input should be a mapping, got 'test/energy_mj'"),
        ({"objectives": [*ACC_ENERGY[:1], {"metric": "energy"}]},
         r"objectives\[1\].metric: 'energy' is not a stage/name metric"),
        ({"objectives": [*ACC_ENERGY[:1], {"metric": "test/sops", "direction": "down"}]},
         r"objectives\[1\].direction: input should be 'maximize' or 'minimize', got 'down'"),
        ({"objectives": [*ACC_ENERGY[:1], {"metric": "test/sops", "weight": 2}]},
         r"objectives\[1\]: unknown key\(s\) \['weight'\]; valid: \['direction', 'metric'\]"),
        ({"objectives": [*ACC_ENERGY, {"metric": "val/acc_best"}]},
         r"objectives: value 'val/acc_best' is listed twice"),
        ({"objectives": ACC_ENERGY, "pruner": {"type": "median"}},
         r"Optuna's pruners do not support several objectives.*pruner: \{type: none\}"),
        ({"objectives": ACC_ENERGY, "pruner": {"type": "threshold", "lower": 0.1}}, r"do not support several"),
        ({"objectives": ACC_ENERGY, "sampler": {"type": "nsga2", "population_size": 1}},
         r"NSGAIISampler rejects.*population_size"),
        ({"sampler": {"type": "nsga2", "n_startup_trials": 3}}, r"unknown option.*NSGAIISampler"),
        ({"sampler": {"type": "cmaes"}}, r"sampler.type: input should be 'tpe', 'nsga2' or 'random', got 'cmaes'"),
    ],
    ids=["with-metric", "with-direction", "one", "mapping", "str-entry", "bad-metric", "bad-direction", "extra-key",
         "duplicate", "median-pruner", "threshold-pruner", "population", "nsga2-option", "sampler-type"],
)
def test_bad_objectives_rejected_before_anything_runs(tmp_path, fields, message, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_sweep(tmp_path, **fields)))
    assert sweep_main([str(path), *store_args(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert not (tmp_path / "store").exists()  # no study, no MLflow run


def test_objectives_are_a_sweep_key(tmp_path):
    data = {"base": tiny_base(tmp_path / "data"), "axes": {"model.neuron": ["lif"]}, "objectives": ACC_ENERGY}
    with pytest.raises(SpecError, match=r"unknown key\(s\) \['objectives'\]; valid: \['alpha', 'axes'"):
        spec_from_dict(data, "ablation")


# ---------------------------------------------------------------------- end to end (tiny trainings)
def test_multi_objective_sweep_end_to_end(tmp_path, write_study):
    params = {"model.neuron": ["lif", "ar_lif", "i_lif", "da_lif"],
              "model.neuron_overrides.v_threshold": {"type": "float", "low": 0.5, "high": 1.5}}
    path = write_study("front", params=params, n_trials=6, objectives=ACC_ENERGY,
                       sampler={"type": "nsga2", "population_size": 4, "seed": 0})
    assert sweep_main([str(path), *store_args(tmp_path)]) == 0

    storage = f"sqlite:///{tmp_path / 'store' / 'optuna.db'}"
    (name,) = optuna.get_all_study_names(storage)
    study = optuna.load_study(study_name=name, storage=storage)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert len(study.trials) == 6 and all(t.state.name == "COMPLETE" and len(t.values) == 2 for t in study.trials)
    assert not any(t.intermediate_values for t in study.trials)  # no pruning: nothing reported per epoch
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}")
    for trial in study.trials:  # the told values are the run's metrics
        metrics = client.get_run(trial.user_attrs["mlflow_run_id"]).data.metrics
        assert trial.values == pytest.approx([metrics["val/acc_best"], metrics["test/energy_mj"]])
    best = sorted(t.number for t in study.best_trials)
    assert best  # (the real tiny trainings leave some trials dominated; whatever they do, compare must agree)
    assert best == list(np.flatnonzero(non_dominated([t.values for t in study.trials], ["maximize", "minimize"])))

    out = results_dir(tmp_path, path, "sweep")
    pareto = pd.read_csv(out / "pareto.csv")
    assert list(pareto.columns) == ["trial", "run_id", "val/acc_best", "test/energy_mj", "model.neuron",
                                    "model.neuron_overrides.v_threshold"]
    assert pareto["trial"].tolist() == best
    by_number = {t.number: t for t in study.trials}
    for _, row in pareto.iterrows():
        trial = by_number[row["trial"]]
        assert row["run_id"] == trial.user_attrs["mlflow_run_id"]
        assert [row["val/acc_best"], row["test/energy_mj"]] == pytest.approx(trial.values)
        assert row["model.neuron"] == trial.params["model.neuron"]
        threshold = trial.params["model.neuron_overrides.v_threshold"]
        assert row["model.neuron_overrides.v_threshold"] == pytest.approx(threshold)
    for name_ in ("pareto_front.png", "trials.csv", "report.md", "param_model.neuron.png"):
        assert (out / name_).is_file() and (out / name_).stat().st_size > 0, name_
    trials = pd.read_csv(out / "trials.csv")
    assert sorted(trials.loc[trials["pareto"], "trial"].astype(int)) == best
    report = (out / "report.md").read_text()
    assert "Objectives: val/acc_best (maximize), test/energy_mj (minimize)." in report
    assert f"## Pareto-optimal trials ({len(best)} of 6; from the Optuna study's best_trials)" in report
    parent = [r for r in client.search_runs([client.get_experiment_by_name("sweep/front").experiment_id])
              if r.data.tags.get("lit_snn.role") == "study"][0]
    assert parent.data.metrics["pareto_trials"] == len(best)
    assert parent.data.tags["lit_snn.metric"] == "val/acc_best,test/energy_mj"

    # compare finds the study through the storage the run recorded; without it, the same front from MLflow
    spec = load_spec(path, "sweep")
    tracking = f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}"
    result = compare(spec, tracking, results_dir=tmp_path / "again", log=lambda _: None)
    assert result.pareto_source == "optuna" and result.pareto["trial"].tolist() == best
    shutil.move(tmp_path / "store" / "optuna.db", tmp_path / "optuna.db.moved")
    result = compare(spec, tracking, results_dir=tmp_path / "mlflow_only", log=lambda _: None)
    assert result.pareto_source == "mlflow" and result.pareto["trial"].tolist() == best
    assert list(result.pareto.columns) == list(pareto.columns)
    assert result.pareto["run_id"].tolist() == pareto["run_id"].tolist()
    assert result.pareto["model.neuron_overrides.v_threshold"].tolist() == pytest.approx(
        pareto["model.neuron_overrides.v_threshold"].tolist())
    assert not (tmp_path / "store" / "optuna.db").exists()  # compare did not create an empty store
    again = result.out_dir
    assert again == tmp_path / "mlflow_only" / "sweep" / "front" / spec.default_study_name
    assert (again / "pareto_front.png").stat().st_size > 0
    assert "from the MLflow runs (non-dominated filter" in (again / "report.md").read_text()


def test_an_objective_the_training_does_not_log_stops_before_any_trial(tmp_path, write_study, capsys):
    path = write_study("missing", params={"model.lr": {"type": "float", "low": 0.01, "high": 0.1}}, n_trials=1,
                       objectives=[ACC_ENERGY[0], {"metric": "test/energy_mJ", "direction": "minimize"}])
    assert sweep_main([str(path), *store_args(tmp_path), "--no-compare"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "metric 'test/energy_mJ' is not logged by the training; did you mean test/energy_mj" in line
    assert not (tmp_path / "store").exists()  # nothing was created
