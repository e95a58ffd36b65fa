"""Stale and duplicate trials, without training: the bookkeeping that makes resume and races safe."""

from __future__ import annotations

import subprocess
import sys
import time

from optuna.trial import TrialState
from orchestrate_helpers import optuna_trials, store_args, tiny_base

from lit_snn.orchestrate import ablate_main
from lit_snn.orchestrate.loops import run_claimed
from lit_snn.orchestrate.spec import spec_from_dict
from lit_snn.orchestrate.study import KEY_ATTR, WORKER_ATTR, StudyHandle, StudyOptions
from lit_snn.orchestrate.trial import TrialContext


def _handle(tmp_path, heartbeat_s=1, grace_s=2) -> StudyHandle:
    spec = spec_from_dict({"base": tiny_base(tmp_path / "data"), "axes": {"model.neuron": ["lif", "ar_lif"]}},
                          "ablation")
    options = StudyOptions(storage=f"sqlite:///{tmp_path / 'optuna.db'}", tracking_uri="unused", study_name="s",
                           heartbeat_s=heartbeat_s, grace_s=grace_s)
    handle = StudyHandle(spec, options, create=True, log=lambda _: None)
    assert handle.enqueue_missing() == 2 and handle.enqueue_missing() == 0
    return handle


def _states(handle):
    return [(t.number, t.state, t.user_attrs.get(KEY_ATTR)) for t in handle.trials()]


def test_dead_local_worker_is_stale_at_once_live_one_is_not(tmp_path):
    handle = _handle(tmp_path, grace_s=3600)
    _, trial_id = handle.claim()
    handle.reap()  # its worker is this (live) process
    assert handle.trials()[0].state == TrialState.RUNNING
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    handle.storage.set_trial_system_attr(trial_id, WORKER_ATTR, {"host": handle.trials()[0].system_attrs[WORKER_ATTR]
                                                                 ["host"], "pid": int(dead.stdout), "start": None})
    handle.reap()
    (first, second, retry) = handle.trials()
    assert first.state == TrialState.FAIL and second.state == TrialState.WAITING
    assert retry.state == TrialState.WAITING and retry.user_attrs == {KEY_ATTR: first.user_attrs[KEY_ATTR]}
    assert retry.system_attrs["fixed_params"] == {"model.neuron": "lif", "seed": 0}
    assert handle.enqueue_missing() == 0  # the point is queued once


def test_other_host_trial_is_stale_after_the_heartbeat_grace(tmp_path):
    handle = _handle(tmp_path, heartbeat_s=1, grace_s=2)
    _, trial_id = handle.claim()
    handle.storage.set_trial_system_attr(trial_id, WORKER_ATTR, {"host": "elsewhere", "pid": 1})
    handle.storage.record_heartbeat(trial_id)
    handle.reap()
    assert handle.trials()[0].state == TrialState.RUNNING  # its heartbeat is fresh
    time.sleep(3.5)
    handle.reap()
    assert [s for _, s, _ in _states(handle)] == [TrialState.FAIL, TrialState.WAITING, TrialState.WAITING]
    assert _states(handle)[2][2] == _states(handle)[0][2]


def test_a_point_queued_twice_runs_once(tmp_path):
    """Two orchestrators racing on one study may queue a point twice; only the lower trial runs it."""
    handle = _handle(tmp_path)
    point = next(iter(handle.points.values()))
    handle.study.enqueue_trial(point.params, user_attrs={KEY_ATTR: point.key})  # the racing copy
    first, _ = handle.claim()
    handle.claim()  # the other point
    copy, copy_id = handle.claim()
    assert copy.user_attrs[KEY_ATTR] == first.user_attrs[KEY_ATTR]
    ctx = TrialContext(handle.spec, handle.options, None, experiment_id="", parent_run_id="", log=lambda _: None)
    assert run_claimed(ctx, handle, copy, copy_id) == "SKIPPED"  # trial 0 (running, lower number) has it
    skipped = handle.trials()[2]
    assert skipped.state == TrialState.FAIL and skipped.system_attrs["lit_snn:duplicate_of"] == 0


def test_time_limit_leaves_the_queue_for_the_next_run(tmp_path, write_study, capsys):
    path = write_study("later", axes={"model.neuron": ["lif", "ar_lif"]})
    assert ablate_main([str(path), *store_args(tmp_path), "--time-limit", "0.001", "--no-compare"]) == 0
    assert "2 trial(s) still to run" in capsys.readouterr().out
    assert [t[1] for t in optuna_trials(tmp_path / "store" / "optuna.db")] == ["WAITING", "WAITING"]
