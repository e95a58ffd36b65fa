"""Bad values a study or a training meets (issue 28, 8): rejected at load in one line naming the value and
what is valid, exit 2, before anything trains; and the unwritable places of ``lit_snn.errors``."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch
import yaml
from torch.utils.data import TensorDataset

from lit_snn.data.base import MAX_TIME_STEPS, SNNDataModule
from lit_snn.errors import describe_expected, exit_code
from lit_snn.orchestrate import ablate_main

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "digits_lif.yaml"

BAD_VALUES = {  # as reported (issue 28): the first three trained (or "tested" an untrained net), exit 0
    "--data.limit_train=-5": "limit_train must be None (all) or >= 1, got -5",
    "--data.limit_train=0": "limit_train=0 leaves nothing to train on; valid: None (all) or >= 1",
    "--model.weight_decay=-1": "weight_decay must be a number >= 0, got -1.0",
    "--data.limit_val=-1": "limit_val must be None (all) or >= 0, got -1",
    "--data.limit_test=-3": "limit_test must be None (all) or >= 0, got -3",
    "--model.lr=0": "lr must be a positive number, got 0.0",
    "--data.batch_size=0": "batch_size must be >= 1, got 0",
    "--model.time_steps=20000": f"time_steps must be <= {MAX_TIME_STEPS} (lit_snn's bound on T), got 20000",
}


def _error_lines(err: str, prog: str) -> list[str]:
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith(f"{prog}: error: ")]


@pytest.mark.parametrize("option", sorted(BAD_VALUES))
def test_a_bad_value_stops_lit_snn_train_in_one_line(option, tmp_path, monkeypatch, capsys):
    from lit_snn.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["train", "--config", str(CONFIG), "--no-mlflow", "--trainer.max_epochs", "1", option]) == 2
    assert _error_lines(capsys.readouterr().err, "lit-snn train") == [f"lit-snn train: error: {BAD_VALUES[option]}"]
    assert not (tmp_path / "lightning_logs").exists()  # nothing trained


def _study(tmp_path: Path, axes: dict) -> Path:
    config = yaml.safe_load(CONFIG.read_text())
    config["trainer"]["max_epochs"] = 1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "bad", "base": config, "axes": axes, "seeds": [0]}))
    return path


@pytest.mark.parametrize(("axis", "value", "message"), [
    ("model.time_steps", -2, "time_steps must be >= 1, got -2"),  # as reported: 7 lines of Union report
    ("model.weight_decay", -1, "weight_decay must be a number >= 0, got -1.0"),
    ("data.init_args.limit_train", -5, "limit_train must be None (all) or >= 1, got -5"),
])
def test_the_grid_check_reports_a_bad_axis_value_in_one_line(axis, value, message, tmp_path, capsys):
    path = _study(tmp_path, {axis: [value]})
    store = ["--store-dir", str(tmp_path / "store"), "--results-dir", str(tmp_path / "results")]
    for extra in (["--dry-run"], []):
        assert ablate_main([str(path), *store, *extra]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line == f"lit-snn ablate: error: {path}: grid point {axis}={value},seed=0: {message}"
    assert not (tmp_path / "store").exists()


class _Tensors(SNNDataModule):
    name, num_classes, in_channels, image_size = "tensors", 2, 1, (2, 2)

    def __init__(self, train: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.train_size = train

    def load_splits(self):
        def split(n: int) -> TensorDataset:
            return TensorDataset(torch.zeros(n, 1, 2, 2), torch.zeros(n, dtype=torch.long))

        return split(self.train_size), split(4), split(4)


def test_an_empty_training_split_is_nothing_to_train_on():
    """As reported: a fit over 0 training samples 'tested' an untrained net at 10%, exit 0."""
    empty = _Tensors(train=0)
    empty.setup("test")  # evaluating needs no training split
    with pytest.raises(ValueError) as caught:
        empty.setup("fit")
    assert describe_expected(caught.value) == ("_Tensors at 'data/': the training split has 0 samples, nothing to "
                                               "train on (check the dataset's files, val_fraction and limit_train)")
    assert exit_code(caught.value) == 2
    _Tensors(train=3).setup("fit")


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES, errno.EPERM])
def test_a_place_that_cannot_be_written_is_one_line_and_exit_1(code):
    exc = OSError(code, "Read-only file system", "/mnt/results/x.csv")
    assert describe_expected(exc) == "cannot write /mnt/results/x.csv: read-only file system"
    assert exit_code(exc) == 1
    assert describe_expected(OSError(errno.EEXIST, "File exists", "/x")) is None  # not a write refusal: a bug
