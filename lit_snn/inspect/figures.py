"""The figures of ``lit-snn inspect``: each one's arrays (tested) and its drawing (matplotlib).

Steps of the inspected samples are laid side by side on one time axis: sample ``b``'s step ``t`` is
at ``b * T + t`` (every sample starts from a zero state).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from .record import LayerRecord

RATE_UNIT = "spikes per neuron per step"


def _neurons(values: Tensor) -> Tensor:
    """``[T, B, ...]`` -> ``[T, B, N]``: one column per neuron of the layer (flat index over ``...``)."""
    return values.reshape(values.shape[0], values.shape[1], -1)


def most_active(spikes: Tensor, count: int, tie_break: Tensor | None = None) -> Tensor:
    """Flat indices of the ``count`` neurons with the largest output sum over steps and samples (ties:
    larger ``tie_break``, then lower index), in ascending index order."""
    activity = _neurons(spikes).double().sum((0, 1))
    order = torch.arange(activity.numel())
    keys = [order.double(), -activity] if tie_break is None else [order.double(), -tie_break.double(), -activity]
    picked = torch.from_numpy(np.lexsort([k.numpy() for k in keys]))[:count]  # last key sorts first
    return picked.sort().values


def channel_of(record: LayerRecord, neuron: int) -> int:
    """The channel (dim 2 of ``[T, B, C, ...]``) of a flat neuron index."""
    per_channel = math.prod(record.spikes.shape[3:])
    return neuron // per_channel


# ---------------------------------------------------------------------- raster
@dataclass
class Raster:
    """Spike events of ``neurons`` (flat indices): event ``i`` at ``steps[i]`` (``b * T + t``) on row
    ``rows[i]`` (position in ``neurons``) with the output value ``values[i]`` (1 for binary spikes)."""

    neurons: Tensor
    steps: Tensor
    rows: Tensor
    values: Tensor
    time_steps: int
    samples: int
    total_neurons: int


def raster_data(record: LayerRecord, neurons: int = 64) -> Raster:
    """The events of the layer's ``neurons`` most active neurons."""
    picked = most_active(record.spikes, neurons)
    chosen = _neurons(record.spikes)[:, :, picked]  # [T, B, K]
    t, b, row = torch.nonzero(chosen, as_tuple=True)
    T, B = chosen.shape[:2]
    return Raster(picked, b * T + t, row, chosen[t, b, row], T, B, _neurons(record.spikes).shape[2])


def _sample_axis(ax, time_steps: int, samples: int) -> None:
    for b in range(1, samples):
        ax.axvline(b * time_steps - 0.5, color="0.6", linewidth=0.8, linestyle="--")
    ax.set_xticks([b * time_steps + (time_steps - 1) / 2 for b in range(samples)],
                  [f"sample {b}" for b in range(samples)])
    ax.set_xticks(range(time_steps * samples), minor=True)
    ax.set_xlim(-0.5, time_steps * samples - 0.5)


def plot_raster(record: LayerRecord, data: Raster, path: Path) -> None:
    rows = len(data.neurons)
    fig = Figure(figsize=(max(6.0, 0.35 * data.time_steps * data.samples + 2), max(3.0, 0.12 * rows + 1.5)),
                 layout="constrained")
    ax = fig.add_subplot()
    if record.integer:
        points = ax.scatter(data.steps.numpy(), data.rows.numpy(), c=data.values.numpy(), marker="s", s=30,
                            cmap="viridis", vmin=0)
        fig.colorbar(points, ax=ax, label="spike value S (integer level / N)")
    else:
        # a row is 0.12 inch (8.6 points) high: ticks of 0.8 of it keep neighbouring neurons apart
        ax.scatter(data.steps.numpy(), data.rows.numpy(), marker="|", s=(0.8 * 0.12 * 72) ** 2, color="black",
                   linewidths=1.5)
    _sample_axis(ax, data.time_steps, data.samples)
    ax.set_ylim(-0.5, rows - 0.5)
    shown = range(0, rows, max(1, rows // 16))
    ax.set_yticks(list(shown), [str(int(data.neurons[i])) for i in shown])
    ax.set_xlabel(f"time step (T = {data.time_steps} per sample, samples side by side)")
    ax.set_ylabel("neuron (flat index in the layer)")
    ax.set_title(f"{record.name} ({record.neuron.name}): spike raster of the {rows} most active of "
                 f"{data.total_neurons} neurons\n{len(data.steps)} events; layer firing rate {record.rate:.4g} "
                 f"{RATE_UNIT}", fontsize=10)
    fig.savefig(path, dpi=110)


# ---------------------------------------------------------------------- membrane traces
@dataclass
class Traces:
    """``charge [K, B*T]`` (``U_t``, before the reset), ``membrane [K, B*T]`` (``V_t``, after it) and
    ``spikes [K, B*T]`` of ``neurons`` (flat indices) on the shared time axis, and each one's base
    threshold ``threshold [K]``."""

    neurons: Tensor
    charge: Tensor
    membrane: Tensor
    spikes: Tensor
    threshold: Tensor
    time_steps: int
    samples: int


def membrane_data(record: LayerRecord, count: int = 4) -> Traces | None:
    """The membranes of the ``count`` most active neurons (ties: the highest membrane); ``None`` without one."""
    if record.membrane is None:
        return None
    peak = _neurons(record.membrane).amax((0, 1))
    picked = most_active(record.spikes, count, tie_break=peak)
    T, B = record.spikes.shape[:2]

    def along_time(values: Tensor) -> Tensor:  # [T, B, N] -> [K, B*T]
        return _neurons(values)[:, :, picked].permute(2, 1, 0).reshape(len(picked), B * T)

    threshold = record.threshold
    per_neuron = threshold.expand(len(picked)) if threshold.numel() == 1 else \
        threshold[[channel_of(record, int(n)) for n in picked]]
    return Traces(picked, along_time(record.charge), along_time(record.membrane), along_time(record.spikes),
                  per_neuron, T, B)


def plot_membrane(record: LayerRecord, data: Traces, path: Path) -> None:
    count = len(data.neurons)
    fig = Figure(figsize=(max(6.0, 0.35 * data.time_steps * data.samples + 2) + 3, 1.8 * count + 1),
                 layout="constrained")
    axes = fig.subplots(count, 1, sharex=True, squeeze=False)[:, 0]
    T = data.time_steps
    for ax, neuron, u, v, s, th in zip(axes, data.neurons, data.charge, data.membrane, data.spikes, data.threshold):
        for b in range(data.samples):  # one line per sample: its state starts from zero
            steps, part = np.arange(b * T, (b + 1) * T), slice(b * T, (b + 1) * T)
            ax.plot(steps, u[part].numpy(), marker="o", markersize=4, color="tab:blue",
                    label="membrane U (charged, before the reset)" if b == 0 else None)
            ax.plot(steps, v[part].numpy(), linestyle=":", color="tab:gray",
                    label="membrane V (after the reset)" if b == 0 else None)
        fired = torch.nonzero(s > 0).flatten()
        ax.plot(fired.numpy(), u[fired].numpy(), linestyle="none", marker="o", markersize=7, markerfacecolor="none",
                markeredgecolor="tab:orange", markeredgewidth=1.5, label="spike" if len(fired) else None)
        ax.axhline(float(th), color="tab:red", linestyle="--", linewidth=1, label=f"threshold v_th = {float(th):.3g}")
        channel = f", channel {channel_of(record, int(neuron))}" if record.spikes.dim() > 3 else ""
        ax.set_title(f"neuron {int(neuron)}{channel}: {int((s > 0).sum())} spike steps", fontsize=9)
        ax.set_ylabel("membrane")
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    _sample_axis(axes[-1], T, data.samples)
    axes[-1].set_xlabel(f"time step (T = {T} per sample, samples side by side)")
    fig.suptitle(f"{record.name} ({record.neuron.name}): membrane traces of the {count} most active neurons",
                 fontsize=10)
    fig.savefig(path, dpi=110)


# ---------------------------------------------------------------------- firing-rate maps
def rate_map(record: LayerRecord) -> Tensor:
    """Firing rate per neuron averaged over T and the samples (float64): ``[C, H, W]`` for a conv
    layer, ``[F]`` for a linear one. Its mean is the layer's firing rate on those samples."""
    return record.spikes.double().mean((0, 1))


def plot_rate_map(record: LayerRecord, rates: Tensor, path: Path) -> None:
    title = (f"{record.name} ({record.neuron.name}): firing rate per neuron, mean over T = {record.spikes.shape[0]} "
             f"and {record.spikes.shape[1]} samples\nlayer mean {float(rates.mean()):.4g} {RATE_UNIT}")
    if rates.dim() == 3:
        channels = rates.shape[0]
        cols = math.ceil(math.sqrt(channels))
        rows = math.ceil(channels / cols)
        fig = Figure(figsize=(1.3 * cols + 1.5, 1.3 * rows + 1.2), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False)
        top = max(float(rates.max()), 1e-12)
        image = None
        for c, ax in enumerate(axes.flat):
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= channels:
                ax.set_axis_off()
                continue
            image = ax.imshow(rates[c].numpy(), vmin=0, vmax=top, cmap="magma")
            ax.set_title(f"ch {c}", fontsize=7)
        fig.colorbar(image, ax=axes, label=f"firing rate ({RATE_UNIT})", shrink=0.8)
        fig.suptitle(title + "; one map per channel (height x width)", fontsize=9)
    else:
        fig = Figure(figsize=(8, 3.5), layout="constrained")
        ax = fig.add_subplot()
        ax.bar(np.arange(rates.numel()), rates.numpy(), width=1.0, color="tab:blue")
        ax.set_xlabel("neuron")
        ax.set_ylabel(f"firing rate\n({RATE_UNIT})")
        ax.set_title(title, fontsize=9)
    fig.savefig(path, dpi=110)


# ---------------------------------------------------------------------- integer levels
def level_histogram(record: LayerRecord) -> tuple[Tensor, Tensor] | None:
    """Integer neurons: ``(levels, counts)``, the integer levels ``q = S N`` in ``0..N D`` and how many
    outputs (neurons x steps x samples) took each (``FiringRateMonitor``'s code histogram)."""
    if not record.integer or record.codes is None:
        return None
    return torch.arange(len(record.codes)), record.codes


def plot_levels(record: LayerRecord, levels: Tensor, counts: Tensor, path: Path) -> None:
    cfg = record.neuron.config
    used = int(torch.nonzero(counts).max()) + 1 if counts.any() else 1
    fig = Figure(figsize=(8, 3.5), layout="constrained")
    ax = fig.add_subplot()
    ax.bar(levels[:used + 1].numpy(), counts[:used + 1].numpy(), width=0.9, color="tab:green")
    ax.set_yscale("log")
    ax.set_xlabel(f"spike level q = S x N (integer; N = {cfg.int_scale:g}, D = {cfg.int_max:g}, "
                  f"levels 0..{len(levels) - 1}; shown up to {used - 1}, the highest used)")
    ax.set_ylabel("count (neurons x steps x samples)")
    share = 1 - float(counts[0]) / max(float(counts.sum()), 1)
    ax.set_title(f"{record.name} ({record.neuron.name}): integer spike levels; {100 * share:.2f}% of the outputs "
                 "are nonzero", fontsize=10)
    fig.savefig(path, dpi=110)


def file_stem(layer: str) -> str:
    """A layer name fit for a file name (``features.2`` stays ``features.2``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", layer)
