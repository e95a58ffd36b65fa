"""SQLite store files (Optuna's ``optuna.db``, MLflow's ``mlruns.db``): where a ``sqlite:///`` URL's
file is, whether it can be read, whether this process may write it.

Light to import (the standard library and ``lit_snn.errors``): the commands that read one run
(``lit_snn.trial_record``), the orchestrator's storage and ``lit-snn doctor`` check a store before
Optuna or MLflow open it.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

from .errors import ExpectedError

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
        if pending and "readonly" in str(exc):  # a hot journal of a killed writer: the next writer rolls it back
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


def safe_url(url: str) -> str:
    """A database URL with its password masked, fit for a tag."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)
