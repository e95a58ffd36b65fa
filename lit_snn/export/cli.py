"""``lit-snn export RUN_ID_OR_CKPT --nir FILE``: write a trained model as a NIR graph."""

from __future__ import annotations

import argparse

from ..errors import ExpectedError, run_command
from .checkpoint import DEFAULT_TRACKING_URI, load_model


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lit-snn export", description=(
        "Export a trained lit_snn model (a checkpoint file or an MLflow run's *.ckpt artifact) to NIR, for the "
        "neuron presets NIR represents exactly (lif, hard_lif, plif, da_lif)."))
    parser.add_argument("source", metavar="RUN_ID_OR_CKPT", help="a Lightning checkpoint file or an MLflow run id")
    parser.add_argument("--nir", required=True, metavar="FILE", help="the NIR file to write (HDF5)")
    parser.add_argument("--input-shape", default=None, metavar="C,H,W",
                        help="one sample's input shape (default: the model's in_channels, 8, 8: the embedded digits)")
    parser.add_argument("--dt", type=float, default=None, help="seconds per time step (default 1e-4, snnTorch's)")
    parser.add_argument("--tracking-uri", default=DEFAULT_TRACKING_URI, help="MLflow tracking URI for a run id")
    parser.add_argument("--verbose", action="store_true", help="tracebacks of expected failures too")
    return parser


def export(source: str, path: str, input_shape: str | None, dt: float | None, tracking_uri: str) -> int:
    """Load, trace on a zero input ``[T, 1, C, H, W]``, write the graph; prints what it wrote."""
    import nir
    import torch

    from .nir import DEFAULT_DT, to_nir

    model, _ = load_model(source, tracking_uri)
    hp = model.hparams
    shape = tuple(int(s) for s in input_shape.split(",")) if input_shape else (hp.in_channels, 8, 8)
    try:
        graph = to_nir(model.net, torch.zeros(hp.time_steps, 1, *shape), dt=DEFAULT_DT if dt is None else dt)
    except ValueError as exc:
        raise ExpectedError(str(exc)) from None
    nir.write(path, graph)
    print(f"lit-snn export: {hp.backbone} with {hp.neuron} -> {path} ({len(graph.nodes)} NIR nodes, "
          f"dt {graph.metadata['dt']:g} s, T {hp.time_steps})")
    return 0


def export_main(argv: list[str] | None = None) -> int:
    """``lit-snn export RUN_ID_OR_CKPT --nir FILE [--input-shape C,H,W] [--dt S] [--tracking-uri URI]``."""
    args = _parser().parse_args(argv)
    return run_command("lit-snn export", lambda: export(args.source, args.nir, args.input_shape, args.dt,
                                                        args.tracking_uri), args.verbose)
