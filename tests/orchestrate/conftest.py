"""Shared helpers for the orchestrator tests: tiny study files and store paths in ``tmp_path``.

The trials run the real ``lit_snn.train.run_training`` on a few batches of the embedded digits
(the statistics tests monkeypatch ``orchestrate_helpers.planted_training`` in its place).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from orchestrate_helpers import tiny_base

HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    """Workers (spawned or subprocesses) see this folder on PYTHONPATH and run from ``tmp_path``."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def write_study(tmp_path):
    """``write_study(name, **fields)`` -> path of an ablation/sweep YAML over the tiny base."""

    def write(name: str = "tiny", **fields) -> Path:
        data = {"base": tiny_base(tmp_path / "data"), **fields}
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write
