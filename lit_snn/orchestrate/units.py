"""How a reader sees each metric: its name, its one display unit and the bounds of its values.

Every table, report sentence, CSV column that says a unit and plot axis of ``compare`` goes
through ``unit_of``: accuracy in points (x100), energy in µJ per sample (the training logs mJ),
the rest as logged. ``bounds`` (in the metric's logged scale) are where its values can lie: an
interval of an arm's mean is kept inside them (an accuracy CI never passes 1), an interval of a
difference of two arms inside ``[low - high, high - low]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LABELS = {"test/acc": "test acc", "test/firing_rate": "firing rate", "test/sops": "SOPs/sample",
          "test/energy_mj": "energy/sample", "test/ann_energy_mj": "ANN energy/sample",
          "val/acc_best": "best val acc", "val/acc": "val acc",
          "neurobench/ActivationSparsity": "NeuroBench act. sparsity",
          "neurobench/SynapticOperations/Effective_ACs": "NeuroBench ACs",
          "neurobench/SynapticOperations/Effective_MACs": "NeuroBench MACs"}


@dataclass(frozen=True)
class Unit:
    """``shown = logged * scale`` in ``name``; ``low``/``high``: bounds of the logged values (None: open)."""

    scale: float = 1.0
    name: str = ""
    low: float | None = None
    high: float | None = None

    def show(self, value: float) -> float:
        return value * self.scale

    def clip(self, value: float) -> float:
        """``value`` (logged scale) moved inside the bounds; NaN stays NaN."""
        if math.isnan(value):
            return value
        if self.low is not None:
            value = max(self.low, value)
        if self.high is not None:
            value = min(self.high, value)
        return value

    def clip_difference(self, value: float) -> float:
        """A difference of two values (logged scale) moved inside ``[low - high, high - low]``; open
        bounds (NaN too) leave it as is."""
        if math.isnan(value) or self.low is None or self.high is None:
            return value
        return min(self.high - self.low, max(self.low - self.high, value))

    def format(self, value: float, signed: bool = False) -> str:
        """``value`` (logged scale) as shown: points with 2 decimals, the rest with 3 significant digits;
        a number that is not zero never reads as zero (``0.0042`` rather than ``0.00``); NaN is ``-``."""
        if value is None or math.isnan(value):
            return "-"
        shown = self.show(value)
        text = f"{shown:.2f}" if self.name == "points" else f"{shown:.3g}"
        if shown != 0 and float(text) == 0:
            text = f"{shown:.2g}"
        return ("+" if signed and shown >= 0 else "") + text

    @property
    def suffix(self) -> str:
        """`` points``, `` µJ`` or nothing: what follows a shown number."""
        return f" {self.name}" if self.name else ""


POINTS = Unit(100.0, "points", 0.0, 1.0)
MICROJOULES = Unit(1e3, "µJ", 0.0, None)  # the training logs mJ per sample


def is_points(metric: str) -> bool:
    """Accuracy metrics (names whose last part contains ``acc``) are shown in points."""
    return "acc" in metric.split("/")[-1]


def unit_of(metric: str) -> Unit:
    """The one display unit of ``metric``."""
    last = metric.split("/")[-1]
    if is_points(metric):
        return POINTS
    if last.endswith("energy_mj"):
        return MICROJOULES
    if "sparsity" in last.lower():
        return Unit(1.0, "", 0.0, 1.0)
    if last in ("firing_rate", "sops") or "ACs" in last or "MACs" in last:
        return Unit(1.0, "", 0.0, None)  # integer neurons fire more than one spike per step: no upper bound
    return Unit()


def label(metric: str) -> str:
    """``test acc (points)``, ``energy/sample (µJ)``: the axis and column title of ``metric``."""
    unit = unit_of(metric)
    name = LABELS.get(metric, metric)
    return f"{name} ({unit.name})" if unit.name else name
