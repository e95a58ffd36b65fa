"""The SLURM launcher without SLURM: the sbatch script submitit writes from the flags and the file's
``launcher:`` block (a stand-in ``sbatch`` records it, as submitit's own tests do), the stores a
cluster launch refuses, and the settings' checks."""

from __future__ import annotations

import os
import stat

import optuna
import pytest
import yaml
from orchestrate_helpers import store_args

from lit_snn.orchestrate import ablate_main
from lit_snn.orchestrate.launchers.slurm_settings import SlurmSettings, parse_launcher_block, time_minutes
from lit_snn.orchestrate.storage import make_storage
from lit_snn.orchestrate.yamlio import SpecError
from lit_snn.trial_record import PARENT_RUN_ATTR


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """``sbatch`` that keeps the script it is given and answers job 4242; ``srun`` that only exists."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = tmp_path / "sbatch_scripts"
    scripts.mkdir()
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\ncp "$1" {scripts}/\necho "Submitted batch job 4242"\n')
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    for tool in ("sbatch", "srun"):
        (bin_dir / tool).chmod((bin_dir / tool).stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return scripts


def test_the_sbatch_script_carries_the_flags_and_the_block(tmp_path, write_study, fake_slurm, capsys):
    path = write_study("sb", axes={"model.neuron": ["lif", "i_lif"]}, seeds=[0, 1],
                       launcher={"type": "slurm", "partition": "gpu", "mem": "4G", "setup": ["module load cuda"]})
    journal = tmp_path / "study.journal"
    code = ablate_main([str(path), *store_args(tmp_path), "--storage", f"journal:{journal}", "--launcher", "slurm",
                        "--workers", "2", "--slurm-time", "1:30:00", "--slurm-partition", "debug",
                        "--slurm-additional", "qos=high", "--slurm-setup", "export A=1", "--no-compare"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "submitted SLURM job array 4242 (2 worker task(s))" in out
    (script,) = [p.read_text() for p in fake_slurm.iterdir()]
    for line in ("#SBATCH --array=0-1%2", "#SBATCH --partition=debug", "#SBATCH --time=90", "#SBATCH --mem=4G",
                 "#SBATCH --qos=high", "#SBATCH --ntasks-per-node=1", "#SBATCH --job-name=lit-snn-sb-",
                 "#SBATCH --signal=USR2@120"):
        assert line in script, line
    assert script.index("module load cuda") < script.index("export A=1") < script.index("srun")
    # the study is opened and queued before the tasks start: 4 points waiting, one parent run recorded
    storage = make_storage(f"journal:{journal}", heartbeat_interval=None)
    (summary,) = optuna.get_all_study_summaries(storage)
    trials = optuna.load_study(study_name=summary.study_name, storage=storage).trials
    assert sorted(t.state.name for t in trials) == ["WAITING"] * 4
    assert summary.user_attrs[PARENT_RUN_ATTR]


def test_a_cluster_launch_refuses_sqlite(tmp_path, write_study, fake_slurm, capsys):
    path = write_study("sq", axes={"model.neuron": ["lif"]})
    assert ablate_main([str(path), *store_args(tmp_path), "--launcher", "slurm"]) == 2
    err = capsys.readouterr().err
    assert "is SQLite" in err and "journal:" in err and "postgresql://" in err
    assert not list(fake_slurm.iterdir()) and not (tmp_path / "store" / "optuna.db").exists()


def test_slurm_flags_need_a_slurm_launch(tmp_path, write_study, capsys):
    path = write_study("fl", axes={"model.neuron": ["lif"]})
    assert ablate_main([str(path), *store_args(tmp_path), "--slurm-partition", "gpu", "--wait"]) == 2
    assert "--slurm-partition, --wait only apply to a SLURM launch" in capsys.readouterr().err


def test_a_bad_launcher_block_is_one_line(tmp_path, write_study, capsys):
    path = write_study("bad", axes={"model.neuron": ["lif"]}, launcher={"type": "slurm", "partiton": "gpu"})
    assert ablate_main([str(path), *store_args(tmp_path), "--dry-run"]) == 0  # dry-run: the study only
    assert ablate_main([str(path), *store_args(tmp_path)]) == 2
    assert "unknown setting(s) partiton" in capsys.readouterr().err


@pytest.mark.parametrize("value, minutes", [(30, 30), ("30", 30), ("5:30", 6), ("1:30:00", 90), ("2-0", 2880),
                                            ("1-02:03", 1563), ("1-00:00:01", 1441)])
def test_slurm_times_in_minutes(value, minutes):
    assert time_minutes(value) == minutes


@pytest.mark.parametrize("block, message", [
    ({"type": "pbs"}, "not a launcher; valid: local, slurm"),
    ({"time": "1h"}, "is not a SLURM time"),
    ({"cpus_per_task": 0}, "must be a whole number >= 1"),
    ({"mem": "lots"}, "not a SLURM memory size"),
    ({"setup": "module load x"}, "give a list of shell lines"),
])
def test_launcher_block_checks(block, message):
    with pytest.raises(SpecError, match=message):
        parse_launcher_block(block)


def test_local_block_and_defaults():
    assert parse_launcher_block(None) == ("local", None)
    assert parse_launcher_block({"type": "local"}) == ("local", None)
    params = SlurmSettings().submitit_parameters(3, "job")
    assert params["timeout_min"] == 24 * 60 and params["slurm_array_parallelism"] == 3
    assert yaml.safe_dump(params)  # plain values: what submitit pickles into its script
