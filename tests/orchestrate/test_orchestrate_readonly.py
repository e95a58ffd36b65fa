"""Stores and results folders a study cannot write, and store files SQLite cannot read (issue 28, 6-7).

Root (which runs the tests) writes through ``chmod``, so read-only places are made two ways: a
read-only bind mount in a private mount namespace (``unshare -rm``: a subprocess, skipped where the
kernel refuses user namespaces), and a file where the results folder should be (always available).
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from orchestrate_helpers import results_dir, store_args, tiny_base

from lit_snn.cli import main as lit_snn_main
from lit_snn.export.cli import export_main
from lit_snn.orchestrate import ablate_main, compare_main, sweep_main
from lit_snn.orchestrate.storage import creation_lock
from lit_snn.runs import evaluate_main, reproduce_main
from lit_snn.store_files import check_store, read_only_store

# run the command with $0 bind-mounted read-only in a private mount namespace
READ_ONLY = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'


def _read_only_run(folder: Path, args: list[str]) -> subprocess.CompletedProcess:
    """``python -m lit_snn.cli *args`` with ``folder`` read-only (skips the test where no namespace can be made)."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux) for a read-only bind mount")
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", READ_ONLY + ' && ! touch "$0/probe"', str(folder), "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"no read-only bind mount here (user namespaces refused): {probe.stderr.strip()}")
    return subprocess.run(["unshare", "-rm", "sh", "-c", READ_ONLY, str(folder), sys.executable, "-m", "lit_snn.cli",
                           *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory):
    """A finished one-trial ablation (store, results) to copy: ``(folder, study file)``."""
    folder = tmp_path_factory.mktemp("study")
    path = folder / "ro.yaml"
    path.write_text(yaml.safe_dump({"base": tiny_base(folder / "data"), "axes": {"model.neuron": ["lif"]},
                                    "seeds": [0]}, sort_keys=False))
    assert ablate_main([str(path), *store_args(folder), "--no-log-checkpoints"]) == 0
    for lock in (folder / "store").glob("*.lock"):
        lock.unlink()
    return folder, path


def _copy(finished, tmp_path: Path) -> Path:
    folder, path = finished
    shutil.copytree(folder / "store", tmp_path / "store")
    return Path(shutil.copy(path, tmp_path / path.name))


def _one_error_line(stderr: str, prog: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), stderr[-3000:]
    return lines[0]


# ---------------------------------------------------------------------- read-only results folder
def test_a_results_folder_in_the_way_is_one_line_and_the_study_is_kept(finished_study, tmp_path, capsys):
    """As reported: compare and ablate ended in an OSError traceback; a file where the results folder
    should be makes the same failure without privileges."""
    path = _copy(finished_study, tmp_path)
    (tmp_path / "results").write_text("not a folder")
    expected_dir = results_dir(tmp_path, path)
    for main, prog in ((compare_main, "lit-snn compare"), (ablate_main, "lit-snn ablate")):
        capsys.readouterr()
        assert main([str(path), *store_args(tmp_path)]) == 1
        line = _one_error_line(capsys.readouterr().err, prog)
        assert f"could not write the comparison to {expected_dir} (" in line
        assert f"the study is kept: `lit-snn compare {path} --results-dir DIR`" in line
    assert (tmp_path / "results").read_text() == "not a folder"
    assert compare_main([str(path), *store_args(tmp_path)[:2], "--results-dir", str(tmp_path / "elsewhere")]) == 0
    assert (tmp_path / "elsewhere" / "ablation" / "ro").is_dir()


def test_a_read_only_results_folder_is_one_line(finished_study, tmp_path):
    path = _copy(finished_study, tmp_path)
    (tmp_path / "results").mkdir()
    result = _read_only_run(tmp_path / "results", ["compare", str(path), *store_args(tmp_path)])
    assert result.returncode == 1
    line = _one_error_line(result.stderr, "lit-snn compare")
    assert f"could not write the comparison to {results_dir(tmp_path, path)} (read-only file system: " in line
    assert not list((tmp_path / "results").iterdir())


# ---------------------------------------------------------------------- read-only store
def test_compare_reads_a_read_only_store(finished_study, tmp_path):
    """As reported: reading created mlruns.db.lock, which a read-only folder refuses (a traceback)."""
    path = _copy(finished_study, tmp_path)
    store = tmp_path / "store"
    before = sorted(p.name for p in store.iterdir())
    result = _read_only_run(store, ["compare", str(path), *store_args(tmp_path)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "ERROR" not in result.stderr
    assert f"compare: the MLflow store {store / 'mlruns.db'} is read-only: the comparison is in " in result.stdout
    assert (results_dir(tmp_path, path) / "report.md").is_file()
    assert sorted(p.name for p in store.iterdir()) == before  # no lock file, nothing else


def test_a_reader_of_an_unwritable_store_takes_no_lock(tmp_path, monkeypatch):
    db = tmp_path / "mlruns.db"
    sqlite3.connect(db).close()
    url = f"sqlite:///{db}"
    assert read_only_store(url) is None
    with creation_lock(url):
        assert (tmp_path / "mlruns.db.lock").exists()
    (tmp_path / "mlruns.db.lock").unlink()
    import lit_snn.orchestrate.storage as storage

    monkeypatch.setattr(storage.os, "access", lambda p, mode: Path(p) != tmp_path)  # the folder is read-only
    assert read_only_store(url) == db
    with creation_lock(url):
        assert not (tmp_path / "mlruns.db.lock").exists()
    with creation_lock(f"sqlite:///{tmp_path / 'new' / 'optuna.db'}"):  # a store to create: locked
        assert (tmp_path / "new" / "optuna.db.lock").exists()


# ---------------------------------------------------------------------- unreadable store files
def _garbage(db: Path) -> None:
    db.write_bytes(b"\x00\x17 this is not sqlite \xff" * 300)


def _truncated(db: Path) -> None:
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (x TEXT)")
    con.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 200)
    con.commit()
    con.close()
    size = db.stat().st_size
    with db.open("r+b") as f:
        f.truncate(size // 2)


CORRUPT = {"garbage": (_garbage, "no SQLite header"), "truncated": (_truncated, "truncated: ")}


def _commands(study: Path, store: Path) -> dict[str, tuple]:
    """Each command that opens a store: (main, argv, prog, the store files it opens)."""
    sets = ["--set", "data.init_args.limit_train=32"]
    at = ["--store-dir", str(store)]
    uri = ["--tracking-uri", f"sqlite:///{store / 'mlruns.db'}"]
    return {
        "ablate": (ablate_main, [str(study), *at, *sets], "lit-snn ablate", ("optuna.db", "mlruns.db")),
        "sweep": (sweep_main, [str(study.with_name("sweep.yaml")), *at, *sets], "lit-snn sweep",
                  ("optuna.db", "mlruns.db")),
        "compare": (compare_main, [str(study), *at], "lit-snn compare", ("mlruns.db",)),
        "train": (lit_snn_main, ["train", "--config", str(study.with_name("train.yaml")), *at], "lit-snn train",
                  ("mlruns.db",)),
        "reproduce": (reproduce_main, ["0123abcd", *at], "lit-snn reproduce", ("mlruns.db",)),
        "evaluate": (evaluate_main, ["0123abcd", *at], "lit-snn evaluate", ("mlruns.db",)),
        "export": (export_main, ["0123abcd", "--nir", str(store / "x.nir"), *uri], "lit-snn export", ("mlruns.db",)),
    }


@pytest.mark.parametrize("kind", sorted(CORRUPT))
@pytest.mark.parametrize("command", ["ablate", "sweep", "compare", "train", "reproduce", "evaluate", "export"])
def test_an_unreadable_store_is_one_line_and_nothing_is_touched(tmp_path, write_study, capsys, command, kind):
    """As reported: 100-150-line tracebacks, exit 1; now one line naming the file and what to do, exit 2,
    and the other store (and the folder) exactly as they were."""
    study = write_study("bad", axes={"model.neuron": ["lif"]})
    write_study("sweep", params={"model.lr": {"type": "float", "low": 0.01, "high": 0.1}}, n_trials=1)
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(tiny_base(tmp_path / "data")))
    store = tmp_path / "store"
    main, argv, prog, opened = _commands(study, store)[command]
    corrupt, reason = CORRUPT[kind]
    for name in opened:
        store.mkdir(exist_ok=True)
        for other in store.iterdir():
            other.unlink()
        corrupt(store / name)
        before = {p.name: p.read_bytes() for p in store.iterdir()}
        capsys.readouterr()
        assert main(argv) == 2
        line = _one_error_line(capsys.readouterr().err, prog)
        assert f"{store / name} is not a readable SQLite database ({reason}" in line
        assert line.endswith("): move it away to start a new store")
        assert {p.name: p.read_bytes() for p in store.iterdir()} == before


def test_check_store_passes_a_missing_an_empty_and_a_sound_store(tmp_path):
    check_store(f"sqlite:///{tmp_path / 'absent.db'}")
    (tmp_path / "empty.db").touch()
    check_store(f"sqlite:///{tmp_path / 'empty.db'}")
    con = sqlite3.connect(tmp_path / "sound.db")
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    check_store(f"sqlite:///{tmp_path / 'sound.db'}")
    check_store("postgresql://user@127.0.0.1/db")  # not a file: nothing to check


def test_a_store_left_with_a_hot_journal_by_a_killed_writer_is_readable(tmp_path):
    """A writer killed mid-transaction (SIGKILL of a study's process) leaves a hot ``-journal`` beside the
    database; the read-only probe cannot roll it back ("attempt to write a readonly database"), but the
    store is not unreadable: the next writer rolls it back and finds every committed row."""
    db = tmp_path / "mlruns.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (x)")
    con.execute("INSERT INTO t VALUES (1)")
    con.commit()
    con.close()
    writer = ("import os, sqlite3, sys; con = sqlite3.connect(sys.argv[1], isolation_level=None); "
              "con.execute('PRAGMA cache_size=1'); con.execute('BEGIN IMMEDIATE'); "
              "con.executemany('INSERT INTO t VALUES (?)', [(i,) for i in range(20000)]); os._exit(9)")
    subprocess.run([sys.executable, "-c", writer, str(db)], check=False)
    assert Path(f"{db}-journal").exists()  # hot: the killed writer's pages to restore
    check_store(f"sqlite:///{db}")  # no UnreadableStoreError
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM t").fetchone() == (1,)  # rolled back to the committed row
    con.close()
