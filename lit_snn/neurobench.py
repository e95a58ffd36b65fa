"""NeuroBench's own metrics on a trained lit_snn model, and ``lit-snn neurobench RUN_ID_OR_CKPT``.

NeuroBench (``neurobench`` 2.3) expects batch-first data ``[B, T, ...]`` and divides its counts by
dim 0; our backbones are time-first (``[T, B, ...]`` -> ``[T, B, K]``). ``TimeFirstModel`` is
NeuroBench's ``TorchModel`` with the transposes, and registers ``SpikingNeuron`` as an activation
module so that NeuroBench's hooks see our neurons. Static images are direct-encoded (repeated over
T) by a preprocessor; the prediction is the argmax of the summed per-step logits
(NeuroBench's ``ChooseMaxCount``), which is ``LitSNN``'s rule.

Where the definitions coincide (binary neurons, ACs of spiking-input layers over real
connections, activation sparsity) NeuroBench's numbers equal ``lit_snn.energy``'s; where they do
not: NeuroBench's effective MACs skip zero analog inputs and padding (``connection_macs`` is ours
over real connections), and it counts every layer reading a non-binary input (integer spikes,
average-pooled spikes) as MACs over its nonzero inputs (our ``integer_ops="nonzero"`` ACs).
"""

from __future__ import annotations

import argparse
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from .errors import run_command
from .neurons import SpikingNeuron

STATIC = ("Footprint", "ConnectionSparsity", "ParameterCount")
WORKLOAD = ("ActivationSparsity", "SynapticOperations", "ClassificationAccuracy")
UNITS = {  # flat_metrics' keys (without the prefix) -> the unit of NeuroBench's number
    "Footprint": "bytes (parameters and buffers)",
    "ConnectionSparsity": "fraction of zero weights",
    "ParameterCount": "parameters",
    "ActivationSparsity": "fraction of zero neuron outputs",
    "SynapticOperations/Effective_MACs": "MACs per sample (all T steps)",
    "SynapticOperations/Effective_ACs": "ACs per sample (all T steps)",
    "SynapticOperations/Dense": "operations per sample (all T steps, dense)",
    "ClassificationAccuracy": "fraction correct",
}


def _time_first_model_class():
    from neurobench.models import TorchModel

    class TimeFirstModel(TorchModel):
        """NeuroBench's ``TorchModel`` around a time-first net: ``[B, T, ...]`` in, ``[B, T, K]`` out."""

        def __init__(self, net: nn.Module) -> None:
            super().__init__(net)
            self.add_activation_module(SpikingNeuron)

        def __call__(self, batch: Tensor) -> Tensor:  # [B, T, ...] -> [B, T, K]
            return self.net(batch.transpose(0, 1)).transpose(0, 1)

    return TimeFirstModel


def time_first_model(net: nn.Module):
    """A NeuroBench model (``TorchModel`` subclass) of a lit_snn backbone, in eval mode."""
    return _time_first_model_class()(net)


def direct_encoding(time_steps: int):
    """NeuroBench preprocessor: static ``x [B, C, H, W]`` -> ``[B, T, C, H, W]`` (the image at every
    step); DVS frames ``[B, T, P, H, W]`` pass unchanged."""

    def encode(data: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        x, y = data
        return (x.unsqueeze(1).expand(x.shape[0], time_steps, *x.shape[1:]) if x.dim() == 4 else x), y

    return encode


@torch.no_grad()
def neurobench_metrics(net: nn.Module, loader: DataLoader, time_steps: int) -> dict[str, Any]:
    """NeuroBench's static (footprint, connection sparsity, parameter count) and workload metrics
    (activation sparsity, synaptic operations as effective MACs/ACs and dense, classification
    accuracy) of ``net`` on ``loader``'s batches ``(x [B, ...], y [B])``, computed by
    ``neurobench.benchmarks.Benchmark``. Keys as NeuroBench names them; ``SynapticOperations`` is
    a dict ``Effective_MACs``, ``Effective_ACs``, ``Dense`` (per sample, all T steps)."""
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics import static, workload
    from neurobench.processors.postprocessors import ChooseMaxCount

    was_training = net.training
    metrics = [[getattr(static, m) for m in STATIC], [getattr(workload, m) for m in WORKLOAD]]
    benchmark = Benchmark(time_first_model(net), loader, [direct_encoding(time_steps)], [ChooseMaxCount()], metrics)
    try:
        return benchmark.run(quiet=True)
    finally:
        benchmark.workload_metric_manager.cleanup_hooks(benchmark.model)
        net.train(was_training)


def flat_metrics(results: dict[str, Any], prefix: str = "neurobench/") -> dict[str, float]:
    """NeuroBench's results as flat scalars (``neurobench/SynapticOperations/Effective_ACs``, ...)."""
    out = {}
    for key, value in results.items():
        if isinstance(value, dict):
            out.update({f"{prefix}{key}/{k}": float(v) for k, v in value.items()})
        else:
            out[f"{prefix}{key}"] = float(value)
    return out


class NeuroBenchCallback(L.Callback):
    """After ``trainer.test``: NeuroBench's metrics of the tested model on the same test loader,
    logged to every logger as ``neurobench/...`` (``results`` keeps the flat values).

    ``lit-snn train ... --trainer.callbacks+=lit_snn.neurobench.NeuroBenchCallback``, or
    ``lit-snn ablate FILE --neurobench`` for every trial (compare then shows them beside ours).
    """

    def __init__(self) -> None:
        super().__init__()
        self.results: dict[str, float] = {}

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loaders = trainer.test_dataloaders
        loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
        self.results = flat_metrics(neurobench_metrics(pl_module.net, loader, pl_module.hparams.time_steps))
        for logger in trainer.loggers:
            logger.log_metrics(self.results, step=trainer.global_step)


def _parser() -> argparse.ArgumentParser:
    from .export.checkpoint import DEFAULT_TRACKING_URI

    parser = argparse.ArgumentParser(prog="lit-snn neurobench", description=(
        "NeuroBench's metrics (computed by the neurobench package) of a trained model on the test split of its "
        "run's config (an MLflow trial run), or of the embedded digits (a checkpoint file)."))
    parser.add_argument("source", metavar="RUN_ID_OR_CKPT", help="a Lightning checkpoint file or an MLflow run id")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the run's, else 64")
    parser.add_argument("--limit", type=int, default=None, help="first N test samples only (default: the run's)")
    parser.add_argument("--tracking-uri", default=DEFAULT_TRACKING_URI, help="MLflow tracking URI for a run id")
    parser.add_argument("--verbose", action="store_true", help="tracebacks of expected failures too")
    return parser


def _run(args: argparse.Namespace) -> int:
    from .data import DigitsDataModule
    from .export.checkpoint import load_model

    model, run = load_model(args.source, args.tracking_uri)
    if run is not None:  # the run's own data, as its trial tested it
        from .train import test_datamodule

        given = {k: v for k, v in (("batch_size", args.batch_size), ("limit_test", args.limit)) if v is not None}
        dm = test_datamodule(run.config, **given)
    else:
        dm = DigitsDataModule(batch_size=args.batch_size or 64, limit_test=args.limit)
        dm.setup("test")
    results = neurobench_metrics(model.net, dm.test_dataloader(), model.hparams.time_steps)
    hp, what = model.hparams, f"run {args.source}" if run is not None else f"checkpoint {args.source}"
    print(f"lit-snn neurobench: {what}: {hp.backbone} with {hp.neuron}, T {hp.time_steps}; "
          f"{dm.name} test split, {len(dm.test_set)} samples")
    for key, value in flat_metrics(results, prefix="").items():
        print(f"{key:36s} {value:>14.6g}  {UNITS.get(key, '')}".rstrip())
    return 0


def neurobench_main(argv: list[str] | None = None) -> int:
    """``lit-snn neurobench RUN_ID_OR_CKPT [--batch-size N] [--limit N] [--tracking-uri URI]``."""
    args = _parser().parse_args(argv)
    return run_command("lit-snn neurobench", lambda: _run(args), args.verbose)
