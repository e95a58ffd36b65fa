"""``lit-snn train``: Lightning's CLI over ``LitSNN`` and the DataModules, plus the programmatic
entry points the orchestrator uses (``resolve_config``, ``run_training``).

A run config is Lightning-CLI YAML::

    seed_everything: 0
    trainer: {max_epochs: 10}
    model: {backbone: small_conv, neuron: lif, neuron_overrides: {}, time_steps: 4, lr: 0.1}
    data: {class_path: lit_snn.data.DigitsDataModule, init_args: {batch_size: 64}}

``model.time_steps`` is the single source of T (linked into the DataModule, which frames DVS
data with it); ``num_classes`` and ``in_channels`` come from the DataModule.
``--ckpt_path FILE`` (or ``ckpt_path:`` in a run config) resumes a fit from a Lightning checkpoint.
``lit-snn train`` (``lit_snn.tracked_train.main``) records the training as an MLflow run
(``--no-mlflow`` opts out), the record that ``lit-snn reproduce|evaluate RUN_ID`` read (``lit_snn.runs``).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import errno
import os
import re
import signal
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, Optional

import lightning as L
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback

from .checkpoints import WEIGHTS_ONLY, read_checkpoint
from .data import SNNDataModule
from .errors import DISK_FULL, ConfigError
from .module import LitSNN

DEFAULT_DATA = {"class_path": "lit_snn.data.DigitsDataModule"}
_CLASS_PATH = re.compile(r"[A-Za-z_][\w.]*")
FIT_METRICS = ("train_seconds", "epochs")  # what fit_and_test adds to the module's own metrics


class LitSNNCLI(LightningCLI):
    """LightningCLI with lit_snn's argument links and defaults."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("model.time_steps", "data.init_args.time_steps")
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.link_arguments("data.in_channels", "model.in_channels", apply_on="instantiate")
        parser.set_defaults({"data": DEFAULT_DATA})
        parser.add_argument("--ckpt_path", type=Optional[str], default=None,
                            help="Resume the fit from this Lightning checkpoint (epoch, weights, optimizer, "
                                 "scheduler, callbacks)")
        add_tracking_arguments(parser)


TRACKING_KEYS = ("no_mlflow", "tracking_uri", "store_dir", "experiment")  # where the run is recorded, not a setting


def add_tracking_arguments(parser) -> None:
    """``lit-snn train``'s MLflow options (read by ``lit_snn.tracked_train``; a run config may hold them too)."""
    group = parser.add_argument_group("MLflow", "Every training is an MLflow run (lit-snn reproduce|evaluate|"
                                      "export|neurobench|inspect RUN_ID) unless --no-mlflow.")
    group.add_argument("--no-mlflow", action="store_true", help="do not record the training in MLflow")
    group.add_argument("--tracking-uri", type=Optional[str], default=None,
                       help="MLflow tracking URI (default: sqlite:///<store-dir>/mlruns.db)")
    group.add_argument("--store-dir", type=Optional[str], default=None,
                       help="folder of the default store mlruns.db and mlartifacts/ (default: the current folder)")
    group.add_argument("--experiment", type=Optional[str], default=None,
                       help="MLflow experiment (default: train/<stem of the first --config>)")


def _trainer_defaults(callbacks: list | None = None, loggers: list | None = None,
                      default_root_dir: str | None = None) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "callbacks": [
            # best validation loss: continuous, so no early tie wins on a small validation split
            ModelCheckpoint(monitor="val/loss", mode="min", filename="best-{epoch}", save_top_k=1),
            *(callbacks or []),
        ],
        "log_every_n_steps": 10,
    }
    if loggers is not None:
        defaults["logger"] = loggers or False
    if default_root_dir is not None:
        defaults["default_root_dir"] = default_root_dir
    return defaults


def build_cli(args, *, callbacks: list | None = None, loggers: list | None = None,
              default_root_dir: str | None = None, save_config: bool = True) -> LitSNNCLI:
    """Parse ``args`` (argv list or config dict) and instantiate trainer, model and data.

    Parse errors raise ``argparse.ArgumentError`` (``--help`` and ``--print_config`` still exit).
    """
    if isinstance(args, list):
        args = _data_from_its_defaults(args)
    with warnings.catch_warnings():  # a config dict beside pytest's/the orchestrator's own argv is intended
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        return _build_cli(args, callbacks, loggers, default_root_dir, save_config)


def _build_cli(args, callbacks, loggers, default_root_dir, save_config) -> LitSNNCLI:
    return LitSNNCLI(
        LitSNN,
        SNNDataModule,
        subclass_mode_data=True,
        args=args,
        run=False,
        trainer_defaults=_trainer_defaults(callbacks, loggers, default_root_dir),
        save_config_callback=SaveConfigCallback if save_config else None,
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
        parser_kwargs={"prog": "lit-snn train", "exit_on_error": False},
    )


def _config_data_class(value: str) -> str | None:
    """The data class_path of a ``--config`` value (a file or inline YAML), when it names one."""
    try:
        text = Path(value).read_text() if os.path.isfile(value) else value
        data = (yaml.safe_load(text) or {}).get("data")
    except (OSError, yaml.YAMLError, AttributeError):
        return None  # the parser reports it
    return data.get("class_path") if isinstance(data, dict) else data if isinstance(data, str) else None


def _data_from_its_defaults(argv: list[str]) -> list[str]:
    """A ``--data CLASS`` that names another class than the config's starts from that class's defaults.

    jsonargparse carries over every init arg of the previous class that the new one accepts (the
    digits' ``image_size: 8`` and ``crop_padding: 0`` into Tiny-ImageNet); a ``--data null`` put
    before it drops them, so only the ``--data.*`` arguments given after it are kept.
    """
    out, current = [], DEFAULT_DATA["class_path"]
    for i, arg in enumerate(argv):
        key, sep, value = arg.partition("=")
        if not sep:
            value = argv[i + 1] if i + 1 < len(argv) else ""
        if key in ("--config", "-c"):
            current = _config_data_class(value) or current
        elif key in ("--data", "--data.class_path") and _CLASS_PATH.fullmatch(value) and not os.path.exists(value):
            if value.lower() in ("null", "none"):
                value = None
            elif current is not None and value.rsplit(".", 1)[-1] != current.rsplit(".", 1)[-1]:
                out.append("--data=null")
            current = value
        out.append(arg)
    return out


def build_from_dict(config: dict, **kwargs) -> LitSNNCLI:
    """``build_cli`` on a config dict, with every parser or constructor complaint as ``ValueError``."""
    try:
        return build_cli(config, save_config=False, **kwargs)
    except SystemExit as exc:  # jsonargparse may report bad keys by exiting; make it an exception
        raise ConfigError(f"invalid run config: {exc}") from None
    except (TypeError, KeyError, argparse.ArgumentError) as exc:
        raise ConfigError(f"invalid run config: {exc}") from exc


def test_datamodule(config: dict, **init_args: Any):
    """The DataModule of a run config, its ``init_args`` updated with ``init_args`` (e.g. ``limit_test``),
    set up for ``test``."""
    config = {**config, "trainer": {**config.get("trainer", {}), "logger": False}}
    config["data"] = {**config["data"], "init_args": {**config["data"].get("init_args", {}), **init_args}}
    dm = build_from_dict(config, loggers=[]).datamodule
    dm.setup("test")
    return dm


class ResolvedRun(NamedTuple):
    """A run config with every default filled in, the names of the metrics its training logs, and
    its DataModule's ``check_data`` (raises when the dataset's files are missing; reads nothing)."""

    config: dict
    metrics: frozenset[str]
    check_data: Callable[[], None]


def resolve_config(config: dict) -> dict:
    """Validate a run config and return it with every default filled in (see ``resolve_run``)."""
    return resolve_run(config).config


def resolve_run(config: dict) -> ResolvedRun:
    """Validate a run config: the config with every default filled in, and the metrics it will log.

    Builds the model and DataModule (so an unknown preset, field or dataset path fails here,
    before any training). Raises ``ValueError`` with the parser's or constructor's message.
    """
    cli = build_from_dict(copy.deepcopy(config), loggers=[])
    out = yaml.safe_load(cli.parser.dump(cli.config, format="yaml", skip_none=False))
    out.pop("config", None)
    out.pop("ckpt_path", None)  # a command-line action (resume), not a setting of the run
    for key in TRACKING_KEYS:
        out.pop(key, None)
    # linked values are dropped from the dump: put them back so a run's record is complete
    out["data"].setdefault("init_args", {})["time_steps"] = cli.datamodule.time_steps
    out["model"]["num_classes"] = cli.model.hparams.num_classes
    out["model"]["in_channels"] = cli.model.hparams.in_channels
    return ResolvedRun(out, frozenset(cli.model.metric_names() | set(FIT_METRICS)), cli.datamodule.check_data)


def run_training(config: dict, *, callbacks: list | None = None, loggers: list | None = None,
                 default_root_dir: str | None = None, verbose: bool = False) -> dict[str, float]:
    """Fit then test one run config; returns the final metrics (``test/acc``, ``val/acc_best``, ...)."""
    cli = training_cli(config, callbacks=callbacks, loggers=loggers, default_root_dir=default_root_dir)
    return fit_and_test(cli.trainer, cli.model, cli.datamodule, verbose=verbose, ckpt_path=cli.config.get("ckpt_path"))


def training_cli(config: dict, *, callbacks: list | None = None, loggers: list | None = None,
                 default_root_dir: str | None = None) -> LitSNNCLI:
    """The trainer, model and data ``run_training`` fits: ``build_from_dict`` with the loggers handed
    in winning over a ``trainer.logger`` of the (resolved) config."""
    config = copy.deepcopy(config)
    if loggers is not None:
        config.get("trainer", {}).pop("logger", None)
    return build_from_dict(config, callbacks=callbacks, loggers=loggers, default_root_dir=default_root_dir)


def recorded_config(cli: LitSNNCLI) -> dict:
    """The run config that ``run_training`` turns into the same training as ``cli``: every value
    parsed (its seed included), without where it logs and writes (``trainer.logger``,
    ``trainer.default_root_dir``, the MLflow options); ``ckpt_path`` only when it resumes."""
    out = yaml.safe_load(cli.parser.dump(cli.config, format="yaml", skip_none=False))
    for key in ("config", *TRACKING_KEYS):
        out.pop(key, None)
    if out.get("ckpt_path") is None:
        out.pop("ckpt_path", None)
    for key in ("logger", "default_root_dir"):
        out.get("trainer", {}).pop(key, None)
    return out


@contextlib.contextmanager
def ctrl_c_as_keyboard_interrupt():
    """Lightning answers Ctrl-C with a graceful shutdown, ``SIGINT`` ignored and ``sys.exit(1)``: give
    the caller the ``KeyboardInterrupt`` back (and its own ``SIGINT`` handler)."""
    handler = signal.getsignal(signal.SIGINT)
    try:
        yield
    except SystemExit as exc:
        if not isinstance(exc.__context__, KeyboardInterrupt):
            raise
        if threading.current_thread() is threading.main_thread() and handler is not None:
            signal.signal(signal.SIGINT, handler)
        raise exc.__context__ from None


def fit_and_test(trainer: L.Trainer, model: LitSNN, datamodule, verbose: bool = True,
                 ckpt_path: str | None = None) -> dict[str, float]:
    """Fit (resuming from the Lightning checkpoint ``ckpt_path`` when given), then test the best
    checkpoint; returns the final metrics plus ``train_seconds`` and ``epochs``."""
    if ckpt_path and "://" not in ckpt_path and not os.path.isfile(ckpt_path):
        raise FileNotFoundError(errno.ENOENT, "checkpoint not found", ckpt_path)
    if ckpt_path and "://" not in ckpt_path:
        read_checkpoint(ckpt_path)  # refused in one line if it needs code to load, or is damaged
    start = time.perf_counter()
    with ctrl_c_as_keyboard_interrupt():
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=WEIGHTS_ONLY)
    seconds = time.perf_counter() - start
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("val/", "train/"))}
    ckpt = "best" if best_checkpoint(trainer) else None
    with ctrl_c_as_keyboard_interrupt():
        (results,) = trainer.test(model if ckpt is None else None, datamodule=datamodule, ckpt_path=ckpt,
                                  verbose=verbose, weights_only=WEIGHTS_ONLY)
    metrics.update({k: float(v) for k, v in results.items()})
    metrics["train_seconds"] = seconds
    metrics["epochs"] = float(trainer.current_epoch)
    return metrics


def best_checkpoint(trainer: L.Trainer) -> str | None:
    """The path of the best checkpoint the trainer's ``ModelCheckpoint`` saved, if there is one."""
    path = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback is not None else ""
    return path or None


def summary_line(metrics: dict[str, float], ckpt_path: str | None = None) -> str:
    """One line: test accuracy, firing rate and energy against the ANN of the same backbone, and
    where the best checkpoint went (``ckpt_path``, when there is one)."""
    parts = [f"test acc {100 * metrics.get('test/acc', float('nan')):.2f}%"]
    if "test/firing_rate" in metrics:
        parts.append(f"firing rate {metrics['test/firing_rate']:.4f}")
    if "test/energy_mj" in metrics:
        energy = f"energy {metrics['test/energy_mj']:.4g} mJ/sample"
        if metrics.get("test/ann_energy_mj"):
            energy += f" (ANN {metrics['test/ann_energy_mj']:.4g} mJ, ANN/SNN " \
                      f"{metrics['test/ann_energy_mj'] / max(metrics['test/energy_mj'], 1e-30):.2f}x)"
        parts.append(energy)
    parts.append(f"trained {metrics.get('train_seconds', 0):.0f} s")
    if ckpt_path:
        parts.append(f"best checkpoint {ckpt_path}")
    return "lit-snn: " + " | ".join(parts)


def fit_reporting(cli: LitSNNCLI) -> dict[str, float]:
    """``fit_and_test`` of a built CLI; a failure says which checkpoint was kept, the end a summary line."""
    try:
        metrics = fit_and_test(cli.trainer, cli.model, cli.datamodule, ckpt_path=cli.config.get("ckpt_path"))
    except BaseException as exc:  # say what was kept and how to go on
        kept, ckpt_dir = best_checkpoint(cli.trainer), getattr(cli.trainer.checkpoint_callback, "dirpath", None)
        if isinstance(exc, OSError) and exc.errno in DISK_FULL and not exc.filename and ckpt_dir:
            exc.add_note(f"writing checkpoints to {ckpt_dir}")
        if kept and os.path.isfile(kept):
            exc.add_note(f"best checkpoint so far kept: {kept} (resume: --ckpt_path {kept})")
        raise
    if cli.trainer.is_global_zero:
        print(summary_line(metrics, best_checkpoint(cli.trainer)), flush=True)
    return metrics
