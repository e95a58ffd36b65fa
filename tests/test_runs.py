"""``lit-snn reproduce`` and ``lit-snn evaluate`` on a trial run logged the way the orchestrator logs it:
config.yaml, the ``repro.torch_threads`` param, the final metrics and the best checkpoint as artifacts."""

import socket

import pytest
import torch
import yaml
from lightning.pytorch.loggers import MLFlowLogger
from mlflow import MlflowClient

from lit_snn.cli import main
from lit_snn.train import run_training

TRIAL_THREADS = 2  # the test process runs with another count (1): reproduce must set it back


def trial_config(tmp_path) -> dict:
    """512 training digits, 2 epochs: a few seconds, far above chance, and sensitive to the thread count."""
    return {
        "seed_everything": 0,
        "trainer": {"max_epochs": 2, "accelerator": "cpu", "devices": 1, "num_sanity_val_steps": 0,
                    "enable_progress_bar": False, "enable_model_summary": False},
        "model": {"backbone": "small_conv", "neuron": "lif", "time_steps": 2},
        "data": {"class_path": "lit_snn.data.DigitsDataModule",
                 "init_args": {"batch_size": 32, "limit_train": 512, "limit_val": 32, "limit_test": 64}},
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """An MLflow store with one trial run (trained at TRIAL_THREADS threads) and the run's facts."""
    tmp = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{tmp / 'mlruns.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("trials", artifact_location=(tmp / "artifacts").as_uri())
    run_id = client.create_run(experiment).info.run_id
    config = trial_config(tmp)
    before = torch.get_num_threads()
    torch.set_num_threads(TRIAL_THREADS)
    try:
        metrics = run_training(config, loggers=[MLFlowLogger(tracking_uri=uri, run_id=run_id, log_model=True)],
                               default_root_dir=str(tmp / "work"))
    finally:
        torch.set_num_threads(before)
    client.log_text(run_id, yaml.safe_dump(config), "config.yaml")
    client.log_param(run_id, "repro.torch_threads", TRIAL_THREADS)
    client.set_terminated(run_id)
    return {"dir": tmp, "uri": uri, "client": client, "experiment": experiment, "run_id": run_id,
            "config": config, "metrics": metrics}


def _other_run(store, threads=None, metrics=True, config=True, shift=0.0) -> str:
    """A run with the trial's config and metrics (each ``+ shift``) but no checkpoint (and, as asked,
    a thread count)."""
    client = store["client"]
    run_id = client.create_run(store["experiment"]).info.run_id
    if config:
        client.log_text(run_id, yaml.safe_dump(store["config"]), "config.yaml")
    if threads is not None:
        client.log_param(run_id, "repro.torch_threads", threads)
    if metrics:
        for key, value in store["metrics"].items():
            if key.startswith("test/"):
                client.log_metric(run_id, key, value + shift)
    return run_id


def test_the_trial_logged_what_reproduce_needs(store):
    files = [f.path for f in store["client"].list_artifacts(store["run_id"])]
    assert "config.yaml" in files and store["metrics"]["test/acc"] > 0.5  # well above chance (0.1)


def test_reproduce_gives_the_logged_test_metrics_exactly(store, capsys):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["reproduce", store["run_id"], "--tracking-uri", store["uri"]]) == 0
        assert torch.get_num_threads() == 1  # set for the training, then restored
    finally:
        torch.set_num_threads(before)
    out = capsys.readouterr().out
    assert f"({TRIAL_THREADS} torch threads)" in out
    assert out.rstrip().endswith("lit-snn reproduce: reproduced exactly"), out
    (acc,) = [line for line in out.splitlines() if line.startswith("test/acc ")]
    assert acc.split()[2] == f"{store['metrics']['test/acc']:.6g}" and acc.endswith("diff +0")


def test_reproduce_says_which_metric_differs_and_atol_accepts_it(store, capsys):
    run_id = _other_run(store, threads=TRIAL_THREADS, shift=1e-3)  # logged values off by 0.001
    assert main(["reproduce", run_id, "--store-dir", str(store["dir"])]) == 1
    verdict = capsys.readouterr().out.rstrip().splitlines()[-1]
    assert verdict.startswith("lit-snn reproduce: differs: ") and "test/" in verdict, verdict
    assert main(["reproduce", run_id, "--store-dir", str(store["dir"]), "--atol", "2e-3"]) == 0


def test_evaluate_tests_the_logged_checkpoint(store, capsys):
    assert main(["evaluate", store["run_id"], "--store-dir", str(store["dir"])]) == 0
    out = capsys.readouterr().out
    assert "checkpoint best-epoch=" in out and ".ckpt" in out
    table = {line.split()[0]: line for line in out.splitlines() if line.startswith("test/")}
    assert {"test/acc", "test/loss"} <= set(table)
    assert all(line.endswith("diff +0") for line in table.values()), out  # the trial's own test, again


def _one_error_line(capsys, argv, code=2) -> str:
    assert main(argv) == code
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


def test_evaluate_without_a_checkpoint_says_so(store, capsys):
    run_id = _other_run(store)
    line = _one_error_line(capsys, ["evaluate", run_id, "--tracking-uri", store["uri"]])
    assert line == (f"lit-snn evaluate: error: run '{run_id}' logged no checkpoint (*.ckpt artifact): "
                    "nothing to evaluate")


def test_unknown_run_missing_config_and_unreachable_store_are_one_line(store, tmp_path, capsys):
    uri = store["uri"]
    line = _one_error_line(capsys, ["reproduce", "0123abcd", "--tracking-uri", uri])
    assert line == f"lit-snn reproduce: error: no run '0123abcd' in {uri}"

    bare = _other_run(store, config=False)
    line = _one_error_line(capsys, ["evaluate", bare, "--tracking-uri", uri])
    assert line == f"lit-snn evaluate: error: run '{bare}' has no config.yaml artifact: not a lit_snn trial run"

    line = _one_error_line(capsys, ["reproduce", "0123abcd", "--store-dir", str(tmp_path)])
    assert line.startswith(f"lit-snn reproduce: error: no MLflow store at {tmp_path / 'mlruns.db'}")
    assert not (tmp_path / "mlruns.db").exists()  # no stray empty store left behind

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    line = _one_error_line(capsys, ["evaluate", "0123abcd", "--tracking-uri", f"http://127.0.0.1:{port}"])
    assert line.startswith(f"lit-snn evaluate: error: cannot read run '0123abcd' from http://127.0.0.1:{port}: ")
    assert "refused" in line
