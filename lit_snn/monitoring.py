"""What ``LitSNN`` logs about network activity during validation and test: per-layer firing
rates, integer code usage, and (test) synaptic operations and the energy estimate."""

from __future__ import annotations

from torch import Tensor, nn

from .energy import FiringRateMonitor, SynOpsCounter, spiking_neurons

ENERGY_KEYS = ("sops", "macs", "energy_mj", "ann_energy_mj", "energy_ratio")  # per sample, test only


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
        """``firing_rate`` (all neurons), ``firing_rate/<layer>``, ``activation_sparsity`` (share of
        zero outputs, NeuroBench's definition: 1 - firing rate for binary spikes, nonzero codes for
        integer ones), ``high_code_fraction`` (integer neurons: codes above 5), and with energy
        counting ``sops``, ``macs``, ``energy_mj``, ``ann_energy_mj``, ``energy_ratio`` per sample."""
        out: dict[str, float] = {"firing_rate": self.rates.mean_rate(),
                                 "activation_sparsity": self.rates.activation_sparsity()}
        out.update({f"firing_rate/{name}": rate for name, rate in self.rates.rates().items()})
        high = self.rates.high_code_fraction()
        if high:
            out["high_code_fraction"] = sum(high.values()) / len(high)
        if self.ops is not None and self.ops.samples:
            report = self.ops.report()
            out.update({k: report[k] for k in ENERGY_KEYS})
        return out

    @staticmethod
    def metric_names(net: nn.Module, count_energy: bool) -> set[str]:
        """The keys ``summary()`` gives for ``net`` once every neuron layer has run."""
        neurons = spiking_neurons(net)
        names = {"firing_rate", "activation_sparsity", *(f"firing_rate/{name}" for name, _ in neurons)}
        if any(m.config.spike == "integer" for _, m in neurons):
            names.add("high_code_fraction")
        return names | set(ENERGY_KEYS) if count_energy else names

    def code_histograms(self) -> dict[str, Tensor]:
        """Integer neuron layers: counts of each used code (for the level histogram)."""
        return self.rates.code_histograms()

    def remove(self) -> None:
        self.rates.remove()
        if self.ops is not None:
            self.ops.remove()
