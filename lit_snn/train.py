"""``lit-snn train``: Lightning's CLI over ``LitSNN`` and the DataModules, plus the programmatic
entry points the orchestrator uses (``resolve_config``, ``run_training``).

A run config is Lightning-CLI YAML::

    seed_everything: 0
    trainer: {max_epochs: 10}
    model: {backbone: small_conv, neuron: lif, neuron_overrides: {}, time_steps: 4, lr: 0.1}
    data: {class_path: lit_snn.data.DigitsDataModule, init_args: {batch_size: 64}}

``model.time_steps`` is the single source of T (linked into the DataModule, which frames DVS
data with it); ``num_classes`` and ``in_channels`` come from the DataModule.
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings
from typing import Any

import lightning as L
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback

from .data import SNNDataModule
from .module import LitSNN

DEFAULT_DATA = {"class_path": "lit_snn.data.DigitsDataModule"}


class LitSNNCLI(LightningCLI):
    """LightningCLI with lit_snn's argument links and defaults."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("model.time_steps", "data.init_args.time_steps")
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.link_arguments("data.in_channels", "model.in_channels", apply_on="instantiate")
        parser.set_defaults({"data": DEFAULT_DATA})


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
    """Parse ``args`` (argv list or config dict) and instantiate trainer, model and data."""
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
        parser_kwargs={"prog": "lit-snn train", **({} if isinstance(args, list) else {"exit_on_error": False})},
    )


def _build_from_dict(config: dict, **kwargs) -> LitSNNCLI:
    """``build_cli`` on a config dict, with every parser or constructor complaint as ``ValueError``."""
    try:
        return build_cli(config, save_config=False, **kwargs)
    except SystemExit as exc:  # jsonargparse may report bad keys by exiting; make it an exception
        raise ValueError(f"invalid run config: {exc}") from None
    except (TypeError, KeyError, argparse.ArgumentError) as exc:
        raise ValueError(f"invalid run config: {exc}") from exc


def resolve_config(config: dict) -> dict:
    """Validate a run config and return it with every default filled in.

    Builds the model and DataModule (so an unknown preset, field or dataset path fails here,
    before any training). Raises ``ValueError`` with the parser's or constructor's message.
    """
    cli = _build_from_dict(copy.deepcopy(config), loggers=[])
    out = yaml.safe_load(cli.parser.dump(cli.config, format="yaml", skip_none=False))
    out.pop("config", None)
    # linked values are dropped from the dump: put them back so a run's record is complete
    out["data"].setdefault("init_args", {})["time_steps"] = cli.datamodule.time_steps
    out["model"]["num_classes"] = cli.model.hparams.num_classes
    out["model"]["in_channels"] = cli.model.hparams.in_channels
    return out


def run_training(config: dict, *, callbacks: list | None = None, loggers: list | None = None,
                 default_root_dir: str | None = None, verbose: bool = False) -> dict[str, float]:
    """Fit then test one run config; returns the final metrics (``test/acc``, ``val/acc_best``, ...)."""
    config = copy.deepcopy(config)
    if loggers is not None:  # the loggers handed in win over a `trainer.logger` in the (resolved) config
        config.get("trainer", {}).pop("logger", None)
    cli = _build_from_dict(config, callbacks=callbacks, loggers=loggers, default_root_dir=default_root_dir)
    return fit_and_test(cli.trainer, cli.model, cli.datamodule, verbose=verbose)


def fit_and_test(trainer: L.Trainer, model: LitSNN, datamodule, verbose: bool = True) -> dict[str, float]:
    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    seconds = time.perf_counter() - start
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("val/", "train/"))}
    ckpt = "best" if trainer.checkpoint_callback is not None and trainer.checkpoint_callback.best_model_path \
        else None
    (results,) = trainer.test(model if ckpt is None else None, datamodule=datamodule, ckpt_path=ckpt,
                              verbose=verbose)
    metrics.update({k: float(v) for k, v in results.items()})
    metrics["train_seconds"] = seconds
    metrics["epochs"] = float(trainer.current_epoch)
    return metrics


def summary_line(metrics: dict[str, float]) -> str:
    """One line: test accuracy, firing rate and energy against the ANN of the same backbone."""
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
    return "lit-snn: " + " | ".join(parts)


def main(argv: list[str] | None = None) -> dict[str, float] | None:
    """``lit-snn train --config FILE [--model.neuron ar_lif ...]``: fit, test, print a summary line."""
    cli = build_cli(list(argv) if argv is not None else None)
    metrics = fit_and_test(cli.trainer, cli.model, cli.datamodule)
    if cli.trainer.is_global_zero:
        print(summary_line(metrics), flush=True)
    return metrics
