"""The `lit-snn` dispatcher."""

import pytest
import torch

from lit_snn.cli import main
from lit_snn.neurons import list_neurons


def test_neurons_lists_every_preset(capsys):
    assert main(["neurons"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()] == list_neurons()


def test_help_and_unknown_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "lit-snn train" in out and "lit-snn reproduce RUN_ID" in out and "lit-snn evaluate  RUN_ID" in out
    assert "lit-snn export  RUN_ID_OR_CKPT --nir FILE" in out and "lit-snn neurobench RUN_ID_OR_CKPT" in out
    assert main(["trian"]) == 2
    assert "unknown command 'trian'; valid commands: train, ablate, sweep, compare, status, reproduce, evaluate, " \
        "export, neurobench, inspect, bench, doctor, neurons; did you mean 'train'?" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without a GPU")
def test_bench_without_gpu_exits_cleanly(capsys):
    assert main(["bench", "--quick"]) == 0
    assert "no CUDA GPU" in capsys.readouterr().out


def test_help_and_neurons_do_not_import_lightning():
    """``lit-snn --help`` and ``lit-snn neurons`` stay fast: Lightning (seconds of imports) is not loaded."""
    import subprocess
    import sys

    code = ("import sys; from lit_snn.cli import main; main(['--help']); main(['neurons']); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'lightning', 'pytorch_lightning', 'mlflow', "
            "'optuna'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-1] == "[]"
    assert "lif" in result.stdout  # the commands did run
