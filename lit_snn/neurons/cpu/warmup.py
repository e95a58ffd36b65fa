"""Compile the numba kernels of the CPU path once, before a study's worker processes start.

numba compiles the kernels on their first call and keeps the result on disk (``cache=True``:
``__pycache__`` beside ``numba_kernels.py``, or ``NUMBA_CACHE_DIR``), one compilation per compute
dtype for every variant. On a cold cache each worker of a study compiles them at once, on the
cores its trials need (two workers on two cores: 3.5 minutes before the first trial ends, where a
trial takes 30 s). ``precompile_cpu_kernels(configs)`` compiles them once in the calling process
instead, with a line saying so, and only when a trial of ``configs`` will run a numba kernel whose
compiled code for this machine is missing from the cache; the workers then load it from disk.

The warm check reads numba's cache index of each kernel the trials call (``*.nbi``: one entry per
compiled signature, keyed by the signature, this CPU's codegen and the function's bytecode; empty
when the source file changed or another numba version wrote it). numba has no public API for it:
``Dispatcher._cache`` is used, and when that fails the cache counts as cold (the warm-up then
costs seconds: loading what is there).
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Iterable

import torch

PSN_KERNELS = ("psn_forward", "psn_backward")  # numba_parallel.py: PSN (decay: parallel)
SCAN_KERNELS = ("scan_forward", "scan_backward")  # numba_kernels.py: every other neuron
LONG_KERNELS = ("long_forward", "saved_backward")  # numba_long.py: the per-layer simple variants
DOUBLE_PRECISION = {"64", "64-true", "double", 64}


def _cpu_neuron(config: dict) -> tuple[str, dict, torch.dtype] | None:
    """``(preset, overrides, compute dtype)`` of a run config whose neurons run the CPU path, else None."""
    model, trainer = config.get("model") or {}, config.get("trainer") or {}
    overrides = dict(model.get("neuron_overrides") or {})
    accelerator = str(trainer.get("accelerator", "auto"))
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if on_gpu or model.get("compile") or overrides.get("backend", "auto") not in ("auto", "cpu"):
        return None  # Triton, or the reference (torch.compile, backend: torch)
    dtype = torch.float64 if trainer.get("precision") in DOUBLE_PRECISION else torch.float32
    overrides.setdefault("time_steps", int(model.get("time_steps", 4)))
    return str(model.get("neuron", "lif")), overrides, dtype


def numba_in_use() -> bool:
    """Whether the CPU path runs the numba kernels here (numba installed, ``LIT_SNN_CPU_NUMBA`` not 0);
    else it runs the PyTorch reference, with nothing to compile."""
    from . import scan

    return scan.USE_NUMBA and scan._NUMBA_BROKEN is None and importlib.util.find_spec("numba") is not None


def _compiled(dispatcher, dtype: torch.dtype) -> bool:
    """Whether numba's cache holds ``dispatcher``'s code for this machine with ``dtype`` arrays."""
    from numba import from_dtype

    try:
        cache = dispatcher._cache
        codegen = dispatcher.targetctx.codegen()
        wanted = from_dtype(torch.empty(0, dtype=dtype).numpy().dtype)
        for key in cache._cache_file._load_index():
            sig = key[0]
            if key == cache._index_key(sig, codegen) and getattr(sig[0], "dtype", None) == wanted:
                return True
    except Exception:  # noqa: BLE001 - numba's private cache API moved: count it as cold
        return False
    return False


def _kernels_of(preset: str, overrides: dict) -> tuple:
    """The kernels a training run of the neuron calls: PSN's; for the per-layer simple variants
    (``numba_scan.long_path``) ``numba_long``'s forward, its saved-charge backward where no parameter
    is learnable, and ``scan_backward`` (the replay: learnable decay, a static input); else the scan's two."""
    from ..presets import create_neuron, neuron_config
    from ..reference import KernelSpec
    from . import numba_kernels, numba_long, numba_parallel, numba_scan

    cfg = neuron_config(preset, **overrides)
    if cfg.decay == "parallel":
        return tuple(getattr(numba_parallel, name) for name in PSN_KERNELS)
    flags = numba_scan.variant_args(KernelSpec.from_config(cfg))[0]
    if cfg.granularity != "channel" and cfg.decay != "gated" and numba_scan.long_path(flags, 1, None):
        learnable = any(p.requires_grad for p in create_neuron(cfg).parameters())
        names = LONG_KERNELS[:1] if learnable else LONG_KERNELS
        return (*(getattr(numba_long, name) for name in names), numba_kernels.scan_backward)
    return tuple(getattr(numba_kernels, name) for name in SCAN_KERNELS)


def cold_neurons(configs: Iterable[dict]) -> list[tuple[str, dict, torch.dtype]]:
    """The CPU neurons of ``configs`` (one per kernel and dtype) whose numba kernels are not compiled yet."""
    if not numba_in_use():
        return []
    cold, seen = [], set()
    for config in configs:
        neuron = _cpu_neuron(config)
        if neuron is None:
            continue
        kernels = _kernels_of(neuron[0], neuron[1])
        if (kernels, neuron[2]) in seen:
            continue
        seen.add((kernels, neuron[2]))
        if not all(_compiled(kernel, neuron[2]) for kernel in kernels):
            cold.append(neuron)
    return cold


def run_once(preset: str, overrides: dict, dtype: torch.dtype) -> None:
    """A forward and backward of ``preset`` on a small CPU input, and on a static one (one step
    expanded over T: a network's first layer, which replays its forward in the backward): compiles
    (or loads) its kernels."""
    from ..presets import create_neuron

    neuron = create_neuron(preset, **overrides).to(dtype)
    T = overrides["time_steps"]
    x = torch.randn(T, 2, 4, 3, 3, dtype=dtype, requires_grad=True)  # [T, B, C, H, W]
    neuron(x).sum().backward()
    static = torch.randn(1, 2, 4, 3, 3, dtype=dtype).expand(T, 2, 4, 3, 3).requires_grad_(True)
    neuron(static).sum().backward()


def precompile_cpu_kernels(configs: Iterable[dict], log: Callable[[str], None] = print) -> float | None:
    """Compile the numba kernels the trials of ``configs`` (run configs) will call, when the cache
    lacks them; returns the seconds it took (None: nothing to compile)."""
    cold = cold_neurons(configs)
    if not cold:
        return None
    log("  compiling the CPU kernels (numba; first run only, the workers reuse them) ...")
    started = time.time()
    for preset, overrides, dtype in cold:
        run_once(preset, overrides, dtype)
    took = time.time() - started
    log(f"  compiled the CPU kernels in {took:.0f} s")
    return took
