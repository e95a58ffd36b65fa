"""The text of compare's report: number formats, markdown tables and the seed-statistics sections.

Numbers are shown in their display unit (``units.unit_of``: accuracy in points, energy in µJ);
what each number means is said once, in ``how_to_read`` (docs/statistics.md says more).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from . import units
from .axis_text import value_text
from .planning import MAX_SEEDS
from .spec import AblationSpec, StudySpec
from .statistics import GRID_AXIS, LEVEL, Comparison, grid_label
from .units import unit_of


def report_head(spec: StudySpec, study_name: str, parent_run_id: str, tracking_uri: str,
                states: dict[str, int]) -> list[str]:
    """The title and the paragraph on the study: its MLflow run, its trials by state, its objective(s)."""
    return [f"# {spec.experiment}: study {study_name}", "",
            f"{spec.description}" if spec.description else "",
            f"MLflow parent run `{parent_run_id}` ({tracking_uri}); trial runs by state: "
            + (", ".join(f"{k} {v}" for k, v in sorted(states.items())) or "none") + ". "
            + (f"Objectives: {', '.join(f'{m} ({d})' for m, d in spec.objectives)}." if spec.multi_objective
               else f"Objective: {spec.metric} ({spec.direction}).")
            + (" Values: mean ± sample std over the COMPLETE runs in each row."
               if isinstance(spec, AblationSpec) else ""), ""]


def fmt(x: Any, scale: float | None = None) -> str:
    """Plain 4 decimals for numbers of order 1e-3..1e4 (judged by ``scale``, default ``x``), else 3e notation."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and scale is None and abs(x) < 1e6):
        return str(int(x))
    if not isinstance(x, float):
        return str(x)
    ref = abs(scale if scale is not None else x)
    return f"{x:.4f}" if ref == 0 or 1e-3 <= ref < 1e4 else f"{x:.3e}"


def mean_std(row: pd.Series, metric: str) -> str:
    """``mean ± std`` of ``metric`` in its display unit (``units.unit_of``: accuracy in points, energy in µJ)."""
    mean, std = row.get(f"{metric}_mean"), row.get(f"{metric}_std")
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    unit = unit_of(metric)
    return f"{unit.format(float(mean))} ± {unit.format(float(std))}"


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """A markdown table with its columns padded to their widest cell."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def mean_std_table(frame: pd.DataFrame, keys: list[str], metrics: list[str], key_names: list[str]) -> str:
    """One row per row of ``frame`` (``n``, ``<metric>_mean``/``_std``): its keys, n and each metric's mean ± std."""
    headers = key_names + ["n"] + [units.label(m) for m in metrics]
    rows = [[str(r[k]) for k in keys] + [str(int(r["n"]))] + [mean_std(r, m) for m in metrics]
            for _, r in frame.iterrows()]
    return markdown_table(headers, rows)


def p_text(p: float) -> str:
    """A p-value to 2 significant digits, ``<0.001`` below that, ``-`` for none."""
    return "-" if math.isnan(p) else "<0.001" if p < 0.001 else f"{p:.2g}"


def stats_table(stats: pd.DataFrame, axis: str, metric: str, key: str) -> str:
    """The arms of one axis for one metric (display units): mean and 95% CI; against the baseline the
    difference, its Holm-adjusted CI with its level, Holm-adjusted p, verdicts and seeds for 80% power."""
    unit = unit_of(metric)
    rows = stats[(stats["axis"] == axis) & (stats["metric"] == metric)]
    margins = rows["margin"].dropna()
    rows_out = []
    for _, r in rows.iterrows():
        ci = "-" if math.isnan(r["ci_low"]) else f"[{unit.format(r['ci_low'])}, {unit.format(r['ci_high'])}]"
        cells = [str(r["value"]), str(int(r["n"])), unit.format(r["mean"]), ci]
        if pd.isna(r["baseline"]):
            cells += ["baseline", "", "", "", *([""] if len(margins) else []), ""]
        else:
            delta_ci = "-" if math.isnan(r["delta_ci_low"]) else \
                f"[{unit.format(r['delta_ci_low'])}, {unit.format(r['delta_ci_high'])}] ({r['ci_level'] * 100:.4g}%)"
            verdict = {True: "yes", False: "no"}.get(r["significant"], "-")
            equivalent = [{True: "yes", False: "no"}.get(r["equivalent"], "-")] if len(margins) else []
            seeds = "-" if pd.isna(r["seeds_needed"]) else f"> {MAX_SEEDS}" if r["seeds_needed"] >= MAX_SEEDS else \
                str(int(r["seeds_needed"]))
            if not pd.isna(r["seeds_needed_min_effect"]):
                needed = int(r["seeds_needed_min_effect"])
                seeds += f" ({f'> {MAX_SEEDS}' if needed >= MAX_SEEDS else needed} at {unit.format(r['min_effect'])})"
            cells += [unit.format(r["delta"], signed=True), delta_ci, p_text(float(r["p_adjusted"])), verdict,
                      *equivalent, seeds]
        rows_out.append(cells)
    mean = f"mean ({unit.name})" if unit.name else "mean"
    equivalent = [f"equivalent (±{unit.format(margins.iloc[0])})"] if len(margins) else []
    return markdown_table([key, "n", mean, f"{LEVEL:.0%} CI", "delta", "Holm-adjusted CI (level)", "p (Holm)",
                           "significant", *equivalent, "seeds for 80% power"], rows_out)


def how_to_read(spec: StudySpec) -> str:
    """The paragraph above the seed statistics: what each number is (docs/statistics.md says more)."""
    return (
        f"How to read this: per arm, n seeds, the mean and its {LEVEL:.0%} CI (Student t, inside the metric's "
        "bounds). Each arm is compared with its axis' baseline on the per-seed differences (paired t-test; Welch's "
        f"when they share fewer than 2 seeds); p is Holm-adjusted over the axis' arms, significant means p < "
        f"{spec.alpha:g}, and exactly then the Holm-adjusted CI beside it excludes 0 (its level is the one Holm "
        "tested that arm at). The BCa bootstrap CI and the sign-flip permutation p check the t-test without "
        "assuming normality; with few seeds the bootstrap CI is too narrow and the permutation p cannot go below "
        "2/2^n (0.25 with 3 seeds). "
        + ("Equivalent: two one-sided t-tests (TOST) within the file's margin, Holm-adjusted. "
           if spec.equivalence_margin else "")
        + "Seeds for 80% power: what a paired t-test at alpha/m (m arms tested) would need given the observed SD of "
        "the differences, at the observed difference" + (" and at min_effect" if spec.min_effect else "")
        + ". Accuracy in points, energy in µJ per sample; every metric in stats.csv.")


def stats_sections(spec: StudySpec, stats: pd.DataFrame, comparisons: list[Comparison], present: list[str]
                    ) -> list[str]:
    """The report's seed statistics of the objective: per axis (and per grid point with several axes) its
    table and one sentence per comparison; the other metrics' comparisons as sentences below."""
    metric = spec.metric
    out = [f"## seed statistics: {units.label(metric)} ({metric})", "", how_to_read(spec), ""]
    families = [(path, path, value_text(spec.baseline_of(path))) for path in spec.axes]
    if len(spec.axes) > 1:
        families.append((GRID_AXIS, "grid point", grid_label({p: spec.baseline_of(p) for p in spec.axes})))
    for axis, key, base in families:
        if metric not in present:
            break
        out += [f"### {key if axis != GRID_AXIS else 'every grid point'} (baseline {base})", "",
                stats_table(stats, axis, metric, key), ""]
        out += [f"- {c.sentence()}" for c in comparisons if c.metric == metric and c.axis == axis] + [""]
    others = [c for c in comparisons if c.metric != metric]
    if others:
        out += ["### other metrics", ""]
        out += [f"- {c.metric}, {c.axis}: {c.sentence()}" for c in others] + [""]
    return out


def as_number(value: Any) -> Any:
    """``value`` as a float where it reads as one (an ``axis.*`` tag's text), else as it is."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def trials_table(ranked: pd.DataFrame, params: dict[str, str], metrics: list[str], marks: list[str] | None) -> str:
    """A sweep's trials in the order of ``ranked``: number, searched values (``params``: path -> column),
    metrics, and the Pareto mark of each (``marks``, with several objectives)."""
    headers = ["trial", *params, *(units.label(m) for m in metrics)] + (["Pareto"] if marks else [])
    rows = [[fmt(r["trial"]), *(fmt(as_number(r.get(c))) for c in params.values()),
             *(unit_of(m).format(r[m]) for m in metrics)] for _, r in ranked.iterrows()]
    return markdown_table(headers, [row + [mark] for row, mark in zip(rows, marks)] if marks else rows)


def front_table(front: pd.DataFrame, metrics: list[str], params: list[str]) -> str:
    """The Pareto-optimal trials (rows of pareto.csv): number, objective values, searched values."""
    headers = ["trial", *(units.label(m) for m in metrics), *params]
    rows = [[fmt(r["trial"]), *(unit_of(m).format(as_number(r[m])) for m in metrics), *(fmt(r[p]) for p in params)]
            for _, r in front.iterrows()]
    return markdown_table(headers, rows)
