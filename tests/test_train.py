"""The training stack end to end on the embedded data: accuracy targets, every preset without NaN,
the CLI's conventions, checkpoints, config validation and DDP on CPU."""

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from lit_snn.module import LitSNN
from lit_snn.neurons import list_neurons
from lit_snn.train import resolve_config, run_training

ROOT = Path(__file__).resolve().parents[1]
BASE = yaml.safe_load((ROOT / "configs" / "digits_lif.yaml").read_text())


def quick(config=None, **data_args):
    """The base config, shortened to one epoch (validation and test on a slice of the data)."""
    cfg = copy.deepcopy(config or BASE)
    cfg["trainer"].update(max_epochs=1, enable_progress_bar=False, enable_model_summary=False, logger=False)
    cfg["data"]["init_args"].update({"limit_val": 128, "limit_test": 128, **data_args})
    return cfg


@pytest.mark.slow
def test_lif_reaches_96_percent_on_digits(tmp_path):
    cfg = copy.deepcopy(BASE)
    cfg["trainer"].update(enable_progress_bar=False, logger=False)
    metrics = run_training(cfg, default_root_dir=str(tmp_path))
    assert metrics["test/acc"] >= 0.96, metrics
    assert 0 < metrics["test/firing_rate"] < 1
    assert metrics["test/energy_mj"] > 0 and metrics["test/ann_energy_mj"] > 0


@pytest.mark.slow
def test_lif_reaches_90_percent_on_nmnist_digits(tmp_path):
    cfg = yaml.safe_load((ROOT / "configs" / "nmnist_digits_lif.yaml").read_text())
    cfg["trainer"].update(enable_progress_bar=False, logger=False)
    cfg["data"]["init_args"]["root"] = str(tmp_path / "data")
    metrics = run_training(cfg, default_root_dir=str(tmp_path))
    assert metrics["test/acc"] >= 0.90, metrics


@pytest.mark.parametrize("neuron", list_neurons())
def test_every_preset_trains_without_nan(tmp_path, neuron):
    cfg = quick()
    cfg["model"]["neuron"] = neuron
    metrics = run_training(cfg, default_root_dir=str(tmp_path))
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values()), metrics
    assert metrics["test/acc"] > 0.15  # well above chance (0.1) after one short epoch


def test_tet_loss_and_adamw_train(tmp_path):
    cfg = quick()
    cfg["model"].update(loss="tet", tet_lambda=0.05, optimizer="adamw", lr=3e-3, warmup_epochs=1)
    cfg["trainer"]["max_epochs"] = 2
    metrics = run_training(cfg, default_root_dir=str(tmp_path))
    assert metrics["test/acc"] > 0.3


def test_resolve_config_fills_defaults_and_rejects_bad_values():
    resolved = resolve_config(quick())
    assert resolved["model"]["neuron"] == "lif" and resolved["model"]["loss"] == "ce"
    assert resolved["data"]["init_args"]["time_steps"] == resolved["model"]["time_steps"]
    bad = quick()
    bad["model"]["neuron"] = "nope_lif"
    with pytest.raises(ValueError, match="unknown neuron 'nope_lif'"):
        resolve_config(bad)
    bad = quick()
    bad["model"]["neuron_overrides"] = {"reset": "zero"}
    with pytest.raises(ValueError, match="unknown reset='zero'"):
        resolve_config(bad)
    bad = quick()
    bad["model"]["learning_rate"] = 0.1
    with pytest.raises(ValueError, match="learning_rate"):
        resolve_config(bad)


def test_checkpoint_round_trip_keeps_neuron_parameters(tmp_path):
    model = LitSNN(neuron="ar_lif", num_classes=10, in_channels=1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("thr_a", "mem_c")):
                p.fill_(0.3)
    path = tmp_path / "m.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                "pytorch-lightning_version": "2.6.0"}, path)
    loaded = LitSNN.load_from_checkpoint(path)
    x = torch.rand(3, 1, 8, 8)
    model.eval(), loaded.eval()
    assert torch.equal(model(x), loaded(x))
    assert loaded.hparams.neuron == "ar_lif"


def _cli(*args, cwd, timeout=600):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "lit_snn.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_cli_print_config_and_dotted_overrides(tmp_path):
    out = _cli("train", "--config", str(ROOT / "configs" / "digits_lif.yaml"), "--model.neuron", "ar_lif",
               "--print_config", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    printed = yaml.safe_load(out.stdout)
    assert printed["model"]["neuron"] == "ar_lif" and printed["trainer"]["max_epochs"] == BASE["trainer"]["max_epochs"]


def test_cli_trains_and_prints_summary(tmp_path):
    out = _cli("train", "--config", str(ROOT / "configs" / "digits_lif.yaml"), "--trainer.max_epochs", "1",
               "--data.init_args.limit_train", "256", "--trainer.enable_progress_bar", "false", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = [line for line in out.stdout.splitlines() if line.startswith("lit-snn: test acc")]
    assert summary and "firing rate" in summary[0] and "energy" in summary[0], out.stdout[-2000:]


def test_cli_rejects_unknown_neuron_cleanly(tmp_path):
    out = _cli("train", "--config", str(ROOT / "configs" / "digits_lif.yaml"), "--model.neuron", "nope_lif",
               cwd=tmp_path)
    assert out.returncode != 0
    assert "unknown neuron 'nope_lif'" in out.stderr


def test_ddp_on_cpu_with_two_processes(tmp_path):
    out = _cli("train", "--config", str(ROOT / "configs" / "digits_lif.yaml"), "--trainer.max_epochs", "1",
               "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.enable_progress_bar", "false",
               "--data.init_args.limit_train", "256", "--data.init_args.limit_test", "128", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "lit-snn: test acc" in out.stdout


def test_bf16_mixed_precision_trains(tmp_path):
    cfg = quick()
    cfg["model"]["neuron"] = "ar_lif"
    cfg["trainer"]["precision"] = "bf16-mixed"
    metrics = run_training(cfg, default_root_dir=str(tmp_path))
    assert metrics["test/acc"] > 0.5 and torch.isfinite(torch.tensor(metrics["test/loss"]))


def test_integer_neuron_logs_code_usage(tmp_path):
    cfg = quick()
    cfg["model"]["neuron"] = "ib_ra_lif"
    metrics = run_training(cfg, default_root_dir=str(tmp_path))
    assert metrics["test/high_code_fraction"] > 0  # range alignment N = 100 uses codes above 5
    histograms = yaml.safe_load((tmp_path / "code_histograms.json").read_text())
    assert histograms and all(len(h) == 512 for h in histograms.values())  # codes 0..511
    assert all(sum(h[6:]) > 0 for h in histograms.values())


def test_cli_rejects_malformed_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  neuron: [lif\n")
    out = _cli("train", "--config", str(bad), cwd=tmp_path)
    assert out.returncode == 2
    assert "Problems parsing config" in out.stderr and "line 2" in out.stderr
