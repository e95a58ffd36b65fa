"""Faults as users hit them: two studies at once, a killed parent, typos, a dead or real tracking server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient
from orchestrate_helpers import optuna_trials, results_dir, store_args

from lit_snn.orchestrate import ablate_main, compare, load_spec

ABLATE = [sys.executable, "-m", "lit_snn.orchestrate", "ablate"]


def _client(tmp_path: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}")


def _runs(client: MlflowClient, experiment: str, role: str) -> list:
    exp = client.get_experiment_by_name(experiment)
    return [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("lit_snn.role") == role]


def _race(args: list[str], n: int = 2) -> list[subprocess.CompletedProcess]:
    procs = [subprocess.Popen([*ABLATE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(n)]
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        out.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    return out


def test_two_concurrent_ablations_share_one_parent_run(tmp_path, write_study):
    """Fresh store: MLflow's schema is created once (no 'duplicate column' race) and the two processes
    find one parent run; then a second study on the now existing store, raced again."""
    for name, seeds in (("race", [0, 1]), ("again", [2, 3])):
        path = write_study(name, axes={"model.neuron": ["lif", "i_lif"]}, seeds=seeds)
        results = _race([str(path), *store_args(tmp_path), "--no-compare", "--no-log-checkpoints"])
        for result in results:
            assert result.returncode == 0, result.stderr[-3000:]
            assert "Traceback" not in result.stderr
        client = _client(tmp_path)
        (parent,) = _runs(client, f"ablation/{name}", "study")
        children = _runs(client, f"ablation/{name}", "trial")
        complete = [r for r in children if r.data.tags["lit_snn.state"] == "COMPLETE"]
        assert len(complete) == 4 and {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
        assert parent.info.status == "FINISHED"
        result = compare(load_spec(path, "ablation"), f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}",
                         results_dir=tmp_path / "results", log=lambda _: None)
        assert list(result.per_axis["model.neuron"]["n"]) == [2, 2]  # every seed counted, not n = 1 per arm


def test_a_metric_typo_exits_2_before_any_training(tmp_path, write_study, capsys):
    path = write_study("typo", axes={"model.neuron": ["lif"]}, metric="test/accuracy")
    for extra in (["--dry-run"], []):
        assert ablate_main([str(path), *store_args(tmp_path), *extra]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert "metric 'test/accuracy' is not logged by the training; did you mean test/acc" in line
    assert not (tmp_path / "store").exists()


def _session_pids(session: int) -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == session and "multiprocessing" in (entry / "cmdline").read_text():
                    pids.add(int(entry.name))
            except (OSError, ProcessLookupError):
                continue
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads worker processes from /proc (Linux)")
def test_sigkill_of_the_parent_stops_its_workers_and_the_rerun_repairs(tmp_path, write_study):
    path = write_study("orphans", axes={"model.neuron": ["lif", "ar_lif", "i_lif", "plif"]}, seeds=[0],
                       budget={"max_epochs": 2})
    args = [str(path), *store_args(tmp_path), "--no-compare", "--no-log-checkpoints"]
    proc = subprocess.Popen([*ABLATE, *args, "--workers", "2"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    db = tmp_path / "store" / "optuna.db"
    deadline = time.time() + 240
    while time.time() < deadline and Counter(t[1] for t in optuna_trials(db))["RUNNING"] < 2:
        assert proc.poll() is None, "the study ended before it could be killed"
        time.sleep(0.2)
    workers = _session_pids(proc.pid)
    assert len(workers) >= 2
    os.kill(proc.pid, signal.SIGKILL)  # the main process only: its workers must not live on
    proc.wait()
    stop = time.time() + 15
    while time.time() < stop and _session_pids(proc.pid):
        time.sleep(0.2)
    assert not _session_pids(proc.pid), "worker processes outlived their killed parent"
    (parent,) = _runs(_client(tmp_path), "ablation/orphans", "study")
    assert parent.info.status == "RUNNING"  # left as it was by the killed process

    assert ablate_main(args) == 0
    trials = optuna_trials(db)
    complete = Counter(t[3] for t in trials if t[1] == "COMPLETE")
    assert complete == {f"model.neuron={n},seed=0": 1 for n in ("lif", "ar_lif", "i_lif", "plif")}
    client = _client(tmp_path)
    (parent,) = _runs(client, "ablation/orphans", "study")
    assert parent.info.status == "FINISHED"  # repaired by the re-run
    assert all(r.info.status != "RUNNING" for r in _runs(client, "ablation/orphans", "trial"))


def test_a_run_its_worker_could_not_close_is_closed_by_the_next_invocation(tmp_path, write_study):
    """A finished trial whose MLflow run stayed RUNNING (its worker's close was refused, then it
    died) is closed by the next ``ablate`` of the study, as its Optuna state says."""
    path = write_study("unclosed", axes={"model.neuron": ["lif"]}, seeds=[0], budget={"max_epochs": 1})
    args = [str(path), *store_args(tmp_path), "--no-compare", "--no-log-checkpoints"]
    assert ablate_main(args) == 0
    client = _client(tmp_path)
    (trial_run,) = _runs(client, "ablation/unclosed", "trial")
    client.update_run(trial_run.info.run_id, status="RUNNING")  # the close that was lost
    assert ablate_main(args) == 0
    closed = client.get_run(trial_run.info.run_id)
    assert closed.info.status == "FINISHED" and closed.data.tags["lit_snn.closed_late"] == "true"
    assert closed.data.tags["lit_snn.state"] == "COMPLETE"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_tracking_server_fails_fast_with_one_line(tmp_path, write_study, capsys):
    path = write_study("offline", axes={"model.neuron": ["lif"]})
    started = time.time()
    code = ablate_main([str(path), *store_args(tmp_path), "--tracking-uri", f"http://127.0.0.1:{_free_port()}"])
    assert code == 2 and time.time() - started < 30
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "is not reachable" in line and "nothing was started" in line
    assert not (tmp_path / "store" / "optuna.db").exists()


@pytest.fixture
def mlflow_server(tmp_path):
    """A real ``mlflow server`` on loopback that proxies artifacts to its own folder."""
    port, artifacts = _free_port(), tmp_path / "server-artifacts"
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                               "--workers", "1", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
                               "--artifacts-destination", str(artifacts)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                if requests.get(f"{url}/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            assert server.poll() is None and time.time() < deadline, "mlflow server did not start"
            time.sleep(0.5)
        yield url, artifacts
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_artifacts_land_in_the_tracking_servers_store(tmp_path, write_study, mlflow_server, capsys):
    url, artifacts = mlflow_server
    path = write_study("served", axes={"model.neuron": ["lif"]}, seeds=[0])
    assert ablate_main([str(path), *store_args(tmp_path), "--tracking-uri", url, "--no-compare"]) == 0
    out = capsys.readouterr().out
    assert out.count("View run") == 0 and out.count(f"MLflow UI: {url}/#/experiments/") == 1  # one link, not 3 a trial
    client = MlflowClient(tracking_uri=url)
    experiment = client.get_experiment_by_name("ablation/served")
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
    (trial,) = [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags["lit_snn.role"] == "trial"]
    stored = {p.relative_to(artifacts).as_posix() for p in artifacts.rglob("*") if p.is_file()}
    assert any(p.endswith(f"{trial.info.run_id}/artifacts/config.yaml") for p in stored), stored
    assert any(trial.info.run_id in p and p.endswith(".ckpt") for p in stored), stored
    assert not (tmp_path / "store" / "mlartifacts").exists()  # nothing stayed on the client's side


def test_clean_runs_in_the_ui_and_a_results_folder_per_study(tmp_path, write_study):
    path = write_study("clean", description="lif against i_lif", axes={"model.neuron": ["lif", "i_lif"]}, seeds=[0])
    assert ablate_main([str(path), *store_args(tmp_path), "--no-compare"]) == 0
    assert ablate_main([str(path), *store_args(tmp_path), "--no-compare", "--max-epochs", "2"]) == 0  # 2nd study
    client = _client(tmp_path)
    experiment = client.get_experiment_by_name("ablation/clean")
    assert experiment.tags["mlflow.note.content"] == "lif against i_lif"
    parents = _runs(client, "ablation/clean", "study")
    assert len(parents) == 2 and all(p.data.params["n_trials"] == "2" for p in parents)
    for run in _runs(client, "ablation/clean", "trial"):
        assert run.info.run_name in ("neuron=lif seed=0", "neuron=i_lif seed=0")
        params = run.data.params
        assert "lr" not in params and "model.lr" in params and not any("_instantiator" in k for k in params)
        assert int(params["repro.torch_threads"]) >= 1
        assert len(client.get_metric_history(run.info.run_id, "test/acc")) == 1  # logged once
        assert any(a.path.endswith(".ckpt") for a in _artifact_files(client, run.info.run_id))
    spec = load_spec(path, "ablation")
    first = compare(spec, f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}", results_dir=tmp_path / "results",
                    log=lambda _: None)
    second = compare(load_spec(path, "ablation", max_epochs=2), f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}",
                     results_dir=tmp_path / "results", log=lambda _: None)
    assert first.out_dir == results_dir(tmp_path, path) and second.out_dir != first.out_dir
    assert (first.out_dir / "report.md").is_file() and (second.out_dir / "report.md").is_file()


def _artifact_files(client: MlflowClient, run_id: str, path: str | None = None) -> list:
    out = []
    for item in client.list_artifacts(run_id, path):
        out += _artifact_files(client, run_id, item.path) if item.is_dir else [item]
    return out


def test_a_trial_reproduces_and_evaluates_from_its_run_id(tmp_path, write_study, capsys):
    from lit_snn.runs import evaluate_main, reproduce_main

    path = write_study("repro", axes={"model.neuron": ["ar_lif"]}, seeds=[3], budget={"max_epochs": 2})
    assert ablate_main([str(path), *store_args(tmp_path), "--no-compare"]) == 0
    (trial,) = _runs(_client(tmp_path), "ablation/repro", "trial")
    capsys.readouterr()
    store = ["--store-dir", str(tmp_path / "store")]
    assert reproduce_main([trial.info.run_id, *store]) == 0  # the same test metrics, bit for bit
    assert "reproduced exactly" in capsys.readouterr().out
    assert evaluate_main([trial.info.run_id, *store]) == 0  # the uploaded checkpoint, tested again
    assert f"{trial.data.metrics['test/acc']:.4f}" in capsys.readouterr().out


def test_missing_data_stops_the_study_before_any_trial(tmp_path, write_study, capsys):
    path = write_study("nodata", axes={"model.neuron": ["lif"]},
                       base={"data": {"class_path": "lit_snn.data.CIFAR10DataModule",
                                      "init_args": {"root": str(tmp_path / "nowhere")}}})
    for extra in (["--dry-run"], []):
        assert ablate_main([str(path), *store_args(tmp_path), *extra]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert f"cifar10 not found at '{tmp_path / 'nowhere' / 'cifar-10-batches-py'}'" in line
        assert "where to get it: the 'python version' archive from https://www.cs.toronto.edu" in line
    assert not (tmp_path / "store").exists()
