"""The figures of ``compare``: matplotlib drawings of frames compare has already computed.

Every function takes the path to write, the numbers to draw and the titles, and returns the path.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from .spec import StudySpec
from .statistics import LEVEL
from .units import LABELS, is_points


def _figure(width: float = 6.0, height: float = 4.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)  # Agg: no display needed
    return fig


def _yerr(frame: pd.DataFrame, metric: str) -> list[pd.Series]:
    """Asymmetric error bars from the CI columns (none where the CI is undefined, n < 2)."""
    mean = frame[f"{metric}_mean"]
    return [(mean - frame[f"{metric}_ci_low"]).fillna(0.0).clip(lower=0.0),
            (frame[f"{metric}_ci_high"] - mean).fillna(0.0).clip(lower=0.0)]


def _bars(path: Path, frame: pd.DataFrame, metrics: list[str], title: str, xlabel: str) -> Path:
    """One bar panel per metric (mean with its 95% CI as error bar, n under each value) over one axis."""
    fig = _figure(max(4.0, 1.0 * len(frame) + 1.5) * len(metrics), 4.2)
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        mean = frame[f"{metric}_mean"]
        ax.bar(range(len(frame)), mean, yerr=_yerr(frame, metric), capsize=4, color="#4c78a8")
        labels = [f"{v}\nn={int(n)}" for v, n in zip(frame["value"], frame[f"{metric}_n"])]
        ax.set_xticks(range(len(frame)), labels, rotation=20 if max(map(len, frame["value"])) > 8 else 0,
                      ha="right" if max(map(len, frame["value"])) > 8 else "center", fontsize=8)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_ylabel(LABELS.get(metric, metric), fontsize=9)
        ax.set_title(f"{LABELS.get(metric, metric)} (mean, {LEVEL:.0%} CI)", fontsize=9)
        if is_points(metric):  # bars from 0 on the whole accuracy scale: no zoom that exaggerates differences
            top = frame[f"{metric}_ci_high"].max()
            ax.set_ylim(0.0, max(1.0, float(top)) if pd.notna(top) else 1.0)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _scatter(path: Path, frame: pd.DataFrame, x: str, y: str, labels: list[str], title: str,
             errors: bool = True, logx: bool = False, mark: pd.Series | None = None, mark_label: str = "") -> Path:
    """``errors``: ``frame`` holds ``<m>_mean`` and the 95% CI columns ``<m>_ci_low/_ci_high`` of x and y.

    ``mark``: a boolean Series aligned with ``frame``; those points get a ring and the legend entry ``mark_label``.
    """
    fig = _figure(6.5, 4.5)
    ax = fig.add_subplot()
    xs, ys = (frame[f"{x}_mean"], frame[f"{y}_mean"]) if errors else (frame[x], frame[y])
    if errors:
        ax.errorbar(xs, ys, xerr=_yerr(frame, x), yerr=_yerr(frame, y), fmt="o", capsize=3, color="#e45756")
    else:
        ax.scatter(xs, ys, color="#e45756")
    if mark is not None and bool(mark.any()):
        ax.scatter(xs[mark.to_numpy()], ys[mark.to_numpy()], s=170, facecolors="none", edgecolors="black",
                   linewidths=1.4, zorder=3, label=mark_label)
        ax.legend(fontsize=8)
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


def _curves_plot(path: Path, curves: dict[str, pd.DataFrame], metric: str, title: str) -> Path:
    """One panel per axis: each value's mean ``metric`` per epoch and its 95% CI band over seeds."""
    fig = _figure(5.5 * len(curves), 4.2)
    for i, (axis, frame) in enumerate(curves.items()):
        ax = fig.add_subplot(1, len(curves), i + 1)
        for value, line in frame.groupby("value", sort=False):
            n = int(line["n"].min()) if int(line["n"].min()) == int(line["n"].max()) else \
                f"{int(line['n'].min())}-{int(line['n'].max())}"
            drawn = ax.plot(line["epoch"], line["mean"], marker="o", markersize=3, label=f"{value} (n={n})")
            ax.fill_between(line["epoch"], line["ci_low"], line["ci_high"], color=drawn[0].get_color(), alpha=0.2,
                            linewidth=0)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{LABELS.get(metric, metric)} (mean, {LEVEL:.0%} CI over seeds)", fontsize=9)
        ax.set_title(axis, fontsize=9)
        if is_points(metric):
            ax.set_ylim(0.0, 1.0)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _optuna_pareto_plot(path: Path, study: Any, spec: StudySpec, title: str) -> Path:
    """Optuna's own Pareto-front plot (matplotlib; 2 or 3 objectives, else the first two), front trials numbered."""
    import matplotlib
    from matplotlib import pyplot as plt
    from optuna.visualization.matplotlib import plot_pareto_front

    names = [f"{LABELS.get(m, m)} ({d})" for m, d in spec.objectives]
    extra = {} if len(names) <= 3 else {"targets": lambda t: t.values[:2]}
    with warnings.catch_warnings(), matplotlib.rc_context():  # it sets the ggplot style globally; undone on exit
        warnings.simplefilter("ignore")
        ax = plot_pareto_front(study, target_names=names if len(names) <= 3 else names[:2], **extra)
        fig = ax.figure
        try:
            if len(names) == 2 or len(names) > 3:
                for t in study.best_trials:
                    ax.annotate(str(t.number), (t.values[0], t.values[1]), fontsize=7, xytext=(3, 3),
                                textcoords="offset points")
            ax.set_title(title, fontsize=10)
            fig.set_size_inches(6.5, 4.5)
            fig.tight_layout()
            fig.savefig(path, dpi=110)
        finally:
            plt.close(fig)
    return path


def _runs_pareto_plot(path: Path, done: pd.DataFrame, front: pd.DataFrame, spec: StudySpec, title: str) -> Path:
    """The first two objectives of every COMPLETE run, the Pareto-optimal ones highlighted (no study at hand)."""
    x, y = spec.metrics[0], spec.metrics[1]
    fig = _figure(6.5, 4.5)
    ax = fig.add_subplot()
    on = done["trial"].isin(front["trial"])
    ax.scatter(done.loc[~on, x], done.loc[~on, y], color="#4c78a8", label="Trial")
    ax.scatter(done.loc[on, x], done.loc[on, y], color="#e45756", label="Pareto-optimal trial")
    for _, r in done[on].iterrows():
        ax.annotate(str(int(r["trial"])), (r[x], r[y]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(f"{LABELS.get(x, x)} ({spec.directions[0]})")
    ax.set_ylabel(f"{LABELS.get(y, y)} ({spec.directions[1]})")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _panels(path: Path, frame: pd.DataFrame, x: str, ys: list[str], title: str, logx: bool = False) -> Path:
    """One scatter panel per objective against one searched parameter (multi-objective sweeps)."""
    fig = _figure(4.5 * len(ys), 4.0)
    for i, y in enumerate(ys):
        ax = fig.add_subplot(1, len(ys), i + 1)
        ax.scatter(frame[x], frame[y], color="#e45756")
        if logx:
            ax.set_xscale("log")
        ax.set_xlabel(x, fontsize=9)
        ax.set_ylabel(LABELS.get(y, y), fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    return path
