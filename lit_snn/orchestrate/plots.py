"""The figures of ``compare``: matplotlib drawings of numbers compare has already computed.

Every value is drawn in its display unit (``units.py``: accuracy in points, energy in µJ). Panels
of absolute values and learning curves are zoomed to the data and say so on their axis ("axis
zoomed"): the differences between arms are a few points at most, invisible on a 0-100 scale. How
large a difference is, and how sure, is the job of the estimation panel: each arm's per-seed
differences to the baseline, their mean and its 95% CI, against a zero line. Each function takes
the path to write and the frames to draw, and returns the path.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .statistics import LEVEL, SEED_COLUMN
from .units import LABELS, label, unit_of

ZOOMED = "axis zoomed"
SEED_DOTS = "seed differences"  # gid of the estimation panel's per-seed dots (what a test reads back)
ZOOM_PAD = 0.15  # a zoomed axis extends the data range by this fraction on each side


def _figure(width: float = 6.0, height: float = 4.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)  # Agg: no display needed
    return fig


def _save(fig, path: Path, title: str) -> Path:
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _zoom(ax, values: Any, axis: str = "y") -> None:
    """Limit ``axis`` to the finite ``values`` padded by ``ZOOM_PAD`` of their range (or of their size)."""
    finite = np.asarray(pd.Series(values, dtype=float).dropna(), dtype=float)
    if not len(finite):
        return
    low, high = float(finite.min()), float(finite.max())
    pad = ZOOM_PAD * (high - low) or ZOOM_PAD * max(abs(high), 1e-12)
    (ax.set_ylim if axis == "y" else ax.set_xlim)(low - pad, high + pad)


def _shown(frame: pd.DataFrame, metric: str, columns: list[str]) -> pd.DataFrame:
    """``frame`` with ``columns`` (values of ``metric`` in its logged scale) in the display unit."""
    scale = unit_of(metric).scale
    if scale == 1.0:  # also leaves non-numeric columns (a categorical parameter) as they are
        return frame
    return frame.assign(**{c: frame[c].astype(float) * scale for c in columns if c in frame})


def _yerr(frame: pd.DataFrame, metric: str) -> list[pd.Series]:
    """Asymmetric error bars from the CI columns (none where the CI is undefined, n < 2)."""
    mean = frame[f"{metric}_mean"]
    return [(mean - frame[f"{metric}_ci_low"]).fillna(0.0).clip(lower=0.0),
            (frame[f"{metric}_ci_high"] - mean).fillna(0.0).clip(lower=0.0)]


def _ticks(ax, values: list[str], notes: list[str] | None = None) -> None:
    long = max(map(len, values), default=0) > 8
    labels = [f"{v}\n{n}" for v, n in zip(values, notes)] if notes else values
    ax.set_xticks(range(len(values)), labels, rotation=20 if long else 0, ha="right" if long else "center",
                  fontsize=8)
    ax.set_xlim(-0.6, len(values) - 0.4)


# ---------------------------------------------------------------------- ablation: one figure per axis
def _estimation(ax, differences: pd.DataFrame, intervals: pd.DataFrame, metric: str, baseline: str) -> None:
    """Per arm (``intervals.value`` order): one dot per seed at its difference to the baseline (left)
    and the mean difference with its CI (right), on a zero line that is the baseline."""
    unit = unit_of(metric)
    arms = list(intervals["value"])
    spread: list[float] = []
    xs, ys = [], []
    for i, arm in enumerate(arms):
        diffs = differences.loc[differences["value"] == arm].sort_values(SEED_COLUMN)["diff"].astype(float)
        offsets = np.linspace(-0.1, 0.1, len(diffs)) if len(diffs) > 1 else np.zeros(len(diffs))
        xs += list(i - 0.15 + offsets)
        ys += list(diffs * unit.scale)
    ax.scatter(xs, ys, s=18, color="#4c78a8", alpha=0.8, zorder=3, label="one seed (paired)", gid=SEED_DOTS)
    spread += ys
    delta = intervals["delta"].astype(float) * unit.scale
    low = intervals["delta_ci_low"].astype(float) * unit.scale
    high = intervals["delta_ci_high"].astype(float) * unit.scale
    err = [(delta - low).fillna(0.0).clip(lower=0.0), (high - delta).fillna(0.0).clip(lower=0.0)]
    ax.errorbar([i + 0.2 for i in range(len(arms))], delta, yerr=err, fmt="D", color="#e45756", capsize=4,
                markersize=5, zorder=4, label=f"mean difference, {LEVEL:.0%} CI")
    spread += [*delta, *low, *high, 0.0]
    ax.axhline(0.0, color="black", linewidth=0.9, zorder=2)
    _zoom(ax, spread)
    _ticks(ax, arms, [f"{(differences['value'] == arm).sum()} pairs" for arm in arms])
    ax.set_ylabel(f"{LABELS.get(metric, metric)}: arm − {baseline}" + (f" ({unit.name})" if unit.name else ""),
                  fontsize=9)
    ax.set_title(f"difference to the baseline {baseline} (0 = baseline)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="best")


def _absolute(ax, frame: pd.DataFrame, metric: str) -> None:
    """Each arm's mean with its CI, on an axis zoomed to the data (``frame``: ``_pivot`` of compare)."""
    columns = [f"{metric}_{c}" for c in ("mean", "ci_low", "ci_high")]
    shown = _shown(frame, metric, columns)
    ax.errorbar(range(len(shown)), shown[columns[0]], yerr=_yerr(shown, metric), fmt="o", capsize=4,
                color="#4c78a8")
    _ticks(ax, list(shown["value"]), [f"n={int(n)}" if pd.notna(n) else "n=0" for n in shown[f"{metric}_n"]])
    _zoom(ax, pd.concat([shown[c] for c in columns]))
    ax.set_ylabel(f"{label(metric)}, {ZOOMED}", fontsize=9)
    ax.set_title(f"{LABELS.get(metric, metric)} (mean, {LEVEL:.0%} CI)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)


def axis_figure(path: Path, arms: pd.DataFrame, metrics: list[str], title: str, xlabel: str,
                estimation: tuple[pd.DataFrame, pd.DataFrame, str] | None = None) -> Path:
    """The figure of one ablation axis: the estimation panel of ``metrics[0]`` (when ``estimation`` =
    ``(differences, intervals, baseline)`` is given, see ``_estimation``), then one zoomed panel per
    metric of each arm's mean and CI (``arms``: one row per value, ``<metric>_n/_mean/_ci_low/_ci_high``)."""
    panels = len(metrics) + (estimation is not None)
    fig = _figure(max(3.6, 0.9 * len(arms) + 1.8) * panels, 4.4)
    axes = [fig.add_subplot(1, panels, i + 1) for i in range(panels)]
    if estimation is not None:
        _estimation(axes.pop(0), *estimation[:2], metrics[0], estimation[2])
    for ax, metric in zip(axes, metrics):
        _absolute(ax, arms, metric)
    for ax in fig.axes:
        ax.set_xlabel(xlabel, fontsize=9)
    return _save(fig, path, title)


def curves_plot(path: Path, curves: dict[str, pd.DataFrame], metric: str, title: str) -> Path:
    """One panel per axis: each value's mean ``metric`` per epoch and its 95% CI band over seeds, zoomed."""
    fig = _figure(5.5 * len(curves), 4.2)
    for i, (axis, frame) in enumerate(curves.items()):
        ax = fig.add_subplot(1, len(curves), i + 1)
        frame = _shown(frame, metric, ["mean", "ci_low", "ci_high"])
        for value, line in frame.groupby("value", sort=False):
            n = int(line["n"].min()) if int(line["n"].min()) == int(line["n"].max()) else \
                f"{int(line['n'].min())}-{int(line['n'].max())}"
            drawn = ax.plot(line["epoch"], line["mean"], marker="o", markersize=3, label=f"{value} (n={n})")
            ax.fill_between(line["epoch"], line["ci_low"], line["ci_high"], color=drawn[0].get_color(), alpha=0.2,
                            linewidth=0)
        _zoom(ax, pd.concat([frame["mean"], frame["ci_low"], frame["ci_high"]]))
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{label(metric)}, mean and {LEVEL:.0%} CI over seeds; {ZOOMED}", fontsize=8)
        ax.set_title(axis, fontsize=9)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path, title)


# ---------------------------------------------------------------------- scatter plots
def scatter(path: Path, frame: pd.DataFrame, x: str, y: str, labels: list[str], title: str,
            errors: bool = True, logx: bool = False, mark: pd.Series | None = None, mark_label: str = "") -> Path:
    """``y`` against ``x`` in their display units. ``errors``: ``frame`` holds ``<m>_mean`` and the 95% CI
    columns ``<m>_ci_low/_ci_high`` of x and y, else the plain columns ``x`` and ``y``.

    ``mark``: a boolean Series aligned with ``frame``; those points get a ring and the legend entry ``mark_label``.
    """
    fig = _figure(6.5, 4.5)
    ax = fig.add_subplot()
    for metric in dict.fromkeys((x, y)):
        frame = _shown(frame, metric, [f"{metric}_{c}" for c in ("mean", "ci_low", "ci_high")] if errors else [metric])
    xs, ys = (frame[f"{x}_mean"], frame[f"{y}_mean"]) if errors else (frame[x], frame[y])
    if errors:
        ax.errorbar(xs, ys, xerr=_yerr(frame, x), yerr=_yerr(frame, y), fmt="o", capsize=3, color="#e45756")
    else:
        ax.scatter(xs, ys, color="#e45756")
    if mark is not None and bool(mark.any()):
        ax.scatter(xs[mark.to_numpy()], ys[mark.to_numpy()], s=170, facecolors="none", edgecolors="black",
                   linewidths=1.4, zorder=3, label=mark_label)
        ax.legend(fontsize=8)
    for text, xv, yv in zip(labels, xs, ys):
        if not (math.isnan(xv) or math.isnan(yv)):
            ax.annotate(text, (xv, yv), fontsize=7, xytext=(7, 7), textcoords="offset points")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(label(x))
    ax.set_ylabel(label(y))
    ax.grid(alpha=0.3)
    return _save(fig, path, title)


def panels(path: Path, frame: pd.DataFrame, x: str, ys: list[str], title: str, logx: bool = False) -> Path:
    """One scatter panel per objective against one searched parameter (multi-objective sweeps)."""
    fig = _figure(4.5 * len(ys), 4.0)
    for i, y in enumerate(ys):
        ax = fig.add_subplot(1, len(ys), i + 1)
        ax.scatter(frame[x], frame[y].astype(float) * unit_of(y).scale, color="#e45756")
        if logx:
            ax.set_xscale("log")
        ax.set_xlabel(x, fontsize=9)
        ax.set_ylabel(label(y), fontsize=9)
        ax.grid(alpha=0.3)
    return _save(fig, path, title)


# ---------------------------------------------------------------------- sweeps: the Pareto front
def param_label(params: dict[str, Any]) -> str:
    """``lr=0.0312, v_threshold=1.2``: each searched parameter by the last part of its path, 3 digits."""
    def short(value: Any) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    return ", ".join(f"{path.rsplit('.', 1)[-1]}={short(value)}" for path, value in params.items())


def _label_column(ax, points: list[tuple[float, float, str]], fontsize: float = 7.0) -> None:
    """Label ``(x, y, text)`` points in a column right of the axes, one line each, joined by leader lines.

    Written by hand because matplotlib places annotations where it is told and never moves them
    apart (adjustText does, but is not a dependency): labels evenly spaced in the margin, ordered
    as their points' y, cannot overlap whatever the number of points, and their lines rarely cross.
    """
    ordered = sorted(points, key=lambda p: -p[1])
    step = min(0.12, 0.96 / max(len(ordered) - 1, 1))
    top = 0.5 + step * (len(ordered) - 1) / 2
    for i, (xv, yv, text) in enumerate(ordered):
        ax.annotate(text, (xv, yv), xytext=(1.03, top - i * step), textcoords="axes fraction", va="center",
                    fontsize=fontsize, annotation_clip=False,
                    arrowprops={"arrowstyle": "-", "color": "0.55", "linewidth": 0.6, "shrinkA": 0, "shrinkB": 3})


def _front_size(n: int) -> tuple[float, float]:
    """A figure wide enough for the label column and tall enough for one label line per point."""
    return 10.0, max(4.5, 0.2 * n + 1.5)


def runs_pareto_plot(path: Path, done: pd.DataFrame, front: pd.DataFrame, metrics: list[str], directions: list[str],
                     params: list[str], title: str) -> Path:
    """The first two objectives of every COMPLETE run, the Pareto-optimal ones highlighted and named by
    their parameters (``front``: rows of ``compare.pareto_front``; no Optuna study at hand)."""
    x, y = metrics[0], metrics[1]
    fig = _figure(*_front_size(len(front)))
    ax = fig.add_subplot()
    shown = _shown(_shown(done, x, [x]), y, [y]) if x != y else _shown(done, x, [x])
    on = done["trial"].isin(front["trial"])
    ax.scatter(shown.loc[~on, x], shown.loc[~on, y], color="#4c78a8", label="Trial")
    ax.scatter(shown.loc[on, x], shown.loc[on, y], color="#e45756", label="Pareto-optimal trial")
    by_trial = {int(r["trial"]): r for _, r in front.iterrows()}
    _label_column(ax, [(r[x], r[y], f"#{int(r['trial'])} " + param_label({p: by_trial[int(r['trial'])][p]
                                                                          for p in params}))
                       for _, r in shown[on].iterrows()])
    ax.set_xlabel(f"{label(x)} ({directions[0]})")
    ax.set_ylabel(f"{label(y)} ({directions[1]})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path, title)


def optuna_pareto_plot(path: Path, study: Any, metrics: list[str], directions: list[str], title: str) -> Path:
    """Optuna's own Pareto-front plot (matplotlib; 2 or 3 objectives, else the first two) in display
    units; with two plotted objectives the front's trials are named by their parameters."""
    import matplotlib
    from matplotlib import pyplot as plt
    from optuna.visualization.matplotlib import plot_pareto_front

    plotted = list(zip(metrics, directions))[: 3 if len(metrics) == 3 else 2]
    names = [f"{label(m)} ({d})" for m, d in plotted]

    def shown(trial) -> list[float]:
        return [unit_of(m).show(v) for (m, _), v in zip(plotted, trial.values)]

    with warnings.catch_warnings(), matplotlib.rc_context():  # it sets the ggplot style globally; undone on exit
        warnings.simplefilter("ignore")
        ax = plot_pareto_front(study, target_names=names, targets=shown)
        fig = ax.figure
        try:
            if len(plotted) == 2:
                fig.set_size_inches(*_front_size(len(study.best_trials)))
                _label_column(ax, [(*shown(t), f"#{t.number} {param_label(t.params)}") for t in study.best_trials])
            else:
                fig.set_size_inches(6.5, 4.5)
            ax.set_title(title, fontsize=10)
            fig.tight_layout()
            fig.savefig(path, dpi=110)
        finally:
            plt.close(fig)
    return path
