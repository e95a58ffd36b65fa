"""Helpers for the orchestrator tests (kept out of conftest so test modules can import them)."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import yaml

from lit_snn.orchestrate import load_spec


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


def results_dir(tmp_path: Path, study_file: Path, kind: str = "ablation") -> Path:
    """Where compare writes the files of the default study of ``study_file`` (per study)."""
    spec = load_spec(study_file, kind)
    return tmp_path / "results" / spec.experiment / spec.default_study_name


def planted_training(effects: dict[str, float], noise: float = 0.01):
    """A stand-in for ``run_training`` (monkeypatched into the study module; one worker, in process):
    test accuracy ``0.7 + effects[neuron] + noise * z`` with ``z`` a standard normal drawn from
    (seed, neuron), i.e. a planted effect plus seed noise; ``val/acc`` per epoch rises to it as
    ``score * (1 + epoch) / (1 + max_epochs)``, logged through the trial's MLflow logger."""

    def run_training(config: dict, *, callbacks=None, loggers=None, default_root_dir=None) -> dict[str, float]:
        neuron, seed, epochs = config["model"]["neuron"], config["seed_everything"], config["trainer"]["max_epochs"]
        score = 0.7 + effects.get(neuron, 0.0) + noise * random.Random(f"{seed}|{neuron}").gauss(0.0, 1.0)
        for logger in loggers or []:
            for epoch in range(epochs):
                logger.log_metrics({"val/acc": score * (1 + epoch) / (1 + epochs)}, step=epoch)
        energy = 0.0025 * config["model"]["time_steps"] * (1.5 - score)
        return {"test/acc": score, "test/acc_top5": 1.0, "test/loss": 1 - score, "test/firing_rate": score / 10,
                "test/sops": 1e5 * score, "test/energy_mj": energy, "test/ann_energy_mj": 0.05, "val/acc_best": score}

    return run_training
