"""How many seeds a comparison would need: the power of a two-sided paired t-test (noncentral t).

``required_seeds(delta, std, power, alpha)``: the smallest number of paired seeds whose t-test at
level ``alpha`` detects a true mean per-seed difference ``delta`` with probability ``power`` when the
per-seed differences have standard deviation ``std``. The power of the test is exact (noncentral t,
both tails) and increases with n, so the smallest n is found by bisection, bracketed from the normal
approximation ``((z(1 - alpha/2) + z(power)) / effect)^2``.

By hand because scipy has no power function for t-tests (statsmodels' ``TTestPower`` would, and is
not a dependency); the noncentral t distribution itself is scipy's.
"""

from __future__ import annotations

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
    # bracket from the normal approximation (a t-test needs a little more than a z-test), then bisect
    guess = ((stats.norm.isf(alpha / 2) + stats.norm.ppf(power)) / effect) ** 2 if effect > 0 else max_n
    low = max(1, min(max_n - 1, math.floor(guess)))  # n = 1 has no test: power 0
    if low > 1 and paired_t_power(low, effect, alpha) >= power:
        low = 1
    high, step = low + 1, 1
    while high < max_n and paired_t_power(high, effect, alpha) < power:
        low, step = high, step * 2
        high = min(max_n, high + step)
    while high - low > 1:  # power(low) < power <= power(high)
        mid = (low + high) // 2
        if paired_t_power(mid, effect, alpha) >= power:
            high = mid
        else:
            low = mid
    return high
