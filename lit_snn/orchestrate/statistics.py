"""Seed statistics of an ablation: per-arm mean and CI, each arm against its baseline arm, Holm.

Arms and observations (only COMPLETE runs; a run is one grid point at one seed):

- **per axis value** ``v``: one observation per seed, the mean of the metric over the runs at
  ``v`` with that seed, i.e. over the other axes' grid points at that seed (with one axis, the
  run itself). Kept simple on purpose: when a point failed or is excluded, the seeds of ``v``
  average over different sets of points.
- **per grid point** (studies with more than one axis; ``axis = "grid"``): one observation per
  seed (the mean if a point completed twice).

**Per arm**: n (seeds), mean, sample std (ddof 1) and the 95% confidence interval of the mean
(Student t, n - 1 degrees of freedom); std and CI are undefined (NaN) for n < 2. The interval is
intersected with the metric's bounds (``units.unit_of(metric)``: an accuracy lies in [0, 1]): the
true mean lies inside them for certain, so the intersection covers it at least as often as the
t-interval does, and an accuracy CI no longer reaches past 1 with 3 seeds.

**Each arm against the baseline arm** of its axis (its first listed value, or ``baseline:``):

- both arms share at least 2 seeds: **paired** t-test (``scipy.stats.ttest_rel``) over the shared
  seeds only; ``delta`` is the mean of the per-seed differences;
- fewer than 2 shared seeds (normally none) and n >= 2 on both sides: **Welch**'s t-test
  (``ttest_ind(equal_var=False)``); ``delta`` is the difference of the means (Welch-Satterthwaite
  degrees of freedom);
- n < 2 on either side, or no variance (identical per-seed differences): ``delta`` only, no test.

**Holm over a family** (the arms of one axis, or the grid points, for one metric): the p-values
are Holm-adjusted (``p_adjusted``) and an arm is ``significant`` when ``p_adjusted < alpha``.
The interval of the difference (``delta_ci_low/high``) is **Holm-consistent**: Holm tests the
i-th smallest of the m p-values (0-based) at alpha / (m - i) and stops at the first it keeps; a
rejected comparison at step i gets the t-interval at level 1 - alpha / (m - i) (the level its test
used), the kept ones the level of the step where Holm stopped. A t-interval at level 1 - a
excludes zero exactly when the t-test's p < a, so "significant" holds exactly when the interval
shown beside it excludes zero. Chosen over the two alternatives: unadjusted 95% intervals
contradict the adjusted verdict, and Bonferroni intervals (1 - alpha/m for all) are wider than
Holm's tests after the first step so they would contradict them too. These intervals are not
simultaneous (Bonferroni's are; the simultaneous Holm-compatible intervals of Strassburger & Bretz
2008 shrink a rejected comparison's bound to zero and say little about the size). ``ci_level``
holds each one's level, ``ci_method`` says how it was made. Differences are clipped to
``[low - high, high - low]`` of a bounded metric (accuracy: [-1, 1]; 0 is inside, so clipping
never changes whether an interval excludes zero).

Beside the t-test, for paired comparisons (NaN for Welch and for fewer than 2 pairs):

- ``boot_ci_low/high``: the paired **bootstrap** interval of the mean difference
  (``scipy.stats.bootstrap``, BCa, 9999 resamples, seeded) at the same level as the t-interval;
  NaN where BCa is undefined (no variance, too few distinct resamples);
- ``p_perm``: the **sign-flip permutation** p-value of the mean difference
  (``scipy.stats.permutation_test``, ``permutation_type="samples"`` on the differences, two-sided):
  exact (all 2^n sign patterns) up to n = 13, 9999 seeded random flips beyond. It cannot go below
  2 / 2^n: 0.25 with 3 seeds. ``p_perm_adjusted``: Holm over the family, like the t-test's.

**Equivalence** (``equivalence_margin:`` of the metric, display units; equivalence.py): TOST p per
comparison (``p_tost``), Holm-adjusted over the family's comparisons (``p_tost_adjusted``): an arm
is ``equivalent`` when that is below alpha. The difference tests and the equivalence tests are two
families, each with family-wise error at most alpha.

**Planning** (planning.py): from the SD of the per-seed differences (``sd_diff``; for Welch the
SD of a difference of two independent seeds, sqrt(var_arm + var_base)), the seeds a paired t-test
needs for 80% power at the observed delta (``seeds_needed``) and at ``min_effect:`` of the metric
(``seeds_needed_min_effect``). Planned at ``alpha_plan`` = alpha / m, the level of Holm's first
step (Bonferroni): Holm rejects everything Bonferroni rejects, so the power with Holm is at least
the planned one whatever the other arms do.

Units: the frame ``seed_statistics`` returns is in the **logged scale** (accuracy as a fraction,
energy in mJ; plots convert it with units.py); ``display_table`` turns it into the display units
of ``stats.csv`` (accuracy in points, energy in µJ) with a ``unit`` column.
"""

from __future__ import annotations

import inspect
import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .axis_text import key_text, value_text
from .equivalence import tost_p
from .planning import MAX_SEEDS, POWER, required_seeds
from .units import Unit, unit_of

LEVEL = 0.95  # confidence level of each arm's interval
GRID_AXIS = "grid"  # the `axis` of per-grid-point rows
SEED_COLUMN = "seed"
RESAMPLES = 9999  # bootstrap resamples; random sign flips (2^13 < 9999: exact up to 13 pairs)
RANDOM_SEED = 0  # of the bootstrap and the random sign flips: the same report every time
ARM_COLUMNS = ["metric", "axis", "value", "n", "mean", "std", "ci_low", "ci_high"]
COMPARISON_COLUMNS = ["baseline", "test", "n_pairs", "delta", "delta_ci_low", "delta_ci_high", "ci_level", "ci_method",
                      "p_value", "p_adjusted", "significant", "boot_ci_low", "boot_ci_high", "p_perm",
                      "p_perm_adjusted", "sd_diff", "margin", "p_tost", "p_tost_adjusted", "equivalent",
                      "alpha_plan", "seeds_needed", "min_effect", "seeds_needed_min_effect"]
COLUMNS = ARM_COLUMNS + COMPARISON_COLUMNS  # the frame of seed_statistics; stats.csv adds "unit" after "metric"
# the columns that are values (or differences) of the metric: scaled to display units in stats.csv
SCALED = ["mean", "std", "ci_low", "ci_high", "delta", "delta_ci_low", "delta_ci_high", "boot_ci_low", "boot_ci_high",
          "sd_diff", "margin", "min_effect"]
VERDICTS = ["significant", "equivalent"]  # True / False / None (no test)
COUNTS = ["n_pairs", "seeds_needed", "seeds_needed_min_effect"]  # integers, <NA> where there are none
NAN = math.nan


# ---------------------------------------------------------------------- building blocks
def arm_stats(values: Sequence[float], level: float = LEVEL, unit: Unit | None = None) -> dict[str, float]:
    """``n, mean, std, ci_low, ci_high`` of one arm's observations (NaNs dropped; std/CI NaN for n < 2).

    ``unit``: the CI is kept inside its bounds (``Unit.clip``).
    """
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
        if unit is not None:
            out["ci_low"], out["ci_high"] = unit.clip(out["ci_low"]), unit.clip(out["ci_high"])
    return out


# Metrics are logged from float32 tensors (torchmetrics): a value carries ~1e-7 of its size in rounding,
# so two arms that differ by the same count at every seed (2 of 360 test digits) give per-seed
# differences that disagree in the 8th digit, and a t-test on them finds a "variance" of pure rounding
# (t in the millions, p = 0). Differences are therefore taken at that resolution.
LOGGED_RESOLUTION = 8 * float(np.finfo(np.float32).eps)  # relative to the observations' size


def logged_differences(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """``a - b`` per seed; when they spread by no more than the rounding of the logged values
    (``LOGGED_RESOLUTION`` of the larger observation), each is their mean: differences that are equal
    in the data are exactly equal here (no variance, so no test), not a t statistic of rounding."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    d = a - b
    scale = float(max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0)))
    if len(d) and math.isfinite(scale) and np.ptp(d) <= LOGGED_RESOLUTION * scale:
        return np.full_like(d, d.mean())
    return d


def _constant(x: np.ndarray) -> bool:
    """All values equal up to rounding (the per-seed differences of identical arms, say)."""
    return bool(np.ptp(x) <= 1e-12 * np.abs(x).max())


def compare_arms(arm: pd.Series, base: pd.Series) -> dict[str, Any]:
    """Test one arm against the baseline; both Series hold one observation per seed (index = seed).

    Returns ``test`` ("paired", "welch" or "" for none), ``n_pairs``, ``delta``, the t-test's ``p_value``
    (NaN when no test ran or there is no variance), ``sd_diff`` (the SD of one seed's difference) and the
    observations tested: ``a`` and ``b`` (aligned by seed when paired).
    """
    arm, base = arm.dropna(), base.dropna()
    out: dict[str, Any] = {"test": "", "n_pairs": 0, "delta": NAN, "p_value": NAN, "sd_diff": NAN,
                           "a": np.array([]), "b": np.array([])}
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
            d = logged_differences(a, b)
            out.update(test="paired", delta=float(d.mean()), a=a, b=b, sd_diff=float(d.std(ddof=1)))
            if _constant(d):
                return out
            out["p_value"] = float(stats.ttest_rel(a, b).pvalue)
        else:
            a, b = arm.to_numpy(float), base.to_numpy(float)
            out.update(test="welch", a=a, b=b, sd_diff=float(math.sqrt(a.var(ddof=1) + b.var(ddof=1))))
            if _constant(a) and _constant(b):
                return out
            out["p_value"] = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return out


def t_interval(c: Comparison) -> tuple[float, float]:
    """scipy's t-interval of the tested ``c`` at ``c.ci_level``: paired (``ttest_rel``) or Welch
    (``ttest_ind(equal_var=False)``) on its observations, the dual of the t-test whose p-value it reports
    (it excludes 0 exactly when p < 1 - level)."""
    a, b = c.observations
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's precision warning for near-constant data
        result = stats.ttest_rel(a, b) if c.test == "paired" else stats.ttest_ind(a, b, equal_var=False)
        interval = result.confidence_interval(c.ci_level)
    return float(interval.low), float(interval.high)


def _seeded(function: Any) -> dict[str, Any]:
    """The seed argument of a scipy resampling function (``rng`` from scipy 1.15, ``random_state`` before)."""
    name = "rng" if "rng" in inspect.signature(function).parameters else "random_state"
    return {name: np.random.default_rng(RANDOM_SEED)}


def paired_bootstrap_ci(d: np.ndarray, level: float) -> tuple[float, float]:
    """BCa bootstrap interval of the mean of the per-seed differences ``d`` at ``level`` (seeded);
    NaN for fewer than 2 differences, identical ones, or where BCa is undefined."""
    d = np.asarray(d, float)
    if len(d) < 2 or math.isnan(level) or _constant(d):
        return NAN, NAN
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # scipy's DegenerateDataWarning: the NaN interval says it
        res = stats.bootstrap((d,), np.mean, confidence_level=level, method="BCa", n_resamples=RESAMPLES,
                              vectorized=True, **_seeded(stats.bootstrap))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def sign_flip_p(d: np.ndarray) -> float:
    """Two-sided sign-flip permutation p-value of the mean of the per-seed differences ``d`` (exact up to
    13 differences); NaN for fewer than 2."""
    d = np.asarray(d, float)
    if len(d) < 2:
        return NAN
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        res = stats.permutation_test((d,), np.mean, permutation_type="samples", vectorized=True,
                                     n_resamples=RESAMPLES, alternative="two-sided", **_seeded(stats.permutation_test))
    return float(res.pvalue)


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


def holm_levels(p_values: Sequence[float], alpha: float) -> np.ndarray:
    """The Holm-consistent confidence level of each p-value's interval (NaN p: NaN level).

    Holm's order: the i-th smallest p (0-based) of the m is tested at alpha / (m - i) while all before
    it were rejected. A rejected one gets 1 - alpha / (m - i); the others 1 - alpha / (m - k), k the
    step where Holm stopped (the number rejected). Rejected means ``holm(p) < alpha``.
    """
    p = np.asarray(p_values, dtype=float)
    rejected = holm(p) < alpha
    tested = np.flatnonzero(~np.isnan(p))
    m, k = len(tested), int(rejected.sum())
    levels = np.full(p.shape, NAN)
    for step, index in enumerate(tested[np.argsort(p[tested], kind="stable")]):
        levels[index] = 1 - alpha / (m - (step if rejected[index] else k))
    return levels


# ---------------------------------------------------------------------- one comparison
@dataclass
class Comparison:
    """One arm against its axis' baseline for one metric (what a report sentence says); logged scale."""

    metric: str
    axis: str
    value: str
    baseline: str
    n: int
    n_base: int
    test: str = ""
    n_pairs: int = 0
    delta: float = NAN
    p_value: float = NAN
    sd_diff: float = NAN
    p_adjusted: float = NAN
    significant: bool | None = None
    ci_level: float = NAN
    delta_ci_low: float = NAN
    delta_ci_high: float = NAN
    ci_method: str = ""
    boot_ci_low: float = NAN
    boot_ci_high: float = NAN
    p_perm: float = NAN
    p_perm_adjusted: float = NAN
    margin: float = NAN  # equivalence margin, logged scale
    p_tost: float = NAN
    p_tost_adjusted: float = NAN
    equivalent: bool | None = None
    alpha_plan: float = NAN
    seeds_needed: float = NAN  # an int, NaN when there is nothing to plan from
    min_effect: float = NAN  # logged scale
    seeds_needed_min_effect: float = NAN
    observations: tuple[np.ndarray, np.ndarray] = field(default=(np.array([]), np.array([])), repr=False)

    def row(self) -> dict[str, Any]:
        """The comparison's columns of its arm's row (``COMPARISON_COLUMNS``)."""
        return {name: getattr(self, name) for name in COMPARISON_COLUMNS}

    def sentence(self) -> str:
        """e.g. ``ar_lif vs lif: +0.42 points, Holm-adjusted 97.5% CI [-0.31, 1.15], p = 0.21 after Holm:
        not significant with 3 seeds (bootstrap CI [...], sign-flip permutation p = 0.5 after Holm); not
        shown equivalent within ±0.30 points; seeds for 80% power: about 14 at the observed +0.42 points``."""
        unit = unit_of(self.metric)
        head = f"{self.value} vs {self.baseline}: "
        if self.n == 0 or self.n_base == 0:
            return head + "no COMPLETE run on " + ("both sides" if self.n == self.n_base else "one side") + \
                "; seeds needed: unknown"
        delta = unit.format(self.delta, signed=True) + unit.suffix
        if not self.test:
            return head + f"{delta}, n = {min(self.n, self.n_base)}: no test; seeds needed: unknown (a test needs " \
                          "at least 2 seeds on each side)"
        seeds = f"{self.n_pairs} seeds" if self.test == "paired" else \
            f"{self.n} and {self.n_base} seeds, unpaired (Welch)"
        if math.isnan(self.p_value):
            return head + f"{delta}: no test (zero variance) with {seeds}: the difference was the same at every seed " \
                          "(as the metric's resolution allows), so there is no spread to test or plan from; seeds " \
                          "needed: unknown until more seeds show one"
        parts = [head + f"{delta}, Holm-adjusted {self.ci_level * 100:.4g}% CI [{unit.format(self.delta_ci_low)}, "
                 f"{unit.format(self.delta_ci_high)}], {_p_text(self.p_adjusted)} after Holm: "
                 f"{'significant' if self.significant else 'not significant'} with {seeds}"]
        if self.test == "paired":
            boot = "bootstrap CI undefined" if math.isnan(self.boot_ci_low) else \
                f"bootstrap CI [{unit.format(self.boot_ci_low)}, {unit.format(self.boot_ci_high)}]"
            parts[0] += f" ({boot}, sign-flip permutation {_p_text(self.p_perm_adjusted)} after Holm)"
        if not math.isnan(self.margin):
            within = f"within ±{unit.format(self.margin)}{unit.suffix}"
            verdict = {True: f"equivalent to {self.baseline}", False: "not shown equivalent"}.get(
                self.equivalent, "no equivalence test")
            parts.append(f"{verdict} {within}")
        parts.append(self.planning_text())
        return "; ".join(parts)

    def planning_text(self) -> str:
        """``seeds for 80% power: about 14 at the observed +0.42 points, about 10 at 0.50 points (min_effect)``."""
        unit = unit_of(self.metric)
        if math.isnan(self.seeds_needed):
            return "seeds needed: unknown"
        text = f"seeds for {POWER:.0%} power: {_seeds_text(self.seeds_needed)} at the observed " \
               f"{unit.format(self.delta, signed=True)}{unit.suffix}"
        if not math.isnan(self.min_effect):
            text += f", {_seeds_text(self.seeds_needed_min_effect)} at {unit.format(self.min_effect)}{unit.suffix} " \
                    "(min_effect)"
        return text


def _p_text(p: float) -> str:
    return "p = -" if math.isnan(p) else "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def _seeds_text(n: float) -> str:
    return "unknown" if math.isnan(n) else f"more than {MAX_SEEDS}" if n >= MAX_SEEDS else f"about {int(n)}"


def _decide(comparisons: list[Comparison], alpha: float, margin: float, min_effect: float) -> None:
    """Holm over one family: adjusted p, verdicts, Holm-consistent intervals, bootstrap and permutation,
    TOST, planning (``margin`` / ``min_effect`` in the logged scale, NaN when not given)."""
    if not comparisons:
        return
    unit = unit_of(comparisons[0].metric)
    p = [c.p_value for c in comparisons]
    adjusted, levels = holm(p), holm_levels(p, alpha)
    perm = holm([c.p_perm for c in comparisons])
    m = int(np.sum(~np.isnan(p)))
    for c, p_adj, level, p_perm_adj in zip(comparisons, adjusted, levels, perm):
        c.p_perm_adjusted = float(p_perm_adj)
        c.alpha_plan = alpha / max(m, 1)
        c.seeds_needed = required_seeds(c.delta, c.sd_diff, POWER, c.alpha_plan)
        if not math.isnan(min_effect):
            c.min_effect = min_effect
            c.seeds_needed_min_effect = required_seeds(min_effect, c.sd_diff, POWER, c.alpha_plan)
        if math.isnan(p_adj):
            continue
        c.p_adjusted, c.significant, c.ci_level = float(p_adj), bool(p_adj < alpha), float(level)
        low, high = t_interval(c)
        c.delta_ci_low, c.delta_ci_high = unit.clip_difference(low), unit.clip_difference(high)
        c.ci_method = f"{'paired' if c.test == 'paired' else 'Welch'} t, Holm-consistent level"
        if c.test == "paired":
            a, b = c.observations
            low, high = paired_bootstrap_ci(logged_differences(a, b), c.ci_level)
            c.boot_ci_low, c.boot_ci_high = unit.clip_difference(low), unit.clip_difference(high)
    if not math.isnan(margin):
        for c in comparisons:
            c.margin = margin
            if not math.isnan(c.p_value):
                a, b = c.observations
                c.p_tost = tost_p(a, b, margin, paired=c.test == "paired")
        for c, p_adj in zip(comparisons, holm([c.p_tost for c in comparisons])):
            if not math.isnan(p_adj):
                c.p_tost_adjusted, c.equivalent = float(p_adj), bool(p_adj < alpha)


# ---------------------------------------------------------------------- a study
def per_seed(frame: pd.DataFrame, keys: list[str], metric: str, seed_column: str = SEED_COLUMN) -> pd.DataFrame:
    """One observation per (keys..., seed): the mean of ``metric`` over the rows sharing them."""
    rows = frame.dropna(subset=[metric, seed_column])
    return rows.groupby([*keys, seed_column], sort=False)[metric].mean().reset_index()


def _family(obs: pd.DataFrame, key: str, arms: list[str], baseline: str | None, metric: str, axis: str,
            alpha: float, seed_column: str, margin: float, min_effect: float) -> tuple[list[dict], list[Comparison]]:
    """Rows and comparisons of the arms of one axis (or of the grid points) for one metric."""
    series = {arm: obs.loc[obs[key] == arm].set_index(seed_column)[metric] for arm in arms}
    unit = unit_of(metric)
    comparisons: dict[str, Comparison] = {}
    for arm in arms:
        if baseline is not None and arm != baseline:
            test = compare_arms(series[arm], series[baseline])
            observations = (test.pop("a"), test.pop("b"))
            comparisons[arm] = Comparison(metric, axis, arm, baseline, len(series[arm].dropna()),
                                          len(series[baseline].dropna()), observations=observations, **test)
            if comparisons[arm].test == "paired":
                comparisons[arm].p_perm = sign_flip_p(logged_differences(*observations))
    _decide(list(comparisons.values()), alpha, margin, min_effect)
    blank = {**Comparison(metric, axis, "", None, 0, 0).row(), "test": None, "n_pairs": None, "ci_method": None}
    rows = [{"metric": metric, "axis": axis, "value": arm, **arm_stats(series[arm].tolist(), unit=unit),
             **(comparisons[arm].row() if arm in comparisons else blank)} for arm in arms]
    return rows, list(comparisons.values())


def grid_label(values: dict[str, Any]) -> str:
    """The ``value`` of a grid point's rows: ``path=text,path=text`` (its key without the seed; axis_text)."""
    return key_text(values)


def seed_statistics(done: pd.DataFrame, axes: dict[str, list], columns: dict[str, str], metrics: list[str],
                    baseline: dict[str, Any] | None = None, alpha: float = 0.05, seed_column: str = SEED_COLUMN,
                    equivalence_margin: dict[str, float] | None = None, min_effect: dict[str, float] | None = None
                    ) -> tuple[pd.DataFrame, list[Comparison]]:
    """The statistics frame (columns ``COLUMNS``, logged scale) and the comparisons behind it.

    ``done``: the COMPLETE runs, one row each, with a ``seed`` column, the axis value of each
    axis in ``columns[path]`` (as text, axis_text.value_text: what the ``axis.*`` tags hold) and the metrics.
    ``axes``: path -> listed values (their order is the arms' order); ``baseline``: path -> the
    baseline value where it is not the first listed one. ``equivalence_margin`` / ``min_effect``:
    metric -> number in the metric's display unit (the study file's keys).
    """
    baseline = baseline or {}
    base_of = {path: value_text(baseline.get(path, values[0])) for path, values in axes.items()}
    frame = done.copy()
    for col in columns.values():
        frame[col] = frame[col].astype(str)
    rows: list[dict] = []
    comparisons: list[Comparison] = []
    for metric in metrics:
        scale = unit_of(metric).scale
        margin = (equivalence_margin or {}).get(metric, NAN) / scale
        effect = (min_effect or {}).get(metric, NAN) / scale
        for path, values in axes.items():
            col = columns[path]
            arms = list(dict.fromkeys([*map(value_text, values), *frame[col].dropna().unique()]))
            obs = per_seed(frame, [col], metric, seed_column)
            r, c = _family(obs, col, arms, base_of[path], metric, path, alpha, seed_column, margin, effect)
            rows += r
            comparisons += c
        if len(axes) > 1:
            cols = [columns[p] for p in axes]
            frame["_point"] = frame[cols].apply(lambda r: grid_label(dict(zip(axes, r))), axis=1) if len(frame) \
                else pd.Series(dtype=str)
            points = list(dict.fromkeys(frame["_point"]))
            order = {grid_label(dict(zip(axes, combo))): i for i, combo in
                     enumerate(itertools.product(*[[value_text(v) for v in vs] for vs in axes.values()]))}
            points.sort(key=lambda p: order.get(p, len(order)))
            base_point = grid_label(base_of)
            obs = per_seed(frame, ["_point"], metric, seed_column)
            r, c = _family(obs, "_point", points, base_point if base_point in points else None, metric, GRID_AXIS,
                           alpha, seed_column, margin, effect)
            rows += r
            comparisons += c
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["n"] = table["n"].astype(int)
    for column in COUNTS:
        table[column] = pd.array([None if pd.isna(x) else int(x) for x in table[column]], dtype="Int64")
    for column in VERDICTS:
        table[column] = table[column].astype(object)
    return table, comparisons


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The statistics frame in display units (``units.unit_of``: accuracy in points, energy in µJ) with a
    ``unit`` column after ``metric``: the rows of ``stats.csv``. Levels, p-values and seeds stay as they are."""
    out = table.copy()
    scale = out["metric"].map(lambda m: unit_of(m).scale).astype(float)
    for column in SCALED:
        out[column] = out[column].astype(float) * scale
    out.insert(out.columns.get_loc("metric") + 1, "unit", out["metric"].map(lambda m: unit_of(m).name))
    return out
