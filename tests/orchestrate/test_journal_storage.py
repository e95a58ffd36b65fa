"""Optuna's journal storage on a file (``--storage journal:PATH``): the cluster storage without a server."""

from __future__ import annotations

import time

import optuna
from optuna.trial import TrialState
from orchestrate_helpers import store_args

from lit_snn.orchestrate import ablate_main
from lit_snn.orchestrate.journal import BEAT_ATTR, HeartbeatJournalStorage
from lit_snn.orchestrate.storage import make_storage, study_attr_once
from lit_snn.trial_record import PARENT_RUN_ATTR


def test_two_workers_on_a_journal_file_run_each_point_once(tmp_path, write_study, capsys):
    """A tiny ablation with two worker processes on one journal file: each grid point x seed completes
    once, under the one parent run recorded in the journal."""
    journal = tmp_path / "shared" / "study.journal"
    path = write_study("jr", axes={"model.neuron": ["lif", "i_lif"]}, seeds=[0, 1])
    args = [str(path), *store_args(tmp_path), "--storage", f"journal:{journal}", "--workers", "2", "--no-compare",
            "--no-log-checkpoints"]
    assert ablate_main(args) == 0
    storage = make_storage(f"journal:{journal}", heartbeat_interval=None)
    assert isinstance(storage, HeartbeatJournalStorage)
    (study,) = optuna.get_all_study_summaries(storage)
    trials = optuna.load_study(study_name=study.study_name, storage=storage).trials
    keys = [t.user_attrs["key"] for t in trials if t.state == TrialState.COMPLETE]
    assert len(keys) == 4 and len(set(keys)) == 4
    assert all(BEAT_ATTR in t.system_attrs for t in trials)  # the workers' heartbeats went into the journal
    assert study.user_attrs[PARENT_RUN_ATTR]  # the one parent run, claimed through the journal
    # the same command again: nothing left to run, nothing added
    assert ablate_main(args) == 0
    assert "nothing left to run" in capsys.readouterr().out
    assert len(optuna.load_study(study_name=study.study_name, storage=storage).trials) == len(trials)


def test_journal_heartbeat_fails_a_silent_trial_after_the_grace(tmp_path):
    """A RUNNING trial whose last beat is older than the grace period is stale for Optuna's own
    ``fail_stale_trials`` (as a worker on another node that died); a fresh beat is not."""
    url = f"journal:{tmp_path / 'beat.journal'}"
    stale = []
    storage = make_storage(url, heartbeat_interval=1, grace_period=2, on_stale=lambda _s, t: stale.append(t.number))
    study = optuna.create_study(storage=storage, study_name="beat")
    silent, alive = study.ask(), study.ask()
    storage.record_heartbeat(silent._trial_id)
    storage.set_trial_system_attr(silent._trial_id, BEAT_ATTR, time.time() - 10)
    storage.record_heartbeat(alive._trial_id)
    optuna.storages.fail_stale_trials(study)
    assert stale == [silent.number]
    states = {t.number: t.state for t in study.trials}
    assert states == {silent.number: TrialState.FAIL, alive.number: TrialState.RUNNING}


def test_attr_once_on_a_journal_keeps_the_first_value(tmp_path):
    """The study attribute set once: a second caller gets the first value and ``make`` is not called
    again; an invalid stored value is replaced."""
    storage = make_storage(f"journal:{tmp_path / 'a.journal'}", heartbeat_interval=None)
    study_id = storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "attrs")
    made = []

    def make() -> str:
        made.append(1)
        return f"run-{len(made)}"

    assert study_attr_once(storage, study_id, "parent", make) == "run-1"
    assert study_attr_once(make_storage(f"journal:{tmp_path / 'a.journal'}", heartbeat_interval=None), study_id,
                           "parent", make) == "run-1"
    assert study_attr_once(storage, study_id, "parent", make, valid=lambda v: v != "run-1") == "run-2"
    assert len(made) == 2


def test_doctor_checks_a_journal_storage_as_a_file(tmp_path):
    """``lit-snn doctor --storage journal:PATH`` reads the journal file, not a database URL."""
    from lit_snn.doctor.environment import optuna_row

    url = f"journal:{tmp_path / 'shared' / 'study.journal'}"
    row = optuna_row(url)
    assert row.status == "ok" and "not created yet" in row.detail
    optuna.create_study(storage=make_storage(url, heartbeat_interval=None), study_name="s")
    row = optuna_row(url)
    assert row.status == "ok" and row.detail.startswith(f"journal {tmp_path / 'shared' / 'study.journal'}: ")
    row = optuna_row(f"journal:{tmp_path}")  # a folder, not a journal file
    assert row.status != "ok" and "is not a readable file" in row.detail
