"""What the orchestrator needs from the training code, and the reproducibility record of a trial.

The training entry points are ``lit_snn.train``'s (imported when first used: the command line
parses and validates files without loading Lightning).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import os
import platform
import socket
import subprocess
import sys
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

from ..quiet import quiet_third_party
from ..trial_record import THREADS_PARAM
from .dotted import get_path

LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning")
MLFLOW_LOGGERS = ("mlflow.store.db.utils",)  # "Creating initial MLflow database tables..." (INFO) on a new store


def resolve_run(config: dict):
    """``lit_snn.train.resolve_run``: the resolved config and the metrics its training logs."""
    from lit_snn.train import resolve_run as resolve

    return resolve(config)


def run_training(config: dict, **kwargs: Any) -> dict[str, float]:
    """Fit and test one run config; returns the final metrics."""
    from lit_snn.train import run_training as run

    return run(config, **kwargs)


def quiet_libraries(verbose: bool = False) -> None:
    """Silence per-trial chatter of Lightning, Optuna, MLflow and jsonargparse (our own lines say what
    ran) and the known third-party warnings (``lit_snn.quiet``); ``verbose``: leave everything on."""
    import optuna

    # MLflow prints "View run ... at: <url>" each time a run on a server ends; the study prints its link once
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    if verbose:
        return
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in (*LIGHTNING_LOGGERS, *MLFLOW_LOGGERS):
        logging.getLogger(name).setLevel(logging.WARNING)
    for message in (".*does not have many workers.*", ".*smaller than the logging interval.*",
                    ".*LightningCLI's args parameter is intended.*",
                    ".*configured with multiple `ModelCheckpoint` callbacks.*",  # a SLURM task's resume point
                    # a DDP trial: the module logs torchmetrics' compute(), which has synced the ranks already
                    ".*when logging on epoch level in distributed setting.*",
                    r"\s*Unable to serialize instance"):  # jsonargparse on the logger instance we pass
        warnings.filterwarnings("ignore", message=message)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    quiet_third_party()


@contextlib.contextmanager
def quiet(verbose: bool = False):
    """``quiet_libraries(verbose)`` for the duration of a ``with`` block (warning filters and log levels restored)."""
    loggers = [logging.getLogger(name) for name in (*LIGHTNING_LOGGERS, *MLFLOW_LOGGERS, "optuna")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        quiet_libraries(verbose)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


# ---------------------------------------------------------------------- reproducibility
_PACKAGES = ("torch", "lightning", "optuna", "mlflow", "triton", "numpy", "lit_snn")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def git_commit() -> dict[str, str]:
    """The commit of the checkout ``lit_snn`` is imported from, and whether it has local changes."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], check=False, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            check=False, capture_output=True, text=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown"}
    if not commit:
        return {"commit": "unknown"}
    return {"commit": commit, "dirty": str(bool(dirty)).lower()}


def _dataset_description(config: dict) -> str:
    """The DataModule's class path and the first line of its docstring (its split/framing summary)."""
    class_path = get_path(config, "data.class_path", None)
    if not isinstance(class_path, str):
        return "unknown"
    module_name, _, cls_name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
        doc = (cls.__doc__ or "").strip().splitlines()
    except Exception:  # noqa: BLE001 - the description is informative only
        doc = []
    return f"{class_path}: {doc[0]}" if doc else class_path


def reproducibility_info(config: dict) -> dict[str, str]:
    """Flat ``{name: text}`` record of what one trial ran on: seed, backend, data, versions, commit."""
    import torch

    info: dict[str, Any] = {
        "seed": get_path(config, "seed_everything", None),
        "accelerator": get_path(config, "trainer.accelerator", "auto"),
        "neuron_backend": get_path(config, "model.neuron_overrides.backend", "auto"),
        "cuda_available": torch.cuda.is_available(),
        "dataset": _dataset_description(config),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": socket.gethostname(),
    }
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
    for package in _PACKAGES:
        info[f"version.{package}"] = _version(package) or "not installed"
    info.update({f"git.{k}": v for k, v in git_commit().items()})
    return {key: str(value) for key, value in info.items()}


def result_settings() -> dict[str, Any]:
    """Settings outside the config that change a trial's numbers (logged as params, not only tags):
    the CPU thread count changes the summation order of every reduction."""
    import torch

    return {THREADS_PARAM: torch.get_num_threads()}
