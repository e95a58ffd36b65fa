"""Helpers for the orchestrator tests (kept out of conftest so test modules can import them)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import yaml


def tiny_base(data_root: Path) -> dict:
    """One epoch over 96 training digits, 32 for validation and 32 for test: a trial takes seconds."""
    return {
        "seed_everything": 0,
        "trainer": {"max_epochs": 1, "accelerator": "cpu", "devices": 1, "num_sanity_val_steps": 0,
                    "log_every_n_steps": 1},
        "model": {"backbone": "small_conv", "neuron": "lif", "time_steps": 2},
        "data": {"class_path": "lit_snn.data.DigitsDataModule",
                 "init_args": {"batch_size": 32, "root": str(data_root), "limit_train": 96, "limit_val": 32,
                               "limit_test": 32}},
    }


def store_args(tmp_path: Path) -> list[str]:
    return ["--store-dir", str(tmp_path / "store"), "--results-dir", str(tmp_path / "results")]


def optuna_trials(db: Path) -> list[tuple]:
    """``(number, state, value, key)`` of every trial in a SQLite Optuna store, read with plain SQL."""
    if not db.exists():
        return []
    con = sqlite3.connect(db, timeout=30)
    try:
        rows = con.execute(
            "SELECT t.number, t.state, v.value, a.value_json FROM trials t "
            "LEFT JOIN trial_values v ON v.trial_id = t.trial_id "
            "LEFT JOIN trial_user_attributes a ON a.trial_id = t.trial_id AND a.key = 'key' ORDER BY t.number"
        ).fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return []
    finally:
        con.close()
    return [(n, s, v, yaml.safe_load(k) if k else None) for n, s, v, k in rows]
