"""The GPU table of the neuron benchmark: ``do_bench`` medians, peak memory, the bandwidth roofline."""

from __future__ import annotations

import torch

from .cases import DTYPES, Column, make_case
from .table_rows import first_line, table_header, table_row
from .timing import copy_bandwidth, measure, peak_bandwidth


def agreement(runs: dict) -> dict:
    """GPU: column -> fraction of its forward spikes equal to ours (None where either is missing)."""
    ours = runs.get("ours")
    if not isinstance(ours, Column):
        return {}
    try:
        reference = ours.spikes()
    except Exception:  # noqa: BLE001  (reported when the column is timed)
        return {}
    result = {}
    for name, run in runs.items():
        if name == "ours" or not isinstance(run, Column):
            continue
        try:
            spikes = run.spikes()
            result[name] = (spikes.to(reference.dtype) == reference).float().mean().item()
        except Exception:  # noqa: BLE001
            result[name] = None
    return result


def run_gpu(presets, dtypes, steps, shape, columns, report) -> None:
    """The GPU benchmark: one table of every (preset, dtype, T) (see ``lit_snn.bench.command``)."""
    name = torch.cuda.get_device_name()
    measured = copy_bandwidth()
    peak_bw = peak_bandwidth(name)
    bw = peak_bw or measured
    print(f"device: {name}; peak bandwidth {bw / 1e12:.2f} TB/s ({'table' if peak_bw else 'measured'}), "
          f"measured copy {measured / 1e12:.2f} TB/s; shape [T, {', '.join(map(str, shape))}]")
    header = table_header(columns)
    print(header)
    print("-" * len(header))
    for preset in presets:
        for dtype_name in dtypes:
            for T in steps:
                runs, x = make_case(preset, DTYPES[dtype_name], T, shape, columns, "cuda")
                same = agreement(runs)
                times, mems = {}, {}
                for col in columns:
                    run = runs.get(col)
                    times[col] = mems[col] = None
                    if not isinstance(run, Column):
                        if isinstance(run, str):
                            report(preset, dtype_name, T, col, run)
                        continue
                    try:
                        times[col], mems[col] = measure(run.step)
                        note = run.note()
                        if note:
                            report(preset, dtype_name, T, col, note)
                    except Exception as err:  # noqa: BLE001  (one failing column must not end the run)
                        report(preset, dtype_name, T, col, f"failed: {first_line(err, 100)}")
                    torch.cuda.empty_cache()
                ours = times.get("ours")
                ratios = {c: None if ours is None or times[c] is None else times[c] / ours for c in columns}
                min_bytes = 5 * x.numel() * x.element_size()
                roof = None if ours is None or bw is None else min_bytes / (ours * 1e-3) / bw
                print(table_row(preset, dtype_name, T, columns, times, ratios, mems, roof, same), flush=True)
                del runs, x
                torch.cuda.empty_cache()
    print("x<col>: time of <col> / time of ours (> 1: ours is faster). roofline: (5 T N bytes) / time / peak. "
          "same <col>: fraction of <col>'s spikes equal to ours.")
