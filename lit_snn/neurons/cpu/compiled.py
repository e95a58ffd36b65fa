"""Inductor where it pays: a variant's scan switches from the eager CPU path to ``torch.compile`` of
the reference once it has earned the compilation, and only if the compiled one is faster.

Measured on this project's 2-core machine (one thread, ``[T, 16, 64, 16, 16]``, T = 4 and 8):
inductor fuses the reference's steps into a few loops and beats the eager CPU path 1.1-4x for the
hard, complementary and gated resets with binary spikes (lif, plif, hard_lif, da_lif, klif, clif,
glif) and AR-LIF, and loses 2.5-5x for the soft resets and the integer spikes (soft_lif, alif,
i_lif, ib_ra_lif); but compiling one variant costs 2.5-31 s, more than all the neurons of a short
run take (``lit-snn train --config configs/digits_lif.yaml``: about 1.5 s of neuron time in all).

So ``ScanRunner`` rents before it buys (ski rental): it runs the eager CPU path and adds up its
time (forward + backward, estimated as ``BACKWARD_FACTOR`` times the forward); once that reaches
``COMPILE_AFTER_S``, a guess at one compilation, it compiles (``dynamic=True``: one graph for the
layer's batch sizes), times forward + backward of each (median of 5), and keeps the faster for the rest of
the process. A compilation thus costs at most about what the run had already spent, a short run
never compiles, and a variant inductor does not speed up stays eager. Inference (``no_grad``)
always runs eager: a compiled graph for it would be a second compilation.

Off unless ``LIT_SNN_CPU_COMPILE_AFTER_S`` (seconds, e.g. 30) is set: when the switch happens
depends on the machine's speed and the compiled reference rounds differently, so a run that
switches cannot be reproduced bit for bit (``lit-snn reproduce``); opt in for long CPU runs.
"""

from __future__ import annotations

import os
import time

import torch
from torch import Tensor

from ..reference import KernelSpec, multistep_reference
from .scan import multistep_cpu

# eager seconds in one variant that earn a compilation (a cold one takes 6-40 s here); off by default
COMPILE_AFTER_S = float(os.environ.get("LIT_SNN_CPU_COMPILE_AFTER_S", "inf"))
BACKWARD_FACTOR = 3.0  # forward + backward / forward of the eager CPU path (measured 3-4 for lif, ar_lif)


class ScanRunner:
    """``multistep_cpu``'s signature; the eager CPU path until a compiled reference has paid off."""

    def __init__(self, spec: KernelSpec) -> None:
        self.spec = spec
        self.eager_s = 0.0  # estimated forward + backward seconds spent eager
        self.choice = "eager"  # "eager" (still renting), "compiled" or "eager, compiled slower"
        self.report = ""  # what the switch measured
        self._compiled = None

    def __call__(self, x: Tensor, **params) -> tuple[Tensor, Tensor, Tensor]:
        training = torch.is_grad_enabled() and (x.requires_grad or any(
            p is not None and p.requires_grad for p in params.values()))
        if training and self.choice == "compiled":
            return self._compiled(x, **params, spec=self.spec)
        if training and self.choice == "eager" and self.eager_s >= COMPILE_AFTER_S:
            self.settle(x, params)
            return self(x, **params)
        start = time.perf_counter()
        out = multistep_cpu(x, **params, spec=self.spec)
        if training:
            self.eager_s += BACKWARD_FACTOR * (time.perf_counter() - start)
        return out

    def settle(self, x: Tensor, params: dict) -> str:
        """Compile now, time both on ``x``, keep the faster; returns the choice."""
        if self.choice != "eager":
            return self.choice
        self._compiled = torch.compile(multistep_reference, dynamic=True)
        start = time.perf_counter()
        self._step(self._compiled, x, params)  # compiles
        compile_s = time.perf_counter() - start
        compiled_ms, eager_ms = (self._timed(fn, x, params) for fn in (self._compiled, multistep_cpu))
        self.choice = "compiled" if compiled_ms < eager_ms else "eager, compiled slower"
        self.report = (f"torch.compile of the reference: {compiled_ms:.2f} ms vs {eager_ms:.2f} ms eager per forward + "
                       f"backward after {self.eager_s:.0f} s eager and a {compile_s:.1f} s compilation: {self.choice}")
        if self.choice != "compiled":
            self._compiled = None
        return self.choice

    def _step(self, fn, x: Tensor, params: dict) -> None:
        leaves = [t.detach().requires_grad_(t.requires_grad) for t in (x, *params.values()) if t is not None]
        xs, rest = leaves[0], iter(leaves[1:])
        ps = {k: (None if v is None else next(rest)) for k, v in params.items()}
        spikes, v, _ = fn(xs, **ps, spec=self.spec)
        (spikes.sum() + v.sum()).backward()

    def _timed(self, fn, x: Tensor, params: dict, repeats: int = 5) -> float:
        """Median ms of ``repeats`` forward + backward calls after a warm one."""
        self._step(fn, x, params)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            self._step(fn, x, params)
            times.append((time.perf_counter() - start) * 1e3)
        return sorted(times)[repeats // 2]


_RUNNERS: dict = {}  # (spec, dtype) -> ScanRunner: one decision per variant and process


def scan_runner(spec: KernelSpec, dtype: torch.dtype) -> ScanRunner:
    """The process's runner for this variant and storage dtype."""
    key = (spec, dtype)
    if key not in _RUNNERS:
        _RUNNERS[key] = ScanRunner(spec)
    return _RUNNERS[key]
