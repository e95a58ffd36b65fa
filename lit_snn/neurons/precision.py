"""Whether a half-precision storage dtype keeps an integer neuron's spike levels apart.

Integer spikes take the values ``k / N`` for codes ``k = 0 .. round(N D)``. Stored in bfloat16
(8 significant bits) the 512 levels of IB-RA-LIF (D = 5.11, N = 100) no longer map back to their
codes near the top of the range: the quantizer silently becomes coarser than the paper's. float16
(11 bits) keeps all of them. I-LIF's 0..4 are exact in both.
"""

from __future__ import annotations

import functools
import warnings

import torch

from .surrogate import integer_top


@functools.lru_cache(maxsize=64)
def recoverable_spike_levels(int_max: float, int_scale: float, dtype: torch.dtype) -> tuple[int, int]:
    """(codes k whose level k/N, stored in ``dtype``, rounds back to k; number of codes)."""
    top = integer_top(int_max, int_scale)
    codes = torch.arange(top + 1, dtype=torch.float64)
    stored = (codes / int_scale).to(dtype).to(torch.float64)
    return int((torch.round(stored * int_scale) == codes).sum()), top + 1


def warn_if_levels_collapse(name: str, int_max: float, int_scale: float, dtype: torch.dtype) -> None:
    """Warn (once per message) when ``dtype`` cannot hold every integer spike level of a neuron."""
    exact, total = recoverable_spike_levels(float(int_max), float(int_scale), dtype)
    if exact < total:
        warnings.warn(
            f"{name}: {str(dtype).removeprefix('torch.')} storage keeps only {exact} of its {total} spike levels "
            f"k/{int_scale:g} (D = {int_max:g}) apart, so the quantizer is coarser than configured; train "
            f"integer neurons in float16 or float32 (Lightning precision '16-mixed' or '32-true')",
            UserWarning,
            stacklevel=3,
        )
