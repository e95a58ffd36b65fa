"""How many seeds a comparison would need: the power of a two-sided paired t-test (noncentral t).

``required_seeds(delta, std, power, alpha)``: the smallest number of paired seeds whose t-test at
level ``alpha`` detects a true mean per-seed difference ``delta`` with probability ``power`` when the
per-seed differences have standard deviation ``std``. The power of the test is exact (noncentral t,
both tails) and increases with n, so the smallest n is found by bisection (``bisect``).

By hand because scipy has no power function for t-tests (statsmodels' ``TTestPower`` would, and is
not a dependency); the noncentral t distribution itself is scipy's.
"""

from __future__ import annotations

import bisect
import math

from scipy import stats

POWER = 0.8  # the power every comparison plans for
MAX_SEEDS = 10_000  # the answer when even this many would not reach the power


def paired_t_power(n: int, effect: float, alpha: float) -> float:
    """Power of the two-sided one-sample (paired) t-test with ``n`` pairs at standardized effect ``effect``."""
    df = n - 1
    crit = stats.t.ppf(1 - alpha / 2, df)
    nc = abs(effect) * math.sqrt(n)
    lower = stats.nct.cdf(-crit, df, nc)  # the wrong-sign tail: negligible, and NaN far out in it
    return float(stats.nct.sf(crit, df, nc) + (0.0 if math.isnan(lower) else lower))


def required_seeds(delta: float, std: float, power: float = POWER, alpha: float = 0.05, max_n: int = MAX_SEEDS
                   ) -> float:
    """Seeds a two-sided paired t-test at ``alpha`` needs to detect a mean per-seed difference ``delta``
    with ``power``, when the per-seed differences have std ``std``; ``max_n`` when even that many would
    not do (``delta`` 0 included), NaN when ``std`` is not a positive number (nothing to plan from)."""
    if not (std > 0 and math.isfinite(std) and math.isfinite(delta)):
        return math.nan
    effect = abs(delta) / std
    if paired_t_power(max_n, effect, alpha) < power:
        return max_n
    seeds = range(2, max_n + 1)  # n = 1 has no test
    return seeds[bisect.bisect_left(seeds, True, key=lambda n: paired_t_power(n, effect, alpha) >= power)]
