"""Progress lines (trial k/N started/finished, ETA), the finished study's stored report, the numba warm-up's choice."""

from __future__ import annotations

import re
import sys
import time
from datetime import datetime, timedelta

import torch
from optuna.trial import FrozenTrial, TrialState
from orchestrate_helpers import planted_training, store_args

from lit_snn.neurons.cpu import warmup
from lit_snn.orchestrate import ablate_main
from lit_snn.orchestrate.progress import Follower, Progress, Ticking, clock

T0 = datetime(2026, 1, 1, 12, 0, 0)


def _trial(number: int, key: str, state: TrialState, start_s: float | None, end_s: float | None = None,
           value: float | None = None, duplicate: bool = False) -> FrozenTrial:
    at = (lambda s: None if s is None else T0 + timedelta(seconds=s))
    return FrozenTrial(number=number, state=state, value=value, datetime_start=at(start_s),
                       datetime_complete=at(end_s), params={}, distributions={}, user_attrs={"key": key},
                       system_attrs={"dup": 1} if duplicate else {}, intermediate_values={}, trial_id=number)


def _progress(initial: list[FrozenTrial], total: int = 4, workers: int = 2) -> Progress:
    return Progress(initial, total, point_of=lambda t: t.user_attrs["key"], label_of=lambda t: t.user_attrs["key"],
                    metrics=["test/acc"], workers=workers, ignore=lambda t: "dup" in t.system_attrs,
                    started=T0.timestamp())


def test_clock():
    assert (clock(0), clock(59.6), clock(61), clock(3725)) == ("0:00", "1:00", "1:01", "1:02:05")


def test_started_and_finished_lines_count_points_and_give_an_eta_after_the_first_finished_trial():
    done_before = _trial(0, "a", TrialState.COMPLETE, 0, 5, 0.5)
    progress = _progress([done_before])
    now = T0.timestamp()
    b_running = _trial(1, "b", TrialState.RUNNING, 0)
    assert progress.update([done_before, b_running], now + 1) == ["trial 2/4 started: b (elapsed 0:01)"]
    assert progress.update([done_before, b_running], now + 3) == []  # nothing new: no line

    b_done = _trial(1, "b", TrialState.COMPLETE, 0, 10, 0.9)
    c_running = _trial(2, "c", TrialState.RUNNING, 5)
    lines = progress.update([done_before, b_done, c_running], now + 10)
    # mean 10 s; 2 points left: c has run 5 s (5 s to go) and d is not started (10 s): 15 s over 2 workers
    assert lines == ["trial 2/4 finished: b COMPLETE test/acc=0.9000 in 10 s; elapsed 0:10, about 0:08 left",
                     "trial 3/4 started: c (elapsed 0:10)"]

    c_failed = _trial(2, "c", TrialState.FAIL, 5, 25)
    c_dup = _trial(3, "c", TrialState.FAIL, 25, 26, duplicate=True)  # a duplicate: never reported
    d_done = _trial(4, "d", TrialState.COMPLETE, 10, 30, 0.7)
    lines = progress.update([done_before, b_done, c_failed, c_dup, d_done], now + 30)
    assert lines == ["trial 3/4 finished: c FAIL in 20 s; elapsed 0:30, about 0:15 left",  # mean 15 s, d not seen yet
                     "trial 4/4 started: d (elapsed 0:30)",
                     "trial 4/4 finished: d COMPLETE test/acc=0.7000 in 20 s; elapsed 0:30, about 0:00 left"]


def test_a_quiet_stretch_gets_a_line_saying_what_runs():
    """Trials longer than the quiet limit, or workers still importing torch: a line every quiet_s."""
    progress = _progress([], total=2, workers=1)
    running = [_trial(0, "a", TrialState.RUNNING, 0)]
    assert progress.still([], T0.timestamp() + 12) == ("  ... waiting for the workers to start a trial; 0/2 finished, "
                                                       "elapsed 0:12")
    progress.update(running, T0.timestamp() + 1)
    assert progress.still(running, T0.timestamp() + 40) == "  ... 1 trial(s) running; 0/2 finished, elapsed 0:40"

    lines: list[str] = []
    follower = Follower(lambda: running, _progress([], total=2, workers=1), lines.append, interval_s=0.01,
                        quiet_s=0.05)
    follower.poll()  # the trial starts: its line
    assert lines == [lines[0]] and lines[0].startswith("trial 1/2 started: a")
    follower.poll()  # nothing new, and too soon for a quiet line
    assert len(lines) == 1
    time.sleep(0.06)
    follower.poll()
    assert len(lines) == 2 and lines[1].startswith("  ... 1 trial(s) running; 0/2 finished")


def test_ticking_says_a_long_step_is_alive():
    lines: list[str] = []
    with Ticking(lines.append, "compiling the CPU kernels", every_s=0.02):
        time.sleep(0.09)
    assert len(lines) >= 2 and all(re.fullmatch(r"  \.\.\. still compiling the CPU kernels \(0:00\)", line)
                                   for line in lines)
    count = len(lines)
    time.sleep(0.05)
    assert len(lines) == count  # stopped with the block


def test_no_eta_line_before_a_trial_of_this_invocation_finished():
    progress = _progress([], total=3, workers=1)
    lines = progress.update([_trial(0, "a", TrialState.RUNNING, 0)], T0.timestamp() + 100)
    assert lines == ["trial 1/3 started: a (elapsed 1:40)"] and "left" not in lines[0]


def test_ablation_prints_progress_then_a_finished_study_prints_its_stored_report(tmp_path, write_study, monkeypatch,
                                                                                capsys):
    monkeypatch.setattr("lit_snn.orchestrate.study.run_training", planted_training({"ar_lif": 0.10}))
    path = write_study("progress", axes={"model.neuron": ["lif", "ar_lif"]}, seeds=[0], budget={"max_epochs": 1})
    assert ablate_main([str(path), *store_args(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^trial 1/2 started: model.neuron=lif,seed=0 \(elapsed \d+:\d\d\)$", out, re.M)
    assert re.search(r"^trial 2/2 finished: model.neuron=ar_lif,seed=0 COMPLETE test/acc=0\.\d{4} in \d+ s; "
                     r"elapsed \d+:\d\d, about 0:00 left$", out, re.M)
    assert "[w0] trial" not in out  # the worker's own per-trial line is gone (the progress line says it)
    report = (tmp_path / "results").rglob("report.md").__next__().read_text().rstrip("\n")

    def no_compare(*args, **kwargs):
        raise AssertionError("compare must not run for a finished, unchanged study")

    monkeypatch.setattr(sys.modules["lit_snn.orchestrate.compare"], "compare", no_compare)
    assert ablate_main([str(path), *store_args(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "nothing left to run" in out and "trial 1/2" not in out
    assert report in out and "the stored comparison" in out

    # a report-only setting changed: the stored report is stale, compare runs
    path.write_text(path.read_text() + "alpha: 0.01\n")
    monkeypatch.undo()
    monkeypatch.setattr("lit_snn.orchestrate.study.run_training", planted_training({"ar_lif": 0.10}))
    assert ablate_main([str(path), *store_args(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "nothing left to run" in out and "the stored comparison" not in out and "compare: tables and plots" in out


def test_warmup_compiles_only_for_trials_on_the_numba_path(monkeypatch):
    cpu = {"model": {"neuron": "lif", "time_steps": 4}, "trainer": {"accelerator": "cpu"}}
    assert warmup._cpu_neuron(cpu)[0] == "lif"
    assert warmup._cpu_neuron({**cpu, "model": {"neuron": "lif", "neuron_overrides": {"backend": "torch"}}}) is None
    assert warmup._cpu_neuron({**cpu, "trainer": {"accelerator": "gpu"}}) is None
    assert warmup._cpu_neuron({**cpu, "trainer": {"accelerator": "cpu", "precision": "64-true"}})[2] is torch.float64
    monkeypatch.setattr("lit_snn.neurons.cpu.scan.USE_NUMBA", False)  # LIT_SNN_CPU_NUMBA=0
    lines: list[str] = []
    assert warmup.precompile_cpu_kernels([cpu], lines.append) is None and lines == []

