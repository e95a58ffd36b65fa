"""Preemption on a real SLURM (``scripts/start_slurm.sh``; CI exports LIT_SNN_TEST_SLURM=1): a trial whose
task gets the pre-kill signal resumes, in the requeued task, as the same trial from its last epoch-end
checkpoint and ends with the test metrics of an uninterrupted run; ``scancel`` of the array, then the
same command, completes the study with no point run twice."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import optuna
import yaml
from mlflow import MlflowClient
from orchestrate_helpers import tiny_base
from test_slurm_cluster import pytestmark as slurm_marks

from lit_snn.orchestrate import ablate_main
from lit_snn.orchestrate.launchers.slurm import array_in_queue
from lit_snn.orchestrate.storage import make_storage
from lit_snn.trial_record import RESUME_ATTR

pytestmark = slurm_marks
WAIT_S = 300


def _study(tmp_path: Path, epochs: int, axes: dict) -> Path:
    base = tiny_base(tmp_path / "data")
    base["trainer"]["max_epochs"] = epochs
    base["data"]["init_args"].update(limit_train=640, limit_val=64, limit_test=128)
    path = tmp_path / "pre.yaml"
    path.write_text(yaml.safe_dump({"base": base, "axes": axes, "seeds": [0]}, sort_keys=False))
    return path


def _launch(path: Path, root: Path, capsys, *extra: str) -> tuple[str, list[str]]:
    """Submit the study's array (stores under ``root``); its job id and the store arguments."""
    stores = ["--store-dir", str(root / "store"), "--results-dir", str(root / "results"),
              "--storage", f"journal:{root / 'study.journal'}"]
    code = ablate_main([str(path), *stores, "--launcher", "slurm", "--slurm-time", "10", "--slurm-cpus-per-task", "1",
                        "--no-log-checkpoints", *extra])
    out = capsys.readouterr().out
    assert code == 0, out
    found = re.search(r"submitted SLURM job array (\d+)", out)
    return (found.group(1) if found else ""), stores


def _trials(root: Path) -> list[optuna.trial.FrozenTrial]:
    storage = make_storage(f"journal:{root / 'study.journal'}", heartbeat_interval=None)
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage).trials


def _wait_until(condition, what: str, timeout: float = WAIT_S) -> None:
    end = time.time() + timeout
    while not condition():
        assert time.time() < end, f"waited {timeout:.0f} s for {what}"
        time.sleep(0.3)


def _runs(root: Path, experiment: str) -> list:
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'store' / 'mlruns.db'}")
    return [r for r in client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
            if r.data.tags.get("lit_snn.role") == "trial"]


def test_a_signalled_trial_resumes_in_its_requeued_task_with_the_metrics_of_an_uninterrupted_run(
        tmp_path, capsys):
    path = _study(tmp_path, epochs=5, axes={"model.neuron": ["lif"]})
    interrupted, reference = tmp_path / "interrupted", tmp_path / "reference"
    job, _ = _launch(path, interrupted, capsys)
    ref_job, _ = _launch(path, reference, capsys)
    resume_dir = interrupted / "store" / ".lit_snn_cache" / "lightning"
    _wait_until(lambda: any(resume_dir.glob("*/trial-0000/resume/epoch=*.ckpt")), "the first epoch's checkpoint")
    started = time.time()
    # what SLURM sends --slurm-signal-delay-s before the time limit (to the job's steps, as --signal=USR2@N does)
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    _wait_until(lambda: not array_in_queue(job) and not array_in_queue(ref_job), "both arrays to end")
    wall = time.time() - started

    (trial,), (ref,) = _trials(interrupted), _trials(reference)
    assert trial.state.name == ref.state.name == "COMPLETE"
    assert trial.system_attrs[RESUME_ATTR]["signal"] == "SIGUSR2"  # it was stopped, and taken back as trial 0
    (run,), (ref_run,) = _runs(interrupted, "ablation/pre"), _runs(reference, "ablation/pre")
    assert run.info.run_id == trial.user_attrs["mlflow_run_id"] and run.info.status == "FINISHED"
    for metric in ("test/acc", "test/loss", "val/loss"):
        assert run.data.metrics[metric] == ref_run.data.metrics[metric], metric
    assert trial.values == ref.values
    logs = "".join(p.read_text() for p in (interrupted / "store" / "slurm").rglob("*_log.*"))
    resumed = re.search(r"resumed from its checkpoint after epoch (\d+)", logs)
    assert resumed and int(resumed.group(1)) >= 1, logs[-3000:]
    assert "SIGUSR2: trial(s) 0 kept RUNNING to resume; job requeued" in logs
    print(f"requeued after epoch {resumed.group(1)} of 5, test/acc {run.data.metrics['test/acc']:.4f} "
          f"(uninterrupted {ref_run.data.metrics['test/acc']:.4f}), {wall:.0f} s from the signal to the end")


def test_scancel_of_the_array_then_the_same_command_completes_the_study_once_each(tmp_path, capsys):
    path = _study(tmp_path, epochs=4, axes={"model.neuron": ["lif", "i_lif", "plif"]})
    root = tmp_path / "run"
    job, stores = _launch(path, root, capsys)
    checkpoints = root / "store" / ".lit_snn_cache" / "lightning"
    _wait_until(lambda: any(checkpoints.glob("*/trial-0000/resume/epoch=*.ckpt")), "trial 0 mid-training")
    subprocess.run(["scancel", job], check=True)
    _wait_until(lambda: not array_in_queue(job), "the cancelled array to leave the queue", 60)
    running = [t.number for t in _trials(root) if t.state.name == "RUNNING"]
    assert running  # killed mid-trial: left RUNNING, its heartbeat still fresh
    code = ablate_main([str(path), *stores, "--launcher", "slurm", "--slurm-time", "10", "--slurm-cpus-per-task", "1",
                        "--no-log-checkpoints", "--wait"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"trial(s) {', '.join(map(str, running))} ran in SLURM jobs no longer queued" in out
    trials = _trials(root)
    done = [t.user_attrs["key"] for t in trials if t.state.name == "COMPLETE"]
    assert sorted(done) == sorted(set(done)) and len(done) == 3  # each point once
    finished = [r for r in _runs(root, "ablation/pre") if r.info.status == "FINISHED"]
    assert len(finished) == 3
    assert sorted(t.number for t in trials if t.state.name == "FAIL") == running  # the cancelled ones, retried

