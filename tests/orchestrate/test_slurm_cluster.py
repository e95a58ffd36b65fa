"""A study on a real SLURM (``scripts/start_slurm.sh`` starts a single node; CI exports LIT_SNN_TEST_SLURM=1):
its workers as one job array through submitit, sharing a journal-file storage."""

from __future__ import annotations

import csv
import os
import shutil

import optuna
import pytest
from mlflow import MlflowClient
from orchestrate_helpers import results_dir, store_args

from lit_snn.orchestrate import ablate_main
from lit_snn.orchestrate.options import WORKER_ATTR
from lit_snn.orchestrate.status import status_main
from lit_snn.orchestrate.storage import make_storage

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(not os.environ.get("LIT_SNN_TEST_SLURM") or shutil.which("slurmctld") is None,
                       reason="needs a running SLURM: scripts/start_slurm.sh, then LIT_SNN_TEST_SLURM=1"),
]


def test_a_two_task_array_runs_each_point_once(tmp_path, write_study, capsys):
    """2 array tasks, 2 arms x 2 seeds on one journal file: each point completes once, under one MLflow
    parent run, each task records its array job on its trials, and compare counts every seed."""
    journal = f"journal:{tmp_path / 'shared' / 'study.journal'}"
    path = write_study("cl", axes={"model.neuron": ["lif", "i_lif"]}, seeds=[0, 1])
    args = [str(path), *store_args(tmp_path), "--storage", journal]
    assert ablate_main([*args, "--launcher", "slurm", "--workers", "2", "--wait", "--slurm-time", "10",
                        "--no-log-checkpoints"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "submitted SLURM job array" in out and "4 complete, 0 pruned, 0 failed" in out
    storage = make_storage(journal, heartbeat_interval=None)
    (summary,) = optuna.get_all_study_summaries(storage)
    trials = optuna.load_study(study_name=summary.study_name, storage=storage).trials
    done = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(done) == 4 and len({t.user_attrs["key"] for t in done}) == 4
    jobs = {t.system_attrs[WORKER_ATTR].get("job") for t in done}
    assert jobs and all(job and "_" in job for job in jobs)  # array_task of the worker that ran it
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}")
    runs = client.search_runs([client.get_experiment_by_name("ablation/cl").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("lit_snn.role") == "study"]
    assert parent.info.status == "FINISHED"
    trial_runs = [r for r in runs if r.data.tags.get("lit_snn.role") == "trial"]
    assert len(trial_runs) == 4 and {r.data.tags["mlflow.parentRunId"] for r in trial_runs} == {parent.info.run_id}
    with (results_dir(tmp_path, path) / "runs.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4  # compare (printed by --wait) counts every seed of every arm
    assert status_main([*args]) == 0
    status = capsys.readouterr().out
    assert "finished 4/4" in status and "queued 0" in status
    assert sum(f"job {job}" in status for job in jobs) == len(jobs)
