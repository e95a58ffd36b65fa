"""The recurrence's effective parameters as the CPU path computes with them, and the reduction of
their gradients back to ``[P]``.

Every parameter becomes a tensor in the compute dtype that broadcasts over one step ``[B, C, *S]``:
0-dim per layer, ``[1, C, 1, ...]`` per channel. (An op with a 0-dim tensor operand dispatches in a
third of the time of one with a Python number, which torch wraps into a new tensor on every call;
the kernel treats both as a scalar.) Per-layer values are also kept as Python floats, for the
``alpha=``/``value=`` arguments of fused ops and for exact shortcuts on constants.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..reference import PARAM_NAMES, broadcast_param


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """What the CPU path computes in for a storage dtype: float64 for float64, else float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


@dataclass(frozen=True)
class StepParams:
    """Effective parameters by name (``reference.PARAM_NAMES``; those a variant does not read are absent)."""

    values: dict  # name -> Tensor: 0-dim (per layer) or [1, C, 1, ...] (per channel), in the compute dtype
    floats: dict  # name -> the per-layer value as a Python float (absent per channel)
    constant: frozenset  # names whose tensor needs no gradient: configuration constants

    def __getitem__(self, name: str) -> Tensor:
        return self.values[name]

    def fixed_at(self, name: str, value: float) -> bool:
        """``name`` is the configuration constant ``value``: a ``* 1`` or ``/ 1`` may be skipped exactly.
        (Learnable parameters never take the shortcut, so a run at initialisation times the general path.)"""
        return name in self.constant and self.floats.get(name) == value


def step_params(tensors: dict, step: Tensor, dtype: torch.dtype) -> StepParams:
    """``tensors``: name -> ``[P]`` tensor or ``None``; ``step``: one step of the input ``[B, C, *S]``."""
    values, floats, constant = {}, {}, set()
    for name in PARAM_NAMES:
        p = tensors.get(name)
        if p is None:
            continue
        if not p.requires_grad:
            constant.add(name)
        p = p.detach().to(dtype)
        if p.numel() == 1:
            values[name] = p.reshape(())
            floats[name] = float(values[name])
        else:
            values[name] = broadcast_param(p, step)
    return StepParams(values, floats, frozenset(constant))


def reduce_to_param(acc: Tensor, like: Tensor) -> Tensor:
    """A per-element gradient ``acc`` ``[B, C, *S]`` (summed over time) to ``like``'s shape and dtype:
    ``[1]`` (per layer) or ``[C]`` (per channel, dim 1 of a step)."""
    if like.numel() == 1:
        total = acc.sum()
    else:
        total = acc.sum(dim=(0,) + tuple(range(2, acc.dim())))
    return total.reshape(like.shape).to(like.dtype)
