"""Issue 22's small defects: each fix's behaviour (export/neurobench of a missing checkpoint, compare before
any run, did-you-mean for commands, presets and data arguments, an explicit Fashion-MNIST root, the
neurobench header and units, the ignored lock files, make clean)."""

import subprocess
from pathlib import Path

import lightning as L
import pytest

from lit_snn.cli import main
from lit_snn.data import DatasetNotFoundError, DigitsDataModule, FashionMNISTDataModule
from lit_snn.data.mnist import IDX_FILES
from lit_snn.module import LitSNN
from lit_snn.neurons import create_neuron
from lit_snn.orchestrate import compare_main

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "configs" / "digits_lif.yaml")


@pytest.mark.parametrize("command", ["export", "neurobench"])
@pytest.mark.parametrize("source", ["nothere.ckpt", "runs/abc"])
def test_missing_checkpoint_path_is_named(command, source, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    extra = ["--nir", "out.nir"] if command == "export" else []
    assert main([command, source, *extra]) == 2
    assert capsys.readouterr().err.strip() == f"lit-snn {command}: error: no such checkpoint file: {source}"


def test_compare_before_any_run_is_bad_input(tmp_path, capsys):
    assert compare_main([str(REPO / "ablations" / "default.yaml"), "--store-dir", str(tmp_path)]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after MLflow's own log lines
    assert last.startswith("lit-snn compare: error: no MLflow experiment 'ablation/default'")
    assert last.endswith("run the study first")


def test_unknown_command_suggests_the_closest(capsys):
    assert main(["trian"]) == 2
    assert capsys.readouterr().err.rstrip().endswith("did you mean 'train'?")


def test_unknown_preset_suggests_the_closest():
    with pytest.raises(ValueError, match=r"unknown neuron 'lfi'; valid neurons: .*; did you mean 'lif'\?$"):
        create_neuron("lfi")


@pytest.mark.parametrize("where", ["command line", "yaml"])
def test_data_argument_typo_names_key_class_and_closest(where, tmp_path, capsys):
    if where == "yaml":
        typo = tmp_path / "typo.yaml"
        typo.write_text(Path(CONFIG).read_text().replace("batch_size: 64", "batchsize: 8"))
        args = ["--config", str(typo)]
    else:
        args = ["--config", CONFIG, "--data.init_args.batchsize", "8"]
    assert main(["train", *args]) == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lit-snn train: error:")]
    assert line.startswith("lit-snn train: error: data: DigitsDataModule has no argument 'batchsize'; "
                           "did you mean 'batch_size'? (its arguments: ")
    assert "NoneType" not in line and "Union" not in line and "limit_train" in line


def _idx_files(folder: Path) -> None:
    folder.mkdir(parents=True)
    for base in IDX_FILES.values():
        (folder / base).write_bytes(b"")  # located, not read


def test_explicit_fashion_mnist_root_does_not_fall_back(tmp_path, monkeypatch):
    system = tmp_path / "debian"  # stands for /usr/share/datasets/fashion-mnist
    _idx_files(system)
    monkeypatch.setattr(FashionMNISTDataModule, "default_system_dirs", (str(system),))
    explicit = FashionMNISTDataModule(root=str(tmp_path / "mine"))
    with pytest.raises(DatasetNotFoundError) as err:
        explicit.check_data()
    assert err.value.path == str(tmp_path / "mine" / "FashionMNIST" / "raw")
    assert "apt-get install dataset-fashion-mnist" in str(err.value) and str(system) not in err.value.path
    monkeypatch.chdir(tmp_path)  # the default root, data/, holds nothing: the system copy is used
    default = FashionMNISTDataModule()
    default.check_data()
    assert default.data_dir == str(system)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A small_conv lif model after one training batch of the digits, saved by Lightning."""
    path = tmp_path_factory.mktemp("ckpt") / "model.ckpt"
    trainer = L.Trainer(max_steps=1, limit_val_batches=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    trainer.fit(LitSNN(time_steps=2), DigitsDataModule(batch_size=16, limit_train=16))
    trainer.save_checkpoint(path)
    return path


def test_neurobench_prints_header_and_units(checkpoint, capsys):
    assert main(["neurobench", str(checkpoint), "--limit", "32"]) == 0
    header, *rows = capsys.readouterr().out.strip().splitlines()
    assert header == f"lit-snn neurobench: checkpoint {checkpoint}: small_conv with lif, T 2; digits test split, " \
        "32 samples"
    units = {row.split()[0]: row.split(maxsplit=2)[2] for row in rows}
    assert units["Footprint"] == "bytes (parameters and buffers)" and units["ClassificationAccuracy"] == \
        "fraction correct"
    assert units["SynapticOperations/Effective_ACs"] == "ACs per sample (all T steps)" and len(units) == 8


def test_lock_files_ignored_and_make_clean_removes_outputs():
    ignored = subprocess.run(["git", "check-ignore", "optuna.db.lock", "mlruns.db.lock"], cwd=REPO,
                             capture_output=True, text=True)
    assert ignored.stdout.split() == ["optuna.db.lock", "mlruns.db.lock"]
    dry = subprocess.run(["make", "-n", "clean"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert {"results", "lightning_logs", "mlruns.db", "optuna.db"} <= set(dry.split())
