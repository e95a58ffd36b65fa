"""``lit-snn status FILE``: a study's trials by state and by worker, elapsed time and the time left,
read from its storage (here a journal file with planted trials: nothing trains)."""

from __future__ import annotations

from datetime import datetime, timedelta

import optuna
from optuna.trial import FrozenTrial, TrialState
from orchestrate_helpers import store_args

from lit_snn.orchestrate import load_spec
from lit_snn.orchestrate.options import DUPLICATE_ATTR, KEY_ATTR, WORKER_ATTR
from lit_snn.orchestrate.status import status_lines, status_main
from lit_snn.orchestrate.storage import make_storage


def _plant(storage_url: str, name: str, now: datetime) -> None:
    study = optuna.create_study(storage=make_storage(storage_url, heartbeat_interval=None), study_name=name,
                                direction="maximize")
    a = {"host": "node1", "pid": 11, "job": "77_0"}
    b = {"host": "node2", "pid": 12, "job": "77_1"}

    def trial(key, state, worker, start_min, end_min=None, value=None, **system):
        study.add_trial(FrozenTrial(
            number=0, trial_id=0, state=state, value=value, params={}, distributions={}, intermediate_values={},
            user_attrs={KEY_ATTR: key},
            system_attrs={**({WORKER_ATTR: worker} if worker else {}), **system},
            datetime_start=now - timedelta(minutes=start_min) if start_min is not None else None,
            datetime_complete=now - timedelta(minutes=end_min) if end_min is not None else None))

    trial("p0", TrialState.COMPLETE, a, 30, 20, 0.5)
    trial("p1", TrialState.COMPLETE, b, 30, 20, 0.6)
    trial("p1", TrialState.FAIL, a, 20, 19, **{DUPLICATE_ATTR: 1})  # a duplicate: never counted
    trial("p2", TrialState.FAIL, b, 20, 15)
    trial("p3", TrialState.RUNNING, a, 5)
    trial("p4", TrialState.WAITING, None, None)


def test_status_counts_states_workers_and_the_time_left(tmp_path, write_study):
    path = write_study("st", axes={"model.neuron": ["lif"]})
    spec = load_spec(path, "ablation")
    url = f"journal:{tmp_path / 'st.journal'}"
    now = datetime.now()
    _plant(url, "planted", now)
    trials = optuna.load_study(study_name="planted", storage=make_storage(url, heartbeat_interval=None)).trials
    lines = status_lines(spec, trials, 5, now=now.timestamp())
    assert lines[0] == ("  finished 2/5 (2 complete, 0 pruned), running 1, queued 1, failed 1 (1 not finished "
                        "since: re-run the study to retry them)")
    # progress.py's estimate: finished trials took 10, 10 and 5 (the failed one) min, mean 8:20; left: p3
    # (5:00 done, 3:20 to go) and p4 (8:20; the failed p2 waits for a re-run), one worker running
    assert lines[1] == "  elapsed 30:00 since the first trial started; about 11:40 left at the current pace"
    assert "    node1 job 77_0: 1 complete, 1 running (now p3 for 5:00)" in lines
    assert "    node2 job 77_1: 1 complete, 1 fail" in lines


def test_status_main_prints_the_study_and_refuses_a_missing_one(tmp_path, write_study, capsys):
    path = write_study("sm", axes={"model.neuron": ["lif"]})
    spec = load_spec(path, "ablation")
    url = f"journal:{tmp_path / 'sm.journal'}"
    _plant(url, spec.default_study_name, datetime.now())
    assert status_main([str(path), *store_args(tmp_path), "--storage", url]) == 0
    out = capsys.readouterr().out
    assert f"study {spec.default_study_name} (ablation) in {url}" in out and "finished 2/5" in out
    assert status_main([str(path), *store_args(tmp_path), "--storage", url, "--study-name", "other"]) == 2
    assert "no study 'other'" in capsys.readouterr().err
    assert status_main([str(path), *store_args(tmp_path)]) == 2  # the default SQLite store does not exist
    assert "no study store" in capsys.readouterr().err
    assert not (tmp_path / "store" / "optuna.db").exists()
