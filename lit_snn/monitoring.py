"""What ``LitSNN`` logs about network activity during validation and test: per-layer firing
rates, integer code usage, and (test) synaptic operations and the energy estimate."""

from __future__ import annotations

from torch import Tensor, nn

from .energy import FiringRateMonitor, SynOpsCounter


class ActivityMonitor:
    """Hooks on a backbone for one evaluation epoch; ``summary()`` gives flat scalar metrics."""

    def __init__(self, net: nn.Module, count_energy: bool) -> None:
        self.rates = FiringRateMonitor(net)
        self.ops = SynOpsCounter(net) if count_energy else None

    def set_event_input(self, events: bool) -> None:
        """Whether the network input is DVS event-count frames (first layer ACs, not MACs)."""
        if self.ops is not None:
            self.ops.event_input = events

    def summary(self) -> dict[str, float]:
        """``firing_rate`` (all neurons), ``firing_rate/<layer>``, ``high_code_fraction`` (integer
        neurons: codes above 5), and with energy counting ``sops``, ``macs``, ``energy_mj``,
        ``ann_energy_mj``, ``energy_ratio`` per sample."""
        out: dict[str, float] = {"firing_rate": self.rates.mean_rate()}
        out.update({f"firing_rate/{name}": rate for name, rate in self.rates.rates().items()})
        high = self.rates.high_code_fraction()
        if high:
            out["high_code_fraction"] = sum(high.values()) / len(high)
        if self.ops is not None and self.ops.samples:
            report = self.ops.report()
            out.update({k: report[k] for k in ("sops", "macs", "energy_mj", "ann_energy_mj", "energy_ratio")})
        return out

    def code_histograms(self) -> dict[str, Tensor]:
        """Integer neuron layers: counts of each used code (for the level histogram)."""
        return self.rates.code_histograms()

    def remove(self) -> None:
        self.rates.remove()
        if self.ops is not None:
            self.ops.remove()
