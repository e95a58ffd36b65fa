"""Seed statistics on synthetic studies with known truth (no training): Holm-consistent intervals, bounds,
bootstrap and permutation, equivalence (TOST), planning, display units."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from lit_snn.orchestrate.equivalence import tost_p
from lit_snn.orchestrate.planning import MAX_SEEDS, paired_t_power, required_seeds
from lit_snn.orchestrate.statistics import (
    COLUMNS,
    RESAMPLES,
    display_table,
    holm,
    holm_levels,
    paired_bootstrap_ci,
    seed_statistics,
    sign_flip_p,
)

AXIS = {"model.neuron": "axis.model.neuron"}


def _study(effects: dict[str, float], seeds: int, noise: float, rng: np.random.Generator, base: float = 0.9,
           metric: str = "test/acc", seed_noise: float = 0.0, clip: bool = True,
           seeds_of: dict[str, list[int]] | None = None) -> pd.DataFrame:
    """One COMPLETE run per (arm, seed): ``base + effect + seed_effect[seed] + noise * z``, clipped to [0, 1] for
    accuracy (a shared seed effect makes the pairing matter)."""
    shared = rng.normal(0, seed_noise, seeds + 20)
    rows = []
    for arm, effect in effects.items():
        for seed in (seeds_of or {}).get(arm, range(seeds)):
            value = base + effect + shared[seed] + noise * rng.normal()
            rows.append({"axis.model.neuron": arm, "seed": seed, metric: min(1.0, max(0.0, value)) if clip else value})
    return pd.DataFrame(rows)


def _stats(done: pd.DataFrame, arms: list[str], metric: str = "test/acc", **kwargs):
    return seed_statistics(done, {"model.neuron": arms}, AXIS, [metric], **kwargs)


def test_significant_exactly_when_the_interval_excludes_zero_and_intervals_stay_in_bounds():
    """Random studies (arms, seeds, effects, noise, alpha, accuracy near 1, some arms unpaired): every tested
    comparison's verdict is its Holm-consistent interval's exclusion of 0; no interval leaves the bounds."""
    rng = np.random.default_rng(2026)
    tested = significant = unpaired = 0
    for _ in range(200):
        k = int(rng.integers(2, 7))
        arms = ["lif", *(f"arm{i}" for i in range(1, k))]
        effects = {a: float(rng.choice([0.0, 0.0, rng.normal(0, 0.03)])) for a in arms}
        effects["lif"] = 0.0
        seeds = int(rng.integers(2, 9))
        seeds_of = {arms[-1]: list(range(20, 20 + seeds))} if k > 2 and rng.random() < 0.2 else None  # Welch
        done = _study(effects, seeds, float(rng.uniform(0.002, 0.03)), rng, base=float(rng.uniform(0.85, 0.995)),
                      seed_noise=float(rng.uniform(0, 0.02)), seeds_of=seeds_of)
        alpha = float(rng.choice([0.01, 0.05, 0.1, 0.2]))
        table, comparisons = _stats(done, arms, alpha=alpha)
        assert (table["ci_low"].dropna() >= 0).all() and (table["ci_high"].dropna() <= 1).all()
        for column in ("delta_ci_low", "delta_ci_high", "boot_ci_low", "boot_ci_high"):
            assert table[column].dropna().between(-1, 1).all(), column
        levels = holm_levels([c.p_value for c in comparisons], alpha)
        for c, level in zip(comparisons, levels):
            sentence = c.sentence()
            assert re.search(r"seeds for 80% power: (about|more than) \d+ at the observed|seeds needed: unknown",
                             sentence)
            if math.isnan(c.p_value):
                continue
            assert c.seeds_needed >= 2 and "seeds for 80% power: " in sentence
            shown = re.search(r"Holm-adjusted [\d.]+% CI \[([^,]+), ([^\]]+)\]", sentence)
            assert (float(shown[1]) > 0 or float(shown[2]) < 0) is c.significant, sentence  # as printed
            tested += 1
            significant += bool(c.significant)
            unpaired += c.test == "welch"
            excludes_zero = c.delta_ci_low > 0 or c.delta_ci_high < 0
            assert c.significant is excludes_zero, (c.p_adjusted, c.delta_ci_low, c.delta_ci_high, c.ci_level)
            assert c.ci_level == level and 1 - alpha <= c.ci_level <= 1 - alpha / len(levels)
            assert c.delta_ci_low <= c.delta <= c.delta_ci_high
    assert tested > 500 and 40 < significant < tested - 100 and unpaired > 20  # both verdicts were exercised


def test_holm_levels_follow_the_steps():
    p = [0.001, 0.04, 0.012, 0.3, math.nan]  # m = 4; sorted 0.001 (step 0), 0.012 (1), 0.04 (2), 0.3 (3)
    levels = holm_levels(p, 0.05)
    # steps 0 and 1 rejected (0.004 < 0.05, 0.036 < 0.05); step 2 stops Holm (0.08): the rest get its level
    assert list(levels[:4]) == pytest.approx([1 - 0.05 / 4, 1 - 0.05 / 2, 1 - 0.05 / 3, 1 - 0.05 / 2])
    assert math.isnan(levels[4])
    assert list(holm(p)[:4] < 0.05) == [True, False, True, False]
    assert list(holm_levels([0.001, 0.002], 0.05)) == pytest.approx([1 - 0.05 / 2, 1 - 0.05])  # all rejected


def test_large_true_effect_is_significant_and_a_null_is_not():
    rng = np.random.default_rng(7)
    effects = {"lif": 0.0, "ar_lif": 0.05, "i_lif": 0.0, "plif": 0.0}
    table, comparisons = _stats(_study(effects, 5, 0.005, rng, seed_noise=0.01), list(effects))
    verdicts = {c.value: c for c in comparisons}
    big = verdicts["ar_lif"]
    assert big.significant and big.delta_ci_low > 0 and big.delta == pytest.approx(0.05, abs=0.01)
    assert not verdicts["i_lif"].significant and not verdicts["plif"].significant
    assert big.seeds_needed <= 5 and verdicts["i_lif"].seeds_needed > big.seeds_needed


def test_identical_arms_with_small_noise_are_equivalent_within_the_margin():
    rng = np.random.default_rng(3)
    effects = {"lif": 0.0, "i_lif": 0.0, "ar_lif": 0.0, "far": 0.03}
    table, comparisons = _stats(_study(effects, 6, 0.001, rng, base=0.8, seed_noise=0.02), list(effects),
                                equivalence_margin={"test/acc": 0.5})  # points
    verdicts = {c.value: c for c in comparisons}
    for arm in ("i_lif", "ar_lif"):
        c = verdicts[arm]
        assert c.equivalent is True and c.margin == pytest.approx(0.005) and "equivalent to lif within ±0.50 points" \
            in c.sentence()
    assert verdicts["far"].equivalent is False and "not shown equivalent within ±0.50 points" in \
        verdicts["far"].sentence()
    # TOST = the larger one-sided p; Holm over the family of three
    c = verdicts["i_lif"]
    d = c.observations[0] - c.observations[1]
    one_sided = max(st.ttest_1samp(d, -0.005, alternative="greater").pvalue,
                    st.ttest_1samp(d, 0.005, alternative="less").pvalue)
    assert c.p_tost == pytest.approx(one_sided)
    assert [x.p_tost_adjusted for x in comparisons] == pytest.approx(list(holm([x.p_tost for x in comparisons])))
    row = table[table["value"] == "i_lif"].iloc[0]
    assert row["equivalent"] is True and row["p_tost_adjusted"] < 0.05
    assert table[table["value"] == "lif"].iloc[0]["equivalent"] is None  # the baseline


def test_tost_unpaired_uses_welch():
    arm, base = np.array([0.80, 0.81, 0.79, 0.80]), np.array([0.80, 0.805, 0.795])
    expected = max(st.ttest_ind(arm + 0.02, base, equal_var=False, alternative="greater").pvalue,
                   st.ttest_ind(arm - 0.02, base, equal_var=False, alternative="less").pvalue)
    assert tost_p(arm, base, 0.02, paired=False) == pytest.approx(expected) and expected < 0.05


def test_small_n_gives_the_exact_permutation_p_and_bootstrap_equals_scipy():
    assert sign_flip_p(np.array([0.01, 0.02, 0.015])) == 0.25  # 2 of the 8 sign patterns are as extreme
    assert sign_flip_p(np.array([0.01, 0.02, 0.015, 0.03])) == 0.125
    assert sign_flip_p(np.array([0.01, -0.02, 0.015, 0.03, 0.02])) == pytest.approx(10 / 32)  # exact count
    rng = np.random.default_rng(5)
    effects = {"lif": 0.0, "ar_lif": 0.02}
    table, (c,) = _stats(_study(effects, 3, 0.003, rng, seed_noise=0.01), list(effects))
    assert c.p_perm == 0.25 and c.p_perm_adjusted == 0.25  # a family of one
    d = c.observations[0] - c.observations[1]
    ref = st.bootstrap((d,), np.mean, confidence_level=c.ci_level, method="BCa", n_resamples=RESAMPLES,
                       rng=np.random.default_rng(0))
    assert (c.boot_ci_low, c.boot_ci_high) == pytest.approx(tuple(ref.confidence_interval))
    assert c.boot_ci_low > 0 and c.ci_level == pytest.approx(0.95)


def test_degenerate_cases_give_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert all(math.isnan(x) for x in paired_bootstrap_ci(np.array([0.01]), 0.95))
        assert all(math.isnan(x) for x in paired_bootstrap_ci(np.array([0.01, 0.01, 0.01]), 0.95))
        assert math.isnan(sign_flip_p(np.array([0.01])))
        # identical arms: no variance; a single seed: no test
        done = pd.DataFrame([{"axis.model.neuron": a, "seed": s, "test/acc": 0.8 + 0.01 * s}
                             for a in ("lif", "same") for s in range(3)] +
                            [{"axis.model.neuron": "one", "seed": 0, "test/acc": 0.9}])
        table, comparisons = _stats(done, ["lif", "same", "one"], equivalence_margin={"test/acc": 1.0},
                                    min_effect={"test/acc": 1.0})
    same, one = comparisons
    for c in (same, one):
        assert all(math.isnan(getattr(c, f)) for f in ("p_value", "delta_ci_low", "boot_ci_low", "p_tost",
                                                        "seeds_needed", "seeds_needed_min_effect"))
        assert c.significant is None and c.equivalent is None and "seeds needed: unknown" in c.sentence()
    assert same.delta == 0.0 and same.p_perm == 1.0  # every sign pattern of zeros is as extreme


def test_every_comparison_plans_its_seeds_at_the_bonferroni_level():
    rng = np.random.default_rng(11)
    effects = {"lif": 0.0, "ar_lif": 0.01, "i_lif": 0.003, "plif": -0.005}
    table, comparisons = _stats(_study(effects, 4, 0.005, rng), list(effects), alpha=0.05,
                                min_effect={"test/acc": 0.5})
    for c in comparisons:
        assert c.alpha_plan == pytest.approx(0.05 / 3)
        assert c.seeds_needed == required_seeds(c.delta, c.sd_diff, 0.8, 0.05 / 3)
        assert c.seeds_needed_min_effect == required_seeds(0.005, c.sd_diff, 0.8, 0.05 / 3)
        assert f"about {c.seeds_needed_min_effect} at 0.50 points (min_effect)" in c.sentence()
    assert table["seeds_needed"].dtype == "Int64" and table["seeds_needed"].notna().sum() == 3


def test_required_seeds_is_the_smallest_n_with_the_power():
    for effect, alpha in ((0.3, 0.05), (1.0, 0.0125), (2.5, 0.01)):
        n = required_seeds(effect, 1.0, 0.8, alpha)
        assert paired_t_power(n, effect, alpha) >= 0.8 > paired_t_power(n - 1, effect, alpha)
    assert required_seeds(0.0, 1.0) == MAX_SEEDS and math.isnan(required_seeds(0.1, 0.0))


def test_stats_csv_is_in_display_units_the_frame_in_the_logged_scale():
    rng = np.random.default_rng(1)
    effects = {"lif": 0.0, "ar_lif": 0.02}
    acc = _study(effects, 3, 0.003, rng)
    energy = _study(effects, 3, 1e-5, rng, base=4.4e-4, metric="test/energy_mj", clip=False)
    done = acc.merge(energy, on=["axis.model.neuron", "seed"])
    table, comparisons = seed_statistics(done, {"model.neuron": ["lif", "ar_lif"]}, AXIS,
                                         ["test/acc", "test/energy_mj"], equivalence_margin={"test/energy_mj": 0.05})
    shown = display_table(table)
    assert list(table.columns) == COLUMNS and list(shown.columns) == ["metric", "unit", *COLUMNS[1:]]
    assert list(shown["unit"]) == ["points", "points", "µJ", "µJ"]
    for column, scale in (("mean", 100.0), ("delta_ci_low", 100.0), ("boot_ci_high", 100.0), ("sd_diff", 100.0)):
        assert shown.loc[1, column] == pytest.approx(table.loc[1, column] * scale)
    assert shown.loc[3, "margin"] == pytest.approx(0.05) and table.loc[3, "margin"] == pytest.approx(5e-5)
    assert shown.loc[3, "mean"] == pytest.approx(table.loc[3, "mean"] * 1e3)
    assert shown.loc[1, "p_value"] == table.loc[1, "p_value"] and shown.loc[1, "ci_level"] == table.loc[1, "ci_level"]
    assert table.loc[1, "mean"] < 1 and " µJ, " in comparisons[1].sentence()


def test_learning_curve_bands_stay_inside_the_accuracy_bounds():
    from lit_snn.orchestrate.compare import learning_curves

    done = pd.DataFrame({"run_id": ["a", "b", "c"], "seed": [0, 1, 2], "axis.model.neuron": ["lif"] * 3})
    histories = pd.DataFrame({"run_id": ["a", "b", "c"], "epoch": [1, 1, 1], "value": [0.99, 0.97, 1.0]})
    (curve,) = learning_curves(done, histories, {"model.neuron": ["lif"]}, AXIS).values()
    low, high = st.t.interval(0.95, 2, loc=np.mean([0.99, 0.97, 1.0]), scale=st.sem([0.99, 0.97, 1.0]))
    assert high > 1 and curve["ci_high"].iloc[0] == 1.0 and curve["ci_low"].iloc[0] == pytest.approx(low)
