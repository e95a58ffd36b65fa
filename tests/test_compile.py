"""``torch.compile`` of a whole network (``LitSNN(compile=True)``, ``--model.compile true``) is a
supported use: one graph without breaks through the neurons, the same training step as eager, and
checkpoints that load into an eager model.

On CPU the Triton kernels run in the interpreter (``TRITON_INTERPRET=1``, as ``make test`` sets it),
so ``backend: triton`` exercises the custom ops that the compiler sees on CUDA."""

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lit_snn.module import LitSNN

ROOT = Path(__file__).resolve().parents[1]
needs_interpreter = pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1",
                                       reason="the Triton path on CPU needs TRITON_INTERPRET=1 (make test sets it)")


def _model(neuron: str, backend: str, compile_backend: str) -> LitSNN:
    torch.manual_seed(0)
    return LitSNN(backbone="small_conv", neuron=neuron, neuron_overrides={"backend": backend}, time_steps=3,
                  backbone_kwargs={"width": 8}, compile=True, compile_backend=compile_backend).train()


def _step(model: LitSNN, x, y):
    outputs = model(x)  # [T, B, K]
    loss = model.loss(outputs, y)
    model.zero_grad()
    loss.backward()
    return outputs.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("neuron,backend", [
    pytest.param("lif", "triton", marks=needs_interpreter),
    pytest.param("ar_lif", "triton", marks=needs_interpreter),
    ("ar_lif", "auto"),  # CPU: the reference inside the graph
    ("i_lif", "auto"),
])
def test_compiled_network_is_one_graph_with_the_eager_step(neuron, backend):
    model = _model(neuron, backend, "aot_eager")  # aot_eager: autograd's graphs without inductor's codegen
    eager = copy.deepcopy(model)
    eager.hparams.compile = False
    x, y = torch.rand(5, 1, 8, 8), torch.randint(0, 10, (5,))
    explained = torch._dynamo.explain(model.net)(model.encode(x))
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons
    for _ in range(2):  # the second step runs the cached graph
        out, grads = _step(model, x, y)
        out_eager, grads_eager = _step(eager, x, y)
        torch.testing.assert_close(out, out_eager, rtol=1e-5, atol=1e-5)
        assert grads.keys() == grads_eager.keys() and grads
        for name in grads:
            torch.testing.assert_close(grads[name], grads_eager[name], rtol=1e-4, atol=1e-5, msg=name)
    assert model._compiled_net is not None
    assert model.state_dict().keys() == eager.state_dict().keys()  # the compiled copy is not a submodule
    model.eval()
    assert model._net_for_step() is model.net  # validation and test stay eager


def test_cli_trains_compiled_with_inductor_and_the_checkpoint_loads_eager(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "lit_snn.cli", "train", "--config", str(ROOT / "configs" / "digits_lif.yaml"),
         "--model.compile", "true", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "4",
         "--data.init_args.limit_val", "64", "--data.init_args.limit_test", "64",
         "--trainer.enable_progress_bar", "false", "--no-mlflow"],
        cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")})  # a cold compilation
    assert out.returncode == 0, out.stderr[-3000:]
    assert any(line.startswith("lit-snn: test acc") for line in out.stdout.splitlines()), out.stdout[-2000:]
    (best,) = tmp_path.rglob("*.ckpt")
    model = LitSNN.load_from_checkpoint(best, map_location="cpu")
    assert model.hparams.compile and model.state_dict().keys() == LitSNN().state_dict().keys()
