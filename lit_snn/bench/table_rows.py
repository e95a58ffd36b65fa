"""Text of the neuron benchmark's tables: one row per (preset, dtype, T), its header, number and error formats."""

from __future__ import annotations


def fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)



def first_line(err: BaseException, width: int) -> str:
    text = str(err).splitlines()[0][:width] if str(err) else ""
    return f"{type(err).__name__}: {text}"



def table_row(preset, dtype_name, T, columns, times, ratios, mems, roof, same) -> str:
    others = [c for c in columns if c != "ours"]
    return (f"{preset:<11} {dtype_name:<5} {T:>3} | " + " ".join(f"{fmt(times.get(c), '.3f'):>9}" for c in columns)
            + " | " + " ".join(f"{fmt(ratios.get(c), '.2f'):>9}" for c in others)
            + " | " + " ".join(f"{fmt(mems.get(c), '.1f'):>10}" for c in columns)
            + f" | {fmt(roof, '.0%'):>8}"
            + " | " + " ".join(f"{fmt(same.get(c), '.2%'):>12}" for c in others))


def table_header(columns) -> str:
    others = [c for c in columns if c != "ours"]
    return (f"{'preset':<11} {'dtype':<5} {'T':>3} | " + " ".join(f"{c + ' ms':>9}" for c in columns)
            + " | " + " ".join(f"{'x' + c:>9}" for c in others)
            + " | " + " ".join(f"{c + ' MiB':>10}" for c in columns) + " | roofline"
            + " | " + " ".join(f"{'same ' + c:>12}" for c in others))

