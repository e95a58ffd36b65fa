"""Resume: SIGKILL the orchestrator mid-study, run the same command again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

from mlflow import MlflowClient
from orchestrate_helpers import optuna_trials, store_args

from lit_snn.orchestrate import ablate_main


def test_resume_after_sigkill(tmp_path, write_study):
    path = write_study("killed", axes={"model.neuron": ["lif", "ar_lif", "i_lif"]}, seeds=[0])
    args = [str(path), *store_args(tmp_path), "--no-compare"]
    db = tmp_path / "store" / "optuna.db"
    proc = subprocess.Popen([sys.executable, "-m", "lit_snn.orchestrate", "ablate", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:  # wait for a finished trial and the next one running
            states = Counter(t[1] for t in optuna_trials(db))
            if states["COMPLETE"] >= 1 and states["RUNNING"] >= 1 or proc.poll() is not None:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the study finished before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole group, as a killed job would go
        proc.wait()
    before = optuna_trials(db)
    finished = [t for t in before if t[1] == "COMPLETE"]
    killed = [t for t in before if t[1] == "RUNNING"]
    assert finished and len(killed) == 1

    assert ablate_main(args) == 0
    after = optuna_trials(db)
    by_number = {t[0]: t for t in after}
    for number, state, value, key in finished:  # finished trials kept as they were
        assert by_number[number] == (number, state, value, key)
    assert by_number[killed[0][0]][1] == "FAIL"  # the stale trial, failed and re-queued
    complete = Counter(t[3] for t in after if t[1] == "COMPLETE")
    assert complete == {f"model.neuron={n},seed=0": 1 for n in ("lif", "ar_lif", "i_lif")}
    assert sum(1 for t in after if t[1] == "COMPLETE") == 3

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}")
    exp = client.get_experiment_by_name("ablation/killed")
    everything = client.search_runs([exp.experiment_id])
    assert sum(r.data.tags.get("lit_snn.role") == "study" for r in everything) == 1  # the parent run was reused
    runs = [r for r in everything if r.data.tags.get("lit_snn.role") == "trial"]
    assert Counter(r.data.tags["lit_snn.state"] for r in runs)["COMPLETE"] == 3
    stale = [r for r in runs if r.data.tags.get("lit_snn.stale") == "true"]
    assert all(r.info.status == "KILLED" for r in stale)
    assert [r.data.tags["lit_snn.key"] for r in stale] in ([], [killed[0][3]])  # killed before or after its run began
