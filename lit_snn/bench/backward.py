"""``lit-snn bench --backward``: the CPU path's fused neuron backward against its general adjoint,
and lif's forward + backward against the machine's copy bandwidth (issue 25's two kernel checks).

* **fused / general**: the simple variants (lif-like resets, KLIF's slope) have a fused backward
  (``numba_scan.FUSED_BACKWARD``) that computes what the general adjoint computes (tested to
  1e-12): each preset's backward is timed both ways in interleaved rounds, and the ratio says
  whether the fused one is faster (< 1) for every preset and surrogate. The ratio of forward +
  backward is printed beside it: where no parameter gradient is wanted (lif, hard_lif, ...) the fused
  path's forward also writes the charge U that its backward reads instead of replaying the forward
  (``numba_scan.SAVE_CHARGE``), so part of its work moved into the forward, which that column counts.
* **fraction of the copy bandwidth**: lif's forward + backward must move at least five tensors of
  x's size (the forward reads x and writes the spikes; the backward reads dL/dS and x, its only
  saved tensor, and writes dL/dx): those bytes over the measured time, as a fraction of what
  ``torch``'s copy of a buffer of the same working set (four tensors of x's size) moves per second
  on the same machine, in the same rounds. The whole call is timed (autograd, checks and all),
  not the kernels alone: what a training step pays.

Clock (``clock``): at one thread every timed call runs on the calling thread (torch's ops and the
neuron's kernels), so its CPU time (``time.thread_time``, page faults included) is what the call
costs, without the slices another process of a shared machine takes from it; wall-clock time
charged those to whichever call they fell in, the longer one more often (on this project's shared
2-core VM, lif's fraction read 28-40% by the wall clock in runs a few minutes apart). With more
threads the work spreads over threads the calling one does not count: wall-clock time there.
"""

from __future__ import annotations

import statistics
import time

import torch

# presets with the fused backward (numba_scan's ``simple``), and surrogates to try on lif and plif
FUSED_PRESETS = ("lif", "plif", "hard_lif", "da_lif", "soft_lif", "i_lif", "ib_ra_lif", "klif")
SURROGATES = ("rectangle", "triangle", "sigmoid", "atan")
PASSES = 5  # tensors of x's size lif's forward + backward must read or write at least


def clock():
    """The timer of the current thread count: the calling thread's CPU time at one thread, else wall time."""
    return time.thread_time if torch.get_num_threads() == 1 else time.perf_counter


def _cases(presets: list[str]) -> list[tuple[str, str | None]]:
    cases = [(p, None) for p in presets]
    for p in ("lif", "plif"):
        if p in presets:
            cases += [(p, s) for s in SURROGATES if s != "sigmoid"]
    return cases


def _backward_time(neuron, x0: torch.Tensor, grad: torch.Tensor, fused: bool) -> tuple[float, float]:
    """Seconds of one backward of ``neuron`` on a fresh copy of ``x0``, and of its forward + backward."""
    from lit_snn.neurons.cpu import numba_scan

    numba_scan.FUSED_BACKWARD = fused
    x = x0.clone().requires_grad_(True)
    now = clock()
    start = now()
    out = neuron(x)
    middle = now()
    out.backward(grad)
    end = now()
    return end - middle, end - start


def fused_against_general(presets: list[str], shape: tuple[int, ...], rounds: int
                          ) -> list[tuple[str, float, float, float, float]]:
    """(case, median fused ms, median general ms, median per-round ratio fused / general of the
    backward, the same of forward + backward) per preset (and surrogate); the two run back to back
    in each round, so load that changes between rounds cancels in the ratios."""
    from lit_snn.neurons import create_neuron
    from lit_snn.neurons.cpu import numba_scan

    torch.manual_seed(0)
    x0 = torch.randn(shape) * 0.5 + 0.6  # around lif's threshold: about a fifth of the neurons fire
    grad = torch.randn(shape)
    rows = []
    saved = numba_scan.FUSED_BACKWARD
    try:
        for preset, surrogate in _cases(presets):
            neuron = create_neuron(preset, **({"surrogate": surrogate} if surrogate else {}))
            times = {True: [], False: []}
            for fused in (True, False):  # compile and warm up outside the timing
                _backward_time(neuron, x0, grad, fused)
            for _ in range(rounds):
                for fused in (True, False):
                    times[fused].append(_backward_time(neuron, x0, grad, fused))
            name = preset if surrogate is None else f"{preset}:{surrogate}"
            ratio = statistics.median(f[0] / g[0] for f, g in zip(times[True], times[False]))
            both = statistics.median(f[1] / g[1] for f, g in zip(times[True], times[False]))
            rows.append((name, statistics.median(t[0] for t in times[True]) * 1e3,
                         statistics.median(t[0] for t in times[False]) * 1e3, ratio, both))
    finally:
        numba_scan.FUSED_BACKWARD = saved
    return rows


def copy_fraction(shape: tuple[int, ...], rounds: int) -> tuple[float, float, float]:
    """(median ms of lif's forward + backward, the copy bandwidth in GB/s, the fraction of it that
    lif's ``PASSES`` tensors of x's size moved in that time)."""
    from lit_snn.neurons import create_neuron

    torch.manual_seed(0)
    x0 = torch.randn(shape) * 0.5 + 0.6
    grad = torch.randn(shape)
    neuron = create_neuron("lif")
    src = torch.randn(4 * x0.numel())  # the working set of the forward + backward: x, S, dL/dS, dL/dx
    dst = torch.empty_like(src)
    step, copy = [], []
    now = clock()

    def one_step() -> float:
        x = x0.clone().requires_grad_(True)
        start = now()
        neuron(x).backward(grad)
        return now() - start

    def one_copy() -> float:
        start = now()
        dst.copy_(src)
        return now() - start

    one_step(), one_copy()
    for _ in range(rounds):
        step.append(one_step())
        copy.append(one_copy())
    bandwidth = 2 * src.numel() * 4 / statistics.median(copy)  # bytes read + written per second
    # per round: the bytes lif must move over its time, against the copy's bytes over its time
    fraction = statistics.median(PASSES * x0.numel() * c / (2 * src.numel() * s) for s, c in zip(step, copy))
    return statistics.median(step) * 1e3, bandwidth / 1e9, fraction


def run(presets: list[str], shape: tuple[int, ...], threads: list[int], rounds: int) -> int:
    """Print both tables per thread count and a verdict on the fused backward; the exit code."""
    from lit_snn.neurons import create_neuron
    from lit_snn.neurons.cpu.scan import uses_numba

    if not uses_numba(create_neuron("lif").spec):
        print("bench --backward: the numba CPU path is off (LIT_SNN_CPU_NUMBA=0 or numba missing): nothing to compare")
        return 2
    slower = []
    previous = torch.get_num_threads()
    try:
        for n in threads:
            torch.set_num_threads(n)
            timer = "CPU time of the thread" if n == 1 else "wall-clock time"
            print(f"threads: {n}, x fp32 {list(shape)}, {rounds} interleaved rounds, medians of the {timer}")
            print(f"{'preset':<18} {'fused ms':>9} {'general ms':>11} {'fused/general':>14} {'with forward':>13}")
            for name, fused, general, ratio, both in fused_against_general(presets, shape, rounds):
                print(f"{name:<18} {fused:>9.2f} {general:>11.2f} {ratio:>14.2f} {both:>13.2f}", flush=True)
                if ratio > 1:
                    slower.append((n, name, ratio))
            ms, gbs, fraction = copy_fraction(shape, rounds)
            print(f"lif forward + backward {ms:.2f} ms: {PASSES} x {4 * torch.Size(shape).numel() / 2**20:.1f} MiB at "
                  f"{fraction:.0%} of the copy bandwidth measured beside it ({gbs:.1f} GB/s)\n", flush=True)
    finally:
        torch.set_num_threads(previous)
    if slower:
        print("fused backward slower than the general adjoint: " + ", ".join(f"{name} ({r:.2f}x, {n} thread(s))"
                                                                        for n, name, r in slower))
    else:
        print("every fused backward took at most the general adjoint's time")
    return 0
