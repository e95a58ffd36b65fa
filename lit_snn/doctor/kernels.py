"""Each neuron preset on a backend (the numba kernels on the CPU, Triton on a GPU) against the PyTorch
reference: outputs and every gradient, on small inputs; and a short timing. (With numba off the CPU
path is the reference itself: nothing to check there.)

The rule is ``tests/neurons/test_kernels.py``'s on a GPU: the backend runs in float32 (what training
runs), the reference in float64; neurons within ``TOLERANCE`` of a discontinuity are skipped
(``ties.py``: an ulp there legitimately flips a spike), the others get no cotangent; binary spikes
must be equal, every other tensor equal within ``TOLERANCE`` relative to its largest entry (a
parameter gradient sums ``n`` terms per entry: ``sqrt(n)`` if larger). The loss weights the spikes,
``V_T`` and, for AR-LIF's adaptive reset, ``M_T`` (the kernel tests' choice).
"""

from __future__ import annotations

import math
import statistics
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..neurons import KernelSpec, create_neuron, list_neurons, multistep_reference, neuron_config
from ..neurons.parallel import parallel_reference
from ..neurons.reference import PARAM_NAMES
from .ties import parallel_near_ties, scan_near_ties

TOLERANCE = 1e-4  # relative tolerance and near-tie margin (test_kernels.py on a GPU)
CASES = {  # readable id -> (input shape [T, ...], channels for per-channel parameters or None)
    "per-layer": ((6, 3, 40), None),
    "per-channel": ((5, 2, 3, 4, 5), 3),
}


@dataclass(frozen=True)
class Backend:
    """A backend's two entry points, looked up at call time (so a test can replace one), and its device."""

    name: str
    scan: Callable[[], Callable]  # -> multistep_*(x, **params, spec=...) -> (spikes, V_T, M_T)
    parallel: Callable[[], Callable]  # -> parallel_*(x, weight, threshold, surrogate, param) -> (spikes, H_T)
    device: str


def cpu_backend(name: str) -> Backend:
    """The CPU path (``multistep_cpu``, ``parallel_cpu``), looked up at call time; its numba kernels
    when ``scan.USE_NUMBA`` (else it runs the reference)."""
    from ..neurons.cpu import parallel as cpu_parallel
    from ..neurons.cpu import scan as cpu_scan

    return Backend(name, lambda: cpu_scan.multistep_cpu, lambda: cpu_parallel.parallel_cpu, "cpu")


def triton_backend(device: str = "cuda") -> Backend:
    """The Triton kernels (``device="cpu"`` only under ``TRITON_INTERPRET=1``, Triton's CPU interpreter)."""
    from ..neurons.kernels import multistep as triton_scan
    from ..neurons.kernels import parallel as triton_parallel

    return Backend("triton", lambda: triton_scan.multistep_triton, lambda: triton_parallel.parallel_triton, device)


@dataclass
class Mismatch:
    backend: str
    preset: str
    tensor: str  # "spikes", "V_T", "dL/dx", "dL/dvth", ...
    detail: str  # "max abs 3.1e-02 > tol 1.0e-04"

    def line(self) -> str:
        return f"{self.backend} {self.preset}: {self.tensor} differs from the reference ({self.detail})"


@dataclass
class BackendReport:
    backend: str
    presets: list[str]
    mismatches: list[Mismatch] = field(default_factory=list)
    seconds: float = 0.0
    timing: str = ""


def _nudged(preset: str, channels: int | None, gen: torch.Generator):
    """The preset's neuron with every learnable parameter moved off its initial value (as the kernel tests)."""
    overrides = {"granularity": "channel", "channels": channels} if channels else {}
    cfg = neuron_config(preset, **overrides)
    neuron = create_neuron(cfg)
    with torch.no_grad():
        for p in neuron.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return cfg, neuron


def _grads(loss: Tensor, inputs: list[Tensor]) -> list[Tensor]:
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    return [torch.zeros_like(i) if g is None else g for g, i in zip(grads, inputs)]


def _leaves(tensors: list[Tensor], device: str, dtype: torch.dtype) -> list[Tensor]:
    return [t.detach().to(device, dtype).clone().requires_grad_(True) for t in tensors]


def _differs(actual: Tensor, expected: Tensor, terms: int = 1) -> str | None:
    """Why ``actual`` is not ``expected`` (float64, CPU) within ``TOLERANCE``; None when it is."""
    actual = actual.detach().cpu().double()
    if actual.shape != expected.shape:
        return f"shape {tuple(actual.shape)}, expected {tuple(expected.shape)}"
    if not actual.numel():
        return None
    if not torch.isfinite(actual).all():
        return f"{int((~torch.isfinite(actual)).sum())} non-finite value(s)"
    scale = expected.abs().max().item()
    tol = TOLERANCE * max(scale, math.sqrt(terms))
    diff = (actual - expected).abs()
    if (diff > tol + TOLERANCE * expected.abs()).any():
        return f"max abs {diff.max().item():.1e} > tol {tol:.1e}"
    return None


def _spikes_differ(actual: Tensor, expected: Tensor, integer: bool) -> str | None:
    if integer:  # integer-valued spikes: values up to D, rounding of U / th
        return _differs(actual, expected)
    actual = actual.detach().cpu().double()
    if actual.shape != expected.shape:
        return f"shape {tuple(actual.shape)}, expected {tuple(expected.shape)}"
    wrong = int((actual != expected).sum())
    return f"{wrong} of {expected.numel()} differ" if wrong else None


def check_scan_preset(backend: Backend, preset: str, case: str) -> list[Mismatch]:
    """One scan preset (every preset but PSN) on one ``CASES`` input: spikes, V_T, M_T, dL/dx, dL/d(param)."""
    shape, channels = CASES[case]
    gen = torch.Generator().manual_seed(zlib.crc32(f"{preset}/{case}".encode()))
    cfg, neuron = _nudged(preset, channels, gen)
    spec = KernelSpec.from_config(cfg)
    params = {k: v.detach().double() for k, v in neuron.effective_params().items()}
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * 1.5 + 0.5
    clean = (~scan_near_ties(x, params, spec, TOLERANCE)).view(shape[1:])
    cot = [torch.randn(shape, generator=gen, dtype=torch.float64) * clean,
           torch.randn(shape[1:], generator=gen, dtype=torch.float64) * clean,
           torch.randn(shape[1:], generator=gen, dtype=torch.float64) * clean * (spec.reset == "adaptive")]

    def run(fn, device, dtype):
        xs, *ps = _leaves([x, *params.values()], device, dtype)
        spikes, v, m = fn(xs, **dict(zip(params, ps)), spec=spec)
        c = [t.to(device, dtype) for t in cot]
        loss = (spikes * c[0]).sum() + (v * c[1]).sum() + (m * c[2]).sum()
        return [spikes, v, m], _grads(loss, [xs, *ps])

    ref_out, ref_grads = run(multistep_reference, "cpu", torch.float64)
    out, grads = run(backend.scan(), backend.device, torch.float32)
    found = []

    def note(tensor: str, why: str | None) -> None:
        if why:
            found.append(Mismatch(backend.name, preset, f"{tensor} ({case})" if channels else tensor, why))

    note("spikes", _spikes_differ(out[0].detach().cpu()[:, clean], ref_out[0].detach()[:, clean], spec.integer))
    for name, a, b in zip(("V_T", "M_T"), out[1:], ref_out[1:]):
        note(name, _differs(a.detach().cpu()[clean], b.detach()[clean]))
    terms = x.numel()
    for name, a, b in zip(("x", *PARAM_NAMES), grads, ref_grads):
        note(f"dL/d{name}", _differs(a, b, 1 if name == "x" else terms // max(b.numel(), 1)))
    return found


def check_parallel_preset(backend: Backend, preset: str) -> list[Mismatch]:
    """PSN (``decay: parallel``): spikes, H_T, dL/dx, dL/dW, dL/dB on a per-layer input."""
    cfg = neuron_config(preset)
    gen = torch.Generator().manual_seed(zlib.crc32(preset.encode()))
    _, neuron = _nudged(preset, None, gen)
    weight, threshold = (t.detach().double() for t in neuron.parallel_params())
    kind, param = neuron.spec.surrogate, neuron.spec.surrogate_param
    shape = (cfg.time_steps, 3, 40)
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * 1.5 + 0.5
    clean = ~parallel_near_ties(x, weight, threshold, kind, param, TOLERANCE).view(shape[1:])
    cot = [torch.randn(shape, generator=gen, dtype=torch.float64) * clean,
           torch.randn(shape[1:], generator=gen, dtype=torch.float64) * clean]

    def run(fn, device, dtype):
        xs, w, b = _leaves([x, weight, threshold], device, dtype)
        spikes, h = fn(xs, w, b, kind, param)
        loss = (spikes * cot[0].to(device, dtype)).sum() + (h * cot[1].to(device, dtype)).sum()
        return [spikes, h], _grads(loss, [xs, w, b])

    ref_out, ref_grads = run(parallel_reference, "cpu", torch.float64)
    out, grads = run(backend.parallel(), backend.device, torch.float32)
    whys = {"spikes": _spikes_differ(out[0].detach().cpu()[:, clean], ref_out[0].detach()[:, clean], False),
            "H_T": _differs(out[1].detach().cpu()[clean], ref_out[1].detach()[clean])}
    n = x[0].numel()
    for name, a, b in zip(("dL/dx", "dL/dW", "dL/dB"), grads, ref_grads):
        whys[name] = _differs(a, b, 1 if name == "dL/dx" else n)
    return [Mismatch(backend.name, preset, tensor, why) for tensor, why in whys.items() if why]


def _timed(fn: Callable[[], None], device: str, repeats: int = 5) -> float:
    """Median seconds of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_lif(backend: Backend) -> str:
    """The lif preset's forward + backward on one fp32 input, the backend against the reference."""
    shape = (8, 64, 16384) if backend.device == "cuda" else (8, 16, 4096)  # [T, B, F]
    spec = KernelSpec.from_config(neuron_config("lif"))
    params = {k: v.detach() for k, v in create_neuron("lif").effective_params(backend.device).items()}
    x = torch.randn(shape, device=backend.device).requires_grad_(True)

    def step(fn):
        return lambda: fn(x, **params, spec=spec)[0].sum().backward()

    ours = _timed(step(backend.scan()), backend.device)
    ref = _timed(step(multistep_reference), backend.device)
    dims = "x".join(str(s) for s in shape)
    return f"lif fwd+bwd fp32 [{dims}]: {ours * 1e3:.2f} ms (reference {ref * 1e3:.2f} ms)"


def check_backend(backend: Backend, presets: list[str] | None = None, timing: bool = True) -> BackendReport:
    """Every preset (or ``presets``) on ``backend`` against the reference, and the lif timing."""
    names = presets if presets is not None else list_neurons()
    report = BackendReport(backend.name, names)
    start = time.perf_counter()
    for preset in names:
        if neuron_config(preset).decay == "parallel":
            report.mismatches += check_parallel_preset(backend, preset)
        else:
            for case in CASES:
                report.mismatches += check_scan_preset(backend, preset, case)
    report.seconds = time.perf_counter() - start
    if timing:
        report.timing = time_lif(backend)
    return report
