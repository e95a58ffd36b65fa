"""compare's figures on synthetic frames: what each hands to matplotlib (dots, intervals, limits, labels)."""

from __future__ import annotations

import itertools
import random

import numpy as np
import optuna
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

from lit_snn.orchestrate import plots
from lit_snn.orchestrate.compare import _estimation_data, _pivot, paired_differences
from lit_snn.orchestrate.statistics import seed_statistics

COLUMN = "axis.model.neuron"
AXES = {"model.neuron": ["lif", "ar_lif", "i_lif"]}


@pytest.fixture
def drawn(monkeypatch) -> list[Figure]:
    """Every figure the plots save, kept open for inspection."""
    figures: list[Figure] = []
    save = Figure.savefig

    def keep(self, *args, **kwargs):
        figures.append(self)
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return figures


def _runs() -> pd.DataFrame:
    """COMPLETE runs of three arms over seeds 0-3 (i_lif lacks seed 3): accuracy near 0.7, energy in mJ."""
    rng = random.Random(0)
    effect = {"lif": 0.0, "ar_lif": 0.04, "i_lif": -0.01}
    rows = [{"run_id": f"{arm}-{seed}", "seed": seed, COLUMN: arm,
             "test/acc": 0.7 + effect[arm] + 0.01 * rng.gauss(0, 1), "test/energy_mj": 0.004 + 0.0001 * rng.random()}
            for arm, seed in itertools.product(effect, range(4)) if (arm, seed) != ("i_lif", 3)]
    return pd.DataFrame(rows)


def test_paired_differences_pair_by_seed():
    done = _runs()
    diffs = paired_differences(done, COLUMN, "test/acc", "lif")
    acc = done.set_index([COLUMN, "seed"])["test/acc"]
    assert list(diffs["value"]) == ["ar_lif"] * 4 + ["i_lif"] * 3  # i_lif has no seed 3 to pair
    for row in diffs.to_dict("records"):
        assert row["diff"] == pytest.approx(acc[(row["value"], row["seed"])] - acc[("lif", row["seed"])])
    stats, _ = seed_statistics(done, AXES, {"model.neuron": COLUMN}, ["test/acc"])
    for arm in ("ar_lif", "i_lif"):  # the paired test's delta is the mean of these differences
        delta = stats.loc[stats["value"] == arm, "delta"].item()
        assert diffs.loc[diffs["value"] == arm, "diff"].mean() == pytest.approx(delta)


def test_axis_figure_draws_the_seed_differences_and_zooms(tmp_path, drawn):
    done = _runs()
    stats, comparisons = seed_statistics(done, AXES, {"model.neuron": COLUMN}, ["test/acc", "test/energy_mj"])
    estimation = _estimation_data(stats, done, "model.neuron", COLUMN, "test/acc", "lif")
    metrics = ["test/acc", "test/energy_mj"]
    path = plots.axis_figure(tmp_path / "axis.png", _pivot(stats, "model.neuron", metrics), metrics, "t",
                             "model.neuron", estimation)
    assert path.is_file() and path.stat().st_size > 0
    (fig,) = drawn
    panel, acc, energy = fig.axes

    (dots,) = [c for c in panel.collections if c.get_gid() == plots.SEED_DOTS]
    diffs = estimation[0]
    assert list(dots.get_offsets()[:, 1]) == pytest.approx(list(diffs["diff"] * 100))  # in points, one per seed
    assert [round(x) for x in dots.get_offsets()[:, 0]] == [0] * 4 + [1] * 3  # under their arm
    (means,) = panel.containers
    for i, arm in enumerate(["ar_lif", "i_lif"]):
        (c,) = [c for c in comparisons if c.value == arm and c.metric == "test/acc"]
        assert means.lines[0].get_ydata()[i] == pytest.approx(c.delta * 100)
        segment = means.lines[2][0].get_segments()[i]
        assert (segment[0][1], segment[1][1]) == pytest.approx((c.delta_ci_low * 100, c.delta_ci_high * 100))
    assert any(np.ravel(line.get_ydata()).tolist() == [0, 0] for line in panel.lines)  # the baseline's zero line
    low, high = panel.get_ylim()
    assert low < 0 < high

    for ax, metric, scale in ((acc, "test/acc", 100), (energy, "test/energy_mj", 1000)):
        assert ax.get_ylabel().endswith(plots.ZOOMED)
        shown = stats[(stats["metric"] == metric) & (stats["axis"] == "model.neuron")]
        lo, hi = float(shown["ci_low"].min()) * scale, float(shown["ci_high"].max()) * scale
        y0, y1 = ax.get_ylim()
        assert y0 < lo and hi < y1 and (y1 - y0) < 2 * (hi - lo)  # around the data, not from 0
    assert "(points)" in acc.get_ylabel() and "(µJ)" in energy.get_ylabel()


def test_learning_curves_zoomed_in_points(tmp_path, drawn):
    curves = {"model.neuron": pd.DataFrame({"value": ["lif"] * 3 + ["ar_lif"] * 3, "epoch": [1, 2, 3] * 2,
                                            "n": [3] * 6, "mean": [0.80, 0.85, 0.86, 0.82, 0.87, 0.90],
                                            "ci_low": [0.79, 0.84, 0.85, 0.81, 0.86, 0.89],
                                            "ci_high": [0.81, 0.86, 0.87, 0.83, 0.88, 0.91]})}
    plots.curves_plot(tmp_path / "curves.png", curves, "val/acc", "t")
    (ax,) = drawn[0].axes
    y0, y1 = ax.get_ylim()
    assert 70 < y0 < 79 and 91 < y1 < 100 and plots.ZOOMED in ax.get_ylabel()
    assert list(ax.lines[1].get_ydata()) == pytest.approx([82, 87, 90])


def test_param_label():
    assert plots.param_label({"model.lr": 0.031234, "model.neuron": "ar_lif", "model.time_steps": 4}) == \
        "lr=0.0312, neuron=ar_lif, time_steps=4"


def _no_overlap(fig, texts) -> bool:
    """No two label texts (without their leader lines) share a pixel."""
    renderer = FigureCanvasAgg(fig).get_renderer()  # Optuna's figure was closed by pyplot: a fresh canvas
    boxes = [Text.get_window_extent(t, renderer) for t in texts]
    return not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))


def test_runs_pareto_front_named_by_parameters_without_overlap(tmp_path, drawn):
    rng = random.Random(1)
    done = pd.DataFrame({"trial": range(14), "val/acc_best": [0.9 + 0.001 * rng.random() for _ in range(14)],
                         "test/energy_mj": [0.004 + 1e-6 * i for i in range(14)]})
    front = done.iloc[:12].assign(**{"model.lr": [0.01 * (i + 1) for i in range(12)],
                                     "model.neuron_overrides.tau": [2.0 + i / 10 for i in range(12)]})
    plots.runs_pareto_plot(tmp_path / "front.png", done, front, ["val/acc_best", "test/energy_mj"],
                           ["maximize", "minimize"], ["model.lr", "model.neuron_overrides.tau"], "t")
    (ax,) = drawn[0].axes
    texts = [t for t in ax.texts]
    assert sorted(t.get_text() for t in texts) == sorted(
        f"#{i} lr={0.01 * (i + 1):.3g}, tau={2.0 + i / 10:.3g}" for i in range(12))
    assert _no_overlap(drawn[0], texts)  # 12 points within 0.1 points of accuracy of each other


def test_optuna_pareto_front_named_by_parameters(tmp_path, drawn):
    study = optuna.create_study(directions=["maximize", "minimize"])
    dists = {"model.lr": optuna.distributions.FloatDistribution(0.001, 1.0, log=True)}
    for i in range(6):  # all on the front: accuracy and energy rise together
        study.add_trial(optuna.trial.create_trial(values=[0.9 + 0.001 * i, 0.004 + 1e-5 * i],
                                                  params={"model.lr": 0.01 * (i + 1)}, distributions=dists))
    plots.optuna_pareto_plot(tmp_path / "front.png", study, ["val/acc_best", "test/energy_mj"],
                             ["maximize", "minimize"], "t")
    ax = drawn[0].axes[0]
    texts = [t for t in ax.texts if t.get_text().startswith("#")]
    assert sorted(t.get_text() for t in texts) == sorted(f"#{i} lr={0.01 * (i + 1):.3g}" for i in range(6))
    assert all(t.xy[1] == pytest.approx(4.0 + 0.01 * i) for i, t in  # energy in µJ, as on the axis
               enumerate(sorted(texts, key=lambda t: int(t.get_text()[1:].split()[0]))))
    assert "(µJ)" in ax.get_ylabel() and "(points)" in ax.get_xlabel()
    assert _no_overlap(drawn[0], texts)
