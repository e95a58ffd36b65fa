"""A study on a real PostgreSQL server (``scripts/start_postgres.sh`` starts one and prints its URL)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import optuna
import pytest
from orchestrate_helpers import store_args

from lit_snn.orchestrate import ablate_main

URL = os.environ.get("LIT_SNN_TEST_POSTGRES_URL")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not URL, reason="set LIT_SNN_TEST_POSTGRES_URL (scripts/start_postgres.sh prints one)"),
]


def test_two_processes_on_one_postgres_study(tmp_path, write_study):
    """Two ``lit-snn ablate`` of one file on one PostgreSQL study (as on two machines): every point
    runs once, under one MLflow parent run."""
    from mlflow import MlflowClient

    from lit_snn.orchestrate.storage import make_storage

    name = f"pg-{uuid.uuid4().hex[:8]}"
    path = write_study("pg", axes={"model.neuron": ["lif", "i_lif", "ar_lif"]}, seeds=[0])
    args = [sys.executable, "-m", "lit_snn.orchestrate", "ablate", str(path), *store_args(tmp_path), "--storage", URL,
            "--study-name", name, "--no-compare", "--no-log-checkpoints"]
    storage = make_storage(URL, heartbeat_interval=None)
    try:
        procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        for proc in procs:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err[-3000:]
        trials = optuna.load_study(study_name=name, storage=storage).trials
        complete = [t for t in trials if t.state.name == "COMPLETE"]
        assert len(complete) == 3 and len({t.user_attrs["key"] for t in complete}) == 3
        client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}")
        runs = client.search_runs([client.get_experiment_by_name("ablation/pg").experiment_id])
        (parent,) = [r for r in runs if r.data.tags.get("lit_snn.role") == "study"]
        assert {r.data.tags["mlflow.parentRunId"] for r in runs if r.data.tags.get("lit_snn.role") == "trial"} == \
            {parent.info.run_id}
        # resuming a finished study against the server adds nothing
        assert ablate_main([str(path), *store_args(tmp_path), "--storage", URL, "--study-name", name,
                            "--no-compare"]) == 0
        assert len(optuna.load_study(study_name=name, storage=storage).trials) == len(trials)
    finally:
        if name in optuna.get_all_study_names(storage):
            optuna.delete_study(study_name=name, storage=storage)
