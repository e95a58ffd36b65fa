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
import os
import sqlite3
import warnings
from collections.abc import Callable
from pathlib import Path

import optuna
from filelock import FileLock
from sqlalchemy import event, text

from lit_snn.errors import ExpectedError

from .journal import is_journal, journal_attr_once, make_journal_storage

SQLITE_TIMEOUT_S = 120
SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file
SQLITE_HEADER_BYTES = 100


class UnreadableStoreError(ExpectedError):
    """An existing store file that SQLite cannot read (garbage bytes, a truncated copy): exit 2, nothing touched."""


def absolute_sqlite_url(url: str) -> str:
    """``sqlite:///rel.db`` -> ``sqlite:////abs/rel.db`` so worker processes agree on the file."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        path = url[len(prefix):]
        query = ""
        if "?" in path:
            path, query = path.split("?", 1)
            query = "?" + query
        return prefix + str(Path(path).resolve()) + query
    return url


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


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (Optuna's or MLflow's), else None."""
    url = absolute_sqlite_url(url)
    if not url.startswith("sqlite:///") or ":memory:" in url:
        return None
    return Path(url[len("sqlite:///"):].split("?")[0])


def sqlite_problem(path: Path) -> str | None:
    """Why the existing file ``path`` is not a readable SQLite database, or None when it is.

    SQLite's own refusal ("file is not a database", "database disk image is malformed") would
    surface deep inside Optuna's or MLflow's schema code, and a truncated file only when the
    missing pages are read; so the header is checked here first (SQLite's documented file format:
    magic string, page size at byte 16, page count at byte 28, valid while the change counter at
    byte 24 equals the one at byte 92), then SQLite reads the schema, read-only.
    """
    with path.open("rb") as f:
        header = f.read(SQLITE_HEADER_BYTES)
    if not header.startswith(SQLITE_MAGIC):
        return "no SQLite header"
    if len(header) < SQLITE_HEADER_BYTES:
        return f"truncated to {len(header)} bytes"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages, counter, valid_for = (int.from_bytes(header[i:i + 4], "big") for i in (28, 24, 92))
    size = path.stat().st_size
    # a WAL file holds pages the main file does not have yet; a hot journal, pages SQLite will restore
    pending = any(Path(f"{path}-{suffix}").exists() for suffix in ("wal", "journal"))
    if counter == valid_for and pages * page_size > size and not pending:
        return f"truncated: {size} of its {pages * page_size} bytes"
    try:
        con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=SQLITE_TIMEOUT_S)
        try:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            con.close()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):  # another process writes it: readable
            return None
        return str(exc)
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return None


def check_store(url: str) -> None:
    """``UnreadableStoreError`` (one line naming the file and what to do) when the SQLite database of
    ``url`` exists but cannot be read; other URLs, a missing or an empty file: nothing to check."""
    path = sqlite_path(url)
    if path is None or not path.is_file() or path.stat().st_size == 0:
        return
    problem = sqlite_problem(path)
    if problem is not None:
        raise UnreadableStoreError(f"{path} is not a readable SQLite database ({problem}): "
                                   "move it away to start a new store")


def read_only_store(url: str) -> Path | None:
    """The database file of an existing SQLite store this process cannot write (the file, or the folder
    SQLite writes its journal to, is read-only), else None: such a store is read, never written."""
    path = sqlite_path(url)
    if path is None or not path.is_file():
        return None
    return None if os.access(path, os.W_OK) and os.access(path.parent, os.W_OK) else path


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


class RequeueAwareRDBStorage(optuna.storages.RDBStorage):
    """``RDBStorage`` whose stale trials leave out those of a requeued SLURM task still in the queue
    (its trial resumes when the task runs again: launchers/preemption.py)."""

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        from .launchers.preemption import RESUME_ATTR, held_by_requeue

        stale = super()._get_stale_trial_ids(study_id)
        return [i for i in stale if RESUME_ATTR not in (attrs := self.get_trial_system_attrs(i))
                or not held_by_requeue(attrs)]


def make_storage(url: str, heartbeat_interval: int | None = 10, grace_period: int | None = None,
                 on_stale=None) -> optuna.storages.BaseStorage:
    """An ``RDBStorage`` for ``url`` with heartbeats (stale trials of dead workers become FAIL).

    ``on_stale(study, frozen_trial)`` is called for each trial this process finds stale; the
    study runner uses it to queue the trial's point again. ``journal:PATH``: Optuna's journal storage
    on a shared file, with the same heartbeats (journal.py).
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
        storage = RequeueAwareRDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
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
