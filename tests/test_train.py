"""The training stack end to end on the embedded data: accuracy targets, every preset without NaN,
the CLI's conventions, checkpoints, config validation and DDP on CPU."""

import copy
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch.callbacks import Callback

from lit_snn.cli import main as cli_main
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
               "--data.init_args.limit_train", "256", "--trainer.enable_progress_bar", "false", "--no-mlflow",
               cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = [line for line in out.stdout.splitlines() if line.startswith("lit-snn: test acc")]
    assert summary and "firing rate" in summary[0] and "energy" in summary[0], out.stdout[-2000:]
    (best,) = tmp_path.rglob("*.ckpt")
    assert summary[0].endswith(f" | best checkpoint {best}")


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


# ------------------------------------------------------------------ resume, summary, one-line failures
def tiny(tmp_path, **trainer):
    """Three batches of 32 digits per epoch, 32 for validation and test: a fit takes about a second."""
    return {
        "seed_everything": 0,
        "trainer": {"max_epochs": 2, "accelerator": "cpu", "devices": 1, "num_sanity_val_steps": 0,
                    "enable_progress_bar": False, "enable_model_summary": False, "logger": False,
                    "default_root_dir": str(tmp_path), **trainer},
        "model": {"backbone": "small_conv", "neuron": "lif", "time_steps": 2},
        "data": {"class_path": "lit_snn.data.DigitsDataModule",
                 "init_args": {"batch_size": 32, "limit_train": 96, "limit_val": 32, "limit_test": 32}},
    }


class Recorder(Callback):
    """What a fit saw: the epochs it trained, where it started, the best accuracy it restored."""

    def __init__(self):
        self.epochs, self.start = [], {}

    def on_train_start(self, trainer, pl_module):
        self.start = {"global_step": trainer.global_step, "acc_best": float(pl_module.val_acc_best.compute()),
                      "channels_last": pl_module.net.features[3].weight.is_contiguous(
                          memory_format=torch.channels_last)}

    def on_train_epoch_start(self, trainer, pl_module):
        self.epochs.append(trainer.current_epoch)

    def on_fit_end(self, trainer, pl_module):
        self.weights = {k: v.clone() for k, v in pl_module.state_dict().items()}
        self.lr = trainer.optimizers[0].param_groups[0]["lr"]


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """A 2-epoch fit, the same fit stopped after its first epoch, and that one resumed from its checkpoint."""
    tmp = tmp_path_factory.mktemp("resume")
    full, first, second = Recorder(), Recorder(), Recorder()
    whole = run_training(tiny(tmp / "full"), callbacks=[full])
    part = run_training(tiny(tmp / "part", max_steps=3), callbacks=[first])  # 3 batches = epoch 0 of 2
    (ckpt,) = (tmp / "part").rglob("*.ckpt")
    cont = run_training({**tiny(tmp / "cont"), "ckpt_path": str(ckpt)}, callbacks=[second])
    return {"full": full, "first": first, "second": second, "metrics": (whole, part, cont), "ckpt": ckpt}


def test_resume_continues_at_epoch_1_with_its_state(resumed):
    first, second, full = resumed["first"], resumed["second"], resumed["full"]
    whole, part, cont = resumed["metrics"]
    assert first.epochs == [0] and second.epochs == [1] and full.epochs == [0, 1]
    assert second.start["global_step"] == 3  # the optimizer steps of epoch 0 are kept
    assert first.start["channels_last"] and second.start["channels_last"]  # memory_format auto, on the CPU
    assert second.start["acc_best"] == part["val/acc_best"] > 0  # val/acc_best restored, not restarted
    assert cont["epochs"] == whole["epochs"] == 2.0
    assert second.lr == full.lr  # the scheduler continues the same cosine


def test_resume_gives_the_weights_of_an_uninterrupted_fit(resumed):
    full, second = resumed["full"].weights, resumed["second"].weights
    assert all(torch.equal(full[k], second[k]) for k in full)


def test_cli_resumes_and_names_the_checkpoint(resumed, tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tiny(tmp_path)))
    assert cli_main(["train", "--config", str(cfg), "--ckpt_path", str(resumed["ckpt"]), "--no-mlflow"]) == 0
    (summary,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("lit-snn: test acc")]
    (best,) = tmp_path.rglob("*.ckpt")
    assert summary.endswith(f" | best checkpoint {best}"), summary
    assert "epoch=1" in best.name  # the resumed fit saved its own (second) epoch

    assert cli_main(["train", "--config", str(cfg), "--ckpt_path", str(tmp_path / "missing.ckpt"), "--no-mlflow"]) == 2
    assert capsys.readouterr().err == f"lit-snn train: error: checkpoint not found: {tmp_path / 'missing.ckpt'}\n"


def test_bad_value_is_one_line_and_exit_2(tmp_path):
    out = _cli("train", "--config", str(ROOT / "configs" / "digits_lif.yaml"), "--model.time_steps", "-2", cwd=tmp_path)
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines[-1] == "lit-snn train: error: time_steps must be >= 1, got -2"
    assert [line for line in lines if not line.startswith("Seed set to")] == lines[-1:], out.stderr  # Lightning's


def test_corrupt_data_file_is_one_line_naming_it(tmp_path, capsys):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes(b"not an idx file at all")
    code = cli_main(["train", "--config", str(ROOT / "configs" / "digits_lif.yaml"),
                     "--data", "lit_snn.data.MNISTDataModule", "--data.root", str(tmp_path),
                     "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar", "false",
                     "--no-mlflow"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lit-snn")]
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"lit-snn train: error: corrupt or unreadable data file '{raw}/train-images-idx3-ubyte'")


def test_disk_full_is_one_line_saying_where(tmp_path, capsys, monkeypatch):
    def no_space(*args, **kwargs):  # what a write to a full disk raises: no file name
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", no_space)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tiny(tmp_path, max_epochs=1)))
    assert cli_main(["train", "--config", str(cfg), "--no-mlflow"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("lit-snn train: error: disk full (No space left on device); writing checkpoints to "
                              f"{tmp_path}"), err
    assert not any("Traceback" in line for line in err)


def test_ctrl_c_is_one_line_and_exit_130(tmp_path):
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    cmd = [sys.executable, "-m", "lit_snn.cli", "train", "--config", str(ROOT / "configs" / "digits_lif.yaml"),
           "--trainer.max_epochs", "100", "--trainer.enable_model_summary", "false"]
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=stdout, stderr=stderr,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + 120
        while "Epoch 1" not in out.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)  # the progress bar (stdout) has reached the second epoch: one checkpoint is kept
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130, err.read_text()[-3000:]
    lines = [line for line in err.read_text().splitlines() if line.strip()]
    assert not any("Traceback" in line for line in lines)
    assert lines[-1].startswith("lit-snn train: error: interrupted; best checkpoint so far kept: "), lines[-3:]
    assert [line for line in lines if line.startswith("lit-snn")] == lines[-1:]


def _printed_data(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["train", "--config", str(ROOT / "configs" / "digits_lif.yaml"), *args, "--print_config"])
    assert exit_info.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)["data"]


def test_data_class_on_the_command_line_starts_from_its_own_defaults(capsys):
    data = _printed_data(capsys, "--data", "lit_snn.data.TinyImageNetDataModule")
    assert data["class_path"] == "lit_snn.data.TinyImageNetDataModule"
    assert data["init_args"]["image_size"] == 64 and data["init_args"]["crop_padding"] == 4  # not the digits' 8, 0
    data = _printed_data(capsys, "--data.image_size", "16", "--data", "TinyImageNetDataModule",
                         "--data.image_size", "32")
    assert data["init_args"]["image_size"] == 32 and data["init_args"]["hflip"] is True
    data = _printed_data(capsys, "--data", "DigitsDataModule", "--data.batch_size", "8")  # the same class: kept
    assert data["init_args"]["batch_size"] == 8 and data["init_args"]["root"] == "data"
