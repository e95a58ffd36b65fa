"""Losses over per-step outputs ``[T, B, K]``: cross-entropy on the mean over T, and TET.

TET (Deng et al., ICLR 2022), as in the AR-LIF code:
``(1 - lam) * mean_t CE(O_t, y) + lam * mean_t MSE(O_t, phi)``, with ``phi`` a constant
(1 in the CIFAR recipes) or the one-hot target (``one_hot=True``, Tiny-ImageNet recipe).
Targets may be class indices ``[B]`` or soft labels ``[B, K]`` (mixup/cutmix).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

LOSSES = ("ce", "tet")


def mean_output_ce(outputs: Tensor, target: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of the time-averaged output. outputs: [T, B, K]; target: [B] or [B, K]."""
    return F.cross_entropy(outputs.mean(0), target, label_smoothing=label_smoothing)


def tet_loss(outputs: Tensor, target: Tensor, lam: float = 0.05, phi: float = 1.0, one_hot: bool = False,
             label_smoothing: float = 0.0) -> Tensor:
    """Temporal efficient training loss on per-step outputs ``[T, B, K]``."""
    steps = outputs.shape[0]
    flat_out = outputs.flatten(0, 1)  # [T*B, K]
    flat_target = target.expand(steps, *target.shape).flatten(0, 1) if target.dim() == 2 \
        else target.repeat(steps)
    ce = F.cross_entropy(flat_out, flat_target, label_smoothing=label_smoothing)
    if lam == 0:
        return ce
    if one_hot:
        goal = target if target.dim() == 2 else F.one_hot(target, outputs.shape[-1]).to(outputs.dtype)
        goal = goal.to(outputs.dtype).expand_as(outputs)
    else:
        goal = torch.full_like(outputs, float(phi))
    return (1 - lam) * ce + lam * F.mse_loss(outputs, goal)
