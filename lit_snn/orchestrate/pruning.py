"""Optuna pruning from inside Lightning: report a validation metric each epoch, stop bad trials.

Written here rather than taken from ``optuna-integration`` so the package needs no extra
dependency; the behaviour matches its ``PyTorchLightningPruningCallback`` (report, ask, raise).
"""

from __future__ import annotations

import warnings

import lightning as L
import optuna

PRUNER_CLASSES = {
    "median": optuna.pruners.MedianPruner,
    "percentile": optuna.pruners.PercentilePruner,
    "hyperband": optuna.pruners.HyperbandPruner,
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    "threshold": optuna.pruners.ThresholdPruner,  # e.g. {type: threshold, lower: 0.2}: drop hopeless runs
}


def make_pruner(options: dict, max_epochs: int | None) -> optuna.pruners.BasePruner:
    """The Optuna pruner named by a sweep's ``pruner:`` mapping (``type: none`` -> no pruning).

    Hyperband's ``max_resource`` defaults to the trainer's ``max_epochs``: one resource = one epoch.
    """
    kind = options.get("type", "median")
    if kind == "none":
        return optuna.pruners.NopPruner()
    kwargs = {k: v for k, v in options.items() if k not in ("type", "monitor")}
    if kind == "hyperband" and "max_resource" not in kwargs and max_epochs:
        kwargs["max_resource"] = int(max_epochs)
    return PRUNER_CLASSES[kind](**kwargs)


class OptunaPruning(L.Callback):
    """Reports ``monitor`` (e.g. ``val/acc``) to ``trial`` after every validation epoch.

    When the pruner says so it raises ``optuna.TrialPruned`` out of ``trainer.fit`` (test is then
    skipped); ``pruned`` stays True so a caller can tell a pruned trial even if the exception was
    wrapped on the way out. The step reported is the epoch index.
    """

    def __init__(self, trial: optuna.trial.BaseTrial, monitor: str = "val/acc") -> None:
        super().__init__()
        self.trial = trial
        self.monitor = monitor
        self.pruned = False
        self.last_value: float | None = None
        self._warned = False

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            if not self._warned:
                warnings.warn(
                    f"pruning: metric {self.monitor!r} was not logged (have: {sorted(trainer.callback_metrics)}); "
                    "this trial cannot be pruned",
                    stacklevel=1,
                )
                self._warned = True
            return
        epoch = trainer.current_epoch
        self.last_value = float(value)
        self.trial.report(self.last_value, step=epoch)
        if self.trial.should_prune():
            self.pruned = True
            raise optuna.TrialPruned(f"pruned at epoch {epoch}: {self.monitor}={self.last_value:.4f}")


class MetricRecorder(L.Callback):
    """Keeps the last value of every ``val/*`` and ``train/*`` metric and the best ``val/acc``.

    The study reads its objective from ``run_training``'s result; when that result leaves out a
    validation metric (``trainer.test`` replaces the callback metrics), the recorded one is used.
    """

    def __init__(self) -> None:
        super().__init__()
        self.last: dict[str, float] = {}
        self.best_val_acc: float | None = None

    def _record(self, trainer: L.Trainer) -> None:
        for key, value in trainer.callback_metrics.items():
            if key.startswith(("val/", "train/")):
                try:
                    self.last[key] = float(value)
                except (TypeError, ValueError):
                    continue

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._record(trainer)
        acc = self.last.get("val/acc")
        if acc is not None and (self.best_val_acc is None or acc > self.best_val_acc):
            self.best_val_acc = acc

    def metrics(self) -> dict[str, float]:
        out = dict(self.last)
        if self.best_val_acc is not None:
            out.setdefault("val/acc_best", self.best_val_acc)
        return out
