"""The Optuna pruner of a sweep's ``pruner:`` mapping.

Trials report to it through ``optuna_integration``'s ``PyTorchLightningPruningCallback`` (the
monitored metric after each validation epoch; under DDP rank 0 decides and broadcasts).
"""

from __future__ import annotations

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

