"""``lit-snn train`` as an MLflow run: the record an ablation trial carries, so that ``reproduce`` and
``evaluate`` take its run id; the run's end status; the opt-out; an unreachable server."""

import contextlib
import io
import socket

import mlflow
import pytest
import yaml
from mlflow import MlflowClient

import lit_snn.train
from lit_snn.cli import main as cli_main
from lit_snn.train import resolve_config


def tiny_config(**trainer) -> dict:
    """512 training digits, 2 epochs, T = 2: a few seconds, well above chance."""
    return {
        "seed_everything": 0,
        "trainer": {"max_epochs": 2, "accelerator": "cpu", "devices": 1, "num_sanity_val_steps": 0,
                    "enable_progress_bar": False, "enable_model_summary": False, **trainer},
        "model": {"backbone": "small_conv", "neuron": "lif", "time_steps": 2},
        "data": {"class_path": "lit_snn.data.DigitsDataModule",
                 "init_args": {"batch_size": 32, "limit_train": 512, "limit_val": 32, "limit_test": 64}},
    }


def _run_id(out: str) -> str:
    (line,) = [line for line in out.splitlines() if line.startswith("lit-snn: MLflow run ")]
    return line.split()[3]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One ``lit-snn train --config tiny.yaml --store-dir DIR``: the store, the run and its output."""
    tmp = tmp_path_factory.mktemp("train_mlflow")
    cfg = tmp / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config()))
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert cli_main(["train", "--config", str(cfg), "--store-dir", str(tmp)]) == 0
    uri = f"sqlite:///{tmp / 'mlruns.db'}"
    run_id = _run_id(out.getvalue())
    return {"dir": tmp, "uri": uri, "client": MlflowClient(uri), "run_id": run_id, "out": out.getvalue()}


def test_the_run_holds_the_record_of_a_trial(trained):
    client, run_id = trained["client"], trained["run_id"]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["lit_snn.state"] == "COMPLETE"
    assert run.data.tags["lit_snn.role"] == "train"
    assert client.get_experiment(run.info.experiment_id).name == "train/tiny"  # the config file's stem
    assert run.data.params["repro.torch_threads"].isdigit() and run.data.params["model.neuron"] == "lif"
    assert "repro.version.torch" in run.data.tags and "repro.seed" in run.data.tags
    assert run.data.metrics["test/acc"] > 0.5 and "train_seconds" in run.data.metrics
    files = [f.path for f in client.list_artifacts(run_id)]
    assert "config.yaml" in files
    ckpts = [p for p in trained["dir"].joinpath("mlartifacts").rglob("*.ckpt")]
    assert len(ckpts) == 1
    # checkpoints are written under the store's cache folder, not the current one
    assert next((trained["dir"] / ".lit_snn_cache").rglob("*.ckpt")).name == ckpts[0].name


def test_the_recorded_config_is_what_was_trained(trained):
    path = mlflow.artifacts.download_artifacts(run_id=trained["run_id"], artifact_path="config.yaml",
                                               tracking_uri=trained["uri"], dst_path=str(trained["dir"] / "dl"))
    recorded = yaml.safe_load(open(path).read())
    assert recorded["seed_everything"] == 0 and recorded["trainer"]["max_epochs"] == 2
    assert recorded["data"]["init_args"]["limit_train"] == 512
    assert "no_mlflow" not in recorded and "logger" not in recorded["trainer"]  # where it logs: not a setting
    assert resolve_config(recorded) == resolve_config(tiny_config())  # a run config, the same one


def test_reproduce_and_evaluate_take_its_run_id(trained, capsys):
    assert cli_main(["reproduce", trained["run_id"], "--store-dir", str(trained["dir"])]) == 0
    assert "lit-snn reproduce: reproduced exactly" in capsys.readouterr().out
    assert cli_main(["evaluate", trained["run_id"], "--store-dir", str(trained["dir"])]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("test/acc ")]
    assert lines and lines[0].split()[2] == lines[0].split()[4]  # logged == now


def test_the_end_names_the_run_and_where_to_browse_it(trained):
    assert f"lit-snn reproduce|evaluate|inspect {trained['run_id']}" in trained["out"]
    assert "lit-snn: browse it: mlflow ui --backend-store-uri sqlite:///" in trained["out"]
    assert trained["out"].index("lit-snn: test acc") < trained["out"].index("lit-snn: MLflow run")


def _tiny_file(tmp_path, **trainer):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config(**trainer)))
    return str(cfg)


def test_no_mlflow_records_nothing(tmp_path):
    args = ["train", "--config", _tiny_file(tmp_path, max_epochs=1, default_root_dir=str(tmp_path)),
            "--store-dir", str(tmp_path), "--no-mlflow"]
    assert cli_main(args) == 0
    assert not (tmp_path / "mlruns.db").exists() and not (tmp_path / "mlartifacts").exists()


def test_a_failed_training_ends_its_run_failed(tmp_path, capsys):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes(b"not an idx file")
    code = cli_main(["train", "--config", _tiny_file(tmp_path), "--data", "lit_snn.data.MNISTDataModule",
                     "--data.root", str(tmp_path), "--store-dir", str(tmp_path), "--experiment", "broken"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and err.startswith("lit-snn train: error: corrupt or unreadable data file"), err
    (run,) = MlflowClient(f"sqlite:///{tmp_path / 'mlruns.db'}").search_runs(
        [MlflowClient(f"sqlite:///{tmp_path / 'mlruns.db'}").get_experiment_by_name("broken").experiment_id])
    assert run.info.status == "FAILED" and run.data.tags["lit_snn.state"] == "FAIL"
    assert run.data.tags["lit_snn.error"].startswith("corrupt or unreadable data file")
    assert err.endswith(f"MLflow run {run.info.run_id} ended FAILED")


def test_an_interrupted_training_ends_its_run_killed(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(lit_snn.train, "fit_and_test", interrupted)
    code = cli_main(["train", "--config", _tiny_file(tmp_path), "--store-dir", str(tmp_path)])
    assert code == 130
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("train/tiny").experiment_id])
    assert run.info.status == "KILLED" and run.data.tags["lit_snn.error"] == "interrupted"


def test_an_unreachable_server_is_one_line_and_nothing_trained(tmp_path, capsys):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = cli_main(["train", "--config", _tiny_file(tmp_path, default_root_dir=str(tmp_path)),
                     "--tracking-uri", f"http://127.0.0.1:{port}"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lit-snn")]
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"lit-snn train: error: MLflow tracking server http://127.0.0.1:{port} is not reachable")
    assert "Connection refused" in err[0] and "nothing was started" in err[0]
    assert not list(tmp_path.rglob("*.ckpt"))


def test_print_config_shows_the_options_and_a_run_config_may_hold_them(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli_main(["train", "--config", _tiny_file(tmp_path), "--experiment", "mine", "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["experiment"] == "mine" and printed["no_mlflow"] is False
    assert not (tmp_path / "mlruns.db").exists()
    resolved = resolve_config(printed)  # the orchestrator's path: accepted, and not part of the run's settings
    assert not {"experiment", "no_mlflow", "tracking_uri", "store_dir"} & set(resolved)
