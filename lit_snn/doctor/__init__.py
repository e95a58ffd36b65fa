"""``lit-snn doctor``: what this machine will run and whether it computes the right thing, in one table.

Rows: Python and the packages' versions; the CPU path (the numba kernels, their cache warm or cold,
or with numba off the PyTorch reference itself); the GPU; every neuron preset on the kernels this
machine trains with (numba's, and on a GPU Triton's) against the PyTorch reference, forward and every gradient
(``kernels.py``), with a short timing; the Optuna storage and the MLflow tracking URI; each
registered dataset under ``--root``. Exit status 1 when a backend computes something other than the
reference (a line per preset and tensor) or a store is unusable; warnings (no GPU, a dataset absent)
leave it 0; bad arguments exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from .environment import (
    FAIL,
    OK,
    WARN,
    Row,
    cpu_path_row,
    dataset_rows,
    gpu_row,
    numba_compile_counts,
    optuna_row,
    tracking_row,
    version_rows,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lit-snn doctor", description="Check this machine: versions, the "
                                     "neuron backends against the reference, the stores, the datasets.")
    parser.add_argument("--root", default="data", help="dataset root to look in (default: data)")
    parser.add_argument("--store-dir", default=None,
                        help="folder of the default stores optuna.db and mlruns.db (default: cwd)")
    parser.add_argument("--storage", default=None, help="Optuna storage URL (default: sqlite:///<store-dir>/optuna.db)")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow tracking URI (default: sqlite:///<store-dir>/mlruns.db)")
    parser.add_argument("--presets", default=None, metavar="NAME[,NAME...]",
                        help="check only these neuron presets (default: every preset)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    return parser


def _presets(arg: str | None, parser: argparse.ArgumentParser) -> list[str] | None:
    from ..neurons import list_neurons

    if arg is None:
        return None
    names = [n.strip() for n in arg.split(",") if n.strip()]
    unknown = [n for n in names if n not in list_neurons()]
    if unknown or not names:
        parser.error(f"--presets: unknown preset(s) {', '.join(unknown) or '(none given)'}; "
                     f"valid: {', '.join(list_neurons())}")
    return names


def _kernel_rows(backend, presets: list[str] | None) -> list[Row]:
    """One row per backend when every preset matches; a FAIL row per preset and tensor otherwise."""
    from .kernels import check_backend

    report = check_backend(backend, presets)
    check = f"{backend.name} vs reference"
    if report.mismatches:
        return [Row(check, FAIL, m.line()) for m in report.mismatches]
    detail = f"{len(report.presets)} presets, forward and every gradient, in {report.seconds:.1f} s; {report.timing}"
    return [Row(check, OK, detail)]


def run_checks(args: argparse.Namespace, presets: list[str] | None, progress=print) -> list[Row]:
    """Every row of the table, in order (``progress`` announces the slow steps)."""
    from ..orchestrate.storage import default_paths
    from .kernels import cpu_backend, triton_backend

    gpu, has_gpu = gpu_row()
    rows = version_rows(has_gpu)
    cpu_row, cpu_name = cpu_path_row()
    rows += [cpu_row, gpu]
    if cpu_name == "numba" and "cold" in cpu_row.detail:
        progress("lit-snn doctor: compiling the numba kernels (cold cache): this takes 1-3 minutes, once")
    if cpu_name is not None:  # else the CPU path is the reference: nothing to check against it
        rows += _kernel_rows(cpu_backend(cpu_name), presets)
    if cpu_name == "numba":
        hits, compiled = numba_compile_counts()
        rows.append(Row("numba kernels", OK, f"{compiled} compiled now, {hits} loaded from the cache"))
    if has_gpu and not any(r.check == "triton" and r.status == FAIL for r in rows):
        progress("lit-snn doctor: checking the Triton kernels (a first run compiles them: up to a minute)")
        rows += _kernel_rows(triton_backend(), presets)
    paths = default_paths(args.store_dir)
    rows.append(optuna_row(args.storage or paths["storage"]))
    rows.append(tracking_row(args.tracking_uri or paths["tracking_uri"]))
    rows += dataset_rows(args.root)
    return rows


def format_table(rows: list[Row]) -> str:
    width = max(len(r.check) for r in rows)
    return "\n".join(f"{r.check:<{width}}  {r.status:<4}  {r.detail}" for r in rows)


def doctor_main(argv: list[str] | None = None) -> int:
    """``lit-snn doctor [--root DIR] [--storage URL] [--tracking-uri URI] [--presets a,b] [--json]``."""
    parser = _parser()
    args = parser.parse_args(argv)
    presets = _presets(args.presets, parser)
    rows = run_checks(args, presets, lambda line: print(line, file=sys.stderr, flush=True))
    failed = [r for r in rows if r.status == FAIL]
    warned = [r for r in rows if r.status == WARN]
    if args.json:
        print(json.dumps([vars(r) for r in rows], indent=1))
    else:
        print(format_table(rows))
    if failed:
        print(f"lit-snn doctor: {len(failed)} check(s) failed", file=sys.stderr)
        return 1
    print(f"lit-snn doctor: every check passed ({len(warned)} warning(s))", file=sys.stderr)
    return 0


__all__ = ["FAIL", "OK", "WARN", "Row", "doctor_main", "format_table", "run_checks"]
