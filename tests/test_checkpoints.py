"""Checkpoints are read without running code from them: a crafted pickle, a truncated file and a
torch file that is no checkpoint are each refused in one line (exit 2); a real one loads."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import pytest
import torch

from lit_snn.checkpoints import CheckpointRefused, load_lit_snn, read_checkpoint
from lit_snn.data import DigitsDataModule
from lit_snn.export.cli import export_main
from lit_snn.module import LitSNN


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A LitSNN checkpoint written by Lightning after two training batches on the digits."""
    folder = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    model = LitSNN(backbone="small_conv", neuron="lif", time_steps=2, num_classes=10, in_channels=1)
    trainer = L.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=folder)
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=16, time_steps=2, seed=0))
    path = folder / "good.ckpt"
    trainer.save_checkpoint(path)
    return path, model


class RunsAShellCommand:
    """What a hostile checkpoint pickles: unpickling it would run ``touch MARKER``."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_real_checkpoint_loads_weights_only(checkpoint):
    path, trained = checkpoint
    model = load_lit_snn(path)
    assert not model.training
    for name, value in trained.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], value.cpu(), rtol=0, atol=0)


def test_a_crafted_checkpoint_runs_nothing_and_is_refused_in_one_line(checkpoint, tmp_path, capsys):
    marker = tmp_path / "PWNED"
    data = torch.load(checkpoint[0], weights_only=True)
    data["hyper_parameters"]["note"] = RunsAShellCommand(marker)
    evil = tmp_path / "evil.ckpt"
    torch.save(data, evil)
    with pytest.raises(CheckpointRefused, match=r"evil.ckpt is refused: it needs posix.system to load"):
        read_checkpoint(evil)
    assert export_main([str(evil), "--nir", str(tmp_path / "x.nir")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lit-snn export: error: checkpoint ") and "refused" in err[0]
    assert not marker.exists() and not (tmp_path / "x.nir").exists()


def test_a_truncated_checkpoint_is_refused(checkpoint, tmp_path):
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(checkpoint[0].read_bytes()[:4096])
    with pytest.raises(CheckpointRefused, match=r"cut.ckpt is not a readable checkpoint \(truncated or corrupt"):
        read_checkpoint(cut)


def test_a_torch_file_that_is_no_checkpoint_is_refused(tmp_path):
    path = tmp_path / "tensor.ckpt"
    torch.save(torch.zeros(3), path)
    with pytest.raises(CheckpointRefused, match=r"tensor.ckpt is not a Lightning checkpoint"):
        read_checkpoint(path)


def test_resuming_from_a_crafted_checkpoint_runs_nothing(checkpoint, tmp_path, monkeypatch, capsys):
    from lit_snn.cli import main

    marker = tmp_path / "PWNED"
    data = torch.load(checkpoint[0], weights_only=True)
    data["callbacks"]["note"] = RunsAShellCommand(marker)
    evil = tmp_path / "evil.ckpt"
    torch.save(data, evil)
    monkeypatch.chdir(tmp_path)
    config = Path(__file__).resolve().parents[1] / "configs" / "digits_lif.yaml"
    code = main(["train", "--config", str(config), "--ckpt_path", str(evil), "--no-mlflow",
                 "--trainer.max_epochs", "1"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("lit-snn train: error: checkpoint ") and "needs posix.system" in err[-1]
    assert not marker.exists()


@pytest.mark.parametrize("command", [["neurobench"], ["inspect"], ["export", "--nir", "x.nir"]])
def test_every_command_that_loads_a_checkpoint_file_refuses_a_crafted_one(checkpoint, tmp_path, monkeypatch, capsys,
                                                                        command):
    from lit_snn.cli import main

    marker = tmp_path / "PWNED"
    data = torch.load(checkpoint[0], weights_only=True)
    data["state_dict"] = {"weights": RunsAShellCommand(marker)}
    evil = tmp_path / "evil.ckpt"
    torch.save(data, evil)
    monkeypatch.chdir(tmp_path)
    assert main([command[0], str(evil), *command[1:]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"lit-snn {command[0]}: error: checkpoint {evil} is refused" in err[0]
    assert not marker.exists()


def test_a_run_config_naming_a_class_outside_the_trusted_packages_is_refused(tmp_path, monkeypatch, capsys):
    """A run's config.yaml comes from a tracking store others may write to; its class_paths are imported."""
    import sys

    import mlflow

    from lit_snn.cli import main

    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    run_id = client.create_run(client.create_experiment("x", artifact_location=str(tmp_path / "art"))).info.run_id
    config = {"seed_everything": 0, "trainer": {"max_epochs": 1, "callbacks": [{"class_path": "lit_snn_evil.Hook"}]},
              "model": {"neuron": "lif"}, "data": {"class_path": "lit_snn.data.DigitsDataModule"}}
    client.log_text(run_id, __import__("yaml").safe_dump(config), "config.yaml")
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()  # MLflow's lines about creating the store
    for command in ("reproduce", "evaluate"):
        assert main([command, run_id, "--tracking-uri", uri]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line == (f"lit-snn {command}: error: the config.yaml of run {run_id!r} names the class "
                        "'lit_snn_evil.Hook' at trainer.callbacks[0].class_path: a run's config may only name classes "
                        "of lit_snn, lightning, pytorch_lightning, torch, torchmetrics; refused, nothing imported")
    assert "lit_snn_evil" not in sys.modules
