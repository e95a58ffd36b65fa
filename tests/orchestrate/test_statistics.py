"""Seed statistics: numbers equal scipy's, Holm by hand, paired vs Welch, stats.csv, sentences, curves.

The properties (Holm-consistent intervals, bounds, bootstrap, permutation, TOST, planning) are in
test_statistics_properties.py.
"""

from __future__ import annotations

import csv
import math
import re

import numpy as np
import pandas as pd
import pytest
from orchestrate_helpers import planted_training, results_dir, store_args, tiny_base
from scipy import stats as st

from lit_snn.orchestrate import SpecError, ablate_main, compare, load_spec
from lit_snn.orchestrate.planning import required_seeds
from lit_snn.orchestrate.spec import spec_from_dict
from lit_snn.orchestrate.statistics import COLUMNS, Comparison, compare_arms, holm, holm_levels, seed_statistics

COL = {"model.neuron": "axis.model.neuron"}


def _runs(values: dict[tuple[str, int], float]) -> pd.DataFrame:
    """One COMPLETE run per ((neuron, seed) -> test/acc)."""
    return pd.DataFrame([{"axis.model.neuron": n, "seed": s, "test/acc": v} for (n, s), v in values.items()])


def _row(table: pd.DataFrame, value: str, axis: str = "model.neuron", metric: str = "test/acc") -> pd.Series:
    (row,) = [r for _, r in table.iterrows() if r["value"] == value and r["axis"] == axis and r["metric"] == metric]
    return row


LIF = [0.81, 0.84, 0.80]
AR = [0.86, 0.85, 0.88]
I_LIF = [0.78, 0.83]  # seeds 5 and 6: shares none with lif


def test_arm_statistics_and_tests_equal_scipy():
    done = _runs({**{("lif", s): v for s, v in enumerate(LIF)}, **{("ar_lif", s): v for s, v in enumerate(AR)},
                  **{("i_lif", s): v for s, v in zip((5, 6), I_LIF)}})
    table, comparisons = seed_statistics(done, {"model.neuron": ["lif", "ar_lif", "i_lif"]}, COL, ["test/acc"])
    assert list(table.columns) == COLUMNS and list(table["value"]) == ["lif", "ar_lif", "i_lif"]
    for value, xs in (("lif", LIF), ("ar_lif", AR), ("i_lif", I_LIF)):
        row = _row(table, value)
        low, high = st.t.interval(0.95, len(xs) - 1, loc=np.mean(xs), scale=st.sem(xs))
        low, high = max(0.0, low), min(1.0, high)  # an accuracy's interval stays inside [0, 1]
        assert (row["n"], row["mean"], row["std"]) == (len(xs), pytest.approx(np.mean(xs)),
                                                       pytest.approx(np.std(xs, ddof=1)))
        assert (row["ci_low"], row["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    paired, welch = st.ttest_rel(AR, LIF), st.ttest_ind(I_LIF, LIF, equal_var=False)
    ar, il = comparisons
    assert (ar.value, ar.test, ar.n_pairs) == ("ar_lif", "paired", 3)
    assert (il.value, il.test, il.n_pairs) == ("i_lif", "welch", 0)
    assert ar.p_value == pytest.approx(paired.pvalue) and il.p_value == pytest.approx(welch.pvalue)
    levels = holm_levels([paired.pvalue, welch.pvalue], 0.05)  # the interval at the level of its Holm step
    assert [ar.ci_level, il.ci_level] == pytest.approx(list(levels)) and min(levels) >= 0.95
    assert (ar.delta_ci_low, ar.delta_ci_high) == tuple(pytest.approx(x) for x in
                                                        paired.confidence_interval(confidence_level=levels[0]))
    assert (il.delta_ci_low, il.delta_ci_high) == tuple(pytest.approx(x) for x in
                                                        welch.confidence_interval(confidence_level=levels[1]))
    assert ar.p_perm == 0.25 and math.isnan(il.p_perm)  # sign flips: paired only; 3 positive differences
    assert ar.delta == pytest.approx(np.mean(np.subtract(AR, LIF)))
    assert il.delta == pytest.approx(np.mean(I_LIF) - np.mean(LIF))
    expected = holm([paired.pvalue, welch.pvalue])
    assert [ar.p_adjusted, il.p_adjusted] == pytest.approx(list(expected))
    assert _row(table, "ar_lif")["p_adjusted"] == pytest.approx(expected[0])
    assert _row(table, "ar_lif")["significant"] is bool(expected[0] < 0.05)
    # alpha from the file changes only the verdict
    strict, _ = seed_statistics(done, {"model.neuron": ["lif", "ar_lif", "i_lif"]}, COL, ["test/acc"], alpha=1e-9)
    assert _row(strict, "ar_lif")["significant"] is False


def test_paired_only_over_shared_seeds_welch_when_fewer_than_two_shared():
    base = pd.Series({0: 0.80, 1: 0.82, 2: 0.79, 3: 0.85})
    arm = pd.Series({1: 0.86, 2: 0.84, 3: 0.90, 7: 0.50})  # shares 1, 2, 3; seed 7 has no partner
    out = compare_arms(arm, base)
    ref = st.ttest_rel([0.86, 0.84, 0.90], [0.82, 0.79, 0.85])
    assert out["test"] == "paired" and out["n_pairs"] == 3 and out["p_value"] == pytest.approx(ref.pvalue)
    assert out["delta"] == pytest.approx(np.mean([0.04, 0.05, 0.05]))
    one_shared = compare_arms(pd.Series({3: 0.9, 8: 0.7, 9: 0.8}), base)
    assert one_shared["test"] == "welch" and one_shared["n_pairs"] == 1
    assert one_shared["p_value"] == pytest.approx(st.ttest_ind([0.9, 0.7, 0.8], base, equal_var=False).pvalue)
    single = compare_arms(pd.Series({0: 0.9}), base)
    assert single["test"] == "" and math.isnan(single["p_value"]) and single["delta"] == pytest.approx(0.9 - 0.815)


def test_several_axes_average_the_other_axes_per_seed():
    rows = []
    for neuron, offset in (("lif", 0.0), ("ar_lif", 0.05)):
        for steps, shift in ((2, 0.0), (4, 0.02)):
            for seed in (0, 1, 2):
                rows.append({"axis.model.neuron": neuron, "axis.model.time_steps": str(steps), "seed": seed,
                             "test/acc": 0.7 + offset + shift + 0.01 * seed * (1 + steps)})
    done = pd.DataFrame(rows)
    axes = {"model.neuron": ["lif", "ar_lif"], "model.time_steps": [2, 4]}
    columns = {"model.neuron": "axis.model.neuron", "model.time_steps": "axis.model.time_steps"}
    table, comparisons = seed_statistics(done, axes, columns, ["test/acc"], baseline={"model.time_steps": 4})
    per_seed = done[done["axis.model.neuron"] == "ar_lif"].groupby("seed")["test/acc"].mean()
    row = _row(table, "ar_lif")
    assert row["n"] == 3 and row["mean"] == pytest.approx(per_seed.mean())
    assert row["std"] == pytest.approx(per_seed.std(ddof=1))
    grid = table[table["axis"] == "grid"]
    assert list(grid["value"]) == ["model.neuron=lif,model.time_steps=2", "model.neuron=lif,model.time_steps=4",
                                   "model.neuron=ar_lif,model.time_steps=2", "model.neuron=ar_lif,model.time_steps=4"]
    assert list(grid["n"]) == [3] * 4
    assert set(grid["baseline"].dropna()) == {"model.neuron=lif,model.time_steps=4"}  # the baselines' point
    steps = {c.value: c for c in comparisons if c.axis == "model.time_steps"}
    assert list(steps) == ["2"] and steps["2"].baseline == "4"
    assert len([c for c in comparisons if c.axis == "grid"]) == 3


def test_holm_by_hand():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06
    assert list(holm(p)) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    adjusted = holm([0.2, float("nan"), 0.6, 0.001])  # NaN: not a test (m = 3)
    assert math.isnan(adjusted[1]) and list(adjusted[[0, 2, 3]]) == pytest.approx([0.4, 0.6, 0.003])
    assert list(holm([0.5, 0.9])) == [1.0, 1.0]  # capped at 1
    rng = np.random.default_rng(0)
    raw = rng.uniform(0, 0.2, 8)
    adj = holm(raw)
    order = np.argsort(raw)
    assert np.all(np.diff(adj[order]) >= 0) and np.all(adj >= raw)  # monotone in the raw order, never smaller
    assert list(holm([0.04])) == [0.04] and list(holm([])) == []


def test_sentences():
    common = {"metric": "test/acc", "axis": "model.neuron", "baseline": "lif", "n": 3, "n_base": 3}
    c = Comparison(value="ar_lif", test="paired", n_pairs=3, delta=0.0042, p_value=0.1, sd_diff=0.005,
                   p_adjusted=0.21, significant=False, ci_level=0.975, delta_ci_low=-0.0031, delta_ci_high=0.0115,
                   boot_ci_low=-0.001, boot_ci_high=0.009, p_perm=0.25, p_perm_adjusted=0.5, margin=0.003,
                   equivalent=False, seeds_needed=14, min_effect=0.005, seeds_needed_min_effect=10, **common)
    assert c.sentence() == ("ar_lif vs lif: +0.42 points, Holm-adjusted 97.5% CI [-0.31, 1.15], p = 0.21 after Holm: "
                            "not significant with 3 seeds (bootstrap CI [-0.10, 0.90], sign-flip permutation p = 0.5 "
                            "after Holm); not shown equivalent within ±0.30 points; seeds for 80% power: about 14 at "
                            "the observed +0.42 points, about 10 at 0.50 points (min_effect)")
    c = Comparison(value="i_lif", test="welch", delta=-0.05, p_value=0.001, sd_diff=0.01, p_adjusted=0.0004,
                   significant=True, ci_level=0.9875, delta_ci_low=-0.08, delta_ci_high=-0.02, margin=0.1,
                   equivalent=True, seeds_needed=2, **{**common, "n_base": 2})
    assert c.sentence() == ("i_lif vs lif: -5.00 points, Holm-adjusted 98.75% CI [-8.00, -2.00], p < 0.001 after Holm: "
                            "significant with 3 and 2 seeds, unpaired (Welch); equivalent to lif within ±10.00 "
                            "points; seeds for 80% power: about 2 at the observed -5.00 points")
    c = Comparison("test/energy_mj", "model.neuron", "i_lif", "lif", 1, 3, n_pairs=1, delta=0.0123)
    assert c.sentence() == ("i_lif vs lif: +12.3 µJ, n = 1: no test; seeds needed: unknown (a test needs at least "
                            "2 seeds on each side)")
    c = Comparison("test/acc", "grid", "b", "a", 2, 2, "paired", 2, 0.0, sd_diff=0.0)
    assert c.sentence() == ("b vs a: +0.00 points: no test (zero variance) with 2 seeds: the difference was the same "
                            "at every seed (as the metric's resolution allows), so there is no spread to test or plan "
                            "from; seeds needed: unknown until more seeds show one")
    c = Comparison("test/acc", "model.neuron", "b", "a", 0, 2)
    assert c.sentence() == "b vs a: no COMPLETE run on one side; seeds needed: unknown"
    # a bound that is not zero never reads as zero, whatever the rounding
    c = Comparison(value="x", test="paired", n_pairs=3, delta=0.004, p_value=0.01, sd_diff=0.001, p_adjusted=0.01,
                   significant=True, ci_level=0.95, delta_ci_low=0.00002, delta_ci_high=0.008, seeds_needed=3, **common)
    assert "CI [0.002, 0.80]" in c.sentence()


def test_required_seeds_power():
    assert required_seeds(1.0, 1.0) == 10  # d/s = 1: the textbook 10 pairs for a paired t-test at power 0.8
    assert required_seeds(2.0, 1.0) < required_seeds(1.0, 1.0) < required_seeds(0.5, 1.0)
    assert required_seeds(3.3, 1.0) == 3 and required_seeds(3.2, 1.0) == 4  # 3 seeds: d >= 3.27 s
    assert required_seeds(20.0, 1.0) == 2  # far out in the noncentral t (its lower tail is NaN there)


def test_baseline_and_alpha_in_the_spec(tmp_path):
    base = {"base": tiny_base(tmp_path / "data"), "axes": {"model.neuron": ["lif", "ar_lif"]}, "seeds": [0, 1]}
    plain = spec_from_dict(base, "ablation")
    assert plain.baseline_of("model.neuron") == "lif" and plain.alpha == 0.05
    edited = spec_from_dict({**base, "baseline": {"model.neuron": "ar_lif"}, "alpha": 0.01}, "ablation")
    assert edited.baseline_of("model.neuron") == "ar_lif" and edited.alpha == 0.01
    assert edited.fingerprint == plain.fingerprint  # report-only fields: the study resumes
    assert edited.describe()["baseline"] == {"model.neuron": "ar_lif"}
    for bad, message in [({"baseline": {"model.time_steps": 2}}, r"baseline: 'model.time_steps' is not an axis"),
                         ({"baseline": {"model.neuron": "plif"}}, r"baseline: 'plif' is not a value of axis "
                                                                  r"model.neuron"),
                         ({"baseline": "lif"},
                          r"baseline: input should be a valid dictionary, got 'lif'; e.g. \{model.neuron: lif\}"),
                         ({"alpha": 0}, r"alpha: input should be greater than 0, got 0"),
                         ({"alpha": 1.5}, r"alpha: input should be less than 1, got 1.5"),
                         ({"alpha": True}, r"alpha: input should be a valid number, got True")]:
        with pytest.raises(SpecError, match=message):
            spec_from_dict({**base, **bad}, "ablation")


def test_planted_difference_is_significant_null_is_not(tmp_path, write_study, monkeypatch, capsys):
    """ar_lif is planted 10 points above lif (seed noise 1 point); i_lif equals lif up to the noise."""
    monkeypatch.setattr("lit_snn.orchestrate.study.run_training", planted_training({"ar_lif": 0.10}))
    path = write_study("planted", axes={"model.neuron": ["lif", "ar_lif", "i_lif"]}, seeds=[0, 1, 2],
                       budget={"max_epochs": 3})
    assert ablate_main([str(path), *store_args(tmp_path)]) == 0
    out_dir = results_dir(tmp_path, path)
    with open(out_dir / "stats.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["metric", "unit", *COLUMNS[1:]]  # display units, named
        rows = {(r["metric"], r["value"]): r for r in reader}
    lif, ar, il = (rows[("test/acc", v)] for v in ("lif", "ar_lif", "i_lif"))
    assert lif["n"] == ar["n"] == il["n"] == "3" and lif["axis"] == "model.neuron"
    assert all(lif[c] == "" for c in ("baseline", "delta", "p_value", "p_adjusted", "significant", "delta_ci_low",
                                      "seeds_needed"))  # the baseline
    assert all(lif[c] != "" for c in ("mean", "std", "ci_low", "ci_high"))
    assert ar["baseline"] == "lif" and ar["unit"] == "points" and float(ar["delta"]) == pytest.approx(10, abs=3)
    assert float(ar["delta_ci_low"]) > 0 and float(ar["ci_high"]) <= 100 and float(il["ci_high"]) <= 100
    assert ar["significant"] == "True" and float(ar["p_adjusted"]) < 0.05
    assert il["significant"] == "False" and float(il["p_adjusted"]) >= 0.05
    assert float(ar["p_adjusted"]) >= float(ar["p_value"])
    assert {m for m, _ in rows} >= {"test/acc", "test/firing_rate", "test/energy_mj"}

    report = (out_dir / "report.md").read_text()
    printed = capsys.readouterr().out
    for text in (report, printed):
        text = re.sub(r" +", " ", text)  # the table's padding
        assert "### model.neuron (baseline lif)" in text
        assert ("| model.neuron | n | mean (points) | 95% CI | delta | Holm-adjusted CI (level) | p (Holm) | "
                "significant | seeds for 80% power |") in text
        assert "How to read this:" in text
        assert re.search(r"- ar_lif vs lif: \+\d+\.\d\d points, Holm-adjusted [\d.]+% CI \[\d+\.\d\d, \d+\.\d\d\], "
                         r"p (<|=) [\d.]+ after Holm: significant with 3 seeds .*; seeds for 80% power: about \d+ at "
                         r"the observed \+\d+\.\d\d points\n", text)
        assert re.search(r"- i_lif vs lif: [+-]\d+\.\d\d points, .* after Holm: not significant with 3 seeds", text)
        assert re.search(r"- test/energy_mj, model.neuron: ar_lif vs lif: [+-][\d.]+ µJ, ", text)
        assert "| ar_lif | 3 |" in text and "| yes |" in text and "| lif | 3 |" in text and "| baseline |" in text
    for name in ("learning_curves.png", "axis_model.neuron.png", "acc_vs_energy.png"):
        assert (out_dir / name).is_file() and (out_dir / name).stat().st_size > 0, name

    # baseline/alpha are report-only: the same study (no new trial) compared against another arm
    path.write_text(path.read_text() + "baseline: {model.neuron: ar_lif}\nalpha: 0.01\n")
    spec = load_spec(path, "ablation")
    result = compare(spec, f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}", results_dir=tmp_path / "results",
                     log=lambda _: None)
    assert len(result.runs) == 9
    lif = result.stats[(result.stats["metric"] == "test/acc") & (result.stats["value"] == "lif")].iloc[0]
    assert lif["baseline"] == "ar_lif" and lif["delta"] == pytest.approx(-0.10, abs=0.03) and lif["significant"]
    assert lif["delta_ci_high"] < 0 and lif["ci_level"] == pytest.approx(1 - 0.01 / 2)  # the frame: logged scale


def test_learning_curves_from_the_metric_history(tmp_path, write_study, monkeypatch):
    monkeypatch.setattr("lit_snn.orchestrate.study.run_training", planted_training({"ar_lif": 0.10}))
    path = write_study("curves", axes={"model.neuron": ["lif", "ar_lif"]}, seeds=[0, 1], budget={"max_epochs": 3})
    assert ablate_main([str(path), *store_args(tmp_path), "--no-compare"]) == 0
    from lit_snn.orchestrate.compare import learning_curves
    from lit_snn.orchestrate.trial_runs import load_histories

    result = compare(load_spec(path, "ablation"), f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}",
                     results_dir=tmp_path / "results", log=lambda _: None)
    done = result.runs[result.runs["state"] == "COMPLETE"]
    assert sorted(done["seed"].tolist()) == [0, 0, 1, 1]
    histories = load_histories(f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}", list(done["run_id"]))
    assert sorted(set(histories["epoch"])) == [1, 2, 3] and len(histories) == 12
    curves = learning_curves(done, histories, {"model.neuron": ["lif", "ar_lif"]},
                             {"model.neuron": "axis.model.neuron"})["model.neuron"]
    assert list(curves["value"]) == ["lif"] * 3 + ["ar_lif"] * 3 and list(curves["n"]) == [2] * 6
    # the stub logs val/acc = score * (1 + epoch) / (1 + max_epochs) at every epoch
    ar = curves[curves["value"] == "ar_lif"]
    final = done[done["axis.model.neuron"] == "ar_lif"]["test/acc"].mean()
    assert list(ar["mean"]) == pytest.approx([final * e / 4 for e in (1, 2, 3)])
    assert (ar["ci_low"] <= ar["mean"]).all() and (ar["mean"] <= ar["ci_high"]).all()
    assert (results_dir(tmp_path, path) / "learning_curves.png").is_file()


def test_two_axes_grid_rows_and_plots(tmp_path, write_study, monkeypatch):
    monkeypatch.setattr("lit_snn.orchestrate.study.run_training", planted_training({"ar_lif": 0.05}))
    path = write_study("two", axes={"model.neuron": ["lif", "ar_lif"], "model.time_steps": [1, 2]}, seeds=[0, 1],
                       exclude=[{"model.neuron": "ar_lif", "model.time_steps": 1}], baseline={"model.time_steps": 2})
    assert ablate_main([str(path), *store_args(tmp_path)]) == 0
    out_dir = results_dir(tmp_path, path)
    table = pd.read_csv(out_dir / "stats.csv", keep_default_na=False)
    acc = table[table["metric"] == "test/acc"]
    assert list(acc["axis"]) == ["model.neuron"] * 2 + ["model.time_steps"] * 2 + ["grid"] * 3
    grid = acc[acc["axis"] == "grid"]
    assert list(grid["value"]) == ["model.neuron=lif,model.time_steps=1", "model.neuron=lif,model.time_steps=2",
                                   "model.neuron=ar_lif,model.time_steps=2"]
    assert list(grid["baseline"]) == ["model.neuron=lif,model.time_steps=2", "",
                                      "model.neuron=lif,model.time_steps=2"]
    steps = acc[acc["axis"] == "model.time_steps"]
    assert list(steps["baseline"]) == ["2", ""] and list(steps["n"]) == [2, 2]
    report = (out_dir / "report.md").read_text()
    assert "### model.time_steps (baseline 2)" in report
    assert "### every grid point (baseline model.neuron=lif,model.time_steps=2)" in report
    for name in ("learning_curves.png", "axis_model.neuron.png", "axis_model.time_steps.png", "acc_vs_energy.png"):
        assert (out_dir / name).is_file(), name


def test_differences_equal_but_for_float32_rounding_are_not_a_variance_to_test():
    """Two arms 2 test digits apart at every seed: the logged float32 accuracies give differences that
    disagree in the 8th digit, which a t-test took for a tiny variance (p < 0.001, "significant")."""
    from lit_snn.orchestrate.statistics import logged_differences

    lif = pd.Series([0.9832869172096252, 0.9777158498764038, 0.9805014133453369])  # float32 values, as logged
    da_lif = pd.Series([0.9888579249382019, 0.9832869172096252, 0.9860724210739136])
    assert np.ptp(da_lif - lif) > 0  # the rounding the test is about
    assert np.ptp(logged_differences(da_lif, lif)) == 0
    result = compare_arms(da_lif, lif)
    assert result["test"] == "paired" and math.isnan(result["p_value"])
    assert result["delta"] == pytest.approx(0.00557, abs=1e-5)
    stats, (comparison,) = seed_statistics(
        pd.DataFrame({"seed": [0, 1, 2] * 2, "axis.n": ["lif"] * 3 + ["da_lif"] * 3,
                      "test/acc": [*lif, *da_lif]}), {"n": ["lif", "da_lif"]}, {"n": "axis.n"}, ["test/acc"])
    assert comparison.significant is None and "no test (zero variance)" in comparison.sentence()
    # a real spread still tests: one seed 1 digit more
    assert not math.isnan(compare_arms(da_lif + np.array([0.0, 0.0, 1 / 359]), lif)["p_value"])
