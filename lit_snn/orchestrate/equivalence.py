"""Equivalence of an arm to its baseline within a margin: TOST, two one-sided t-tests (scipy's).

An arm is *equivalent within ±margin* when both one-sided nulls are rejected: "the true difference
is at most -margin" and "it is at least +margin". The TOST p-value is the larger of the two
one-sided p-values; rejecting at level alpha is the same as the (1 - 2 alpha) t-interval of the
difference lying inside (-margin, +margin). The tests are those of the difference test beside it:

- paired seeds: ``ttest_1samp`` of the per-seed differences against -margin (``greater``) and
  +margin (``less``);
- unpaired (Welch): ``ttest_ind(arm + margin, base, equal_var=False, alternative="greater")`` and
  ``ttest_ind(arm - margin, base, ..., alternative="less")``, i.e. the shifted differences of means.

statistics.py adjusts the TOST p-values of one family (the arms of one axis, one metric) with Holm,
as it does the difference tests: the family-wise error of the "equivalent" verdicts is at most alpha.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats


def tost_p(arm: np.ndarray, base: np.ndarray, margin: float, paired: bool) -> float:
    """The TOST p-value of ``arm`` vs ``base`` within ±``margin`` (logged scale); NaN without variance.

    ``paired``: ``arm[i]`` and ``base[i]`` share a seed (the same length), else Welch's unpaired tests.
    """
    arm, base = np.asarray(arm, float), np.asarray(base, float)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's precision warning for near-constant data
        if paired:
            d = arm - base
            lower = stats.ttest_1samp(d, -margin, alternative="greater").pvalue
            upper = stats.ttest_1samp(d, margin, alternative="less").pvalue
        else:
            lower = stats.ttest_ind(arm + margin, base, equal_var=False, alternative="greater").pvalue
            upper = stats.ttest_ind(arm - margin, base, equal_var=False, alternative="less").pvalue
    p = max(float(lower), float(upper))
    return p if not math.isnan(lower) and not math.isnan(upper) else math.nan
