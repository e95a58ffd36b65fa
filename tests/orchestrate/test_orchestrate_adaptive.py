"""Adaptive seeds in a study: the file's `seeds: {adaptive: ...}`, the rounds, kill and resume, the report."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from orchestrate_helpers import optuna_trials, planted_training, results_dir, store_args

from lit_snn.orchestrate import SpecError, ablate_main, load_spec
from lit_snn.orchestrate.adaptive import replay, report_section
from lit_snn.orchestrate.sequential import CONTINUE, DIFFERENT, EQUIVALENT
from lit_snn.orchestrate.spec import spec_from_dict

ADAPTIVE = {"adaptive": {"start": 2, "step": 1, "max": 4}}
BASE = {"base": {"model": {"neuron": "lif"}}, "axes": {"model.neuron": ["lif", "ar_lif", "i_lif"]}}


def _spec(**fields):
    return spec_from_dict({**BASE, **fields}, "ablation")


def test_the_seed_list_keeps_its_fingerprint_the_adaptive_plan_enters_it():
    plain = spec_from_dict({**BASE, "axes": {"model.neuron": ["lif", "ar_lif"]}, "seeds": [0, 1, 2]}, "ablation")
    assert plain.fingerprint == "966699fa3f"  # computed before adaptive seeds existed: resume depends on it
    assert plain.adaptive is None
    spec = _spec(seeds=ADAPTIVE)
    assert spec.seeds == [0, 1, 2, 3] and (spec.adaptive.start, spec.adaptive.step, spec.adaptive.max) == (2, 1, 4)
    listed = _spec(seeds=[0, 1, 2, 3])
    assert spec.fingerprint != listed.fingerprint
    assert spec.fingerprint != _spec(seeds={"adaptive": {"start": 2, "step": 2, "max": 4}}).fingerprint
    # the decision rule is fixed with the study; the margin of another metric and min_effect are report only
    assert spec.fingerprint != _spec(seeds=ADAPTIVE, alpha=0.1).fingerprint
    assert spec.fingerprint != _spec(seeds=ADAPTIVE, baseline={"model.neuron": "i_lif"}).fingerprint
    assert spec.fingerprint != _spec(seeds=ADAPTIVE, equivalence_margin={"test/acc": 1}).fingerprint
    assert spec.fingerprint == _spec(seeds=ADAPTIVE, equivalence_margin={"test/energy_mj": 1},
                                     min_effect={"test/acc": 1}).fingerprint
    assert plain.fingerprint == spec_from_dict({**BASE, "axes": {"model.neuron": ["lif", "ar_lif"]}, "seeds": [0, 1, 2],
                                                "alpha": 0.1}, "ablation").fingerprint
    assert spec.describe()["adaptive"] == {"start": 2, "step": 1, "max": 4}


@pytest.mark.parametrize("seeds, fields, message", [
    ({"adaptive": {"start": 1, "step": 1, "max": 4}}, {},
     "seeds.adaptive.start: input should be greater than or equal to 2, got 1"),
    ({"adaptive": {"start": 2, "step": 0, "max": 4}}, {},
     "seeds.adaptive.step: input should be greater than or equal to 1, got 0"),
    ({"adaptive": {"start": 3, "step": 1, "max": 2}}, {}, "seeds.adaptive: max must be >= start (3), got 2"),
    ({"adaptive": {"start": 2, "step": 1, "max": 4, "min": 1}}, {},
     "seeds.adaptive: unknown key(s) ['min']; valid: ['max', 'start', 'step']"),
    ({"adaptive": {"start": 2}}, {}, "seeds.adaptive.step: missing: this key is required"),
    ({"adaptive": [2, 1, 4]}, {},
     "seeds.adaptive: input should be a mapping, got [2, 1, 4]; e.g. [0, 1, 2] or {adaptive: {start: 3"),
    ({"rounds": 3}, {}, "seeds: unknown key(s) ['rounds']; valid: ['adaptive']"),
    (ADAPTIVE, {"axes": {"model.neuron": ["lif", "ar_lif"], "model.time_steps": [2, 4]}},
     "adaptive seeds need exactly one axis"),
    (ADAPTIVE, {"exclude": [{"model.neuron": "lif"}]},
     "adaptive seeds: the baseline 'lif' of model.neuron is excluded"),
    (ADAPTIVE, {"axes": {"model.neuron": ["lif"]}}, "adaptive seeds need an arm to compare with the baseline"),
])
def test_bad_adaptive_seeds_are_one_line(seeds, fields, message):
    with pytest.raises(SpecError) as info:
        _spec(seeds=seeds, **fields)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_replay_gives_the_round_and_the_verdicts_from_the_finished_values():
    spec = _spec(seeds={"adaptive": {"start": 2, "step": 1, "max": 6}}, equivalence_margin={"test/acc": 3})
    # ar_lif 10 points above lif, i_lif within 0.1 point of it (seed noise a few tenths)
    noise = [0.003, -0.002, 0.004, -0.001, 0.002, 0.0]
    full = {**{("lif", s): 0.80 + n for s, n in enumerate(noise)},
            **{("ar_lif", s): 0.90 + n + 0.001 * (-1) ** s for s, n in enumerate(noise)},
            **{("i_lif", s): 0.80 + n + 0.0005 * (-1) ** s for s, n in enumerate(noise)}}
    state = replay(spec, {})
    assert state.round == 0 and state.needed == {"lif": 2, "ar_lif": 2, "i_lif": 2} and not state.finished
    first = {k: v for k, v in full.items() if k[1] < 2}
    state = replay(spec, {k: v for k, v in first.items() if k != ("i_lif", 1)})  # a round with a trial missing
    assert state.round == 0 and state.needed["i_lif"] == 2
    state = replay(spec, full)
    assert state.finished and state.round == len(state.plan.looks)
    verdicts = {a.arm: (a.verdict, a.round, a.seeds) for a in state.arms}
    assert verdicts["ar_lif"][0] == DIFFERENT and verdicts["i_lif"][0] == EQUIVALENT
    assert all(seeds < 6 for _, _, seeds in verdicts.values())
    assert state.trainings == sum(s for _, _, s in verdicts.values()) + max(s for _, _, s in verdicts.values())
    # what a study would have run: only the seeds each arm needed; the replay of those alone ends the same
    ran = {(arm, s): v for (arm, s), v in full.items() if s < (verdicts[arm][2] if arm != "lif" else
                                                                 max(x[2] for x in verdicts.values()))}
    again = replay(spec, ran)
    assert again.finished and {a.arm: (a.verdict, a.round) for a in again.arms} == \
        {arm: v[:2] for arm, v in verdicts.items()}
    frame = pd.DataFrame([{"axis.model.neuron": arm, "seed": s, "test/acc": v} for (arm, s), v in ran.items()])
    text = "\n".join(report_section(spec, frame, {"model.neuron": "axis.model.neuron"}))
    assert f"Trainings: {state.trainings} of 18 (6 seeds everywhere): {18 - state.trainings} saved." in text
    assert re.search(r"\| ar_lif \| different \| \d of 5 \| \d \| \+10\.\d\d \|", text)
    assert report_section(_spec(seeds=[0, 1]), frame, {"model.neuron": "axis.model.neuron"}) == []


def test_planted_study_runs_rounds_and_stops_deciding(tmp_path, write_study, monkeypatch, capsys):
    """ar_lif planted 10 points above lif, i_lif equal (seed noise 1 point), margin 3 points: both are
    decided before max; the study runs exactly the trainings the replay counts; a re-run runs nothing."""
    monkeypatch.setattr("lit_snn.orchestrate.study.run_training", planted_training({"ar_lif": 0.10}))
    path = write_study("planted_adaptive", axes={"model.neuron": ["lif", "ar_lif", "i_lif"]},
                       seeds={"adaptive": {"start": 2, "step": 1, "max": 6}}, equivalence_margin={"test/acc": 3})
    assert ablate_main([str(path), *store_args(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "adaptive seeds: round 1 of 5: seeds 0-1 of lif and ar_lif, i_lif\n" in printed
    (summary,) = re.findall(r"adaptive seeds: 2 comparison\(s\) vs lif: .*", printed)
    trainings = int(re.search(r"(\d+) trainings, (\d+) saved against 6 seeds everywhere \(18\)", summary)[1])
    trials = optuna_trials(tmp_path / "store" / "optuna.db")
    assert Counter(t[1] for t in trials) == {"COMPLETE": trainings} and trainings < 18
    report = (results_dir(tmp_path, path) / "report.md").read_text()
    assert "| ar_lif | different |" in report and "| i_lif | equivalent |" in report
    assert f"Trainings: {trainings} of 18 (6 seeds everywhere): {18 - trainings} saved." in report
    assert ablate_main([str(path), *store_args(tmp_path), "--no-compare"]) == 0
    assert len(optuna_trials(tmp_path / "store" / "optuna.db")) == trainings  # decided: nothing more runs


def test_a_failed_trial_holds_its_round_until_the_rerun(tmp_path, write_study, monkeypatch, capsys):
    """i_lif at seed 1 fails in round 1: the study stops there (exit 1, nothing of round 2 queued);
    the re-run retries that trial and goes on to the same end as a study without the failure."""
    planted = planted_training({"ar_lif": 0.10})

    def flaky(config, **kwargs):
        if (config["model"]["neuron"], config["seed_everything"]) == ("i_lif", 1):
            raise RuntimeError("boom")
        return planted(config, **kwargs)

    monkeypatch.setattr("lit_snn.orchestrate.study.run_training", flaky)
    path = write_study("flaky_adaptive", axes={"model.neuron": ["lif", "ar_lif", "i_lif"]},
                       seeds={"adaptive": {"start": 2, "step": 1, "max": 6}}, equivalence_margin={"test/acc": 3})
    args = [str(path), *store_args(tmp_path), "--no-compare"]
    db = tmp_path / "store" / "optuna.db"
    assert ablate_main(args) == 1
    assert Counter(t[1] for t in optuna_trials(db)) == {"COMPLETE": 5, "FAIL": 1}  # round 1 only
    assert "adaptive seeds: round 1 of 5 (2 seeds) not complete; 2 continue; re-run to go on" in capsys.readouterr().out
    monkeypatch.setattr("lit_snn.orchestrate.study.run_training", planted)
    assert ablate_main(args) == 0
    complete = {t[3] for t in optuna_trials(db) if t[1] == "COMPLETE"}
    spec = load_spec(path, "ablation")
    ran = {(k.split(",")[0].split("=")[1], int(k.rsplit("=", 1)[1])) for k in complete}
    state = replay(spec, {key: planted({"model": {"neuron": key[0], "time_steps": 2}, "seed_everything": key[1],
                                        "trainer": {"max_epochs": 1}})["test/acc"] for key in ran})
    assert state.finished and len(ran) == state.trainings and ("i_lif", 1) in ran


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="a SIGKILL mid-study (POSIX)")
def test_digits_study_killed_mid_round_resumes_to_the_same_end(tmp_path, write_study):
    """2 neurons on the digits, rounds of 2 then 3 seeds: SIGKILL the study after its first finished
    trial, run it again; it ends where an uninterrupted run of the same file ends."""
    fields = {"axes": {"model.neuron": ["lif", "i_lif"]}, "seeds": {"adaptive": {"start": 2, "step": 1, "max": 3}},
              "equivalence_margin": {"test/acc": 40}, "budget": {"max_epochs": 1}}
    path = write_study("killed", **fields)
    args = [str(path), *store_args(tmp_path), "--no-log-checkpoints"]
    proc = subprocess.Popen([sys.executable, "-m", "lit_snn.orchestrate", "ablate", *args, "--no-compare"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    db = tmp_path / "store" / "optuna.db"
    deadline = time.time() + 240
    while time.time() < deadline and Counter(t[1] for t in optuna_trials(db))["COMPLETE"] < 1:
        assert proc.poll() is None, "the study ended before it could be killed"
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = Counter(t[1] for t in optuna_trials(db))
    assert 1 <= killed["COMPLETE"] < 4  # mid-way through the first round

    assert ablate_main(args) == 0
    complete = {t[3]: t[2] for t in optuna_trials(db) if t[1] == "COMPLETE"}
    assert len(complete) == sum(1 for t in optuna_trials(db) if t[1] == "COMPLETE")  # each point once
    report = (results_dir(tmp_path, path) / "report.md").read_text()
    (told,) = re.findall(r"Trainings: (\d+) of 6 \(3 seeds everywhere\): (\d+) saved\.", report)
    assert int(told[0]) == len(complete) and int(told[1]) == 6 - len(complete)

    fresh = tmp_path / "fresh"
    assert ablate_main([str(path), "--store-dir", str(fresh), "--no-compare", "--no-log-checkpoints"]) == 0
    uninterrupted = {t[3]: t[2] for t in optuna_trials(fresh / "optuna.db") if t[1] == "COMPLETE"}
    assert complete == pytest.approx(uninterrupted)  # same trials, same values: the same verdicts
    spec = load_spec(path, "ablation")
    state = replay(spec, {(k.split(",")[0].split("=")[1], int(k.rsplit("=", 1)[1])): v for k, v in complete.items()})
    assert state.finished and all(a.verdict != CONTINUE for a in state.arms)
