"""``lit-snn doctor``: passes on this machine, and fails naming backend, preset and tensor when a backend
is made to compute something else (a perturbed forward, a perturbed gradient). The CPU checks run
the numba kernels on one or two presets (a first run in a fresh checkout compiles them, 1-3
minutes); with numba off the CPU path is the reference and the doctor checks nothing there."""

import json
import os
import sqlite3

import pytest
import torch

from lit_snn.cli import main
from lit_snn.data.mnist import IDX_FILES
from lit_snn.doctor.kernels import check_backend, cpu_backend, triton_backend
from lit_snn.neurons.cpu import parallel as cpu_parallel
from lit_snn.neurons.cpu import scan as cpu_scan


@pytest.fixture
def numba_off(monkeypatch):
    """The CPU path as LIT_SNN_CPU_NUMBA=0 selects it: the PyTorch reference (no numba compile)."""
    monkeypatch.setattr(cpu_scan, "USE_NUMBA", False)


@pytest.fixture
def numba_on(monkeypatch):
    """The CPU path's numba kernels, what the doctor checks on a CPU."""
    pytest.importorskip("numba")
    monkeypatch.setattr(cpu_scan, "USE_NUMBA", True)


def doctor(tmp_path, *args):
    return main(["doctor", "--store-dir", str(tmp_path), "--root", str(tmp_path / "data"), *args])


class _ScaledGrad(torch.autograd.Function):
    """Identity forward; the gradient times (1 + 1e-3) in the backward."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * 1.001


def test_passes_on_this_machine(tmp_path, numba_off, capsys):
    assert doctor(tmp_path) == 0
    out = capsys.readouterr().out
    rows = {line.split("  ")[0].strip(): line for line in out.splitlines()}
    assert {"python", "torch", "numba", "cpu path", "gpu", "optuna storage", "mlflow tracking", "data digits",
            "data fashion_mnist"} <= set(rows)
    cpu = rows["cpu path"]
    assert " ok " in cpu and "CPU: the PyTorch reference (numba off: LIT_SNN_CPU_NUMBA=0" in cpu
    if not torch.cuda.is_available():  # the reference is not checked against itself
        assert not any(check.endswith("vs reference") for check in rows)
    assert "not created yet" in rows["optuna storage"] and "absent" in rows["data mnist"]


def test_numba_kernels_pass(tmp_path, numba_on, capsys):
    assert doctor(tmp_path, "--presets", "ar_lif") == 0
    out = capsys.readouterr().out
    rows = {line.split("  ")[0].strip(): line for line in out.splitlines()}
    assert "numba kernels;" in rows["cpu path"]
    checked = rows["numba vs reference"]
    assert " ok " in checked and "1 presets, forward and every gradient" in checked and "lif fwd+bwd fp32" in checked


def test_perturbed_forward_fails_naming_preset_and_tensor(tmp_path, numba_on, monkeypatch, capsys):
    honest = cpu_scan.multistep_cpu

    def off_by_a_little(x, spec, **params):
        spikes, v, m = honest(x, spec=spec, **params)
        return spikes, v * 1.001, m

    monkeypatch.setattr(cpu_scan, "multistep_cpu", off_by_a_little)
    assert doctor(tmp_path, "--presets", "lif,ar_lif") == 1
    out = capsys.readouterr().out
    assert "numba lif: V_T differs from the reference (max abs" in out
    assert "numba ar_lif: V_T differs from the reference" in out


def test_perturbed_gradient_fails_naming_preset_and_tensor(tmp_path, numba_on, monkeypatch, capsys):
    honest = cpu_scan.multistep_cpu
    monkeypatch.setattr(cpu_scan, "multistep_cpu", lambda x, spec, **p: honest(_ScaledGrad.apply(x), spec=spec, **p))
    assert doctor(tmp_path, "--presets", "i_lif") == 1
    lines = [line for line in capsys.readouterr().out.splitlines() if "FAIL" in line]
    assert lines and all("numba i_lif: dL/dx" in line for line in lines)  # the forward still matches


def test_perturbed_psn_fails(numba_on, monkeypatch):
    honest = cpu_parallel.parallel_cpu
    monkeypatch.setattr(cpu_parallel, "parallel_cpu", lambda x, w, b, k, p: honest(x, w * 1.001, b, k, p))
    found = {m.tensor for m in check_backend(cpu_backend("numba"), ["psn"], timing=False).mismatches}
    assert {"H_T", "dL/dx"} <= found


def test_triton_check_in_the_interpreter():
    """The Triton rows' comparison, run by Triton's CPU interpreter where there is no GPU."""
    pytest.importorskip("triton")
    from lit_snn.neurons.kernels import INTERPRET

    if not INTERPRET:
        pytest.skip("needs TRITON_INTERPRET=1 set before triton is imported")
    assert check_backend(triton_backend("cpu"), ["lif", "psn"], timing=False).mismatches == []


def test_stores_and_datasets(tmp_path, numba_off, capsys):
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for base in IDX_FILES.values():
        (raw / base).write_bytes(b"")  # located, not read
    with sqlite3.connect(tmp_path / "optuna.db") as conn:
        conn.execute("CREATE TABLE studies (study_id INTEGER)")
        conn.execute("INSERT INTO studies VALUES (1)")
    (tmp_path / "mlruns.db").write_text("not a database")
    assert doctor(tmp_path, "--presets", "lif", "--json") == 1
    rows = {row["check"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["data mnist"]["status"] == "ok" and rows["data mnist"]["detail"] == f"present in {raw}"
    assert rows["optuna storage"]["status"] == "ok" and rows["optuna storage"]["detail"].endswith(": 1 studies")
    tracking = rows["mlflow tracking"]
    assert tracking["status"] == "FAIL" and "not readable as a store" in tracking["detail"]


def test_unreachable_tracking_server_fails(tmp_path, numba_off, capsys):
    assert doctor(tmp_path, "--presets", "lif", "--tracking-uri", "http://127.0.0.1:9") == 1
    out = capsys.readouterr().out
    assert "mlflow tracking" in out and "http://127.0.0.1:9 is not reachable" in out


def test_bad_preset_is_bad_input(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        doctor(tmp_path, "--presets", "lfi")
    assert exit_.value.code == 2 and "unknown preset(s) lfi" in capsys.readouterr().err


@pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"), reason="Debian's Fashion-MNIST")
def test_debian_fashion_mnist_found_with_the_default_root(tmp_path, numba_off, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["doctor", "--presets", "lif"]) == 0
    assert "present in /usr/share/datasets/fashion-mnist" in capsys.readouterr().out
