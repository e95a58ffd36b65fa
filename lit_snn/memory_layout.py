"""Memory layouts of time-first activations ``[T, B, C, H, W]``: contiguous, or each step
channels-last (``LitSNN(memory_format="channels_last")``, the conv nets' layout on the CPU).

Shared by the time-folded layers (``backbones.layers.folded``) and the CPU neurons
(``neurons.cpu.numba_scan.NumbaScan``), so that a copy either makes keeps the layout the
convolutions produced instead of reverting it to contiguous (which oneDNN then reorders back)."""

from __future__ import annotations

import torch
from torch import Tensor

CHANNELS_LAST = (0, 1, 3, 4, 2)  # [T, B, C, H, W] -> its memory order [T, B, H, W, C] under channels_last


def memory_order(x: Tensor) -> tuple[int, ...] | None:
    """The permutation of x's dims that is contiguous in memory, where it is one of the two layouts:
    the identity for a contiguous x, ``CHANNELS_LAST`` for a channels-last ``[T, B, C, H, W]``;
    None for any other x (a stride-0 time dim, a transposed view, ...)."""
    if x.is_contiguous():
        return tuple(range(x.dim()))
    if x.dim() == 5 and x.permute(CHANNELS_LAST).is_contiguous():
        return CHANNELS_LAST
    return None


def step_is_channels_last(x: Tensor) -> bool:
    """Whether ``x`` [T, B, C, H, W] has channels-last steps (and is not also contiguous)."""
    return x.dim() == 5 and not x[0].is_contiguous() and x[0].is_contiguous(memory_format=torch.channels_last)


def dense_copy(x: Tensor) -> Tensor:
    """``x`` [T, B, C, H, W] (or any x) as a dense tensor in one of the two layouts: x itself where
    it is one, else a copy that is channels-last where x's steps are (a stride-0 expand of a
    channels-last image, say), contiguous otherwise."""
    if memory_order(x) is not None:
        return x
    if step_is_channels_last(x):
        return x.permute(CHANNELS_LAST).contiguous().permute(0, 1, 4, 2, 3)
    return x.contiguous()
