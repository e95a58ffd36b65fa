"""``lit-snn train`` as one MLflow run, recorded like an ablation trial's (``lit_snn.runs``).

The run holds the record (``lit_snn.trial_record``) ``lit-snn reproduce|evaluate|export|neurobench|inspect
RUN_ID`` read: the artifact ``config.yaml`` (``train.recorded_config``: every parsed value, its seed included), the
config as params, ``repro.torch_threads`` and the ``repro.*`` tags, Lightning's metric curves, the
final metrics and the best checkpoint as a ``*.ckpt`` artifact. The training itself runs that
recorded config through ``run_training``'s own path (``train.training_cli``), which is what
``reproduce`` runs again. The run ends FINISHED, FAILED (a failure, tagged ``lit_snn.error``) or
KILLED (Ctrl-C), as a trial's does.

Stores as ``lit-snn ablate``'s: ``sqlite:///<store-dir>/mlruns.db`` with artifacts in
``<store-dir>/mlartifacts`` (``--store-dir`` default: the current folder), or ``--tracking-uri``;
a tracking server that does not answer is one line and nothing is trained. Checkpoints are
written under ``<store-dir>/.lit_snn_cache/lightning/train`` unless ``--trainer.default_root_dir``
says where; loggers the config names (``trainer.logger``) log beside MLflow.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any

from lightning.fabric.utilities.exceptions import MisconfigurationException

from .errors import ExpectedError, describe_expected
from .quiet import quiet_third_party
from .train import LitSNNCLI, build_cli, fit_reporting, recorded_config, training_cli
from .trial_record import TAG_COMMAND, TAG_ERROR, TAG_RESUMED_FROM, TAG_ROLE

RUN_ENV = "LIT_SNN_TRAIN_RUN_ID"  # DDP: the ranks Lightning starts (the same command again) log into rank 0's run
ROLE = "train"  # the run's lit_snn.role tag (a study's runs: "study", "trial")


def experiment_name(cli: LitSNNCLI) -> str:
    """``--experiment``, else ``train/<stem of the first --config file>``, else ``train``."""
    if cli.config.get("experiment"):
        return cli.config["experiment"]
    files = [Path(str(p)) for p in (cli.config.get("config") or [])]
    return f"train/{files[0].stem}" if files and files[0].suffix in (".yaml", ".yml", ".json") else "train"


def run_name(config: dict) -> str:
    """``small_conv lif seed 0``: the backbone, the neuron and the seed of a run config."""
    model = config.get("model", {})
    return f"{model.get('backbone', '?')} {model.get('neuron', '?')} seed {config.get('seed_everything')}"


def _config_loggers(cli: LitSNNCLI) -> list:
    """The loggers the config names (none when it leaves Lightning's default, or says ``false``)."""
    return list(cli.trainer.loggers) if cli.config["trainer"].get("logger") not in (None, True, False) else []


def _ui_hint(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    from .orchestrate.tracking import is_server

    if is_server(tracking_uri):
        return f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return f"mlflow ui --backend-store-uri {tracking_uri} (make ui: the project folder's mlruns.db)"


def main(argv: list[str] | None = None, verbose: bool = False) -> dict[str, float] | None:
    """``lit-snn train --config FILE [--model.neuron ar_lif ...] [--ckpt_path FILE] [--no-mlflow]``: fit
    (or resume), test, print a summary line; recorded as an MLflow run unless ``--no-mlflow``
    (``train_tracked``). A bad config raises ``ExpectedError`` with the parser's or
    constructor's message; a failure during the fit says which checkpoint was kept. ``verbose``
    (``lit-snn train --verbose``) keeps the known third-party warnings (``lit_snn.quiet``)."""
    if not verbose:
        quiet_third_party()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        cli = build_cli(argv)
    except (ValueError, KeyError, argparse.ArgumentError, MisconfigurationException) as exc:
        raise ExpectedError(str(exc)) from exc
    if not cli.config.get("no_mlflow"):
        return train_tracked(cli, argv)
    return fit_reporting(cli)


def train_tracked(cli: LitSNNCLI, argv: list[str]) -> dict[str, float]:
    """Record the parsed training ``cli`` as an MLflow run, train its recorded config into that run,
    close the run with the outcome; prints the summary line, then the run id and where to browse it."""
    from lightning.pytorch.utilities import rank_zero_only

    from .orchestrate.storage import default_paths
    from .orchestrate.tracking import Tracker, check_reachable, is_server

    paths = default_paths(cli.config.get("store_dir"))
    tracking_uri = cli.config.get("tracking_uri") or paths["tracking_uri"]
    artifact_root = None if is_server(tracking_uri) else paths["artifact_root"]
    root = cli.config["trainer"].get("default_root_dir") or str(Path(paths["work_dir"]) / ROLE)
    config = recorded_config(cli)
    loggers = _config_loggers(cli)
    inherited = os.environ.get(RUN_ENV)
    if rank_zero_only.rank != 0 and inherited:  # a DDP rank: rank 0 records and closes the run
        tracker = Tracker(tracking_uri, artifact_root)
        return fit_reporting(_training_cli(config, [*loggers, tracker.lightning_logger(inherited)], root))
    check_reachable(tracking_uri)
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # our last line gives the link
    tracker = Tracker(tracking_uri, artifact_root)
    experiment = experiment_name(cli)
    experiment_id = tracker.experiment_id(experiment)
    tags: dict[str, Any] = {TAG_ROLE: ROLE, TAG_COMMAND: shlex.join(["lit-snn", "train", *argv])}
    if config.get("ckpt_path"):
        tags[TAG_RESUMED_FROM] = config["ckpt_path"]
    run_id = tracker.client.create_run(experiment_id, run_name=run_name(config), tags=tags).info.run_id
    os.environ[RUN_ENV] = run_id
    try:
        tracker.log_run_record(run_id, config, config)
        metrics = fit_reporting(_training_cli(config, [*loggers, tracker.lightning_logger(run_id)], root))
        tracker.log_metrics(run_id, metrics, new_only=True)  # train_seconds, epochs: Lightning logged the rest
    except BaseException as exc:
        interrupted = isinstance(exc, (KeyboardInterrupt, SystemExit))
        status = "KILLED" if interrupted else "FAILED"
        error = "interrupted" if interrupted else describe_expected(exc) or f"{type(exc).__name__}: {exc}"
        _close(tracker, run_id, "FAIL", status, {TAG_ERROR: error}, exc)
        raise
    finally:
        os.environ.pop(RUN_ENV, None)
    tracker.finish(run_id, "COMPLETE")
    print(f"lit-snn: MLflow run {run_id} (experiment {experiment!r}, {tracker.tracking_uri}); "
          f"lit-snn reproduce|evaluate|inspect {run_id}"
          + ("" if is_server(tracking_uri) else f" --tracking-uri {tracker.tracking_uri}"), flush=True)
    print(f"lit-snn: browse it: {_ui_hint(tracker.tracking_uri, experiment_id, run_id)}", flush=True)
    return metrics


def _training_cli(config: dict, loggers: list, root: str) -> LitSNNCLI:
    with warnings.catch_warnings():  # jsonargparse cannot write the MLflow logger instance into its config: intended
        warnings.filterwarnings("ignore", message=r"\s*Unable to serialize instance")
        return training_cli(config, loggers=loggers, default_root_dir=root)


def _close(tracker, run_id: str, state: str, status: str, tags: dict, exc: BaseException) -> None:
    """Close the run after a failure without letting a tracking error hide the failure; say how it ended."""
    try:
        tracker.finish(run_id, state, tags, status=status)
    except Exception as close_error:  # noqa: BLE001
        exc.add_note(f"MLflow run {run_id} could not be closed: {close_error}")
    else:
        exc.add_note(f"MLflow run {run_id} ended {status}")
