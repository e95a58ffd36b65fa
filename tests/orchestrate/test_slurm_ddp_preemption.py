"""A DDP trial (2 processes of one SLURM step) stopped by the pre-kill signal on a real SLURM
(``scripts/start_slurm.sh``; CI exports LIT_SNN_TEST_SLURM=1): both ranks stop, the step is requeued,
and both ranks go on from the trial's last epoch-end checkpoint, to the metrics of an uninterrupted run.

The weights keep the CPU's default ``channels_last`` layout: it is applied before DDP wraps the model (the
module's ``setup``); applied after the wrap, as it once was, a resumed DDP fit drifted from an uninterrupted one."""

from __future__ import annotations

import re
import subprocess

from test_slurm_cluster import pytestmark as slurm_marks
from test_slurm_preemption import _launch, _runs, _study, _trials, _wait_until

from lit_snn.orchestrate.launchers.slurm import array_in_queue
from lit_snn.trial_record import RESUME_ATTR

pytestmark = slurm_marks
DDP = ("--slurm-tasks-per-trial", "2")


def test_a_signalled_ddp_trial_resumes_on_both_ranks(tmp_path, capsys):
    path = _study(tmp_path, epochs=4, axes={"model.neuron": ["lif"]})
    interrupted, reference = tmp_path / "interrupted", tmp_path / "reference"
    job, _ = _launch(path, interrupted, capsys, *DDP)
    resume_dir = interrupted / "store" / ".lit_snn_cache" / "lightning"
    _wait_until(lambda: any(resume_dir.glob("*/trial-0000/resume/epoch=*.ckpt")), "the first epoch's checkpoint")
    subprocess.run(["scancel", "--signal=USR2", job], check=True)  # to every process of the step
    _wait_until(lambda: not array_in_queue(job), "the requeued job to end")
    ref_job, _ = _launch(path, reference, capsys, *DDP)  # after: the node's 2 CPUs run one step at a time
    _wait_until(lambda: not array_in_queue(ref_job), "the uninterrupted job to end")

    (trial,), (ref,) = _trials(interrupted), _trials(reference)
    assert trial.state.name == ref.state.name == "COMPLETE"
    assert trial.system_attrs[RESUME_ATTR]["signal"] == "SIGUSR2"
    (run,), (ref_run,) = _runs(interrupted, "ablation/pre"), _runs(reference, "ablation/pre")
    for metric in ("test/acc", "test/loss", "val/loss"):
        assert run.data.metrics[metric] == ref_run.data.metrics[metric], metric
    logs = "".join(p.read_text() for p in (interrupted / "store" / "slurm").rglob("*_log.*"))
    resumed = re.search(r"resumed from its checkpoint after epoch (\d+)", logs)  # rank 0
    assert resumed, logs[-3000:]
    assert "SIGUSR2: trial(s) 0 kept RUNNING to resume; job requeued" in logs
    # rank 1 stops with rank 0 (its own signal, or rank 0's end first: which comes first is a race), then resumes
    epoch = int(resumed.group(1)) - 1
    assert f"trial-0000: fitting as rank 1 (SLURM_PROCID) of 2, resumed from epoch={epoch}.ckpt" in logs, logs[-3000:]
