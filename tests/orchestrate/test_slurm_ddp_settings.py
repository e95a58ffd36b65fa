"""One trial on several processes, without SLURM: the sbatch script asks for the step's tasks (a stand-in
``sbatch`` keeps it, as in test_slurm_launcher.py), bad settings are one line, a pruned sweep is refused,
and rank 0's plan channel hands its peers each trial's work, then the end of the loop."""

from __future__ import annotations

import threading

import pytest
from orchestrate_helpers import store_args
from test_slurm_launcher import fake_slurm  # noqa: F401 - the stand-in sbatch fixture

from lit_snn.orchestrate import ablate_main, sweep_main
from lit_snn.orchestrate.launchers.ddp_trial import ddp_config
from lit_snn.orchestrate.launchers.plan_channel import PlanFollower, PlanHost, TrialWork
from lit_snn.orchestrate.launchers.slurm_settings import SlurmSettings, parse_launcher_block
from lit_snn.orchestrate.yamlio import SpecError


def _journal(tmp_path) -> list[str]:
    return ["--storage", f"journal:{tmp_path / 'study.journal'}"]


def test_the_sbatch_script_asks_for_the_tasks_of_one_trial(tmp_path, write_study, fake_slurm, capsys):  # noqa: F811
    path = write_study("dd", axes={"model.neuron": ["lif", "i_lif"]}, launcher={"type": "slurm", "nodes": 2})
    code = ablate_main([str(path), *store_args(tmp_path), *_journal(tmp_path), "--launcher", "slurm",
                        "--workers", "2", "--slurm-tasks-per-trial", "2", "--no-compare"])
    assert code == 0, capsys.readouterr()
    (script,) = [p.read_text() for p in fake_slurm.iterdir()]
    for line in ("#SBATCH --array=0-1%2", "#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=2"):
        assert line in script, script
    assert "%t_log.out" in script.partition("srun")[2]  # srun starts the step's 4 processes, a log for each


def test_gpus_of_a_ddp_trial_are_asked_per_node():
    params = SlurmSettings(tasks_per_trial=4, gpus_per_task=1).submitit_parameters(1, "job")
    assert params["gpus_per_node"] == 4 and "slurm_gpus_per_task" not in params
    assert params["tasks_per_node"] == 4 and params["nodes"] == 1
    alone = SlurmSettings(gpus_per_task=1).submitit_parameters(1, "job")
    assert alone["slurm_gpus_per_task"] == 1 and "gpus_per_node" not in alone and alone["tasks_per_node"] == 1


@pytest.mark.parametrize("block", [{"tasks_per_trial": 0}, {"nodes": "two"}, {"tasks_per_trial": True}])
def test_bad_process_counts_are_one_line(block):
    with pytest.raises(SpecError, match=r"launcher\.(tasks_per_trial|nodes): .* must be a whole number >= 1"):
        parse_launcher_block(block)


def test_a_bad_tasks_flag_exits_2(tmp_path, write_study, fake_slurm, capsys):  # noqa: F811
    path = write_study("bf", axes={"model.neuron": ["lif"]})
    assert ablate_main([str(path), *store_args(tmp_path), *_journal(tmp_path), "--launcher", "slurm",
                        "--slurm-tasks-per-trial", "0"]) == 2
    assert "--slurm.tasks_per_trial: 0 must be a whole number >= 1" in capsys.readouterr().err
    assert not list(fake_slurm.iterdir())


def test_a_pruned_sweep_cannot_run_on_several_processes(tmp_path, write_study, fake_slurm, capsys):  # noqa: F811
    path = write_study("pr", params={"model.lr": {"type": "float", "low": 0.01, "high": 0.3}}, n_trials=2,
                       pruner={"type": "median"})
    assert sweep_main([str(path), *store_args(tmp_path), *_journal(tmp_path), "--launcher", "slurm",
                       "--slurm-tasks-per-trial", "2"]) == 2
    err = capsys.readouterr().err
    assert "a trial on 2 processes cannot be pruned" in err and "pruner:" in err
    assert not list(fake_slurm.iterdir())


def test_the_ddp_trainer_overrides_the_config_s_devices():
    config = {"seed_everything": 1, "trainer": {"max_epochs": 3, "devices": 1, "accelerator": "cpu"}}
    assert ddp_config(config, 2, 3) == {"seed_everything": 1, "trainer": {
        "max_epochs": 3, "devices": 2, "accelerator": "cpu", "strategy": "ddp", "num_nodes": 3}}
    assert config["trainer"]["devices"] == 1  # the trial's own config (what MLflow records) is left as it was


@pytest.fixture
def slurm_step(monkeypatch):
    """The variables a SLURM step gives its processes, with a job id of this test process (its own port)."""
    import os

    monkeypatch.setenv("SLURM_JOB_ID", str(os.getpid()))
    monkeypatch.setenv("SLURM_JOB_NODELIST", "127.0.0.1")


def test_peers_get_each_trial_then_the_end(slurm_step):
    host = PlanHost(peers=1)
    follower = PlanFollower()
    works = [TrialWork(config={"trainer": {"max_epochs": k}}, root=f"/shared/trial-000{k}", master_port=20000 + k)
             for k in (1, 2)]
    got: list = []
    reader = threading.Thread(target=lambda: got.extend(iter(follower.next, None)))
    reader.start()
    for work in works:
        host.publish(work)
    assert host.end(ack_s=30)  # the peer read the end mark (and acknowledged it)
    reader.join(30)
    assert got == works


def test_a_peer_whose_rank_0_is_gone_stops(slurm_step):
    host = PlanHost(peers=1)
    follower = PlanFollower()
    host.publish(TrialWork(config={}, root="/shared/trial-0000", master_port=20000))
    assert follower.next() == TrialWork(config={}, root="/shared/trial-0000", master_port=20000)
    del host  # rank 0's process ends: its store with it
    with pytest.raises(ConnectionError, match="rank 0's plan store stopped answering"):
        follower.next()
