"""Adaptive seeds: a group-sequential design for the arm-vs-baseline comparisons of an ablation.

Seeds run in rounds (``looks``): ``start`` seeds, then ``step`` more per round, up to ``max``.
After each round every comparison still going on (the paired per-seed differences arm - baseline,
seeds 0..n-1) gets one of

- ``different``: the paired t statistic ``|t|`` is at or past the efficacy boundary of the look;
- ``equivalent`` (only with an equivalence margin): both one-sided tests of the TOST pass the
  equivalence boundary, i.e. ``(mean + margin) / se`` and ``(margin - mean) / se`` are both at or
  past it;
- ``continue``, or at the last look ``undecided``; also while the differences do not vary at all
  (the t statistic is undefined).

**Why this design and not adastop.** ``adastop`` (the package for adaptive multiple-agent
comparisons) was read and left out: its permutation tests compare unpaired groups (our seeds pair
an arm with its baseline, the paired test is what ``compare`` reports), every look must add the
same number of runs to every agent (we start with ``start`` and add ``step``), its "equal" verdict
is "not rejected", not an equivalence test against a margin, and with 3 runs per arm its
permutation law has 20 values (a first-look rejection is impossible at any useful level).

**The design** (error spending on numpy/scipy):

- each comparison gets ``alpha / m`` (Bonferroni over the ``m`` comparisons: their t statistics
  are correlated through the shared baseline, Bonferroni holds whatever the correlation);
- over the looks that share is spent with the Lan-DeMets O'Brien-Fleming function
  ``a(t) = 2 - 2 Phi(z_{1 - a/2} / sqrt(t))`` at the information fraction ``t = n_k / max``: early
  looks stop only on large effects, the last look keeps nearly the power of a fixed ``max``-seed test;
- the boundaries are calibrated by simulation: under the null (mean difference 0) the joint law of
  the paired t statistics at the looks does not depend on the noise's sigma, so one seeded Monte
  Carlo run of standard normal differences gives, look by look, the boundary whose crossing
  probability among the not yet stopped paths is the spent increment. Where an increment is too
  small for the simulation to resolve (early O'Brien-Fleming looks), the boundary is the Student t
  quantile of the increment, which bounds the crossing probability from above (conservative);
- equivalence is an intersection-union test: each one-sided test of the TOST has a central t law
  at a true difference of exactly ``-margin`` / ``+margin``, so the same calibration (one-sided, again
  ``alpha / m`` per comparison) keeps P(any "equivalent" verdict for a true difference of at least
  the margin) at or below ``alpha``.

Stopping a comparison for one reason only removes chances of the other error (non-binding
boundaries), so both guarantees hold together: P(any false "different") <= alpha under any null
configuration, P(any false "equivalent") <= alpha. ``scripts/simulate_adaptive.py`` measures both.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..errors import ConfigError

DIFFERENT, EQUIVALENT, CONTINUE, UNDECIDED = "different", "equivalent", "continue", "undecided"
VERDICTS = (DIFFERENT, EQUIVALENT, CONTINUE, UNDECIDED)
SIMULATIONS = 200_000  # null paths per calibration: the last look's boundary to about 2% of its spend
MIN_CROSSINGS = 100  # below this many simulated crossings a look takes the conservative t quantile
CALIBRATION_SEED = 20_260_521


def looks_of(start: int, step: int, max_seeds: int) -> tuple[int, ...]:
    """The seed counts after each round: ``start, start + step, ...``, the last one ``max_seeds``."""
    if start < 2 or step < 1 or max_seeds < start:
        raise ConfigError(f"need start >= 2, step >= 1 and max >= start; got start={start}, step={step}, "
                         f"max={max_seeds}")
    return (*range(start, max_seeds, step), max_seeds)


def obrien_fleming_spent(fraction: np.ndarray | float, level: float) -> np.ndarray:
    """Lan-DeMets O'Brien-Fleming spending: the error spent up to information ``fraction`` (1 -> ``level``)."""
    fraction = np.asarray(fraction, dtype=float)
    return 2.0 * stats.norm.sf(stats.norm.isf(level / 2.0) / np.sqrt(fraction))


def _t_at_looks(d: np.ndarray, looks: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, se, n)`` of the differences ``d`` (..., >= looks[-1]) over their first n_k seeds, per look."""
    n = np.asarray(looks, dtype=float)
    idx = np.asarray(looks) - 1
    s1 = np.cumsum(d, axis=-1)[..., idx]
    s2 = np.cumsum(d * d, axis=-1)[..., idx]
    mean = s1 / n
    var = np.maximum(s2 - s1 * mean, 0.0) / (n - 1)  # (..., looks)
    return mean, np.sqrt(var / n), n


def _ratio(numerator: np.ndarray, se: np.ndarray) -> np.ndarray:
    """``numerator / se`` with a zero ``se`` giving +-inf (or NaN for 0 / 0), without warnings."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return numerator / se


def _null_t(looks: tuple[int, ...]) -> np.ndarray:
    """Paired t statistics at the looks of ``SIMULATIONS`` seeded null paths (standard normal
    differences), (paths, looks); summed seed by seed, so memory grows with the looks, not with max."""
    rng = np.random.default_rng(CALIBRATION_SEED)
    s1, s2 = np.zeros(SIMULATIONS), np.zeros(SIMULATIONS)
    out = np.empty((SIMULATIONS, len(looks)))
    for n in range(1, looks[-1] + 1):
        d = rng.standard_normal(SIMULATIONS)
        s1 += d
        s2 += d * d
        if n in looks:
            mean = s1 / n
            out[:, looks.index(n)] = _ratio(mean, np.sqrt(np.maximum(s2 - s1 * mean, 0.0) / (n - 1) / n))
    return out


def _calibrate(looks: tuple[int, ...], level: float, two_sided: bool, null_t: np.ndarray) -> tuple[float, ...]:
    """Boundaries on ``|t|`` (two-sided) or ``t`` (one-sided) spending ``level`` over the looks."""
    t = np.abs(null_t) if two_sided else null_t
    spent = obrien_fleming_spent(np.asarray(looks) / looks[-1], level)
    increments = np.diff(spent, prepend=0.0)
    alive = np.ones(len(t), dtype=bool)
    bounds: list[float] = []
    for k, (n, increment) in enumerate(zip(looks, increments)):
        crossings = int(round(increment * len(t)))
        if crossings < MIN_CROSSINGS:  # P(cross here, not before) <= P(cross here) = increment
            bound = float(stats.t.isf(increment / 2.0 if two_sided else increment, n - 1))
        else:
            candidates = t[alive, k]
            # the crossings-th largest among the paths still going: that many cross (ties have probability 0)
            bound = float(np.partition(candidates, len(candidates) - crossings)[len(candidates) - crossings])
        bounds.append(bound)
        alive &= ~(t[:, k] >= bound)
    return tuple(bounds)


@dataclass(frozen=True)
class Design:
    """The boundaries of one adaptive-seed plan: ``looks`` (seeds after each round), the family-wise
    ``alpha`` split over ``comparisons``, and per look the efficacy boundary on ``|t|`` and the
    equivalence boundary on each one-sided TOST statistic."""

    looks: tuple[int, ...]
    alpha: float
    comparisons: int
    efficacy: tuple[float, ...]
    equivalence: tuple[float, ...]

    @property
    def max_seeds(self) -> int:
        return self.looks[-1]

    def look_of(self, n: int) -> int:
        """The index of the look that has ``n`` seeds (``ValueError`` if no round ends there)."""
        if n not in self.looks:
            raise ConfigError(f"{n} seeds is not a look of this design (looks: {list(self.looks)})")
        return self.looks.index(n)


@functools.lru_cache(maxsize=64)
def design(start: int, step: int, max_seeds: int, alpha: float, comparisons: int) -> Design:
    """The calibrated design (cached: one calibration per plan, about 0.1 s; deterministic, seeded)."""
    if not 0 < alpha < 1 or comparisons < 1:
        raise ConfigError(f"need 0 < alpha < 1 and comparisons >= 1; got alpha={alpha}, comparisons={comparisons}")
    looks = looks_of(start, step, max_seeds)
    level = alpha / comparisons
    null_t = _null_t(looks)
    return Design(looks, alpha, comparisons, _calibrate(looks, level, True, null_t),
                  _calibrate(looks, level, False, null_t))


def _verdicts(plan: Design, k: int, mean: np.ndarray, se: np.ndarray, margin: float | None) -> np.ndarray:
    """Verdicts (strings) at look ``k`` from the means and standard errors of the differences."""
    # identical differences at every seed (e.g. two arms stuck at chance) leave t undefined: no verdict,
    # as statistics.py reports "no test (zero variance)"
    varies = se > 0
    different = varies & (np.abs(_ratio(mean, se)) >= plan.efficacy[k])
    equivalent = np.zeros_like(different)
    if margin is not None:
        bound = plan.equivalence[k]
        equivalent = varies & (_ratio(mean + margin, se) >= bound) & (_ratio(margin - mean, se) >= bound)
    last = k == len(plan.looks) - 1
    return np.where(different, DIFFERENT, np.where(equivalent, EQUIVALENT, UNDECIDED if last else CONTINUE))


def decide(plan: Design, differences: Sequence[Sequence[float]], margin: float | None = None) -> list[str]:
    """One look: per comparison its paired differences (arm - baseline, one per seed, all of one look's
    length) -> ``different`` / ``equivalent`` / ``continue`` (``undecided`` at the last look).

    ``margin``: the equivalence margin in the differences' unit (None: no equivalence verdict).
    """
    d = np.asarray(differences, dtype=float)
    if d.ndim != 2 or not len(d):
        raise ConfigError(f"differences must be one list per comparison, got shape {d.shape}")
    if np.isnan(d).any():
        raise ConfigError("differences contain NaN: every comparison needs its n seeds on both sides")
    k = plan.look_of(d.shape[1])
    mean, se, _ = _t_at_looks(d, [d.shape[1]])
    return [str(v) for v in _verdicts(plan, k, mean[:, 0], se[:, 0], margin)]


def run_sequential(plan: Design, differences: np.ndarray, margin: float | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The whole procedure on full-length differences (..., max seeds), vectorised (simulations):
    ``(verdict, look index)`` per comparison, each decided at the first look where it stops."""
    mean, se, _ = _t_at_looks(np.asarray(differences, dtype=float), plan.looks)
    verdict = np.full(mean.shape[:-1], CONTINUE, dtype=object)
    stopped_at = np.full(mean.shape[:-1], len(plan.looks) - 1)
    for k in range(len(plan.looks)):
        now = _verdicts(plan, k, mean[..., k], se[..., k], margin)
        new = (verdict == CONTINUE) & (now != CONTINUE)
        verdict[new] = now[new]
        stopped_at[new] = k
    return verdict.astype(str), stopped_at


def trainings(plan: Design, stopped_at: np.ndarray) -> np.ndarray:
    """Trainings of a study (per row of ``stopped_at``: the comparisons' stop looks): each arm runs its
    seeds up to its stop, the baseline as long as any comparison goes on."""
    seeds = np.asarray(plan.looks)[stopped_at]  # (..., comparisons)
    return seeds.sum(axis=-1) + seeds.max(axis=-1)

