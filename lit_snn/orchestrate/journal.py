"""Optuna's journal storage on a shared file: ``--storage journal:/shared/study.journal``.

A cluster's nodes share a filesystem (often NFS), not a database server. Optuna's ``JournalStorage``
with a ``JournalFileBackend`` appends every change to one file under a lock that works on NFS (a
symbolic link made with ``link``, Optuna's default ``JournalFileSymlinkLock``); each process replays
the file to read the study. Claims stay atomic: a ``WAITING -> RUNNING`` change is one log line, and
the replay gives the trial to the first line only (``set_trial_state_values`` returns False to the
others), as the RDB storages' row update does.

Two things the RDB storages have that the journal lacks are added here:

- heartbeats (Optuna implements them for RDB storages only): ``HeartbeatJournalStorage`` records a
  trial's beat as its system attribute ``lit_snn:heartbeat`` (seconds since the epoch), so a trial
  left RUNNING by a worker on another node is failed after the grace period by Optuna's own
  ``fail_stale_trials`` and the sweep loop's heartbeat thread, as on PostgreSQL (a trial whose SLURM
  task was requeued is not stale while that job is queued: launchers/preemption.py). The beats are
  compared with this node's clock: the nodes' clocks must agree to well under the grace period
  (the RDB storages compare with the database server's clock instead).
- the atomic "read a study attribute, set it when missing" (``journal_attr_once``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.storages._heartbeat import BaseHeartbeat  # not exported; what fail_stale_trials checks for
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock, JournalStorage
from optuna.trial import FrozenTrial, TrialState

from ..errors import ConfigError
from ..trial_record import BEAT_ATTR

PREFIX = "journal:"
LOCK_GRACE_S = 30  # a lock file older than this is a dead process's: Optuna removes it (its default)


def is_journal(url: str) -> bool:
    return url.startswith(PREFIX)


def journal_path(url: str) -> Path:
    """The file of a ``journal:PATH`` URL, made absolute (worker processes and nodes agree on it)."""
    path = url[len(PREFIX):]
    if path.startswith("//"):  # journal:///abs/path, the URL spelling
        path = path[2:]
    if not path:
        raise ConfigError(f"{url!r}: a journal storage needs a file, e.g. journal:/shared/study.journal")
    return Path(path).expanduser().resolve()


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """A ``JournalStorage`` with Optuna's heartbeat protocol (``BaseHeartbeat``), beats kept as trial
    system attributes: Optuna's stale-trial machinery then works on it unchanged."""

    def __init__(self, path: Path, heartbeat_interval: int | None = None,
                 grace_period: int | None = None,
                 failed_trial_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None) -> None:
        self.path = path
        lock = JournalFileSymlinkLock(str(path), grace_period=LOCK_GRACE_S)
        super().__init__(JournalFileBackend(str(path), lock_obj=lock))
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = (grace_period or 6 * heartbeat_interval) if heartbeat_interval else None
        self.failed_trial_callback = failed_trial_callback

    def record_heartbeat(self, trial_id: int) -> None:
        self.set_trial_system_attr(trial_id, BEAT_ATTR, time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        if self.grace_period is None:
            return []
        from .resume import held_by_requeue

        limit = time.time() - self.grace_period
        # like the RDB storages: a RUNNING trial with no beat yet is not judged (its worker may be starting)
        return [t._trial_id for t in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
                if t.system_attrs.get(BEAT_ATTR, limit) < limit and not held_by_requeue(t.system_attrs)]

    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self.failed_trial_callback


def make_journal_storage(url: str, heartbeat_interval: int | None = 10, grace_period: int | None = None,
                         on_stale=None) -> HeartbeatJournalStorage:
    """The journal storage of ``url`` (its folder is created), with heartbeats as ``make_storage``'s."""
    path = journal_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    return HeartbeatJournalStorage(path, heartbeat_interval or None, grace_period, on_stale)


def journal_attr_once(storage: HeartbeatJournalStorage, study_id: int, key: str, make: Callable[[], str],
                      valid: Callable[[str], bool]) -> str:
    """``storage.study_attr_once`` on a journal: the read, ``make()`` and the write run under a lock of
    their own beside the journal file (the journal's lock cannot be held: every append takes it).

    Every writer of such an attribute goes through here, so holding this lock is the same guarantee
    as the RDB's row lock; it is the same NFS-safe symlink lock as the journal's, on another file.
    """
    lock = JournalFileSymlinkLock(str(storage.path) + ".attrs", grace_period=LOCK_GRACE_S)
    lock.acquire()
    try:
        value = storage.get_study_user_attrs(study_id).get(key)  # replays the journal: what others wrote
        if value is not None and valid(value):
            return value
        value = make()
        storage.set_study_user_attr(study_id, key, value)
        return value
    finally:
        lock.release()
