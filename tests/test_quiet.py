"""A default-like ablation prints no warning line, with SLURM's srun on PATH (the known third-party noise
is handled in lit_snn/quiet.py); --verbose and SLURM jobs keep Lightning's srun hint."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import yaml

from lit_snn.quiet import KNOWN_WARNINGS, SRUN_HINT, quiet_third_party

ROOT = Path(__file__).resolve().parents[1]
WARNING_LINE = re.compile(r"Warning\b|warn\(|: [A-Za-z]*Warning:|^\s*warnings?\.|💡 Tip|srun", re.I)


def _fake_srun(tmp_path: Path) -> dict:
    """The environment with an ``srun`` (a script that does nothing) first on PATH and no SLURM job."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    srun = bin_dir / "srun"
    srun.write_text("#!/bin/sh\nexit 0\n")
    srun.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", LIT_SNN_CPU_NUMBA="0", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
               MLFLOW_ENABLE_ASYNC_LOGGING="false")
    return env


def test_a_default_like_ablation_prints_no_warning_line(tmp_path):
    study = {"base_config": str(ROOT / "configs" / "digits_lif.yaml"), "axes": {"model.neuron": ["lif", "i_lif"]},
             "seeds": [0], "metric": "test/acc", "direction": "maximize", "budget": {"max_epochs": 1}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(study))
    done = subprocess.run(
        [sys.executable, "-m", "lit_snn.orchestrate", "ablate", str(path), "--workers", "2",
         "--store-dir", str(tmp_path / "store"), "--results-dir", str(tmp_path / "results"),
         "--set", "data.init_args.limit_train=128", "--set", "data.init_args.limit_val=64",
         "--set", "data.init_args.limit_test=64"],
        cwd=tmp_path, env=_fake_srun(tmp_path), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "trial 2/2 finished" in done.stdout  # it did run the trials
    noisy = [line for line in (done.stdout + done.stderr).splitlines() if WARNING_LINE.search(line)]
    assert noisy == [], "\n".join(noisy)


def test_known_warnings_are_hidden_by_exact_message_and_nothing_else(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_third_party()
        for text, _why in KNOWN_WARNINGS:
            warnings.warn(f"{text} (and the rest of the message)", UserWarning, stacklevel=1)
        warnings.warn(f"{SRUN_HINT}. HINT: ...", UserWarning, stacklevel=1)
        warnings.warn("another library's warning", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["another library's warning"]


def test_inside_a_slurm_job_the_srun_hint_shows(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()  # no filter left by an earlier test in this process
        warnings.simplefilter("always")
        quiet_third_party()
        warnings.warn(f"{SRUN_HINT}. HINT: ...", UserWarning, stacklevel=1)
    assert len(caught) == 1
