"""One trial on two processes of a SLURM step (``--slurm-tasks-per-trial 2``) on a real SLURM
(``scripts/start_slurm.sh``; CI exports LIT_SNN_TEST_SLURM=1): rank 0 records the trial, rank 1 fits it
as its DDP peer, Lightning takes both ranks from SLURM."""

from __future__ import annotations

import optuna
import yaml
from mlflow import MlflowClient
from orchestrate_helpers import store_args, tiny_base
from test_slurm_cluster import pytestmark as slurm_marks

from lit_snn.checkpoints import WEIGHTS_ONLY
from lit_snn.orchestrate import ablate_main
from lit_snn.orchestrate.options import RUN_ATTR
from lit_snn.orchestrate.storage import make_storage
from lit_snn.train import training_cli
from lit_snn.trial_record import WORLD_SIZE_PARAM

pytestmark = slurm_marks


def test_a_trial_on_two_slurm_processes_trains_as_ddp(tmp_path, capsys):
    """A 1-task array of 2 processes, one point: it completes once, its MLflow run records world size 2 and
    a test accuracy far above chance, the whole test split's (the same checkpoint tested in one process
    gives it), and each rank's log names its SLURM_PROCID."""
    base = tiny_base(tmp_path / "data")
    base["trainer"]["max_epochs"] = 2
    base["data"]["init_args"].update(limit_train=1024, limit_val=64, limit_test=128)
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump({"base": base, "axes": {"model.neuron": ["lif"]}, "seeds": [0]}, sort_keys=False))
    journal = f"journal:{tmp_path / 'shared' / 'study.journal'}"
    code = ablate_main([str(path), *store_args(tmp_path), "--storage", journal, "--launcher", "slurm", "--wait",
                        "--slurm-tasks-per-trial", "2", "--slurm-cpus-per-task", "1", "--slurm-time", "10",
                        "--no-log-checkpoints", "--no-compare"])
    out = capsys.readouterr().out
    logs = {p.name: p.read_text() for p in (tmp_path / "store" / "slurm").rglob("*_log.*")}
    assert code == 0, out + "\n".join(logs.values())
    assert "1 complete, 0 pruned, 0 failed" in out, out
    storage = make_storage(journal, heartbeat_interval=None)
    (summary,) = optuna.get_all_study_summaries(storage)
    (trial,) = optuna.load_study(study_name=summary.study_name, storage=storage).trials
    assert trial.state.name == "COMPLETE"
    run = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}").get_run(trial.user_attrs[RUN_ATTR])
    assert run.data.params[WORLD_SIZE_PARAM] == "2"
    assert run.data.metrics["test/acc"] > 0.3  # 10 classes: chance is 0.1
    assert trial.values == [run.data.metrics["test/acc"]]
    (best,) = (tmp_path / "store").rglob("best-epoch=*.ckpt")
    cli = training_cli(base, loggers=[], default_root_dir=str(tmp_path / "alone"))
    (alone,) = cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path=str(best), verbose=False,
                                weights_only=WEIGHTS_ONLY)
    assert alone["test/acc"] == run.data.metrics["test/acc"]  # each rank tested its half; the metric syncs both
    # submitit's log per process: rank 0 the worker, rank 1 the peer that fitted the same trial
    text = "\n".join(logs.values())
    assert "rank 0 of 2 (SLURM_PROCID 0)" in text, text
    assert "trial-0000: fitting as rank 1 (SLURM_PROCID) of 2" in text, text
    assert "1 trial(s) fitted as rank 1" in text, text
