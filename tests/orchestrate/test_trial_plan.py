"""A queued ablation trial carries its point, so a worker plans it without the grid; a trial queued by an
older version (no record) is planned from its fixed params, and such a study resumes."""

from __future__ import annotations

import optuna
import pytest
from orchestrate_helpers import optuna_trials, planted_training, store_args, tiny_base

from lit_snn.orchestrate import ablate_main, load_spec
from lit_snn.orchestrate.spec import spec_from_dict
from lit_snn.orchestrate.study import FINGERPRINT_ATTR, KEY_ATTR, POINT_ATTR, StudyHandle, StudyOptions
from lit_snn.orchestrate.trial import ablation_plan

AXES = {"model.neuron": ["lif", "ar_lif"], "model.time_steps": [2, 3]}


def _queue(tmp_path) -> StudyHandle:
    spec = spec_from_dict({"base": tiny_base(tmp_path / "data"), "axes": AXES, "seeds": [0, 1]}, "ablation")
    options = StudyOptions(storage=f"sqlite:///{tmp_path / 'optuna.db'}", tracking_uri="unused", study_name="s")
    return StudyHandle(spec, options, create=True, log=lambda _: None)


def _worker(queue: StudyHandle, monkeypatch) -> StudyHandle:
    """A worker's view of the queue, in which building the grid fails the test."""
    monkeypatch.setattr("lit_snn.orchestrate.trial_queue.expand_grid", pytest.fail)
    return StudyHandle(queue.spec, queue.options, 1, points=[], log=lambda _: None)


def test_a_queued_point_is_planned_from_its_record_without_the_grid(tmp_path, monkeypatch):
    queue = _queue(tmp_path)
    assert queue.enqueue_missing() == 8
    waiting = queue.trials()
    assert all(t.system_attrs[POINT_ATTR]["raw"] == queue.points[t.user_attrs[KEY_ATTR]].raw for t in waiting)
    worker = _worker(queue, monkeypatch)
    planned = []
    while (claimed := worker.claim()) is not None:
        plan = ablation_plan(worker.spec, claimed[0])
        point = queue.points[plan.key]
        assert (plan.raw, plan.config, plan.values) == (point.raw, point.config, point.values)
        assert plan.name == f"neuron={point.values['model.neuron']} time_steps={point.values['model.time_steps']} " \
                            f"seed={point.seed}"
        assert claimed[0].params == point.params  # the Optuna params registered as the queue fixed them
        planned.append(plan.key)
    assert sorted(planned) == sorted(queue.points)


def test_a_point_queued_without_a_record_is_planned_from_its_params(tmp_path, monkeypatch):
    queue = _queue(tmp_path)
    point = queue.points["model.neuron=ar_lif,model.time_steps=3,seed=1"]
    queue.study.enqueue_trial(point.params, user_attrs={KEY_ATTR: point.key})  # as versions before the record
    queue.study.enqueue_trial(point.params, user_attrs={KEY_ATTR: "model.neuron=lif,model.time_steps=3,seed=1"})
    worker = _worker(queue, monkeypatch)
    trial, _ = worker.claim()
    assert POINT_ATTR not in trial.storage.get_trial(trial._trial_id).system_attrs
    plan = ablation_plan(worker.spec, trial)
    assert (plan.key, plan.raw, plan.config, plan.values) == (point.key, point.raw, point.config, point.values)
    wrong, _ = worker.claim()  # its key names another point than its params
    with pytest.raises(RuntimeError, match="which is not a point of this grid"):
        ablation_plan(worker.spec, wrong)


def test_a_study_queued_before_the_record_resumes(tmp_path, write_study, monkeypatch, capsys):
    """The queue of an older version (no record on any trial, one trial finished): the same command
    runs each remaining point once, with its own config, and queues nothing new."""
    path = write_study("older", axes={"model.neuron": ["lif", "ar_lif"]}, seeds=[0, 1])
    spec = load_spec(path, "ablation")
    options = StudyOptions(storage=f"sqlite:///{tmp_path / 'store' / 'optuna.db'}", tracking_uri="unused",
                           study_name=spec.default_study_name)
    queue = StudyHandle(spec, options, create=True, log=lambda _: None)
    queue.study.set_user_attr(FINGERPRINT_ATTR, spec.fingerprint)
    for point in queue.points.values():
        queue.study.enqueue_trial(point.params, user_attrs={KEY_ATTR: point.key})
    first, _ = queue.claim()
    queue.study.tell(first, 0.5)  # finished before the upgrade (no MLflow run: compare is not run here)
    trained = []
    planted = planted_training({"ar_lif": 0.1})

    def recording(config, **kwargs):
        trained.append((config["model"]["neuron"], config["seed_everything"]))
        return planted(config, **kwargs)

    monkeypatch.setattr("lit_snn.orchestrate.study.run_training", recording)
    assert ablate_main([str(path), *store_args(tmp_path), "--no-compare"]) == 0
    assert "queued 3 (new 0)" in capsys.readouterr().out
    trials = optuna_trials(tmp_path / "store" / "optuna.db")
    assert [t[1] for t in trials] == ["COMPLETE"] * 4 and len({t[3] for t in trials}) == 4
    assert sorted(trained) == [("ar_lif", 0), ("ar_lif", 1), ("lif", 1)]  # trial 0 (lif, seed 0) kept
    study = optuna.load_study(study_name=spec.default_study_name, storage=options.storage)
    assert all(POINT_ATTR not in t.system_attrs for t in study.trials)
