"""``lit-snn reproduce RUN_ID`` and ``lit-snn evaluate RUN_ID``: one MLflow run of a trial, again.

A trial run in MLflow carries what is needed to redo it (``lit_snn.trial_record``: its config
artifact, thread count, final metrics and best checkpoint), read back by ``trial_record.TrialRun``.

``reproduce`` re-trains the config with the same thread count (in a temporary folder, logging
nothing) and compares every logged ``test/*`` metric: exit 0 when all match (within ``--atol``),
1 otherwise. ``evaluate`` tests the logged checkpoint on the config's test split. Only MLflow's own
APIs are used (``MlflowClient``, ``mlflow.artifacts.download_artifacts``).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import tempfile
from typing import Any

from .errors import ExpectedError, run_command
from .trial_record import CONFIG_ARTIFACT, THREADS_PARAM, TrialRun


def _parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"lit-snn {command}", description=(
        f"Re-train an MLflow run from its {CONFIG_ARTIFACT} (same seed, threads and deterministic flag) and say "
        "whether its test metrics come out the same." if command == "reproduce" else
        "Test the checkpoint an MLflow run logged, on its config's test split, beside the logged metrics."))
    parser.add_argument("run_id", help="the MLflow run id (of a trial run)")
    parser.add_argument("--store-dir", default=None,
                        help="folder of the default store (mlruns.db); default: the current folder")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow tracking URI (default: sqlite:///<store-dir>/mlruns.db)")
    parser.add_argument("--verbose", action="store_true", help="tracebacks of expected failures too")
    if command == "reproduce":
        parser.add_argument("--atol", type=float, default=0.0,
                            help="largest accepted |reproduced - logged| per test metric (default 0: exact)")
    else:
        parser.add_argument("--ckpt", default=None, metavar="PATH_IN_ARTIFACTS",
                            help="which checkpoint artifact (default: the run's only *.ckpt)")
    return parser


@contextlib.contextmanager
def torch_threads(n: int | None):
    """``torch.set_num_threads(n)`` for the block (``None``: unchanged)."""
    import torch

    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def compare(logged: dict[str, float], new: dict[str, Any], atol: float = 0.0) -> tuple[list[str], list[str]]:
    """Table lines (one per logged metric: logged, new, difference) and the metrics that differ."""
    lines, differ = [], []
    width = max((len(k) for k in logged), default=0)
    for key, old in logged.items():
        value = new.get(key)
        if value is None:
            lines.append(f"{key:<{width}}  logged {old:<12.6g} now  (missing)")
            differ.append(f"{key} missing")
            continue
        value = float(value)
        diff = value - old
        same = value == old or (math.isnan(value) and math.isnan(old)) or abs(diff) <= atol
        lines.append(f"{key:<{width}}  logged {old:<12.6g} now {value:<12.6g} diff {diff:+.3g}")
        if not same:
            differ.append(f"{key} {value:.6g} vs logged {old:.6g}")
    return lines, differ


def _tracking_uri(args: argparse.Namespace) -> str:
    if args.tracking_uri:
        return args.tracking_uri
    from .orchestrate.storage import default_paths

    return default_paths(args.store_dir)["tracking_uri"]


def reproduce(run_id: str, tracking_uri: str, atol: float = 0.0) -> int:
    """Re-train the run's config with its thread count; print logged vs reproduced test metrics and a
    verdict. 0 when every logged ``test/*`` metric is reproduced (within ``atol``), 1 otherwise."""
    from .train import run_training

    run = TrialRun(run_id, tracking_uri)
    logged = run.logged_test_metrics()
    if not logged:
        raise ExpectedError(f"run {run_id!r} logged no test/* metric: nothing to compare (did the trial finish?)")
    with tempfile.TemporaryDirectory(prefix="lit_snn_reproduce_") as work, torch_threads(run.threads) as threads:
        print(f"lit-snn reproduce: re-training run {run_id} ({threads} torch threads"
              + ("" if run.threads is not None else f"; the run recorded none, {THREADS_PARAM} missing") + ")",
              flush=True)
        metrics = run_training(run.config, loggers=[], default_root_dir=work)
    lines, differ = compare(logged, metrics, atol)
    print("\n".join(lines))
    exact = all(float(metrics.get(k, math.nan)) == v for k, v in logged.items())
    verdict = "differs: " + ", ".join(differ) if differ else \
        "reproduced exactly" if exact else f"reproduced within atol {atol:g}"
    print(f"lit-snn reproduce: {verdict}", flush=True)
    return 1 if differ else 0


def evaluate(run_id: str, tracking_uri: str, ckpt: str | None = None) -> int:
    """Test the run's checkpoint artifact on its config's test split; print the metrics beside the logged ones."""
    from .checkpoints import read_checkpoint
    from .quiet import quiet_third_party
    from .train import build_from_dict, ctrl_c_as_keyboard_interrupt

    quiet_third_party()
    run = TrialRun(run_id, tracking_uri)
    artifact = run.checkpoint(ckpt)
    with tempfile.TemporaryDirectory(prefix="lit_snn_evaluate_") as work, torch_threads(run.threads) as threads:
        local = run.download(artifact, work)
        weights = read_checkpoint(local)["state_dict"]  # refused in one line if it needs code to load, or is damaged
        cli = build_from_dict(run.config, loggers=[], default_root_dir=work)
        # the weights only: a test needs nothing else of the checkpoint, and restoring its callbacks' state (the
        # trial's checkpoint folder) made Lightning warn that "the dirpath has changed"
        cli.model.load_state_dict(weights)
        with ctrl_c_as_keyboard_interrupt():
            (results,) = cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    print(f"lit-snn evaluate: run {run_id}, checkpoint {artifact} ({threads} torch threads)")
    logged = run.logged_test_metrics()
    lines, _ = compare({k: logged.get(k, math.nan) for k in sorted(results)}, results)
    print("\n".join(lines), flush=True)
    return 0


def reproduce_main(argv: list[str] | None = None) -> int:
    """``lit-snn reproduce RUN_ID [--store-dir DIR | --tracking-uri URI] [--atol A] [--verbose]``."""
    args = _parser("reproduce").parse_args(argv)
    return run_command("lit-snn reproduce", lambda: reproduce(args.run_id, _tracking_uri(args), args.atol),
                       args.verbose)


def evaluate_main(argv: list[str] | None = None) -> int:
    """``lit-snn evaluate RUN_ID [--ckpt PATH_IN_ARTIFACTS] [--store-dir DIR | --tracking-uri URI] [--verbose]``."""
    args = _parser("evaluate").parse_args(argv)
    return run_command("lit-snn evaluate", lambda: evaluate(args.run_id, _tracking_uri(args), args.ckpt),
                       args.verbose)
