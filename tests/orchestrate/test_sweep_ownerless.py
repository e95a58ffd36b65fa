"""A sweep trial left RUNNING with no worker recorded (its process was stopped between Optuna's ``ask`` and
recording itself) is repaired by the next run, which then finishes ``n_trials`` distinct trials."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState
from orchestrate_helpers import planted_training, store_args

from lit_snn.orchestrate import sweep_main


def test_a_trial_no_worker_owns_is_requeued_and_the_sweep_completes(tmp_path, write_study, monkeypatch, capsys):
    monkeypatch.setattr("lit_snn.orchestrate.study.run_training", planted_training({}))
    path = write_study("ownerless", n_trials=3, sampler={"type": "random", "seed": 0},
                       params={"model.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}})
    args = [str(path), *store_args(tmp_path), "--no-compare", "--heartbeat", "1"]  # stale after 6 s
    assert sweep_main([*args, "--time-limit", "0.001"]) == 0  # the study and its parent run, no trial yet
    storage = f"sqlite:///{tmp_path / 'store' / 'optuna.db'}"
    (name,) = optuna.get_all_study_names(storage)
    optuna.load_study(study_name=name, storage=storage).ask()  # RUNNING, and no process will ever own it
    capsys.readouterr()

    assert sweep_main(args) == 0
    out = capsys.readouterr().out
    assert "still to run" not in out, out
    assert "left running with no worker recorded" in out
    trials = optuna.load_study(study_name=name, storage=storage).trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3 and len({t.params["model.lr"] for t in complete}) == 3, out
    assert [t.number for t in trials if t.state == TrialState.RUNNING] == []
