"""Building blocks shared by every backbone: time-folded layers and the per-layer neuron factory.

Conv, BatchNorm and pooling have no state over time, so they run once on the folded batch
``[T*B, C, H, W]`` and the result is unfolded to ``[T, B, ...]`` for the next spiking neuron.
``TimeFold`` does that fold/unfold. The layer classes below (``Conv2d``, ``BatchNorm2d``,
``AvgPool2d``, ...) are the ``torch.nn`` classes with ``TimeFold``'s fold mixed in, so that they
stay ``isinstance(layer, nn.Conv2d)``: ``convert_to_binary_spikes`` (``lit_snn.neurons``), the
energy hooks of ``lit_snn.energy`` and weight-init loops see plain layers, and state-dict keys
are those of the ANN of the same architecture.

BatchNorm2d over the folded batch normalises over T, B, H and W together with one affine pair
per channel, shared over time: the plain form of tdBN (Zheng et al., 2021) without its
``alpha * V_th`` scale, as in the TET and AR-LIF code.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..memory_layout import dense_copy, step_is_channels_last
from ..neurons import NeuronConfig, SpikingNeuron, create_neuron, neuron_config


def fold_time(module: nn.Module, x: Tensor) -> Tensor:
    """Apply a stateless ``module`` to ``x`` [T, B, *F] as one batch [T*B, *F]; returns [T, B, *F']."""
    y = module(folded(x))  # [T*B, *F']
    return y.unflatten(0, x.shape[:2])  # [T, B, *F']


def folded(x: Tensor) -> Tensor:
    """``x`` [T, B, *F] as one batch [T*B, *F]: a view where T and B fold, else a copy that keeps
    a channels-last step channels-last (a plain ``flatten`` would copy it to contiguous)."""
    if step_is_channels_last(x):  # [T, B, C, H, W]: a view if x is dense, else a channels-last copy
        return dense_copy(x).flatten(0, 1)
    return x.flatten(0, 1)


def one_copy(x: Tensor) -> Tensor:
    """The one ``[B, *F]`` behind a stride-0 ``x`` [T, B, *F] (T copies of one tensor, as the layers below
    and direct encoding make them): the tensor ``x`` expands where ``x`` is an expand of a whole tensor,
    else ``x[0]``. Both have ``x``'s values; the difference is the backward: the gradient of ``x[0]``
    is T zero-filled copies with the first one written, which the expand's backward then sums (a
    fifth of ``mnist_conv``'s training step on a CPU, for the first conv's batch norm and pooling),
    while the expanded tensor takes its gradient directly. Written by hand: torch has no op for it.
    Under ``torch.compile`` (whose tracer need not keep view bases) always ``x[0]``."""
    base = x._base
    if (base is None or torch.compiler.is_compiling() or base.shape != x.shape[1:] or base.dtype != x.dtype
            or base.stride() != x.stride()[1:] or base.storage_offset() != x.storage_offset()):
        return x[0]
    return base


class TimeFold(nn.Module):
    """Wrap any per-sample module (conv, BN, pooling, ...) so it takes time-first ``[T, B, ...]``."""

    def __init__(self, *modules: nn.Module) -> None:
        super().__init__()
        self.module = modules[0] if len(modules) == 1 else nn.Sequential(*modules)

    def forward(self, x: Tensor) -> Tensor:  # [T, B, *F] -> [T, B, *F']
        return fold_time(self.module, x)


class _FoldMixin:
    """Folds T into the batch when the input has one more dim than the layer expects (5-D for 2-D
    layers); a 4-D input is passed through unchanged, so the layer also works as a plain ANN layer.

    An input that is the same at every step as a stride-0 view (a static image under direct
    encoding, ``x.expand(T, ...)``) runs once and its output is expanded the same way: exact for a
    per-sample layer, and T times cheaper forward and backward (``small_conv``'s first conv on the
    8x8 digits: 4x). Batch norm is not per sample (``_per_sample = False``) and handles it itself
    (``BatchNorm2d``)."""

    _per_sample = True

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 5:  # [T, B, C, H, W]
            if self._per_sample and x.stride(0) == 0:
                y = super().forward(one_copy(x))  # type: ignore[misc]  # [B, C', H', W']
                return y.unsqueeze(0).expand(x.shape[0], *y.shape)
            return fold_time(super().forward, x)  # type: ignore[misc]
        return super().forward(x)  # type: ignore[misc]


class Conv2d(_FoldMixin, nn.Conv2d):
    """``nn.Conv2d`` on ``[T, B, C, H, W]`` (weights shared over time)."""


class BatchNorm2d(_FoldMixin, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` on ``[T, B, C, H, W]``: statistics over T*B*H*W per channel.

    A stride-0 input (T copies of one ``[B, C, H, W]``: a static image behind a per-sample stem)
    is normalised once and expanded: the T*B*H*W statistics are the one copy's, and the gradient
    through the expand, the T copies' sum, is what batch norm over the folded batch gives. T times
    less work forward and backward. Only the running variance's unbiased correction n / (n - 1)
    counts the T copies, so the running statistics are updated here with n = T*B*H*W (torch's
    batch norm on the one copy would count B*H*W): the same update as on the folded batch."""

    _per_sample = False

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 5 and x.stride(0) == 0 and x[0].numel() > x.shape[2]:  # [T, B, C, H, W], T copies
            y = self._normalise_once(one_copy(x), copies=x.shape[0])  # [B, C, H, W]
            return y.unsqueeze(0).expand(x.shape[0], *y.shape)
        return super().forward(x)

    def _normalise_once(self, x: Tensor, copies: int) -> Tensor:
        if not (self.training or self.running_mean is None):  # running statistics: per sample
            return nn.BatchNorm2d.forward(self, x)
        if self.training and self.track_running_stats:
            self._update_running_stats(x, copies)
        return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)  # batch statistics

    @torch.no_grad()
    def _update_running_stats(self, x: Tensor, copies: int) -> None:
        """``nn.BatchNorm2d``'s update (momentum, or the cumulative mean when it is None) for a
        batch of ``copies`` copies of ``x``."""
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        # [C]: the copies' biased statistics; torch.var_mean over (0, 2, 3) would give the same up to
        # rounding but takes 14x longer (mnist_conv's first batch norm: 100 ms vs 7 ms on one core)
        mean, var = torch.batch_norm_update_stats(x, None, None, 0.0)
        n = copies * (x.numel() // x.shape[1])
        self.running_mean.mul_(1 - factor).add_(mean.to(self.running_mean.dtype), alpha=factor)
        self.running_var.mul_(1 - factor).add_((var * (n / (n - 1))).to(self.running_var.dtype), alpha=factor)


class AvgPool2d(_FoldMixin, nn.AvgPool2d):
    """``nn.AvgPool2d`` on ``[T, B, C, H, W]``."""


class MaxPool2d(_FoldMixin, nn.MaxPool2d):
    """``nn.MaxPool2d`` on ``[T, B, C, H, W]``."""


class AdaptiveAvgPool2d(_FoldMixin, nn.AdaptiveAvgPool2d):
    """``nn.AdaptiveAvgPool2d`` on ``[T, B, C, H, W]`` (makes a backbone input-size agnostic).

    Where the input already has the output size the pool is the identity, and ``x`` is returned as
    it is: torch's CPU kernel would still cost a copy each way (``small_conv`` on 8x8 digits: 12% of
    a training step)."""

    def forward(self, x: Tensor) -> Tensor:
        size = self.output_size if isinstance(self.output_size, tuple) else (self.output_size,) * 2
        if all(s is None or s == d for s, d in zip(size, x.shape[-2:])):
            return x
        return super().forward(x)


def flatten_features() -> nn.Flatten:
    """[T, B, C, H, W] -> [T, B, C*H*W]; ``nn.Linear`` then works on [T, B, F] directly."""
    return nn.Flatten(start_dim=2)


class NeuronMaker:
    """Builds every spiking neuron of a backbone through ``create_neuron(neuron, **overrides)``.

    ``neuron`` is a preset name or a ``NeuronConfig``. When the resolved config has
    ``granularity="channel"``, ``channels=`` is set per layer from the layer's width (dim 2 of
    its input: conv channels, or features after a Linear).
    """

    def __init__(self, neuron: str | NeuronConfig = "lif", overrides: dict[str, Any] | None = None):
        self.neuron = neuron
        self.overrides = dict(overrides or {})
        # resolve now to fail early (with the valid names); channels is a placeholder until a layer asks
        probe = self._without_channels()
        if probe.get("granularity") == "channel":
            probe["channels"] = 1
        self.config = neuron_config(neuron, **probe)

    def _without_channels(self) -> dict[str, Any]:
        return {k: v for k, v in self.overrides.items() if k != "channels"}

    @property
    def per_channel(self) -> bool:
        return self.config.granularity == "channel"

    def __call__(self, channels: int) -> SpikingNeuron:
        """A fresh neuron layer for ``channels`` channels (only used for per-channel parameters)."""
        overrides = self._without_channels()
        if self.per_channel:
            overrides["channels"] = channels
        return create_neuron(self.neuron, **overrides)


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal (fan_out, ReLU gain) convs with zero bias; BN weight 1, bias 0; Linear bias 0.

    The initialisation of the AR-LIF, TET and torchvision ResNet code.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
