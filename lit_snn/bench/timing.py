"""Measurement helpers of the benchmarks: interleaved rounds on the CPU (medians and per-round
ratios), ``triton.testing.do_bench`` on a GPU, bandwidths, and the machine's name."""

from __future__ import annotations

import platform
import statistics
import time

import torch

from .table_rows import first_line

# peak HBM bandwidth in bytes/s by a substring of torch.cuda.get_device_name(); first match wins
PEAK_BANDWIDTH = (
    ("GH200", 4.0e12),
    ("H200", 4.8e12),
    ("H100 NVL", 3.9e12),
    ("H100 PCIe", 2.0e12),
    ("H100", 3.35e12),  # SXM, HBM3
    ("H800", 3.35e12),
    ("B200", 8.0e12),
    ("A100-SXM4-80GB", 2.039e12),
    ("A100 80GB", 1.935e12),
    ("A100", 1.555e12),
    ("L40S", 0.864e12),
    ("RTX 5090", 1.792e12),
    ("RTX 4090", 1.008e12),
    ("RTX 3090", 0.936e12),
)



def peak_bandwidth(device_name: str) -> float | None:
    for key, value in PEAK_BANDWIDTH:
        if key in device_name:
            return value
    return None


def copy_bandwidth() -> float:
    """Measured device-to-device copy bandwidth (bytes/s, read + write) of a 512 MiB buffer."""
    import triton.testing

    src = torch.empty(128 * 2**20, device="cuda", dtype=torch.float32)
    dst = torch.empty_like(src)
    ms = triton.testing.do_bench(lambda: dst.copy_(src), return_mode="median")
    return 2 * src.numel() * 4 / (ms * 1e-3)



def measure(run) -> tuple[float, float]:
    """GPU: (median ms of ``triton.testing.do_bench``, peak MiB above the allocation at entry) of one
    forward + backward."""
    import triton.testing

    run()  # compile / autotune outside the timing
    run()
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    run()
    torch.cuda.synchronize()
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    ms = triton.testing.do_bench(run, return_mode="median")
    return ms, peak



def interleaved_times(runs: dict, columns: list, rounds: int, base: str = "ours") -> tuple[dict, dict, dict]:
    """CPU: (median ms, median per-round ratio to ``base``, error message) per column; the columns of
    one round run back to back, so load that changes between rounds cancels in the ratios. ``runs``:
    column -> an object whose ``step()`` is timed, or a string (the reason the column is n/a)."""
    live, errors = [], {}
    for col in columns:
        run = runs.get(col)
        if run is None or isinstance(run, str):  # absent, or the reason it is n/a
            continue
        try:
            run.step()  # compile and warm up outside the timing
            live.append(col)
        except Exception as err:  # noqa: BLE001  (one failing column must not end the run)
            errors[col] = f"failed: {first_line(err, 100)}"
    samples = {col: [] for col in live}
    for _ in range(rounds):
        for col in live:
            start = time.perf_counter()
            runs[col].step()
            samples[col].append((time.perf_counter() - start) * 1e3)
    times = {col: statistics.median(v) for col, v in samples.items()}
    ratios = {}
    if base in samples:
        ratios = {col: statistics.median(t / o for t, o in zip(v, samples[base])) for col, v in samples.items()}
    return times, ratios, errors



def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()

