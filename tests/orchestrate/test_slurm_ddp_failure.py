"""A DDP trial that fails on rank 0 only, on a real SLURM (``scripts/start_slurm.sh``; CI exports
LIT_SNN_TEST_SLURM=1): the peer's pending collectives end with it, and the next trial trains on both
ranks in a process group of its own (one group for the step's trials let the peer go on with trial 0
while rank 0 trained trial 1, their gradients averaged)."""

from __future__ import annotations

import optuna
import yaml
from mlflow import MlflowClient
from orchestrate_helpers import store_args, tiny_base
from test_slurm_cluster import pytestmark as slurm_marks

from lit_snn.orchestrate import ablate_main
from lit_snn.orchestrate.options import RUN_ATTR
from lit_snn.orchestrate.storage import make_storage
from lit_snn.trial_record import WORLD_SIZE_PARAM

pytestmark = slurm_marks


def test_a_fit_failing_on_rank_0_only_leaves_the_next_trial_whole(tmp_path, capsys):
    base = tiny_base(tmp_path / "data")
    base["data"]["class_path"] = "rank_failing_data.FailsOnRankZero"
    base["trainer"]["max_epochs"] = 2
    base["data"]["init_args"].update(limit_train=1024, limit_val=64, limit_test=128)
    path = tmp_path / "ddpfail.yaml"
    path.write_text(yaml.safe_dump({"base": base, "axes": {"model.neuron": ["lif", "plif"]}, "seeds": [0]},
                                   sort_keys=False))
    journal = f"journal:{tmp_path / 'shared' / 'study.journal'}"
    code = ablate_main([str(path), *store_args(tmp_path), "--storage", journal, "--launcher", "slurm", "--wait",
                        "--slurm-tasks-per-trial", "2", "--slurm-cpus-per-task", "1", "--slurm-time", "5",
                        "--no-log-checkpoints", "--no-compare"])
    out = capsys.readouterr().out
    text = "\n".join(p.read_text() for p in (tmp_path / "store" / "slurm").rglob("*_log.*"))
    assert code == 1 and "1 complete, 0 pruned, 1 failed" in out, out + text  # exit 1: a failed trial to retry
    storage = make_storage(journal, heartbeat_interval=None)
    (summary,) = optuna.get_all_study_summaries(storage)
    failed, done = optuna.load_study(study_name=summary.study_name, storage=storage).trials
    assert failed.state.name == "FAIL" and done.state.name == "COMPLETE"
    run = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}").get_run(done.user_attrs[RUN_ATTR])
    assert run.data.params[WORLD_SIZE_PARAM] == "2" and run.data.params["model.neuron"] == "plif"
    assert run.data.metrics["test/acc"] > 0.3, text  # 10 classes: chance is 0.1
    assert "trial-0000: the fit failed on rank 1" in text, text  # its collective ended with rank 0's group
    assert "trial-0001: fitting as rank 1 (SLURM_PROCID) of 2" in text, text
    assert "1 trial(s) fitted as rank 1" in text, text
