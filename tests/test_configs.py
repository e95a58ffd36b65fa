"""Every shipped run config parses and resolves (model and DataModule build; data is only read at setup)."""

from pathlib import Path

import pytest
import yaml

from lit_snn.train import resolve_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_resolves(path):
    config = yaml.safe_load(path.read_text())
    resolved = resolve_config(config)
    assert resolved["model"]["neuron"] == config["model"]["neuron"]
    assert resolved["model"]["time_steps"] == config["model"]["time_steps"]
    assert resolved["data"]["init_args"]["time_steps"] == config["model"]["time_steps"]
