"""``lit-snn inspect RUN_ID_OR_CKPT [--samples 4] [--out DIR]``: figures of a trained model's spiking layers.

The model comes from a checkpoint file or an MLflow run's ``*.ckpt`` artifact (``export.checkpoint.load_model``,
as ``export`` and ``neurobench``); the samples are the first test samples of the run's own DataModule
(a checkpoint file: the embedded digits). Per spiking layer: a spike raster, membrane traces with the
threshold, a firing-rate map, and for integer neurons the histogram of levels. Given a run id, the PNGs
are also logged to the run under ``inspect/``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ExpectedError, run_command


def _parser() -> argparse.ArgumentParser:
    from ..export.checkpoint import DEFAULT_TRACKING_URI

    parser = argparse.ArgumentParser(prog="lit-snn inspect", description=(
        "Spike rasters, membrane traces, firing-rate maps and (integer neurons) level histograms of every spiking "
        "layer of a trained model, on a few test samples; PNGs in --out, and under inspect/ in the MLflow run."))
    parser.add_argument("source", metavar="RUN_ID_OR_CKPT", help="a Lightning checkpoint file or an MLflow run id")
    parser.add_argument("--samples", type=int, default=4, help="how many test samples (default 4)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="folder for the PNGs (default: inspect/<run id or checkpoint name>)")
    parser.add_argument("--neurons", type=int, default=64, help="neurons per raster: the most active (default 64)")
    parser.add_argument("--traces", type=int, default=4, help="membrane traces per layer: the most active (default 4)")
    parser.add_argument("--tracking-uri", default=DEFAULT_TRACKING_URI, help="MLflow tracking URI for a run id")
    parser.add_argument("--verbose", action="store_true", help="tracebacks of expected failures too")
    return parser


def first_test_samples(run, samples: int):
    """The first ``samples`` test samples ``(x, y)``: of the run's DataModule, or of the embedded digits."""
    from ..data import DigitsDataModule
    from ..train import test_datamodule

    if run is not None:
        dm = test_datamodule(run.config, batch_size=samples, limit_test=samples)
    else:
        dm = DigitsDataModule(batch_size=samples, limit_test=samples)
        dm.setup("test")
    x, y = next(iter(dm.test_dataloader()))
    return x[:samples], y[:samples]


def write_figures(records, out: Path, neurons: int = 64, traces: int = 4) -> list[Path]:
    """The PNGs of every layer record into ``out``; returns their paths."""
    from .figures import (
        file_stem,
        level_histogram,
        membrane_data,
        plot_levels,
        plot_membrane,
        plot_raster,
        plot_rate_map,
        raster_data,
        rate_map,
    )

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for record in records:
        stem = file_stem(record.name)
        plot_raster(record, raster_data(record, neurons), path := out / f"raster_{stem}.png")
        written.append(path)
        traced = membrane_data(record, traces)
        if traced is not None:
            plot_membrane(record, traced, path := out / f"membrane_{stem}.png")
            written.append(path)
        plot_rate_map(record, rate_map(record), path := out / f"rates_{stem}.png")
        written.append(path)
        levels = level_histogram(record)
        if levels is not None:
            plot_levels(record, *levels, path := out / f"levels_{stem}.png")
            written.append(path)
    return written


def inspect(source: str, samples: int = 4, out: str | None = None, neurons: int = 64, traces: int = 4,
            tracking_uri: str | None = None) -> list[Path]:
    """Load, run ``samples`` test samples, write the figures (one line each); log them to the run."""
    import torch

    from ..export.checkpoint import DEFAULT_TRACKING_URI, load_model
    from .record import record_layers

    model, run = load_model(source, tracking_uri or DEFAULT_TRACKING_URI)
    x, y = first_test_samples(run, samples)
    with torch.no_grad():
        records = record_layers(model.net, model.encode(x))
    if not records:
        raise ExpectedError(f"{source}: the model has no spiking layer to inspect")
    folder = Path(out) if out else Path("inspect") / (run.run_id if run is not None else Path(source).stem)
    labels = ", ".join(str(int(v)) for v in (y.argmax(-1) if y.dim() == 2 else y))
    print(f"lit-snn inspect: {model.hparams.backbone} with {model.hparams.neuron}, T {model.hparams.time_steps}, "
          f"{len(x)} test samples (labels {labels}), {len(records)} spiking layers")
    written = write_figures(records, folder, neurons, traces)
    for path in written:
        print(f"lit-snn inspect: wrote {path}")
    if run is not None:
        run.client.log_artifacts(run.run_id, str(folder), "inspect")
        print(f"lit-snn inspect: logged {len(written)} files to MLflow run {run.run_id} under inspect/", flush=True)
    return written


def inspect_main(argv: list[str] | None = None) -> int:
    """``lit-snn inspect RUN_ID_OR_CKPT [--samples N] [--out DIR] [--neurons N] [--traces N] [--tracking-uri URI]``."""
    parser = _parser()
    args = parser.parse_args(argv)
    for name in ("samples", "neurons", "traces"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")

    def body() -> int:
        inspect(args.source, args.samples, args.out, args.neurons, args.traces, args.tracking_uri)
        return 0

    return run_command("lit-snn inspect", body, args.verbose)
