"""The group-sequential design of adaptive seeds (sequential.py) on synthetic paired differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from lit_snn.orchestrate.sequential import (
    CONTINUE,
    DIFFERENT,
    EQUIVALENT,
    UNDECIDED,
    decide,
    design,
    looks_of,
    obrien_fleming_spent,
    run_sequential,
    trainings,
)


def test_looks_and_spending():
    assert looks_of(3, 2, 15) == (3, 5, 7, 9, 11, 13, 15)
    assert looks_of(3, 2, 8) == (3, 5, 7, 8)  # the last round is cut at max
    assert looks_of(2, 1, 3) == (2, 3) and looks_of(4, 3, 4) == (4,)
    for bad in ((1, 1, 3), (2, 0, 3), (3, 1, 2)):
        with pytest.raises(ValueError, match="start >= 2, step >= 1 and max >= start"):
            looks_of(*bad)
    spent = obrien_fleming_spent(np.array([0.2, 0.5, 1.0]), 0.05)
    assert spent[-1] == pytest.approx(0.05) and np.all(np.diff(spent) > 0) and spent[0] < 1e-4


def test_design_is_cached_and_its_boundaries_fall_towards_the_fixed_test():
    plan = design(3, 2, 15, 0.05, 4)
    assert design(3, 2, 15, 0.05, 4) is plan  # one calibration per plan
    assert plan.looks == (3, 5, 7, 9, 11, 13, 15) and plan.max_seeds == 15
    assert all(a > b for a, b in zip(plan.efficacy, plan.efficacy[1:]))
    fixed = stats.t.isf(0.05 / 4 / 2, 14)  # one test at 15 seeds, Bonferroni over 4 comparisons
    assert fixed < plan.efficacy[-1] < 1.1 * fixed  # the looks cost little at the end
    assert plan.efficacy[0] > 100  # O'Brien-Fleming: nothing stops on 3 seeds but a huge effect
    assert stats.t.isf(0.05 / 4, 14) < plan.equivalence[-1] < plan.efficacy[-1]  # one-sided


@pytest.mark.parametrize("args", [(3, 2, 15), (2, 1, 6)])
def test_null_rejection_rate_is_the_level(args):
    """One comparison: the rate of "different" on null paths (an independent draw) is alpha within
    Monte-Carlo error: the calibration neither leaks nor wastes the error."""
    plan = design(*args, 0.05, 1)
    d = np.random.default_rng(1).standard_normal((40_000, plan.max_seeds))
    verdict, _ = run_sequential(plan, d)
    rate = (verdict == DIFFERENT).mean()
    assert 0.04 < rate < 0.056  # 0.05 +- 4.5 standard errors of the rate (0.0011)


def test_big_effect_stops_early_null_runs_to_max_or_equivalence():
    plan = design(3, 2, 15, 0.05, 2)
    rng = np.random.default_rng(2)
    big = 4.0 + rng.standard_normal((200, plan.max_seeds))  # 4 sd
    verdict, stopped_at = run_sequential(plan, big)
    assert (verdict == DIFFERENT).all() and stopped_at.max() < len(plan.looks) - 2  # by 11 seeds at the latest
    null = rng.standard_normal((200, plan.max_seeds))
    verdict, stopped_at = run_sequential(plan, null)
    assert set(verdict) <= {UNDECIDED, DIFFERENT} and (verdict == UNDECIDED).mean() > 0.95
    assert (stopped_at[verdict == UNDECIDED] == len(plan.looks) - 1).all()
    verdict, stopped_at = run_sequential(plan, null, margin=2.0)  # a margin of 2 sd
    assert (verdict == EQUIVALENT).mean() > 0.95 and np.median(plan.looks[0] + 2 * stopped_at) < 15


def test_decide_one_look():
    plan = design(2, 1, 3, 0.05, 3)
    assert decide(plan, [[0.1, -0.1], [5.0, 5.0001], [0.0, 0.0]]) == [CONTINUE, DIFFERENT, CONTINUE]
    assert decide(plan, [[0.0, 0.001], [1.0, 1.001]], margin=0.5) == [EQUIVALENT, DIFFERENT]
    # zero variance (two arms stuck at chance, a constant offset): t is undefined, nothing is decided
    assert decide(plan, [[0.0, 0.0], [1.0, 1.0]], margin=0.5) == [CONTINUE, CONTINUE]
    assert decide(plan, [[0.1, -0.1, 0.0]]) == [UNDECIDED]  # the last look
    with pytest.raises(ValueError, match="4 seeds is not a look"):
        decide(plan, [[0.1, 0.2, 0.3, 0.4]])
    with pytest.raises(ValueError, match="NaN"):
        decide(plan, [[0.1, math.nan]])


def test_family_wise_errors_of_a_reduced_simulation():
    """300 null studies of 4 arms against a shared baseline: any false "different" at most alpha;
    300 studies whose arms all differ by exactly the margin: any false "equivalent" at most alpha."""
    plan = design(3, 2, 15, 0.05, 4)
    rng = np.random.default_rng(3)
    bound = 0.05 + 3 * math.sqrt(0.05 * 0.95 / 300)  # alpha + 3 Monte-Carlo standard errors
    values = rng.standard_normal((300, 5, 15))
    d = values[:, 1:] - values[:, :1]
    verdict, stopped_at = run_sequential(plan, d, margin=1.0)
    assert (verdict == DIFFERENT).any(axis=1).mean() <= bound
    assert trainings(plan, stopped_at).mean() < 75  # equivalence saves trainings on nulls
    at_margin = d + np.array([1.0, -1.0, 1.0, -1.0])[None, :, None]
    verdict, _ = run_sequential(plan, at_margin, margin=1.0)
    assert (verdict == EQUIVALENT).any(axis=1).mean() <= bound


def test_trainings_count_the_baseline_while_any_comparison_goes_on():
    plan = design(3, 2, 7, 0.05, 2)  # looks 3, 5, 7
    assert trainings(plan, np.array([[0, 0], [0, 2], [2, 2]])).tolist() == [3 + 3 + 3, 3 + 7 + 7, 7 + 7 + 7]
