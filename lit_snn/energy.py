"""Firing rates, synaptic operations and the 45 nm energy estimate (spec ``neurons.md`` section 5).

Units and conventions
---------------------
- Firing rate of a neuron layer: the sum of its outputs over all elements, batches and time steps
  divided by the number of output elements (``T * B * C * H * W``): spikes per element per step.
  For integer neurons the outputs are the values ``S = q / N``, so the rate is the mean value.
- MACs of a Conv2d / Linear call, from shapes: ``out.numel() * in_channels / groups * kh * kw``
  (conv), ``out.numel() * in_features`` (linear); bias adds and BatchNorm are not counted (BN
  folds into the conv at inference).
- A layer's input is *spiking* when it is the output of a ``SpikingNeuron``, or of pooling,
  flatten, dropout or identity layers applied to such an output (traced through tensor storage
  by forward hooks; anything else, e.g. the network input, a residual sum of membranes or a
  copy made by ``torch.cat`` / ``.contiguous()``, counts as *analog*). Analog-input layers
  count MACs; spiking-input layers count accumulates (ACs) = MACs x activity of the input.
- ACs count real connections: each input element feeds the outputs its kernel taps reach, so a
  padded convolution's border inputs feed fewer outputs than the dense ``MACs x mean input`` says
  (``connections``; NeuroBench counts the same way). Zero padding never spikes, so no AC for it.
  ``macs`` (analog layers) and ``ann_macs`` stay dense, the literature's (and torchvision's)
  convention; ``connection_macs`` gives the analog layers' MACs over real connections.
- Activity of a spiking input = its value x ``ratio``, where ``ratio`` converts values into
  binary spikes: 1 for binary neurons; for integer neurons (``integer_ops="binary"``, default)
  the number of binary spikes of the inference conversion of ``lit_snn.neurons.conversion``:
  unary for ``N = 1`` (I-LIF: ``s`` spikes for the integer ``s``, so the ratio is 1) and bit-serial
  for ``N > 1`` (IB-RA-LIF: ``popcount(q)`` spikes over the K = ceil(log2(N D + 1)) virtual steps,
  i.e. K x the bit firing rate -- the spec's "times K virtual steps"). ``integer_ops="value"``
  uses ratio 1 (ACs weighted by the integer value); ``integer_ops="nonzero"`` counts one AC per
  nonzero input (NeuroBench's convention: it binarises every input). Pooling is linear, so the mean of pooled
  spikes keeps the mean of the spikes and the source neuron's ratio still applies.
- Totals run over all T steps of every call; per-sample numbers divide by the number of samples
  (dim 1 of the time-first input ``[T, B, ...]`` of the root model). ``sops`` = ACs per sample,
  ``macs`` = MACs of analog-input layers per sample (the first conv, over T steps).
- DVS input (``event_input=True``): the frames hold event counts, so the first layer counts as
  spiking, ACs = MACs x mean event count per element (one accumulate per event), not MACs.
- Energy (the 45 nm convention of this literature): ``E = 4.6 pJ x MACs + 0.9 pJ x ACs``, reported
  in millijoules per sample. The ANN of the same architecture runs every conv/linear once as
  MACs (one step, dense): ``ann_macs`` per sample, ``ann_energy_mj = 4.6 pJ x ann_macs``.
  ``energy_ratio = ann_energy_mj / energy_mj`` (how many times less energy the SNN needs).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import ConfigError
from .neurons import SpikingNeuron

E_MAC_PJ = 4.6  # pJ per multiply-accumulate (32-bit float, 45 nm)
E_AC_PJ = 0.9  # pJ per accumulate
INTEGER_OPS = ("binary", "value", "nonzero")

# layers whose output carries the spikes of their input (pooling is linear; the others copy or view)
_PASS_THROUGH = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
                 nn.AdaptiveAvgPool3d, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool2d,
                 nn.Flatten, nn.Unflatten, nn.Dropout, nn.Identity)


def spiking_neurons(model: nn.Module) -> list[tuple[str, SpikingNeuron]]:
    """``(qualified name, module)`` of every ``SpikingNeuron`` in ``model``."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, SpikingNeuron)]


def conv_fanout(conv: nn.Conv2d, height: int, width: int, device: torch.device | None = None) -> Tensor:
    """``[H, W]`` float64: how many output positions each input position feeds (per output channel)
    under the layer's stride, dilation and padding; zero padding is no input, so border positions
    feed fewer outputs. The gradient of the sum of a ones-kernel convolution of ones."""
    with torch.inference_mode(False), torch.enable_grad():  # also under Lightning's test-time inference mode
        ones = torch.ones(1, 1, height, width, dtype=torch.float64, device=device, requires_grad=True)
        padded, padding = ones, conv.padding
        if conv.padding_mode != "zeros":  # reflect / replicate / circular: padded taps read real inputs
            padded, padding = F.pad(ones, conv._reversed_padding_repeated_twice, mode=conv.padding_mode), 0
        kernel = torch.ones(1, 1, *conv.kernel_size, dtype=torch.float64, device=device)
        out = F.conv2d(padded, kernel, stride=conv.stride, padding=padding, dilation=conv.dilation)
        (fanout,) = torch.autograd.grad(out.sum(), ones)
    return fanout[0, 0]


def connections(module: nn.Module, activity: Tensor, fanout: Tensor | None = None) -> Tensor:
    """Sum over input elements of ``activity`` x the number of outputs each element feeds: the
    synaptic operations of a Linear (``[..., F]``) or Conv2d (``[..., C, H, W]``) input, over real
    connections. ``fanout``: the conv's ``conv_fanout`` for this input size (computed if omitted)."""
    if isinstance(module, nn.Linear):
        return activity.sum(dtype=torch.float64) * module.out_features
    if fanout is None:
        fanout = conv_fanout(module, *activity.shape[-2:], device=activity.device)
    per_position = activity.sum(dim=tuple(range(activity.dim() - 2)), dtype=torch.float64)  # [H, W]
    return (per_position * fanout).sum() * (module.out_channels // module.groups)


def integer_top(neuron: SpikingNeuron) -> int:
    """The largest integer code ``N * D`` of an integer neuron."""
    return neuron.config.int_top


def integer_codes(neuron: SpikingNeuron, s: Tensor) -> Tensor:
    """Integer codes ``q = round(S * N)`` in ``0..N*D`` (long) of an integer neuron's output ``s``."""
    q = torch.round(s.detach().double() * neuron.config.int_scale).long()
    return q.clamp_(0, integer_top(neuron))


def binary_spike_count(neuron: SpikingNeuron, s: Tensor) -> Tensor:
    """Binary spikes per element of the inference conversion: ``s`` (binary), ``q`` (unary, N = 1)
    or ``popcount(q)`` (bit-serial, N > 1). Same shape as ``s``, float64."""
    cfg = neuron.config
    if cfg.spike == "binary":
        return s.detach().double()
    q = integer_codes(neuron, s)
    if cfg.int_scale == 1:  # unary: s ones, then zeros
        return q.double()
    bits = max(1, math.ceil(math.log2(integer_top(neuron) + 1)))
    return sum(((q >> k) & 1) for k in range(bits)).double()


def _batch_dims(args: tuple) -> tuple[int, int] | None:
    """(T, B) of the first tensor argument ``[T, B, ...]`` of a forward call."""
    for a in args:
        if isinstance(a, Tensor) and a.dim() >= 2:
            return int(a.shape[0]), int(a.shape[1])
    return None


class _Hooks:
    """Owns forward hook handles; context manager that removes them on exit."""

    def __init__(self) -> None:
        self._handles: list[Any] = []

    def remove(self) -> None:
        """Remove every hook this object registered (idempotent)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class FiringRateMonitor(_Hooks):
    """Accumulates per-layer firing rates (and integer code histograms) of every ``SpikingNeuron``.

    Use as a context manager or call ``remove()``. ``rates()`` gives spikes (integer neurons: the
    value ``S``) per element per step for each neuron layer, by qualified module name; totals
    accumulate over batches until ``reset()``. Sums stay on the tensors' device until read.
    """

    def __init__(self, model: nn.Module, histogram: bool = True) -> None:
        super().__init__()
        self.histogram = histogram
        self.neurons = dict(spiking_neurons(model))
        self.reset()
        for name, m in self.neurons.items():
            self._handles.append(m.register_forward_hook(self._make_hook(name)))

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self._sums: dict[str, Tensor] = {}
        self._nonzeros: dict[str, Tensor] = {}
        self._counts: dict[str, int] = {}
        self._codes: dict[str, Tensor] = {}

    def _make_hook(self, name: str):
        def hook(module: SpikingNeuron, inputs: tuple, out: Tensor) -> None:
            with torch.no_grad():
                total = out.detach().sum(dtype=torch.float64)
                nonzero = torch.count_nonzero(out.detach())
                self._sums[name] = self._sums[name] + total if name in self._sums else total
                self._nonzeros[name] = self._nonzeros[name] + nonzero if name in self._nonzeros else nonzero
                self._counts[name] = self._counts.get(name, 0) + out.numel()
                if self.histogram and module.config.spike == "integer":
                    hist = torch.bincount(integer_codes(module, out).flatten(),
                                          minlength=integer_top(module) + 1)
                    self._codes[name] = self._codes[name] + hist if name in self._codes else hist

        return hook

    def rates(self) -> dict[str, float]:
        """Layer name -> spikes per element per step (layers not run yet are left out)."""
        return {n: float(self._sums[n]) / self._counts[n] for n in self._sums if self._counts[n]}

    def mean_rate(self) -> float:
        """Firing rate over all neuron elements of all layers (element-weighted); 0 if nothing ran."""
        count = sum(self._counts.values())
        return float(sum(float(s) for s in self._sums.values())) / count if count else 0.0

    def activation_sparsity(self) -> float:
        """Share of zero outputs over all neuron elements, layers and steps (NeuroBench's activation
        sparsity): ``1 - mean_rate()`` for binary neurons; integer neurons count nonzeros, not values."""
        count = sum(self._counts.values())
        return 1.0 - float(sum(float(z) for z in self._nonzeros.values())) / count if count else 0.0

    def spike_counts(self) -> dict[str, float]:
        """Layer name -> total output sum (spikes, or integer values S)."""
        return {n: float(s) for n, s in self._sums.items()}

    def code_histograms(self) -> dict[str, Tensor]:
        """Integer layers: name -> counts of each code ``q = round(S N)`` in ``0..N*D`` (long, CPU)."""
        return {n: h.cpu() for n, h in self._codes.items()}

    def high_code_fraction(self, threshold: int = 5, among_nonzero: bool = False) -> dict[str, float]:
        """Integer layers: fraction of codes ``q > threshold`` (of all codes, or of the nonzero ones).

        Without range alignment (N = 1) only the codes 0..~5 are used (IB-RA-LIF's diagnostic).
        """
        out = {}
        for name, hist in self.code_histograms().items():
            total = hist[1:].sum() if among_nonzero else hist.sum()
            out[name] = float(hist[threshold + 1:].sum()) / float(total) if total > 0 else 0.0
        return out


class SynOpsCounter(_Hooks):
    """Counts MACs and ACs of every Conv2d / Linear of ``model`` (see the module docstring).

    Drive it through ``model(x)`` with time-first ``x`` of shape ``[T, B, ...]`` (the root hook
    counts samples and clears the spike trace after each call). ``report()`` gives per-sample
    totals and the energy estimate; ``layers()`` the per-layer numbers.
    """

    def __init__(self, model: nn.Module, integer_ops: str = "binary", event_input: bool = False) -> None:
        super().__init__()
        if integer_ops not in INTEGER_OPS:
            raise ConfigError(f"unknown integer_ops {integer_ops!r}; valid: {', '.join(INTEGER_OPS)}")
        self.integer_ops = integer_ops
        # DVS frames are event counts, not analog values: the first layer then accumulates once per
        # event (ACs = MACs x mean count) instead of multiplying densely
        self.event_input = event_input
        self.reset()
        self._fanouts: dict[tuple, Tensor] = {}  # (layer, H, W, device) -> conv_fanout
        # storage pointer -> (spike tensor, kept alive until the call ends; its binary-spike ratio)
        self._marks: dict[int, tuple[Tensor, float | Tensor]] = {}
        self._handles.append(model.register_forward_pre_hook(self._root_pre))
        self._handles.append(model.register_forward_hook(self._root_post))
        for name, m in model.named_modules():
            if isinstance(m, SpikingNeuron):
                self._handles.append(m.register_forward_hook(self._neuron_hook))
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                self._handles.append(m.register_forward_hook(self._make_layer_hook(name)))
            elif isinstance(m, _PASS_THROUGH):
                self._handles.append(m.register_forward_hook(self._pass_hook))

    def reset(self) -> None:
        """Forget all counts."""
        self.samples = 0
        self.frames = 0  # samples x time steps
        self._layers: dict[str, dict[str, float]] = {}

    # ------------------------------------------------------------------ spike trace
    @staticmethod
    def _key(t: Tensor) -> int:
        return t.untyped_storage().data_ptr()

    def _root_pre(self, module: nn.Module, args: tuple) -> None:
        self._marks.clear()
        if self.event_input:
            frames = next((a for a in args if isinstance(a, Tensor)), None)
            if frames is not None:  # must be contiguous for the fold over T to keep its storage
                self._marks[self._key(frames)] = (frames, 1.0)
        dims = _batch_dims(args)
        if dims is not None:
            t, b = dims
            self.samples += b
            self.frames += t * b

    def _root_post(self, module: nn.Module, args: tuple, out: Any) -> None:
        self._marks.clear()  # release the spike tensors

    def _neuron_hook(self, module: SpikingNeuron, inputs: tuple, out: Tensor) -> None:
        ratio: float | Tensor = 1.0
        if module.config.spike == "integer" and self.integer_ops == "binary":
            with torch.no_grad():  # stays on the device: no synchronisation per layer
                value = out.detach().sum(dtype=torch.float64)
                count = binary_spike_count(module, out).sum()
                ratio = torch.where(value > 0, count / value.clamp_min(1e-300), torch.zeros_like(value))
        self._marks[self._key(out)] = (out, ratio)

    def _pass_hook(self, module: nn.Module, inputs: tuple, out: Tensor) -> None:
        if inputs and isinstance(inputs[0], Tensor) and isinstance(out, Tensor):
            mark = self._marks.get(self._key(inputs[0]))
            if mark is not None:
                self._marks[self._key(out)] = (out, mark[1])

    # ------------------------------------------------------------------ counting
    def _make_layer_hook(self, name: str):
        def hook(module: nn.Module, inputs: tuple, out: Tensor) -> None:
            x = inputs[0]
            if isinstance(module, nn.Conv2d):
                kh, kw = module.kernel_size
                macs = out.numel() * (module.in_channels // module.groups) * kh * kw
            else:
                macs = out.numel() * module.in_features
            stats = self._layers.setdefault(name, {"macs": 0, "acs": 0.0, "analog_macs": 0, "connection_macs": 0.0,
                                                   "input_sum": 0.0, "input_numel": 0, "spiking": True})
            stats["macs"] += macs
            fanout = self._fanout(module, x)
            mark = self._marks.get(self._key(x))
            with torch.no_grad():
                x = x.detach()
                if mark is None:  # analog input: dense MACs
                    stats["analog_macs"] += macs
                    stats["connection_macs"] = stats["connection_macs"] + connections(
                        module, x.new_ones(()).expand_as(x), fanout)
                    stats["spiking"] = False
                else:  # spiking input: ACs over real connections x ratio (device tensors, read at report time)
                    stats["input_sum"] = stats["input_sum"] + x.sum(dtype=torch.float64)
                    stats["input_numel"] += x.numel()
                    activity = (x != 0) if self.integer_ops == "nonzero" else x
                    stats["acs"] = stats["acs"] + connections(module, activity, fanout) * mark[1]

        return hook

    def _fanout(self, module: nn.Module, x: Tensor) -> Tensor | None:
        if not isinstance(module, nn.Conv2d):
            return None
        key = (id(module), *x.shape[-2:], x.device)
        if key not in self._fanouts:
            self._fanouts[key] = conv_fanout(module, *x.shape[-2:], device=x.device)
        return self._fanouts[key]

    def _totals(self) -> dict[str, dict[str, Any]]:
        return {name: {k: float(v) if isinstance(v, Tensor) else v for k, v in s.items()}
                for name, s in self._layers.items()}

    def layers(self) -> dict[str, dict[str, float]]:
        """Layer name -> per-sample ``macs`` (dense, all T steps), ``acs``, ``analog_macs``,
        ``connection_macs`` (analog MACs over real connections), the layer's ``input_rate`` (mean input
        value, spiking inputs) and ``spiking`` (every call)."""
        n = max(self.samples, 1)
        out = {}
        for name, s in self._totals().items():
            rate = s["input_sum"] / s["input_numel"] if s["input_numel"] else float("nan")
            out[name] = {"macs": s["macs"] / n, "acs": s["acs"] / n, "analog_macs": s["analog_macs"] / n,
                         "connection_macs": s["connection_macs"] / n, "input_rate": rate, "spiking": bool(s["spiking"])}
        return out

    def report(self, e_mac_pj: float = E_MAC_PJ, e_ac_pj: float = E_AC_PJ) -> dict[str, float]:
        """Per-sample ``sops`` (ACs), ``macs`` (analog layers, dense), ``connection_macs`` (the same
        over real connections), ``energy_mj``, ``ann_macs``, ``ann_energy_mj``, ``energy_ratio``
        (ANN / SNN), ``samples`` and ``time_steps``."""
        n, totals = max(self.samples, 1), self._totals().values()
        sops = sum(s["acs"] for s in totals) / n
        macs = sum(s["analog_macs"] for s in totals) / n
        connection_macs = sum(s["connection_macs"] for s in totals) / n
        ann_macs = sum(s["macs"] for s in totals) / max(self.frames, 1)
        energy_mj = (e_mac_pj * macs + e_ac_pj * sops) * 1e-9
        ann_energy_mj = e_mac_pj * ann_macs * 1e-9
        return {
            "sops": sops, "macs": macs, "connection_macs": connection_macs, "energy_mj": energy_mj,
            "ann_macs": ann_macs, "ann_energy_mj": ann_energy_mj,
            "energy_ratio": ann_energy_mj / energy_mj if energy_mj > 0 else float("inf"),
            "samples": float(self.samples), "time_steps": self.frames / n,
        }


@torch.no_grad()
def energy_report(model: nn.Module, batch_x: Tensor, *, e_mac_pj: float = E_MAC_PJ, e_ac_pj: float = E_AC_PJ,
                  integer_ops: str = "binary", eval_mode: bool = True) -> dict[str, Any]:
    """Run ``model`` once on ``batch_x`` [T, B, ...] and return the energy estimate per sample.

    Keys: ``sops`` (ACs), ``macs`` (MACs of analog-input layers), ``energy_mj``, ``ann_macs``,
    ``ann_energy_mj``, ``energy_ratio`` (ANN / SNN), ``samples``, ``time_steps``,
    ``mean_firing_rate``, plus ``firing_rates`` (layer -> rate) and ``layers`` (layer -> ops).
    Runs in eval mode (BN running statistics) unless ``eval_mode=False``; restores the mode.
    """
    was_training = model.training
    if eval_mode:
        model.eval()
    try:
        with SynOpsCounter(model, integer_ops=integer_ops) as ops, FiringRateMonitor(model) as fr:
            model(batch_x)
            report: dict[str, Any] = dict(ops.report(e_mac_pj, e_ac_pj))
            report["mean_firing_rate"] = fr.mean_rate()
            report["firing_rates"] = fr.rates()
            report["layers"] = ops.layers()
    finally:
        model.train(was_training)
    return report
