"""Stores that fail under a study (issue 28, items 4-5): a full disk (a real tmpfs), a database that is
briefly unreachable (retried), a trial finished in MLflow whose Optuna state was lost."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState
from orchestrate_helpers import optuna_trials, store_args

from lit_snn.orchestrate.storage import StorageError, make_storage, storage_failure
from lit_snn.orchestrate.study import StudyOptions

CLI = [sys.executable, "-m", "lit_snn.orchestrate"]


@pytest.fixture
def small_disk(tmp_path):
    """``tmp_path/store`` on a 24 MB tmpfs (root may mount; skipped where mount is refused)."""
    store = tmp_path / "store"
    store.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(store)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield store
    finally:
        subprocess.run(["umount", "-l", str(store)], check=False)


def _fill(folder: Path) -> Path:
    """A file that takes every free byte of ``folder``'s file system."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
        except OSError:
            pass
        try:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        except OSError:
            pass
    return filler


@pytest.mark.parametrize("workers", [1, 2])
def test_a_full_disk_ends_in_one_line_and_the_rerun_repairs(tmp_path, write_study, small_disk, workers):
    path = write_study("full", axes={"model.neuron": ["lif", "i_lif"]}, seeds=[0])
    args = [str(path), *store_args(tmp_path), "--no-compare", "--storage-retry-seconds", "2"]
    first = subprocess.run([*CLI, "ablate", *args, "--max-epochs", "2"], capture_output=True, text=True,
                           timeout=600)  # a first study: the stores exist, their schemas written
    assert first.returncode == 0, first.stderr[-2000:]
    filler = _fill(small_disk)
    full = subprocess.run([*CLI, "ablate", *args, "--workers", str(workers)], capture_output=True, text=True,
                          timeout=600)
    assert full.returncode == 1, full.stdout[-2000:] + full.stderr[-2000:]
    assert "Traceback" not in full.stdout + full.stderr, (full.stdout + full.stderr)[-4000:]
    (line,) = [ln for ln in full.stderr.splitlines() if "error:" in ln]
    assert "no space left" in line and str(small_disk) in line and "run the same command again" in line
    filler.unlink()
    again = subprocess.run([*CLI, "ablate", *args], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    db = small_disk / "optuna.db"
    assert not [t for t in optuna_trials(db) if t[1] == "RUNNING"]
    client = MlflowClient(tracking_uri=f"sqlite:///{small_disk / 'mlruns.db'}")
    exp = client.get_experiment_by_name("ablation/full")
    runs = client.search_runs([exp.experiment_id])
    assert all(r.info.status != "RUNNING" for r in runs)
    parents = [r for r in runs if r.data.tags.get("lit_snn.role") == "study"]
    assert {p.info.status for p in parents} == {"FINISHED"}


def test_an_unreachable_sqlite_store_is_retried_then_named_in_one_line(tmp_path):
    """A store whose file cannot be opened (its folder gone) is waited for ``retry_s`` seconds, then
    reported as one ``StorageError`` naming it."""
    storage = make_storage(f"sqlite:///{tmp_path / 'gone' / 'optuna.db'}", heartbeat_interval=None, retry_s=1.5)
    study_id = storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "s")
    storage.engine.dispose()
    shutil.rmtree(tmp_path / "gone")
    with pytest.raises(Exception) as caught:
        storage.create_new_trial(study_id)
    options = StudyOptions(storage=storage.url, tracking_uri="sqlite:///unused.db", study_name="s")
    failure = storage_failure(caught.value, options)
    assert isinstance(failure, StorageError) and failure.exit_code == 1
    assert f"the Optuna store {tmp_path / 'gone' / 'optuna.db'} cannot be reached" in str(failure)
    assert "\n" not in str(failure)


def test_a_trial_finished_in_mlflow_but_running_in_optuna_is_not_trained_again(tmp_path, write_study):
    """Its worker lost the database between the MLflow run's end and Optuna's tell, then died: the next
    run completes the trial from its MLflow record."""
    path = write_study("lost", axes={"model.neuron": ["lif", "i_lif"]}, seeds=[0])
    args = [str(path), *store_args(tmp_path), "--no-compare", "--no-log-checkpoints"]
    assert subprocess.run([*CLI, "ablate", *args], capture_output=True, timeout=600).returncode == 0
    db = tmp_path / "store" / "optuna.db"
    storage = make_storage(f"sqlite:///{db}", heartbeat_interval=None)
    (study,) = optuna.get_all_study_summaries(storage)
    trials = storage.get_all_trials(study._study_id)
    lost = trials[0]
    with storage.engine.begin() as conn:  # as the outage left it: RUNNING, no value, a dead worker
        conn.exec_driver_sql(f"UPDATE trials SET state = 'RUNNING', datetime_complete = NULL "
                             f"WHERE trial_id = {lost._trial_id}")
        conn.exec_driver_sql(f"DELETE FROM trial_values WHERE trial_id = {lost._trial_id}")
        conn.exec_driver_sql("UPDATE trial_system_attributes SET value_json = "
                             "'{\"host\": \"" + os.uname().nodename + "\", \"pid\": 999999999, \"start\": null}' "
                             f"WHERE trial_id = {lost._trial_id} AND key = 'lit_snn:worker'")
    again = subprocess.run([*CLI, "ablate", *args], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "completed from its run (not trained again)" in again.stdout
    after = storage.get_all_trials(study._study_id)
    assert len(after) == 2 and [t.state for t in after] == [TrialState.COMPLETE] * 2
    assert after[0].values == lost.values
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}")
    exp = client.get_experiment_by_name("ablation/lost")
    trial_runs = [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("lit_snn.role") == "trial"]
    assert len(trial_runs) == 2  # not trained a second time


URL = os.environ.get("LIT_SNN_TEST_POSTGRES_URL")


@pytest.mark.postgres
@pytest.mark.skipif(not URL, reason="set LIT_SNN_TEST_POSTGRES_URL (scripts/start_postgres.sh prints one)")
def test_a_short_postgres_outage_is_waited_for(tmp_path, write_study):
    """The server stopped for a few seconds mid-study and started again: the study waits and finishes,
    every point once (``scripts/start_postgres.sh stop``, then start)."""
    import time

    script = Path(__file__).resolve().parents[2] / "scripts" / "start_postgres.sh"
    name = f"outage-{uuid.uuid4().hex[:8]}"
    path = write_study("outage", axes={"model.neuron": ["lif", "i_lif", "ar_lif"]}, seeds=[0])
    proc = subprocess.Popen([*CLI, "ablate", str(path), *store_args(tmp_path), "--storage", URL, "--study-name", name,
                             "--no-compare", "--no-log-checkpoints", "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    storage = make_storage(URL, heartbeat_interval=None)
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            states = [t.state for t in optuna.load_study(study_name=name, storage=storage).trials]
        except KeyError:
            states = []
        if TrialState.RUNNING in states:
            break
        time.sleep(0.5)
    storage.engine.dispose()
    subprocess.run(["bash", str(script), "stop"], check=True, capture_output=True)
    time.sleep(8)
    subprocess.run(["bash", str(script)], check=True, capture_output=True)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    trials = optuna.load_study(study_name=name, storage=make_storage(URL, heartbeat_interval=None)).trials
    assert Counter(t.user_attrs["key"] for t in trials if t.state == TrialState.COMPLETE) == {
        f"model.neuron={n},seed=0": 1 for n in ("lif", "i_lif", "ar_lif")}


def test_every_study_and_trial_method_of_rdbstorage_is_retried():
    """The retry window covers every public method of Optuna's RDBStorage that reads or writes studies and
    trials (a PostgreSQL outage met an unretried ``get_trial_system_attrs`` before); those left out
    manage versions, sessions or the storage's own settings. A new Optuna method shows up here."""
    from optuna.storages import RDBStorage

    from lit_snn.orchestrate.storage import _RETRIED

    public = {n for n, v in vars(RDBStorage).items() if callable(v) and not n.startswith("_")}
    assert public - set(_RETRIED) == {"delete_study", "get_all_versions", "get_current_version", "get_head_version",
                                      "get_heartbeat_interval", "get_heartbeat_stale_trial_callback",
                                      "remove_session", "upgrade"}
