"""``lit-snn inspect``: the arrays behind each figure are the recorded activity (raster events = spikes,
rate map mean = the monitor's firing rate, integer levels in range), the membrane traces are the
neurons' own states, and the command writes its PNGs and logs them to the run."""

import contextlib
import io
import math

import pytest
import torch
import yaml
from mlflow import MlflowClient

from lit_snn.cli import main as cli_main
from lit_snn.export.checkpoint import load_model
from lit_snn.inspect import level_histogram, membrane_data, membrane_trace, raster_data, rate_map, record_layers
from lit_snn.inspect.cli import first_test_samples
from lit_snn.inspect.record import charge_trace
from lit_snn.neurons import create_neuron
from lit_snn.neurons.surrogate import integer_spike

TRACEABLE = ["lif", "hard_lif", "soft_lif", "plif", "ar_lif", "clif", "alif", "klif", "glif", "da_lif", "i_lif",
             "ib_ra_lif"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """``lit-snn train`` of an integer-neuron (IB-RA-LIF) digits model, 1 epoch: its store and run id."""
    tmp = tmp_path_factory.mktemp("inspect")
    cfg = tmp / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({
        "seed_everything": 0,
        "trainer": {"max_epochs": 1, "accelerator": "cpu", "devices": 1, "num_sanity_val_steps": 0,
                    "enable_progress_bar": False, "enable_model_summary": False},
        "model": {"backbone": "small_conv", "neuron": "ib_ra_lif", "time_steps": 2},
        "data": {"class_path": "lit_snn.data.DigitsDataModule",
                 "init_args": {"batch_size": 32, "limit_train": 256, "limit_val": 32, "limit_test": 32}}}))
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert cli_main(["train", "--config", str(cfg), "--store-dir", str(tmp)]) == 0
    (line,) = [line for line in out.getvalue().splitlines() if line.startswith("lit-snn: MLflow run ")]
    uri = f"sqlite:///{tmp / 'mlruns.db'}"
    model, trial = load_model(line.split()[3], uri)
    x, _ = first_test_samples(trial, 3)
    return {"dir": tmp, "uri": uri, "run_id": trial.run_id, "model": model,
            "records": record_layers(model.net, model.encode(x))}


def test_inspect_writes_each_figure_and_logs_them_to_the_run(run, capsys):
    out = run["dir"] / "figures"
    assert cli_main(["inspect", run["run_id"], "--tracking-uri", run["uri"], "--samples", "3", "--out", str(out)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("lit-snn inspect: wrote ")]
    expected = {f"{kind}_{layer}.png" for kind in ("raster", "membrane", "rates", "levels")
                for layer in ("features.2", "features.5")}
    assert {p.name for p in out.iterdir()} == expected
    assert sorted(line.rsplit("/", 1)[1] for line in lines) == sorted(expected)  # one line per file
    assert all(p.stat().st_size > 10_000 for p in out.iterdir())
    logged = MlflowClient(run["uri"]).list_artifacts(run["run_id"], "inspect")
    assert {f.path for f in logged} == {f"inspect/{name}" for name in expected}


def test_raster_events_are_the_recorded_spikes(run):
    for record in run["records"]:
        data = raster_data(record, neurons=16)
        chosen = record.spikes.reshape(*record.spikes.shape[:2], -1)[:, :, data.neurons]  # [T, B, 16]
        T = chosen.shape[0]
        rebuilt = torch.zeros_like(chosen)
        rebuilt[data.steps % T, data.steps // T, data.rows] = data.values
        assert torch.equal(rebuilt, chosen) and len(data.steps) == int(torch.count_nonzero(chosen)) > 0
        activity = record.spikes.reshape(*record.spikes.shape[:2], -1).sum((0, 1))
        assert activity[data.neurons].min() >= activity.sort(descending=True).values[15]  # the most active


def test_rate_map_mean_is_the_layers_logged_firing_rate(run):
    for record in run["records"]:
        rates = rate_map(record)
        assert rates.shape == record.spikes.shape[2:]  # [C, H, W] per channel and position
        assert math.isclose(float(rates.mean()), record.rate, rel_tol=1e-9) and record.rate > 0


def test_level_histogram_has_only_integer_levels_within_the_neurons_range(run):
    for record in run["records"]:
        cfg = record.neuron.config
        levels, counts = level_histogram(record)
        assert levels.tolist() == list(range(cfg.int_top + 1))  # 0..N*D
        q = record.spikes * cfg.int_scale
        assert torch.allclose(q, q.round(), atol=1e-4)  # the outputs are integer levels / N
        assert torch.equal(counts, torch.bincount(q.round().long().flatten(), minlength=cfg.int_top + 1))
        assert counts[1:].sum() > 0


def test_membrane_traces_are_the_recorded_neurons_states(run):
    for record in run["records"]:
        cfg = record.neuron.config
        # the charge gives the recorded spikes: S = round(clamp(N U / th, 0, N D)) / N
        assert torch.allclose(integer_spike(record.charge / record.threshold, cfg.int_max, cfg.int_scale),
                              record.spikes, atol=1e-5)
        traces = membrane_data(record, count=3)
        flat = record.membrane.reshape(*record.membrane.shape[:2], -1)
        assert torch.equal(traces.membrane[0, :2], flat[:, 0, traces.neurons[0]])  # sample 0's steps come first
        assert traces.threshold.tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("name", TRACEABLE)
def test_the_traced_membrane_ends_in_the_state_the_neuron_returns(name):
    torch.manual_seed(0)
    neuron = create_neuron(name)
    x = 1.5 * torch.randn(4, 2, 3, 5, 5)  # [T, B, C, H, W]
    with torch.no_grad():
        spikes, v_last, _ = neuron.forward_with_state(x)
        v = membrane_trace(neuron, x)
    assert v.shape == x.shape and torch.allclose(v[-1], v_last, atol=1e-5)
    assert spikes.sum() > 0


def test_binary_spikes_fire_where_the_charge_reaches_the_threshold():
    torch.manual_seed(0)
    neuron = create_neuron("lif")
    x = 1.5 * torch.randn(4, 2, 3, 5, 5)
    with torch.no_grad():
        spikes = neuron(x)
        v = membrane_trace(neuron, x)
        u = charge_trace(neuron, x, v)
    th = float(neuron.effective_params()["vth"])
    assert torch.equal(spikes, (u >= th).float()) and spikes.sum() > 0
    assert torch.allclose(v, u * (1 - spikes))  # the hard reset


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert cli_main(["inspect", "deadbeef", "--tracking-uri", f"sqlite:///{tmp_path / 'x.db'}"]) == 2
    assert capsys.readouterr().err.strip() == f"lit-snn inspect: error: no MLflow store at {tmp_path / 'x.db'} " \
                                              "(give the study's --store-dir or --tracking-uri)"
    assert cli_main(["inspect", str(tmp_path / "none.ckpt")]) == 2  # a path, not a run id: not "no such run"
    missing = tmp_path / "none.ckpt"
    assert capsys.readouterr().err.strip() == f"lit-snn inspect: error: no such checkpoint file: {missing}"
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["inspect", "run", "--samples", "0"])
    assert exit_info.value.code == 2 and "--samples must be >= 1, got 0" in capsys.readouterr().err
