"""Optuna RDB storage for several worker processes: SQLite locally, any SQLAlchemy URL (PostgreSQL) remotely.

SQLite needs one fix to be safe with several processes. Python's sqlite3 driver starts a
transaction only at the first write, so Optuna's "read the trial state, then set it RUNNING"
runs its read outside the write lock: two processes can both see a WAITING trial and both
claim it (measured here: 36 double claims out of 300 with three processes). Every transaction
is made ``BEGIN IMMEDIATE`` instead, which takes the write lock before the read; a busy timeout
makes the other processes wait for it rather than fail.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import optuna
from filelock import FileLock
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from ..errors import DISK_FULL, ExpectedError
from ..store_files import SQLITE_TIMEOUT_S, absolute_sqlite_url, check_store, read_only_store, safe_url, sqlite_path
from .journal import is_journal, journal_attr_once, make_journal_storage

MIN_FREE_BYTES = 256 * 1024  # less free space than this beside a SQLite store: its errors mean a full disk


def with_available_driver(url: str) -> str:
    """``postgresql://`` -> ``postgresql+psycopg2://`` when psycopg (3) is missing but psycopg2 is there.

    SQLAlchemy 2.1 made psycopg 3 the default PostgreSQL driver; the project ships psycopg2-binary.
    """
    if url.startswith(("postgresql://", "postgres://")):
        import importlib.util

        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
            return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def _serialize_sqlite(engine) -> None:
    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy's "begin" below open transactions

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # drop connections opened before the listeners existed


def creation_lock(url: str):
    """A lock held while a SQLite store is created or migrated by its library.

    Neither Optuna nor MLflow guards the first creation of a SQLite database against another
    process doing the same (two fresh ``lit-snn ablate`` race in MLflow's schema migration and
    fail with "duplicate column name"); a file lock beside the database serialises it. Other
    URLs: no lock (their servers create schemas once, before any client). An existing database
    in a folder this process cannot write (a read-only mount, a colleague's store) is only read:
    no lock, which could not be created there. An unreadable database: ``UnreadableStoreError``.
    """
    path = sqlite_path(url)
    if path is None:
        return contextlib.nullcontext()
    check_store(url)
    if read_only_store(url) is not None:
        return contextlib.nullcontext()
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock")


def make_storage(url: str, heartbeat_interval: int | None = 10, grace_period: int | None = None,
                 on_stale=None, retry_s: float = 0.0) -> optuna.storages.BaseStorage:
    """An ``RDBStorage`` for ``url`` with heartbeats (stale trials of dead workers become FAIL).

    ``on_stale(study, frozen_trial)`` is called for each trial this process finds stale; the
    study runner uses it to queue the trial's point again. ``retry_s``: how long a database that
    cannot be reached is waited for (``RetryingRDBStorage``; 0: not at all). ``journal:PATH``:
    Optuna's journal storage on a shared file, with the same heartbeats (journal.py).
    """
    if is_journal(url):
        return make_journal_storage(url, heartbeat_interval, grace_period, on_stale)
    url = with_available_driver(absolute_sqlite_url(url))
    engine_kwargs: dict = {}
    if url.startswith("sqlite"):  # its folder is made by creation_lock below
        engine_kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT_S}
    else:
        engine_kwargs["pool_pre_ping"] = True
    kwargs: dict = {}
    if heartbeat_interval:
        kwargs = {"heartbeat_interval": heartbeat_interval,
                  "grace_period": grace_period or 6 * heartbeat_interval}
        if on_stale is not None:
            kwargs["heartbeat_stale_trial_callback"] = on_stale
    with warnings.catch_warnings(), creation_lock(url):  # heartbeat arguments are "experimental"; we want them
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # the constructor connects too (schema, version): a worker starting during an outage waits as well
        storage = _with_retry(lambda: RequeueAwareRDBStorage(url, engine_kwargs=engine_kwargs, **kwargs), retry_s,
                              url)
    storage.retry_s = retry_s
    if url.startswith("sqlite"):
        _serialize_sqlite(storage.engine)
    return storage


def study_attr_once(storage: optuna.storages.RDBStorage, study_id: int, key: str,
                    make: Callable[[], str], valid: Callable[[str], bool] = lambda _: True) -> str:
    """The study user attribute ``key``, set to ``make()`` by exactly one process.

    Optuna has no compare-and-set for study attributes, so this runs one transaction that holds
    the storage's write lock while it reads the attribute and, when it is missing (or not
    ``valid``), calls ``make()`` and writes the result: every process that races here gets the
    same value. SQLite: the transaction is ``BEGIN IMMEDIATE`` (``_serialize_sqlite``);
    PostgreSQL and the others: the study's row is locked with ``SELECT ... FOR UPDATE``; a journal
    storage: a lock file beside the journal (``journal_attr_once``).
    """
    if not hasattr(storage, "engine"):
        return journal_attr_once(storage, study_id, key, make, valid)
    # SQL on Optuna's tables, not its API: the API reads and writes a study attribute in separate
    # transactions of its own, so two machines could both find it missing and write different values;
    # only one transaction holding the row lock (or SQLite's write lock) makes read-then-write atomic
    with storage.engine.connect() as conn, conn.begin():
        if conn.dialect.name != "sqlite":
            conn.execute(text("SELECT study_id FROM studies WHERE study_id = :id FOR UPDATE"), {"id": study_id})
        row = conn.execute(text("SELECT value_json FROM study_user_attributes WHERE study_id = :id AND key = :key"),
                           {"id": study_id, "key": key}).first()
        if row is not None and valid(value := json.loads(row[0])):
            return value
        value = make()
        statement = ("UPDATE study_user_attributes SET value_json = :value WHERE study_id = :id AND key = :key"
                     if row is not None else
                     "INSERT INTO study_user_attributes (study_id, key, value_json) VALUES (:id, :key, :value)")
        conn.execute(text(statement), {"id": study_id, "key": key, "value": json.dumps(value)})
    return value


def default_paths(store_dir: str | os.PathLike | None) -> dict[str, str]:
    """Default Optuna storage, MLflow tracking URI and artifact root (in ``store_dir`` or the cwd)."""
    root = Path(store_dir) if store_dir else Path.cwd()
    root = root.resolve()
    return {
        "storage": f"sqlite:///{root / 'optuna.db'}",
        "tracking_uri": f"sqlite:///{root / 'mlruns.db'}",
        "artifact_root": str(root / "mlartifacts"),
        "work_dir": str(root / ".lit_snn_cache" / "lightning"),
    }


# ---------------------------------------------------------------------- outages and storage errors
class StorageError(ExpectedError):
    """A study store that cannot be written (a full disk) or reached (a database gone): one line, exit 1."""

    exit_code = 1


_FULL_TEXT = ("database or disk is full", "no space left on device", "disk quota exceeded", "could not extend file")
# a server that is down, restarting or unreachable, a SQLite file gone or unreadable: what waiting can cure
_GONE_TEXT = ("connection refused", "could not connect", "server closed the connection", "terminating connection",
              "connection reset", "connection to server", "the database system is", "server login has been failing",
              "unable to open database file", "disk i/o error", "no such table")
_RETRIED = ("create_new_study", "get_study_id_from_name", "get_study_directions", "get_study_user_attrs",
            "get_study_system_attrs", "set_study_user_attr", "set_study_system_attr", "get_all_studies",
            "create_new_trial", "set_trial_param", "get_trial_param", "set_trial_state_values",
            "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr",
            "get_trial_id_from_study_id_trial_number", "get_trial", "get_all_trials", "get_best_trial",
            "record_heartbeat", "_get_stale_trial_ids", "get_study_name_from_id", "get_trial_system_attrs",
            "get_trial_user_attrs")  # every method of RDBStorage that opens a session
_log = logging.getLogger(__name__)


def _chain_of(exc: BaseException) -> list[BaseException]:
    """``exc``, its causes and the exceptions it was raised while handling."""
    out, seen = [exc], {id(exc)}
    while len(out) < 20:
        nxt = out[-1].__cause__ or out[-1].__context__
        if nxt is None or id(nxt) in seen:
            break
        out.append(nxt)
        seen.add(id(nxt))
    return out


def _database_text(exc: BaseException) -> str:
    """A database error's own message, without SQLAlchemy's statement and parameters."""
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).split("\n")[0].split("[SQL:")[0].strip()


def outage_kind(exc: BaseException) -> str | None:
    """"full" (no space for the store), "gone" (the database cannot be reached or opened) or None."""
    for err in _chain_of(exc):
        if isinstance(err, OSError) and err.errno in DISK_FULL:
            return "full"
        if isinstance(err, (DBAPIError, sqlite3.Error)) or type(err).__module__.split(".")[0] in ("psycopg2",
                                                                                                    "psycopg"):
            text_ = _database_text(err).lower()
            if any(marker in text_ for marker in _FULL_TEXT):
                return "full"
            if any(marker in text_ for marker in _GONE_TEXT) or getattr(err, "connection_invalidated", False):
                return "gone"
    return None


def _no_space(url: str) -> bool:
    """Whether the folder of the SQLite store ``url`` has (almost) no space left: SQLite then often says
    only "unable to open database file" (it cannot create its journal)."""
    path = sqlite_path(url)
    try:
        return path is not None and shutil.disk_usage(path.parent).free < MIN_FREE_BYTES
    except OSError:
        return False


def _with_retry(call: Callable, retry_s: float, url: str):
    """``call()``, called again while it fails because the database cannot be reached, for up to ``retry_s``
    seconds (a full disk is not waited for)."""
    waited, delay = 0.0, 0.5
    while True:
        try:
            return call()
        except (DBAPIError, optuna.exceptions.StorageInternalError) as exc:  # Optuna wraps a failed commit
            if outage_kind(exc) != "gone" or waited >= retry_s or _no_space(url):
                raise
            if waited == 0:
                cause = next((e for e in _chain_of(exc) if isinstance(e, DBAPIError)), exc)
                _log.warning("the study storage is not reachable (%s): retrying for up to %g s",
                             _database_text(cause), retry_s)
            time.sleep(delay)
            waited, delay = waited + delay, min(2 * delay, 5.0)


def _retrying(method):
    def call(self, *args, **kwargs):
        return _with_retry(lambda: method(self, *args, **kwargs), self.retry_s, self.url)

    call.__name__, call.__doc__ = method.__name__, method.__doc__
    return call


class RetryingRDBStorage(optuna.storages.RDBStorage):
    """Optuna's ``RDBStorage`` whose reads and writes wait up to ``retry_s`` seconds for a database that
    cannot be reached (a PostgreSQL restart, a network cut), instead of failing at the first refused
    connection. Optuna retries nothing of this (only ``pool_pre_ping`` replaces dead pooled connections),
    so it is written here. Each call is one transaction: a call whose commit reached the server just
    before the connection broke is made again (a trial state already set is then refused as finished,
    an insert can be repeated): rare, and what the stale-trial repair and the duplicate checks absorb."""

    retry_s: float = 0.0


for _name in _RETRIED:
    setattr(RetryingRDBStorage, _name, _retrying(getattr(optuna.storages.RDBStorage, _name)))


class RequeueAwareRDBStorage(RetryingRDBStorage):
    """``RetryingRDBStorage`` whose stale trials leave out those of a requeued SLURM task still in the queue
    (its trial resumes when the task runs again: launchers/preemption.py)."""

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        from ..trial_record import RESUME_ATTR
        from .resume import held_by_requeue

        stale = super()._get_stale_trial_ids(study_id)
        return [i for i in stale if RESUME_ATTR not in (attrs := self.get_trial_system_attrs(i))
                or not held_by_requeue(attrs)]


def storage_failure(exc: BaseException, options) -> StorageError | None:
    """The one-line ``StorageError`` for ``exc`` when it is a study store that is full or cannot be reached
    (``options``: the ``StudyOptions`` naming both stores), else None. MLflow's store when MLflow raised it."""
    kind = outage_kind(exc)
    if kind is None:
        return None
    mlflow = any(_raised_in(err, "mlflow") for err in _chain_of(exc))
    url = options.tracking_uri if mlflow else options.storage
    path = sqlite_path(url)
    kind = "full" if _no_space(url) else kind
    store = f"the {'MLflow' if mlflow else 'Optuna'} store {path or safe_url(url)}"
    detail = next((_database_text(e) for e in _chain_of(exc) if isinstance(e, DBAPIError)), None) or str(exc)
    resume = "run the same command again: finished trials are kept and those cut short are re-queued"
    if kind == "full":
        where = path.parent if path is not None else "the database server"
        return StorageError(f"{store} cannot be written: no space left ({detail}); free space in {where}, "
                            f"then {resume}")
    return StorageError(f"{store} cannot be reached ({detail}); bring it back (or fix the URL), then {resume}")


@contextlib.contextmanager
def as_storage_error(options):
    """Inside ``with``: a study store that is full or cannot be reached raises its one-line ``StorageError``
    (``storage_failure``); any other exception goes up as it is."""
    try:
        yield
    except Exception as exc:
        failure = storage_failure(exc, options)
        if failure is None:
            raise
        raise failure from exc


def _raised_in(exc: BaseException, package: str) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "").split(".")[0] == package:
            return True
        tb = tb.tb_next
    return False
