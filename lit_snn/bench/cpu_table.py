"""The CPU table of the neuron benchmark: one table per thread count, interleaved rounds, the memory
autograd keeps, agreement with ours."""

from __future__ import annotations

import torch

from .cases import DTYPES, Column, make_case
from .table_rows import table_header, table_row
from .timing import interleaved_times

GRAD_TOLERANCE = 1e-3  # dL/dx equal to ours within this fraction of ours' largest entry


def kept_mib(column: Column) -> float:
    """MiB of the distinct storages the autograd graph of one forward saves for its backward, the
    input and parameters excluded."""
    alive = {t.untyped_storage().data_ptr() for t in column.leaves}
    saved = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in alive:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = column.graph()
    del out
    return sum(saved.values()) / 2**20


def agreement_cpu(runs: dict) -> tuple[dict, list]:
    """CPU: (column -> fraction of neurons whose spikes at every step and whose dL/dx equal ours,
    notes on parameter gradients that differ from ours)."""
    ours = runs.get("ours")
    if not isinstance(ours, Column):
        return {}, []
    try:
        spikes, grads = ours.step()
    except Exception:  # noqa: BLE001  (reported when the column is timed)
        return {}, []
    dx = grads[0] if grads[0] is not None else torch.zeros_like(spikes)
    tol = GRAD_TOLERANCE * max(dx.abs().max().item(), 1e-30)
    result, notes = {}, []
    for name, run in runs.items():
        if name == "ours" or not isinstance(run, Column):
            continue
        try:
            s, g = run.step()
        except Exception:  # noqa: BLE001
            result[name] = None
            continue
        gx = g[0] if g[0] is not None else torch.zeros_like(dx)
        same = (s.to(spikes.dtype) == spikes) & ((gx.to(dx.dtype) - dx).abs() <= tol)
        result[name] = same.reshape(same.shape[0], -1).all(0).float().mean().item()
        if name in ("eager", "compile"):  # the same parameters as ours: their gradients must agree too
            for i, (a, b) in enumerate(zip(grads[1:], g[1:])):
                if a is not None and b is not None and (a - b).abs().max() > GRAD_TOLERANCE * max(a.abs().max(), 1.0):
                    notes.append(f"{name}: parameter gradient {i} differs from ours")
    return result, notes



def run_cpu(presets, dtypes, steps, shape, columns, threads, rounds, report) -> None:
    """The CPU benchmark: one table per thread count (see the module docstring)."""
    previous = torch.get_num_threads()
    try:
        for n in threads:
            torch.set_num_threads(n)
            print(f"threads: {n}")
            header = table_header(columns)
            print(header)
            print("-" * len(header))
            for preset in presets:
                for dtype_name in dtypes:
                    for T in steps:
                        runs, x = make_case(preset, DTYPES[dtype_name], T, shape, columns, "cpu")
                        for col in columns:
                            if isinstance(runs.get(col), str):
                                report(preset, dtype_name, T, col, runs[col])
                        same, notes = agreement_cpu(runs)
                        times, ratios, errors = interleaved_times(runs, columns, rounds)
                        for col, text in errors.items():
                            report(preset, dtype_name, T, col, text)
                        mems = {c: kept_mib(runs[c]) for c in times}
                        for col in times:
                            note = runs[col].note()
                            if note:
                                report(preset, dtype_name, T, col, note)
                        for note in notes:
                            report(preset, dtype_name, T, "same", note)
                        print(table_row(preset, dtype_name, T, columns, times, ratios, mems, None, same), flush=True)
                        del runs, x
    finally:
        torch.set_num_threads(previous)
    print("x<col>: median over interleaved rounds of <col>'s time / ours (> 1: ours is faster). MiB: memory autograd "
          "keeps for the backward (input and parameters excluded). same <col>: fraction of neurons with ours' spikes "
          f"at every step and ours' dL/dx (within {GRAD_TOLERANCE:g} of its largest).")
