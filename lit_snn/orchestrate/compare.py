"""Read a study's trial runs back from MLflow; print and write tables (CSV, markdown) and PNG plots.

Ablation: one table per axis (each value's mean ± std over seeds and the other axes), one row per
grid point (mean ± std over seeds), accuracy per axis value (bars with error bars) and accuracy
vs energy (one point per grid point). Sweep: the trials ranked by the objective, the objective
against each searched parameter, accuracy vs energy. Only COMPLETE trials enter the statistics;
std is the sample std (ddof 1; 0 for a single run).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from .spec import StudySpec
from .tracking import AXIS_TAG_PREFIX, TAG_KEY, TAG_STATE, TAG_TRIAL, Tracker

BASE_METRICS = ("test/acc", "test/firing_rate", "test/sops", "test/energy_mj")
LABELS = {"test/acc": "test acc", "test/firing_rate": "firing rate", "test/sops": "SOPs/sample",
          "test/energy_mj": "energy mJ/sample", "val/acc_best": "best val acc"}


@dataclass
class CompareResult:
    """Everything compare produced; the frames hold the numbers the files show."""

    study_name: str
    parent_run_id: str
    runs: pd.DataFrame  # one row per trial run (all states)
    metrics: list[str]
    per_axis: dict[str, pd.DataFrame] = field(default_factory=dict)  # axis -> value, n, <m>_mean, <m>_std
    grid: pd.DataFrame | None = None  # one row per grid point (ablation) / per trial (sweep)
    out_dir: Path | None = None
    files: list[Path] = field(default_factory=list)
    markdown: str = ""


# ---------------------------------------------------------------------- reading
def load_runs(tracking_uri: str, experiment_id: str, parent_run_id: str, columns: list[str]) -> pd.DataFrame:
    """The nested runs of ``parent_run_id`` as a frame: run_id, trial, key, state, ``axis.*`` and metrics."""
    mlflow.set_tracking_uri(tracking_uri)
    df = mlflow.search_runs(experiment_ids=[experiment_id], output_format="pandas",
                            filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'")
    out = pd.DataFrame({"run_id": df.get("run_id", pd.Series(dtype=str))})
    if df.empty:
        return out
    out["trial"] = pd.to_numeric(df.get(f"tags.{TAG_TRIAL}"), errors="coerce")
    out["key"] = df.get(f"tags.{TAG_KEY}")
    out["state"] = df.get(f"tags.{TAG_STATE}")
    for col in df.columns:
        if col.startswith(f"tags.{AXIS_TAG_PREFIX}"):
            out[col[len("tags."):]] = df[col]
    for metric in columns:
        out[metric] = pd.to_numeric(df.get(f"metrics.{metric}"), errors="coerce") if f"metrics.{metric}" in df \
            else math.nan
    return out.sort_values("trial").reset_index(drop=True)


# ---------------------------------------------------------------------- numbers
def _agg(frame: pd.DataFrame, by: list[str], metrics: list[str]) -> pd.DataFrame:
    grouped = frame.groupby(by, sort=False, dropna=False)
    out = grouped.size().rename("n").to_frame()
    for metric in metrics:
        out[f"{metric}_mean"] = grouped[metric].mean()
        out[f"{metric}_std"] = grouped[metric].std(ddof=1).fillna(0.0)
    return out.reset_index()


def _order(frame: pd.DataFrame, column: str, values: list[Any]) -> pd.DataFrame:
    rank = {str(v): i for i, v in enumerate(values)}
    return frame.assign(_rank=frame[column].map(lambda v: rank.get(str(v), len(rank)))).sort_values(
        "_rank", kind="stable").drop(columns="_rank")


def _fmt(x: Any, scale: float | None = None) -> str:
    """Plain 4 decimals for numbers of order 1e-3..1e4 (judged by ``scale``, default ``x``), else 3e notation."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and scale is None and abs(x) < 1e6):
        return str(int(x))
    if not isinstance(x, float):
        return str(x)
    ref = abs(scale if scale is not None else x)
    return f"{x:.4f}" if ref == 0 or 1e-3 <= ref < 1e4 else f"{x:.3e}"


def _pm(row: pd.Series, metric: str) -> str:
    mean, std = row.get(f"{metric}_mean"), row.get(f"{metric}_std")
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    spread = _fmt(float(std), float(mean))
    if float(std) > 0 and set(spread) <= set("0.-"):  # would print as zero: show its size instead
        spread = f"{float(std):.1e}"
    return f"{_fmt(float(mean), float(mean))} ± {spread}"


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def _stat_table(frame: pd.DataFrame, keys: list[str], metrics: list[str], key_names: list[str]) -> str:
    headers = key_names + ["n"] + [LABELS.get(m, m) for m in metrics]
    rows = [[str(r[k]) for k in keys] + [str(int(r["n"]))] + [_pm(r, m) for m in metrics] for _, r in frame.iterrows()]
    return markdown_table(headers, rows)


# ---------------------------------------------------------------------- plots
def _figure(width: float = 6.0, height: float = 4.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)  # Agg: no display needed
    return fig


def _bars(path: Path, frame: pd.DataFrame, column: str, metrics: list[str], title: str) -> Path:
    """One bar panel per metric (mean with a std error bar) over the values of one axis."""
    fig = _figure(max(4.0, 1.0 * len(frame) + 1.5) * len(metrics), 3.8)
    labels = [str(v) for v in frame[column]]
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        mean, std = frame[f"{metric}_mean"], frame[f"{metric}_std"]
        ax.bar(range(len(frame)), mean, yerr=std, capsize=4, color="#4c78a8")
        ax.set_xticks(range(len(frame)), labels, rotation=20 if max(map(len, labels)) > 8 else 0, ha="right")
        ax.set_title(LABELS.get(metric, metric) + " (mean ± std)", fontsize=9)
        low = (mean - std).min()
        if metric.endswith("acc") and low > 0.3:  # zoom on the differences
            ax.set_ylim(max(0.0, low - 0.05), min(1.0, (mean + std).max() + 0.02))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _scatter(path: Path, frame: pd.DataFrame, x: str, y: str, labels: list[str], title: str,
             errors: bool = True, logx: bool = False) -> Path:
    fig = _figure(6.5, 4.5)
    ax = fig.add_subplot()
    xs, ys = (frame[f"{x}_mean"], frame[f"{y}_mean"]) if errors else (frame[x], frame[y])
    if errors:
        ax.errorbar(xs, ys, xerr=frame[f"{x}_std"], yerr=frame[f"{y}_std"], fmt="o", capsize=3, color="#e45756")
    else:
        ax.scatter(xs, ys, color="#e45756")
    for label, xv, yv in zip(labels, xs, ys):
        if not (math.isnan(xv) or math.isnan(yv)):
            ax.annotate(label, (xv, yv), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(LABELS.get(x, x))
    ax.set_ylabel(LABELS.get(y, y))
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


# ---------------------------------------------------------------------- entry point
def _find_parent(tracker: Tracker, spec: StudySpec, study_name: str | None, fallback_latest: bool,
                 log: Callable[[str], None]) -> tuple[str, str, str] | None:
    experiment_id = tracker.experiment_id(spec.experiment, create=False)
    if experiment_id is None:
        log(f"compare: no MLflow experiment {spec.experiment!r} at {tracker.tracking_uri}; run the study first")
        return None
    name = study_name or spec.default_study_name
    parent = tracker.find_parent_run(experiment_id, name)
    if parent is None and fallback_latest:
        latest = tracker.latest_parent_run(experiment_id)
        if latest is not None:
            parent, name = latest
            log(f"compare: no study {spec.default_study_name!r} (this file with these overrides); "
                f"showing the latest study of the experiment, {name!r}")
    if parent is None:
        log(f"compare: no study {name!r} in experiment {spec.experiment!r}; run it first")
        return None
    return experiment_id, parent, name


def compare(spec: StudySpec, tracking_uri: str, *, study_name: str | None = None, results_dir: str | Path = "results",
            plots: bool = True, fallback_latest: bool = False, log: Callable[[str], None] = print
            ) -> CompareResult | None:
    """Build, print and write the comparison of one study (``None`` when there is nothing to compare)."""
    tracker = Tracker(tracking_uri)
    found = _find_parent(tracker, spec, study_name, fallback_latest, log)
    if found is None:
        return None
    experiment_id, parent_run_id, name = found
    metrics = list(dict.fromkeys([spec.metric, *BASE_METRICS]))
    runs = load_runs(tracker.tracking_uri, experiment_id, parent_run_id, metrics)
    result = CompareResult(name, parent_run_id, runs, metrics)
    out_dir = Path(results_dir) / spec.experiment
    out_dir.mkdir(parents=True, exist_ok=True)
    result.out_dir = out_dir
    done = runs[runs["state"] == "COMPLETE"] if not runs.empty else runs
    states = runs["state"].value_counts().to_dict() if not runs.empty else {}
    head = [f"# {spec.experiment}: study {name}", "",
            f"{spec.description}" if spec.description else "",
            f"MLflow parent run `{parent_run_id}` ({tracker.tracking_uri}); trial runs by state: "
            + (", ".join(f"{k} {v}" for k, v in sorted(states.items())) or "none") + f". Objective: {spec.metric} "
            f"({spec.direction})." + (" Values: mean ± sample std over the COMPLETE runs in each row."
                                      if spec.kind == "ablation" else ""), ""]
    sections: list[str] = []
    files: list[Path] = []
    present = [m for m in metrics if not done.empty and done[m].notna().any()]
    runs.to_csv(out_dir / "runs.csv", index=False)
    files.append(out_dir / "runs.csv")
    if done.empty:
        sections.append("No COMPLETE trial yet.")
    elif spec.kind == "ablation":
        axis_cols = [f"{AXIS_TAG_PREFIX}{p}" for p in spec.axes]
        for path, col in zip(spec.axes, axis_cols):
            table = _order(_agg(done, [col], present), col, spec.axes[path])
            result.per_axis[path] = table.rename(columns={col: path})
            sections += [f"## {path}", "", _stat_table(table, [col], present, [path]), ""]
            files.append(out_dir / f"axis_{_slug(path)}.csv")
            result.per_axis[path].to_csv(files[-1], index=False)
            if plots and spec.metric in present:
                shown = list(dict.fromkeys([spec.metric, *(m for m in ("test/firing_rate", "test/energy_mj")
                                                           if m in present)]))
                files.append(_bars(out_dir / f"axis_{_slug(path)}.png", table, col, shown,
                                   f"{spec.experiment}: by {path}"))
        grid = _agg(done, axis_cols, present)
        for path, col in reversed(list(zip(spec.axes, axis_cols))):
            grid = _order(grid, col, spec.axes[path])
        result.grid = grid.rename(columns=dict(zip(axis_cols, spec.axes)))
        if len(axis_cols) > 1:  # with one axis this is the table above
            sections += ["## every grid point (over seeds)", "", _stat_table(grid, axis_cols, present,
                                                                            list(spec.axes)), ""]
        files.append(out_dir / "grid.csv")
        result.grid.to_csv(files[-1], index=False)
        if plots and "test/acc" in present and "test/energy_mj" in present:
            labels = [",".join(str(r[c]) for c in axis_cols) for _, r in grid.iterrows()]
            files.append(_scatter(out_dir / "acc_vs_energy.png", grid, "test/energy_mj", "test/acc", labels,
                                  f"{spec.experiment}: accuracy vs energy (mean ± std over seeds)"))
    else:
        ranked = done.sort_values(spec.metric, ascending=spec.direction == "minimize")
        params = [f"{AXIS_TAG_PREFIX}{p}" for p in spec.params]
        result.grid = ranked.rename(columns=dict(zip(params, spec.params)))
        headers = ["trial", *spec.params, *(LABELS.get(m, m) for m in present)]
        rows = [[_fmt(r["trial"]), *(_fmt(_num(r.get(c))) for c in params), *(_fmt(r[m]) for m in present)]
                for _, r in ranked.iterrows()]
        sections += ["## trials, best first", "", markdown_table(headers, rows), ""]
        files.append(out_dir / "trials.csv")
        result.grid.to_csv(files[-1], index=False)
        if plots and spec.metric in present:
            for path, col in zip(spec.params, params):
                frame = pd.DataFrame({"x": ranked[col].map(_num), "y": ranked[spec.metric]})
                files.append(_scatter(out_dir / f"param_{_slug(path)}.png", frame.rename(columns={"x": path,
                                      "y": spec.metric}), path, spec.metric, [""] * len(frame),
                                      f"{spec.experiment}: {spec.metric} vs {path}", errors=False,
                                      logx=bool(spec.params[path].get("log"))))
        if plots and "test/acc" in present and "test/energy_mj" in present:
            files.append(_scatter(out_dir / "acc_vs_energy.png", ranked, "test/energy_mj", "test/acc",
                                  [str(int(t)) for t in ranked["trial"]], f"{spec.experiment}: accuracy vs energy",
                                  errors=False))
    result.markdown = "\n".join(head + sections)
    (out_dir / "report.md").write_text(result.markdown + "\n")
    files.append(out_dir / "report.md")
    result.files = files
    log(result.markdown)
    log(f"\ncompare: tables and plots in {out_dir}/ ({', '.join(f.name for f in files)})")
    return result


def _num(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return value
