"""Seed statistics of an ablation: per-arm mean and 95% CI, tests against a baseline arm, Holm.

Arms and observations (only COMPLETE runs; a run is one grid point at one seed):

- **per axis value** ``v``: one observation per seed, the mean of the metric over the runs at
  ``v`` with that seed, i.e. over the other axes' grid points at that seed (with one axis, the
  run itself). Kept simple on purpose: when a point failed or is excluded, the seeds of ``v``
  average over different sets of points.
- **per grid point** (studies with more than one axis; ``axis = "grid"``): one observation per
  seed (the mean if a point completed twice).

Per arm: n (seeds), mean, sample std (ddof 1) and the 95% confidence interval of the mean
(Student t, n - 1 degrees of freedom); std and CI are undefined (NaN) for n < 2.

Against the baseline arm of the axis (its first listed value, or ``baseline:`` in the file):

- both arms share at least 2 seeds: **paired** t-test (``scipy.stats.ttest_rel``) over the shared
  seeds only; ``delta`` is the mean of the per-seed differences and its CI the t interval of
  that mean;
- fewer than 2 shared seeds (normally none) and n >= 2 on both sides: **Welch**'s t-test
  (``ttest_ind(equal_var=False)``); ``delta`` is the difference of the means, its CI uses the
  Welch-Satterthwaite degrees of freedom;
- n < 2 on either side: ``delta`` only, no test.

The p-values of the arms of one axis (per metric) are adjusted with Holm-Bonferroni, and an arm
is ``significant`` when its adjusted p is below ``alpha`` (default 0.05). CIs are always 95%.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .units import is_points

LEVEL = 0.95  # confidence level of every interval
GRID_AXIS = "grid"  # the `axis` of per-grid-point rows
SEED_COLUMN = "seed"
COLUMNS = ["metric", "axis", "value", "n", "mean", "std", "ci_low", "ci_high", "baseline", "delta", "p_value",
           "p_adjusted", "significant"]
NAN = math.nan


# ---------------------------------------------------------------------- building blocks
def arm_stats(values: Sequence[float], level: float = LEVEL) -> dict[str, float]:
    """``n, mean, std, ci_low, ci_high`` of one arm's observations (NaNs dropped; std/CI NaN for n < 2)."""
    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    n = len(x)
    out = {"n": n, "mean": float(x.mean()) if n else NAN, "std": NAN, "ci_low": NAN, "ci_high": NAN}
    if n >= 2:
        out["std"] = float(x.std(ddof=1))
        sem = float(stats.sem(x))
        if sem == 0.0:  # identical observations: t.interval would give NaN for a zero scale
            out["ci_low"] = out["ci_high"] = out["mean"]
        else:
            out["ci_low"], out["ci_high"] = (float(b) for b in stats.t.interval(level, n - 1, loc=out["mean"],
                                                                               scale=sem))
    return out


def compare_arms(arm: pd.Series, base: pd.Series, level: float = LEVEL) -> dict[str, Any]:
    """Test one arm against the baseline; both Series hold one observation per seed (index = seed).

    Returns ``test`` ("paired", "welch" or "" for none), ``n_pairs``, ``delta``, its ``ci_low`` and
    ``ci_high``, and ``p_value`` (NaN when no test ran or the observations have no variance).
    """
    arm, base = arm.dropna(), base.dropna()
    out: dict[str, Any] = {"test": "", "n_pairs": 0, "delta": NAN, "ci_low": NAN, "ci_high": NAN, "p_value": NAN}
    if arm.empty or base.empty:
        return out
    shared = sorted(set(arm.index) & set(base.index))
    out["n_pairs"] = len(shared)
    out["delta"] = float(arm.mean() - base.mean())
    if len(arm) < 2 or len(base) < 2:
        return out
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's precision warning for near-constant data
        if len(shared) >= 2:
            a, b = arm.loc[shared].to_numpy(float), base.loc[shared].to_numpy(float)
            res = stats.ttest_rel(a, b)
            out.update(test="paired", delta=float((a - b).mean()))
        else:
            a, b = arm.to_numpy(float), base.to_numpy(float)
            res = stats.ttest_ind(a, b, equal_var=False)
            out["test"] = "welch"
        low, high = _confidence_interval(res, a, b, out["test"], level)
    out.update(ci_low=low, ci_high=high, p_value=float(res.pvalue))
    return out


def _confidence_interval(res: Any, a: np.ndarray, b: np.ndarray, test: str, level: float) -> tuple[float, float]:
    if hasattr(res, "confidence_interval"):  # scipy >= 1.11 for ttest_ind, 1.10 for ttest_rel
        ci = res.confidence_interval(confidence_level=level)
        return float(ci.low), float(ci.high)
    if test == "paired":  # the same intervals by hand for older scipy
        d = a - b
        se, df, mean = float(stats.sem(d)), len(d) - 1, float(d.mean())
    else:
        va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se > 0 else 1.0
        mean = float(a.mean() - b.mean())
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return mean - half, mean + half


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (NaNs stay NaN and do not count as tests).

    By hand because scipy has no Holm (``scipy.stats.false_discovery_control`` is Benjamini-Hochberg)
    and statsmodels (``multipletests(method="holm")``) is not a dependency. Sort the m p-values
    ascending, multiply the i-th (0-based) by m - i, take the running maximum, cap at 1.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, NAN)
    ok = ~np.isnan(p)
    q = p[ok]
    m = len(q)
    if m:
        order = np.argsort(q, kind="stable")
        adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * q[order]))
        back = np.empty(m)
        back[order] = adjusted
        out[ok] = back
    return out


# ---------------------------------------------------------------------- one comparison
@dataclass
class Comparison:
    """One arm against its axis' baseline for one metric (what a report sentence says)."""

    metric: str
    axis: str
    value: str
    baseline: str
    n: int
    n_base: int
    test: str
    n_pairs: int
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float = NAN
    significant: bool | None = None

    def sentence(self) -> str:
        """e.g. ``ar_lif vs lif: +0.42 points, 95% CI [-0.31, 1.15], p = 0.21 after Holm: not significant
        with 3 seeds``."""
        head = f"{self.value} vs {self.baseline}: "
        if self.n == 0 or self.n_base == 0:
            return head + "no COMPLETE run on " + ("both sides" if self.n == self.n_base else "one side")
        scale, unit = (100.0, " points") if is_points(self.metric) else (1.0, "")
        fmt = (lambda x: f"{x * scale:.2f}") if is_points(self.metric) else (lambda x: f"{x:.3g}")
        delta = ("+" if self.delta * scale >= 0 else "") + fmt(self.delta) + unit
        if not self.test:
            return head + f"{delta}, n = {min(self.n, self.n_base)}: no test"
        seeds = f"{self.n_pairs} seeds" if self.test == "paired" else \
            f"{self.n} and {self.n_base} seeds, unpaired (Welch)"
        if math.isnan(self.p_value):
            return head + f"{delta}: no test (zero variance) with {seeds}"
        p = "p < 0.001" if self.p_adjusted < 0.001 else f"p = {self.p_adjusted:.2g}"
        verdict = "significant" if self.significant else "not significant"
        return head + (f"{delta}, {LEVEL:.0%} CI [{fmt(self.ci_low)}, {fmt(self.ci_high)}], {p} after Holm: "
                       f"{verdict} with {seeds}")


# ---------------------------------------------------------------------- a study
def per_seed(frame: pd.DataFrame, keys: list[str], metric: str, seed_column: str = SEED_COLUMN) -> pd.DataFrame:
    """One observation per (keys..., seed): the mean of ``metric`` over the rows sharing them."""
    rows = frame.dropna(subset=[metric, seed_column])
    return rows.groupby([*keys, seed_column], sort=False)[metric].mean().reset_index()


def _family(obs: pd.DataFrame, key: str, arms: list[str], baseline: str | None, metric: str, axis: str,
            alpha: float, seed_column: str) -> tuple[list[dict], list[Comparison]]:
    """Rows and comparisons of the arms of one axis (or of the grid points) for one metric."""
    series = {arm: obs.loc[obs[key] == arm].set_index(seed_column)[metric] for arm in arms}
    rows: list[dict] = []
    comparisons: list[Comparison] = []
    for arm in arms:
        row = {"metric": metric, "axis": axis, "value": arm, **arm_stats(series[arm].tolist()),
               "baseline": None, "delta": NAN, "p_value": NAN, "p_adjusted": NAN, "significant": None}
        if baseline is not None and arm != baseline:
            test = compare_arms(series[arm], series[baseline])
            row.update(baseline=baseline, delta=test["delta"], p_value=test["p_value"])
            comparisons.append(Comparison(metric, axis, arm, baseline, row["n"], len(series[baseline]),
                                          test["test"], test["n_pairs"], test["delta"], test["ci_low"],
                                          test["ci_high"], test["p_value"]))
        rows.append(row)
    adjusted = holm([c.p_value for c in comparisons])
    tested = iter(zip(comparisons, adjusted))
    for row in rows:
        if row["baseline"] is None:
            continue
        comparison, p_adj = next(tested)
        if not math.isnan(p_adj):
            comparison.p_adjusted, comparison.significant = float(p_adj), bool(p_adj < alpha)
            row.update(p_adjusted=float(p_adj), significant=bool(p_adj < alpha))
    return rows, comparisons


def grid_label(values: dict[str, Any]) -> str:
    """The ``value`` of a grid point's rows: ``path=value,path=value`` (its key without the seed)."""
    return ",".join(f"{path}={value}" for path, value in values.items())


def seed_statistics(done: pd.DataFrame, axes: dict[str, list], columns: dict[str, str], metrics: list[str],
                    baseline: dict[str, Any] | None = None, alpha: float = 0.05,
                    seed_column: str = SEED_COLUMN) -> tuple[pd.DataFrame, list[Comparison]]:
    """The rows of ``stats.csv`` (columns ``COLUMNS``) and the comparisons behind them.

    ``done``: the COMPLETE runs, one row each, with a ``seed`` column, the axis value of each
    axis in ``columns[path]`` (compared as text, as MLflow tags store them) and the metrics.
    ``axes``: path -> listed values (their order is the arms' order); ``baseline``: path -> the
    baseline value where it is not the first listed one.
    """
    baseline = baseline or {}
    base_of = {path: str(baseline.get(path, values[0])) for path, values in axes.items()}
    frame = done.copy()
    for col in columns.values():
        frame[col] = frame[col].astype(str)
    rows: list[dict] = []
    comparisons: list[Comparison] = []
    for metric in metrics:
        for path, values in axes.items():
            col = columns[path]
            arms = list(dict.fromkeys([*map(str, values), *frame[col].dropna().unique()]))
            obs = per_seed(frame, [col], metric, seed_column)
            r, c = _family(obs, col, arms, base_of[path], metric, path, alpha, seed_column)
            rows += r
            comparisons += c
        if len(axes) > 1:
            cols = [columns[p] for p in axes]
            frame["_point"] = frame[cols].apply(lambda r: grid_label(dict(zip(axes, r))), axis=1) if len(frame) \
                else pd.Series(dtype=str)
            points = list(dict.fromkeys(frame["_point"]))
            order = {grid_label(dict(zip(axes, combo))): i for i, combo in
                     enumerate(itertools.product(*[[str(v) for v in vs] for vs in axes.values()]))}
            points.sort(key=lambda p: order.get(p, len(order)))
            base_point = grid_label(base_of)
            obs = per_seed(frame, ["_point"], metric, seed_column)
            r, c = _family(obs, "_point", points, base_point if base_point in points else None, metric, GRID_AXIS,
                           alpha, seed_column)
            rows += r
            comparisons += c
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["n"] = table["n"].astype(int)
    table["significant"] = table["significant"].astype(object)
    return table, comparisons


def required_seeds(delta: float, std: float, power: float = 0.8, alpha: float = 0.05, max_n: int = 10_000) -> int:
    """Seeds a two-sided paired t-test needs to detect a mean per-seed difference ``delta`` with
    ``power``, when the per-seed differences have std ``std`` (noncentral t, exact)."""
    effect = abs(delta) / std
    for n in range(2, max_n + 1):
        df = n - 1
        crit = stats.t.ppf(1 - alpha / 2, df)
        nc = effect * math.sqrt(n)
        lower = stats.nct.cdf(-crit, df, nc)  # the wrong-sign tail: negligible, and NaN far out in it
        achieved = stats.nct.sf(crit, df, nc) + (0.0 if math.isnan(lower) else lower)
        if achieved >= power:
            return n
    return max_n
