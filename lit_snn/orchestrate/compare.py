"""Read a study's trial runs back from MLflow; print and write tables (CSV, markdown) and PNG plots.

Ablation: one table per axis (each value's mean ± std over seeds and the other axes), one row per
grid point (mean ± std over seeds), the seed statistics of statistics.py (``stats.csv`` in display
units: each arm, and each arm against its baseline arm; a table, how to read it and one sentence per
comparison in the report), one figure per axis (``axis_<path>.png``: the estimation plot of the
objective, i.e. each arm's per-seed paired differences to the baseline and the difference's 95% CI,
then each arm's mean and 95% CI of accuracy, firing rate and energy), accuracy vs energy (one point
per grid point, 95% CIs) and the learning curves (``learning_curves.png``: mean val/acc per epoch of
each axis value with its 95% CI band, from MLflow's metric history). On the accuracy-vs-energy plot
a ring marks the grid points that are Pareto-optimal for (max test acc, min energy) over their means
(pareto.py). Sweep: the trials ranked by the objective, the objective against each searched
parameter, accuracy vs energy. A sweep with several objectives also gets its Pareto-optimal trials:
``pareto.csv`` (trial, run_id, one column per objective, one per searched parameter) and
``pareto_front.png``. Both come from the Optuna study (``study.best_trials``,
``optuna.visualization.matplotlib.plot_pareto_front``) when compare can open it (``storage``, else
the storage the study run recorded); otherwise from the MLflow runs with ``pareto.non_dominated``
(the same definition) and a matplotlib scatter, and the report says which. Only COMPLETE trials
enter the statistics and the fronts; std is the sample std (ddof 1; 0 for a single run in the mean ±
std tables). The figures are drawn by plots.py.

Every file written also goes to the study's MLflow parent run (artifact folder ``comparison/``,
replaced by each compare), and an ablation's per-arm summaries go to one nested run per arm
(``arm model.neuron=ar_lif``: ``test/acc/mean``, ...; ``arm_summaries``), which MLflow's chart view
compares side by side; when MLflow refuses, one line says so.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from . import units
from .adaptive import report_section as adaptive_report_section
from .pareto import pareto_rows
from .planning import MAX_SEEDS
from .plots import axis_figure, curves_plot, optuna_pareto_plot, panels, runs_pareto_plot, scatter
from .spec import StudySpec
from .statistics import (
    GRID_AXIS,
    LEVEL,
    SEED_COLUMN,
    Comparison,
    arm_stats,
    display_table,
    grid_label,
    per_seed,
    seed_statistics,
)
from .storage import make_storage, read_only_store, sqlite_path
from .tracking import (
    AXIS_TAG_PREFIX,
    COMPARISON_DIR,
    TAG_KEY,
    TAG_ROLE,
    TAG_STATE,
    TAG_TRIAL,
    Tracker,
    arm_metric_key,
)
from .units import unit_of

CURVE_METRIC = "val/acc"  # the per-epoch history drawn in learning_curves.png
ACC_ENERGY = [("test/acc", "maximize"), ("test/energy_mj", "minimize")]  # the Pareto ring of acc_vs_energy.png
RUN_ATTR = "mlflow_run_id"  # the Optuna user attr holding a trial's MLflow run (study.RUN_ATTR)
# NeuroBench's, when the trials ran with --neurobench (lit_snn.neurobench.NeuroBenchCallback)
NEUROBENCH_METRICS = ("neurobench/ActivationSparsity", "neurobench/SynapticOperations/Effective_ACs",
                      "neurobench/SynapticOperations/Effective_MACs")
BASE_METRICS = ("test/acc", "test/firing_rate", "test/sops", "test/energy_mj", *NEUROBENCH_METRICS)



@dataclass
class CompareResult:
    """Everything compare produced; the frames hold the numbers the files show."""

    study_name: str
    parent_run_id: str
    runs: pd.DataFrame  # one row per trial run (all states)
    metrics: list[str]
    per_axis: dict[str, pd.DataFrame] = field(default_factory=dict)  # axis -> value, n, <m>_mean, <m>_std
    grid: pd.DataFrame | None = None  # one row per grid point (ablation) / per trial (sweep)
    stats: pd.DataFrame | None = None  # ablation: the rows of stats.csv (statistics.COLUMNS)
    pareto: pd.DataFrame | None = None  # multi-objective sweep: the rows of pareto.csv
    pareto_source: str = ""  # "optuna" (study.best_trials) or "mlflow" (pareto.non_dominated over the runs)
    comparisons: list[Comparison] = field(default_factory=list)  # ablation: each arm vs its baseline
    out_dir: Path | None = None
    files: list[Path] = field(default_factory=list)
    markdown: str = ""
    logged: bool = False  # the files and per-arm metrics are on the MLflow parent run too


# ---------------------------------------------------------------------- reading
def load_runs(tracking_uri: str, experiment_id: str, parent_run_id: str, columns: list[str]) -> pd.DataFrame:
    """The trial runs of ``parent_run_id`` as a frame: run_id, trial, key, state, ``axis.*`` and metrics
    (its arm runs, ``Tracker.log_arm_runs``, are not trials)."""
    mlflow.set_tracking_uri(tracking_uri)
    trials = f"tags.mlflow.parentRunId = '{parent_run_id}' and tags.`{TAG_ROLE}` = 'trial'"
    df = mlflow.search_runs(experiment_ids=[experiment_id], output_format="pandas", filter_string=trials)
    out = pd.DataFrame({"run_id": df.get("run_id", pd.Series(dtype=str))})
    if df.empty:
        return out
    out["trial"] = pd.to_numeric(df.get(f"tags.{TAG_TRIAL}"), errors="coerce")
    out["key"] = df.get(f"tags.{TAG_KEY}")
    out["state"] = df.get(f"tags.{TAG_STATE}")
    out[SEED_COLUMN] = _seeds(df)
    for col in df.columns:
        if col.startswith(f"tags.{AXIS_TAG_PREFIX}"):
            out[col[len("tags."):]] = df[col]
    for metric in columns:
        out[metric] = pd.to_numeric(df.get(f"metrics.{metric}"), errors="coerce") if f"metrics.{metric}" in df \
            else math.nan
    return out.sort_values("trial").reset_index(drop=True)


def _seeds(df: pd.DataFrame) -> pd.Series:
    """Each run's seed: the logged ``seed_everything`` param, else the ``seed=N`` end of its key."""
    seed = pd.to_numeric(df.get("params.seed_everything", pd.Series(index=df.index, dtype=object)), errors="coerce")
    if f"tags.{TAG_KEY}" in df:
        from_key = pd.to_numeric(df[f"tags.{TAG_KEY}"].astype(str).str.extract(r"(?:^|,)seed=(\d+)$")[0],
                                 errors="coerce")
        seed = seed.fillna(from_key)
    return seed.astype("Int64")


def load_histories(tracking_uri: str, run_ids: list[str], metric: str = "val/acc") -> pd.DataFrame:
    """``run_id, epoch, value`` of ``metric`` per epoch (1-based), from MLflow's metric history.

    Lightning logs epoch metrics at the global step together with an ``epoch`` metric; a step is
    mapped to that epoch (the last value of an epoch wins), else to its rank in the history.
    """
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    rows = []
    for run_id in run_ids:
        history = sorted(client.get_metric_history(run_id, metric), key=lambda m: (m.step, m.timestamp))
        epochs = {m.step: int(m.value) for m in client.get_metric_history(run_id, "epoch")} if history else {}
        per_epoch: dict[int, float] = {}
        for rank, m in enumerate(history):
            per_epoch[epochs.get(m.step, rank) + 1] = m.value
        rows += [{"run_id": run_id, "epoch": e, "value": v} for e, v in per_epoch.items()]
    return pd.DataFrame(rows, columns=["run_id", "epoch", "value"])


# ---------------------------------------------------------------------- numbers
def _agg(frame: pd.DataFrame, by: list[str], metrics: list[str]) -> pd.DataFrame:
    grouped = frame.groupby(by, sort=False, dropna=False)
    out = grouped.size().rename("n").to_frame()
    for metric in metrics:
        out[f"{metric}_mean"] = grouped[metric].mean()
        out[f"{metric}_std"] = grouped[metric].std(ddof=1).fillna(0.0)
    return out.reset_index()


def _order(frame: pd.DataFrame, column: str, values: list[Any]) -> pd.DataFrame:
    rank = {str(v): i for i, v in enumerate(values)}
    return frame.assign(_rank=frame[column].map(lambda v: rank.get(str(v), len(rank)))).sort_values(
        "_rank", kind="stable").drop(columns="_rank")


def _fmt(x: Any, scale: float | None = None) -> str:
    """Plain 4 decimals for numbers of order 1e-3..1e4 (judged by ``scale``, default ``x``), else 3e notation."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and scale is None and abs(x) < 1e6):
        return str(int(x))
    if not isinstance(x, float):
        return str(x)
    ref = abs(scale if scale is not None else x)
    return f"{x:.4f}" if ref == 0 or 1e-3 <= ref < 1e4 else f"{x:.3e}"


def _pm(row: pd.Series, metric: str) -> str:
    """``mean ± std`` of ``metric`` in its display unit (``units.unit_of``: accuracy in points, energy in µJ)."""
    mean, std = row.get(f"{metric}_mean"), row.get(f"{metric}_std")
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    unit = unit_of(metric)
    return f"{unit.format(float(mean))} ± {unit.format(float(std))}"


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def _stat_table(frame: pd.DataFrame, keys: list[str], metrics: list[str], key_names: list[str]) -> str:
    headers = key_names + ["n"] + [units.label(m) for m in metrics]
    rows = [[str(r[k]) for k in keys] + [str(int(r["n"]))] + [_pm(r, m) for m in metrics] for _, r in frame.iterrows()]
    return markdown_table(headers, rows)


def learning_curves(done: pd.DataFrame, histories: pd.DataFrame, axes: dict[str, list],
                    columns: dict[str, str]) -> dict[str, pd.DataFrame]:
    """Per axis: ``value, epoch, n, mean, std, ci_low, ci_high`` over seeds (one observation per seed
    and epoch: the mean over the other axes' points, as in statistics.py)."""
    merged = histories.merge(done[["run_id", SEED_COLUMN, *columns.values()]], on="run_id")
    out: dict[str, pd.DataFrame] = {}
    for path, col in columns.items():
        obs = merged.dropna(subset=[SEED_COLUMN]).groupby([col, SEED_COLUMN, "epoch"])["value"].mean().reset_index()
        rows = [{"value": str(v), "epoch": int(e), **arm_stats(g["value"].tolist(), unit=unit_of(CURVE_METRIC))}
                for (v, e), g in obs.groupby([col, "epoch"])]
        frame = pd.DataFrame(rows, columns=["value", "epoch", "n", "mean", "std", "ci_low", "ci_high"])
        rank = {str(v): i for i, v in enumerate(axes[path])}
        frame = frame.assign(ci_low=frame["ci_low"].fillna(frame["mean"]),  # n = 1: no band
                             ci_high=frame["ci_high"].fillna(frame["mean"]),
                             _rank=frame["value"].map(rank).fillna(len(rank)))
        out[path] = frame.sort_values(["_rank", "epoch"], kind="stable").drop(columns="_rank").reset_index(drop=True)
    return out


def _pivot(stats: pd.DataFrame, axis: str, metrics: list[str]) -> pd.DataFrame:
    """The ``axis`` rows of ``stats`` as one row per value with ``<metric>_n/_mean/_ci_low/_ci_high``."""
    rows = stats[stats["axis"] == axis]
    out = pd.DataFrame({"value": list(dict.fromkeys(rows["value"]))})
    for metric in metrics:
        by_value = rows[rows["metric"] == metric].set_index("value")
        for column in ("n", "mean", "ci_low", "ci_high"):
            out[f"{metric}_{column}"] = out["value"].map(by_value[column])
    return out


DELTA_CI = ["delta_ci_low", "delta_ci_high"]  # the CI of an arm's difference to its baseline (statistics.py)


def paired_differences(done: pd.DataFrame, column: str, metric: str, baseline: str) -> pd.DataFrame:
    """``value, seed, diff``: each arm's observation minus the baseline's at the same seed (the pairs of
    the paired test; one observation per value and seed, the mean over the other axes, as statistics.py)."""
    obs = per_seed(done.assign(**{column: done[column].astype(str)}), [column], metric)
    table = obs.pivot_table(index=SEED_COLUMN, columns=column, values=metric, aggfunc="mean")  # seeds x arms
    rows = []
    if baseline in table:
        for value in (v for v in dict.fromkeys(obs[column]) if v != baseline):
            pairs = table[[value, baseline]].dropna()
            rows += [{"value": value, SEED_COLUMN: int(seed), "diff": float(a - b)}
                     for seed, (a, b) in zip(pairs.index, pairs.to_numpy())]
    return pd.DataFrame(rows, columns=["value", SEED_COLUMN, "diff"])


def _estimation_data(stats: pd.DataFrame, done: pd.DataFrame, path: str, column: str, metric: str,
                     baseline: str) -> tuple[pd.DataFrame, pd.DataFrame, str] | None:
    """What the estimation panel of axis ``path`` draws (``plots.axis_figure``), None without a compared arm."""
    rows = stats[(stats["axis"] == path) & (stats["metric"] == metric) & (stats["value"].astype(str) != baseline)]
    if rows.empty:
        return None
    return paired_differences(done, column, metric, baseline), rows[["value", "n", "delta", *DELTA_CI]], baseline


def arm_summaries(stats: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per arm (``path=value``, or a grid point's ``path=value,path=value``) its summaries as MLflow
    metrics: n, mean, CI and the difference to the baseline with its CI, per metric, in the metric's
    logged scale (``test/acc/mean``, ...): what each arm run holds (``Tracker.log_arm_runs``)."""
    out: dict[str, dict[str, float]] = {}
    for row in stats.to_dict("records"):
        arm = str(row["value"]) if row["axis"] == GRID_AXIS else f"{row['axis']}={row['value']}"
        for stat in ("n", "mean", "ci_low", "ci_high", "delta", *DELTA_CI):
            value = row.get(stat)
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                out.setdefault(arm, {})[arm_metric_key(row["metric"], stat)] = float(value)
    return out


def _p(p: float) -> str:
    return "-" if math.isnan(p) else "<0.001" if p < 0.001 else f"{p:.2g}"


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _stats_table(stats: pd.DataFrame, axis: str, metric: str, key: str) -> str:
    """The arms of one axis for one metric (display units): mean and 95% CI; against the baseline the
    difference, its Holm-adjusted CI with its level, Holm-adjusted p, verdicts and seeds for 80% power."""
    unit = unit_of(metric)
    rows = stats[(stats["axis"] == axis) & (stats["metric"] == metric)]
    margins = rows["margin"].dropna()
    rows_out = []
    for _, r in rows.iterrows():
        ci = "-" if math.isnan(r["ci_low"]) else f"[{unit.format(r['ci_low'])}, {unit.format(r['ci_high'])}]"
        cells = [str(r["value"]), str(int(r["n"])), unit.format(r["mean"]), ci]
        if _is_blank(r["baseline"]):
            cells += ["baseline", "", "", "", *([""] if len(margins) else []), ""]
        else:
            delta_ci = "-" if math.isnan(r["delta_ci_low"]) else \
                f"[{unit.format(r['delta_ci_low'])}, {unit.format(r['delta_ci_high'])}] ({r['ci_level'] * 100:.4g}%)"
            verdict = {True: "yes", False: "no"}.get(r["significant"], "-")
            equivalent = [{True: "yes", False: "no"}.get(r["equivalent"], "-")] if len(margins) else []
            seeds = "-" if pd.isna(r["seeds_needed"]) else f"> {MAX_SEEDS}" if r["seeds_needed"] >= MAX_SEEDS else \
                str(int(r["seeds_needed"]))
            if not pd.isna(r["seeds_needed_min_effect"]):
                needed = int(r["seeds_needed_min_effect"])
                seeds += f" ({f'> {MAX_SEEDS}' if needed >= MAX_SEEDS else needed} at {unit.format(r['min_effect'])})"
            cells += [unit.format(r["delta"], signed=True), delta_ci, _p(float(r["p_adjusted"])), verdict,
                      *equivalent, seeds]
        rows_out.append(cells)
    mean = f"mean ({unit.name})" if unit.name else "mean"
    equivalent = [f"equivalent (±{unit.format(margins.iloc[0])})"] if len(margins) else []
    return markdown_table([key, "n", mean, f"{LEVEL:.0%} CI", "delta", "Holm-adjusted CI (level)", "p (Holm)",
                           "significant", *equivalent, "seeds for 80% power"], rows_out)


def _how_to_read(spec: StudySpec) -> str:
    """The paragraph above the seed statistics: what each number is (docs/statistics.md says more)."""
    return (
        f"How to read this: per arm, n seeds, the mean and its {LEVEL:.0%} CI (Student t, inside the metric's "
        "bounds). Each arm is compared with its axis' baseline on the per-seed differences (paired t-test; Welch's "
        f"when they share fewer than 2 seeds); p is Holm-adjusted over the axis' arms, significant means p < "
        f"{spec.alpha:g}, and exactly then the Holm-adjusted CI beside it excludes 0 (its level is the one Holm "
        "tested that arm at). The BCa bootstrap CI and the sign-flip permutation p check the t-test without "
        "assuming normality; with few seeds the bootstrap CI is too narrow and the permutation p cannot go below "
        "2/2^n (0.25 with 3 seeds). "
        + ("Equivalent: two one-sided t-tests (TOST) within the file's margin, Holm-adjusted. "
           if spec.equivalence_margin else "")
        + "Seeds for 80% power: what a paired t-test at alpha/m (m arms tested) would need given the observed SD of "
        "the differences, at the observed difference" + (" and at min_effect" if spec.min_effect else "")
        + ". Accuracy in points, energy in µJ per sample; every metric in stats.csv.")


def _stats_sections(spec: StudySpec, stats: pd.DataFrame, comparisons: list[Comparison], present: list[str]
                    ) -> list[str]:
    metric = spec.metric
    out = [f"## seed statistics: {units.label(metric)} ({metric})", "", _how_to_read(spec), ""]
    families = [(path, path, str(spec.baseline_of(path))) for path in spec.axes]
    if len(spec.axes) > 1:
        families.append((GRID_AXIS, "grid point", grid_label({p: spec.baseline_of(p) for p in spec.axes})))
    for axis, key, base in families:
        if metric not in present:
            break
        out += [f"### {key if axis != GRID_AXIS else 'every grid point'} (baseline {base})", "",
                _stats_table(stats, axis, metric, key), ""]
        out += [f"- {c.sentence()}" for c in comparisons if c.metric == metric and c.axis == axis] + [""]
    others = [c for c in comparisons if c.metric != metric]
    if others:
        out += ["### other metrics", ""]
        out += [f"- {c.metric}, {c.axis}: {c.sentence()}" for c in others] + [""]
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


# ---------------------------------------------------------------------- Pareto fronts
def pareto_arms(points: pd.DataFrame) -> pd.Series:
    """The ablation points (rows of ``points``, with ``test/acc_mean`` and ``test/energy_mj_mean``) that
    are Pareto-optimal for (max test acc, min energy): the ones ringed on ``acc_vs_energy.png``."""
    return pareto_rows(points, [(f"{m}_mean", d) for m, d in ACC_ENERGY])


def _open_study(name: str, storages: list[str | None], spec: StudySpec, log: Callable[[str], None]):
    """The Optuna study ``name`` from the first of ``storages`` that has it with the spec's directions, else None.

    Read-only in effect: a SQLite file that does not exist is skipped (opening it would create it),
    and so is a URL with a masked password (the ``optuna.storage`` tag of a PostgreSQL study).
    """
    import optuna

    for url in dict.fromkeys(u for u in storages if u):
        if "***" in url:
            log(f"compare: the study's storage {url} has a masked password: pass --storage to read the study")
            continue
        path = sqlite_path(url)
        if path is not None and not path.is_file():
            continue
        try:
            study = optuna.load_study(study_name=name, storage=make_storage(url, heartbeat_interval=None))
        except Exception:  # noqa: BLE001 - not there (KeyError) or unreachable: try the next, else MLflow
            continue
        if [d.name.lower() for d in study.directions] == spec.directions:
            return study
    return None


def _num_or_text(value: Any) -> Any:
    return int(value) if isinstance(value, str) and re.fullmatch(r"-?\d+", value) else _num(value)


def pareto_front(spec: StudySpec, done: pd.DataFrame, study: Any = None) -> pd.DataFrame:
    """The Pareto-optimal COMPLETE trials: ``trial, run_id, <objective>..., <param>...`` by trial number.

    From ``study.best_trials`` when ``study`` is given (its values and typed params), else
    ``pareto.non_dominated`` over the objective columns of the MLflow runs ``done``.
    """
    columns = ["trial", "run_id", *spec.metrics, *spec.params]
    if study is not None:
        run_of = dict(zip(done["trial"], done["run_id"])) if not done.empty else {}
        rows = [{"trial": t.number, "run_id": t.user_attrs.get(RUN_ATTR) or run_of.get(t.number),
                 **dict(zip(spec.metrics, t.values)), **{p: t.params.get(p) for p in spec.params}}
                for t in sorted(study.best_trials, key=lambda t: t.number)]
        return pd.DataFrame(rows, columns=columns)
    if done.empty:
        return pd.DataFrame(columns=columns)
    front = done[pareto_rows(done, spec.objectives)].sort_values("trial")
    out = pd.DataFrame({"trial": front["trial"].astype(int), "run_id": front["run_id"],
                        **{m: front[m] for m in spec.metrics},
                        **{p: front[f"{AXIS_TAG_PREFIX}{p}"].map(_num_or_text) for p in spec.params}})
    return out[columns].reset_index(drop=True)


# ---------------------------------------------------------------------- entry point
def _find_parent(tracker: Tracker, spec: StudySpec, study_name: str | None, fallback_latest: bool,
                 log: Callable[[str], None]) -> tuple[str, str, str] | None:
    from .yamlio import SpecError  # nothing to compare is bad input: lit-snn compare exits 2

    experiment_id = tracker.experiment_id(spec.experiment, create=False)
    if experiment_id is None:
        raise SpecError(f"no MLflow experiment {spec.experiment!r} at {tracker.tracking_uri}; run the study first")
    name = study_name or spec.default_study_name
    parent = tracker.find_parent_run(experiment_id, name)
    if parent is None and fallback_latest:
        latest = tracker.latest_parent_run(experiment_id)
        if latest is not None:
            parent, name = latest
            log(f"compare: no study {spec.default_study_name!r} (this file with these overrides); "
                f"showing the latest study of the experiment, {name!r}")
    if parent is None:
        raise SpecError(f"no study {name!r} in experiment {spec.experiment!r}; run it first")
    return experiment_id, parent, name


def compare(spec: StudySpec, tracking_uri: str, *, study_name: str | None = None, results_dir: str | Path = "results",
            plots: bool = True, fallback_latest: bool = False, storage: str | None = None,
            log: Callable[[str], None] = print) -> CompareResult | None:
    """Build, print and write the comparison of one study (``None`` when there is nothing to compare).

    ``storage``: the Optuna storage URL, tried first (then the one the study run recorded) when a
    multi-objective sweep's Pareto front is read from the study; not needed otherwise.
    """
    tracker = Tracker(tracking_uri)
    found = _find_parent(tracker, spec, study_name, fallback_latest, log)
    if found is None:
        return None
    experiment_id, parent_run_id, name = found
    metrics = list(dict.fromkeys([*spec.metrics, *BASE_METRICS]))
    runs = load_runs(tracker.tracking_uri, experiment_id, parent_run_id, metrics)
    result = CompareResult(name, parent_run_id, runs, metrics)
    out_dir = Path(results_dir) / spec.experiment / name  # per study: another study of the file never overwrites it
    out_dir.mkdir(parents=True, exist_ok=True)
    result.out_dir = out_dir
    done = runs[runs["state"] == "COMPLETE"] if not runs.empty else runs
    states = runs["state"].value_counts().to_dict() if not runs.empty else {}
    head = [f"# {spec.experiment}: study {name}", "",
            f"{spec.description}" if spec.description else "",
            f"MLflow parent run `{parent_run_id}` ({tracker.tracking_uri}); trial runs by state: "
            + (", ".join(f"{k} {v}" for k, v in sorted(states.items())) or "none") + ". "
            + (f"Objectives: {', '.join(f'{m} ({d})' for m, d in spec.objectives)}." if spec.multi_objective
               else f"Objective: {spec.metric} ({spec.direction}).")
            + (" Values: mean ± sample std over the COMPLETE runs in each row." if spec.kind == "ablation" else ""), ""]
    sections: list[str] = []
    files: list[Path] = []
    present = [m for m in metrics if not done.empty and done[m].notna().any()]
    runs.to_csv(out_dir / "runs.csv", index=False)
    files.append(out_dir / "runs.csv")
    if done.empty:
        sections.append("No COMPLETE trial yet.")
    elif spec.kind == "ablation":
        axis_cols = [f"{AXIS_TAG_PREFIX}{p}" for p in spec.axes]
        columns = dict(zip(spec.axes, axis_cols))
        stats, result.comparisons = seed_statistics(done, spec.axes, columns, present, spec.baseline, spec.alpha,
                                                    equivalence_margin=spec.equivalence_margin,
                                                    min_effect=spec.min_effect)
        result.stats = stats
        shown = list(dict.fromkeys([spec.metric, *(m for m in ("test/firing_rate", "test/energy_mj")
                                                   if m in present)])) if spec.metric in present else []
        for path, col in zip(spec.axes, axis_cols):
            table = _order(_agg(done, [col], present), col, spec.axes[path])
            result.per_axis[path] = table.rename(columns={col: path})
            sections += [f"## {path}", "", _stat_table(table, [col], present, [path]), ""]
            files.append(out_dir / f"axis_{_slug(path)}.csv")
            result.per_axis[path].to_csv(files[-1], index=False)
            if plots and shown:
                estimation = _estimation_data(stats, done, path, col, shown[0], str(spec.baseline_of(path)))
                files.append(axis_figure(out_dir / f"axis_{_slug(path)}.png", _pivot(stats, path, shown), shown,
                                         f"{spec.experiment}: by {path} (n = seeds)", path, estimation))
        grid = _agg(done, axis_cols, present)
        for path, col in reversed(list(zip(spec.axes, axis_cols))):
            grid = _order(grid, col, spec.axes[path])
        result.grid = grid.rename(columns=dict(zip(axis_cols, spec.axes)))
        if len(axis_cols) > 1:  # with one axis this is the table above
            sections += ["## every grid point (over seeds)", "", _stat_table(grid, axis_cols, present,
                                                                            list(spec.axes)), ""]
        files.append(out_dir / "grid.csv")
        result.grid.to_csv(files[-1], index=False)
        sections += _stats_sections(spec, stats, result.comparisons, present)
        sections += adaptive_report_section(spec, done, columns)  # adaptive seeds: verdicts, trainings saved
        files.append(out_dir / "stats.csv")
        display_table(stats).to_csv(files[-1], index=False)  # display units; the frame stays logged
        if plots and "test/acc" in present and "test/energy_mj" in present:
            points = _pivot(stats, GRID_AXIS if len(axis_cols) > 1 else next(iter(spec.axes)),
                            ["test/acc", "test/energy_mj"])
            labels = [v if len(axis_cols) == 1 else ",".join(part.split("=", 1)[1] for part in v.split(","))
                      for v in points["value"]]
            front = pareto_arms(points)
            sections += ["## Pareto-optimal arms (max test acc, min energy; over the means)", "",
                         ", ".join(f"`{v}`" for v in points.loc[front, "value"]) or "none", ""]
            files.append(scatter(out_dir / "acc_vs_energy.png", points, "test/energy_mj", "test/acc", labels,
                                  f"{spec.experiment}: accuracy vs energy (mean, {LEVEL:.0%} CI over seeds)",
                                  mark=front, mark_label="Pareto-optimal (max acc, min energy)"))
        if plots:
            histories = load_histories(tracker.tracking_uri, list(done["run_id"]), CURVE_METRIC)
            if not histories.empty:
                curves = learning_curves(done, histories, spec.axes, columns)
                files.append(curves_plot(out_dir / "learning_curves.png", curves, CURVE_METRIC,
                                          f"{spec.experiment}: learning curves"))
    else:
        ranked = done.sort_values(spec.metric, ascending=spec.direction == "minimize")
        params = [f"{AXIS_TAG_PREFIX}{p}" for p in spec.params]
        pareto_marks: list[str] = []
        study = None
        if spec.multi_objective:
            study = _open_study(name, [storage, tracker.client.get_run(parent_run_id).data.tags.get("optuna.storage")],
                                spec, log)
            result.pareto_source = "optuna" if study is not None else "mlflow"
            result.pareto = pareto_front(spec, done, study)
            on_front = ranked["trial"].isin(result.pareto["trial"])
            ranked = ranked.assign(pareto=on_front).sort_values("pareto", ascending=False, kind="stable")
            pareto_marks = ["yes" if v else "" for v in ranked["pareto"]]
        result.grid = ranked.rename(columns=dict(zip(params, spec.params)))
        headers = ["trial", *spec.params, *(units.label(m) for m in present)] + (["Pareto"] if pareto_marks else [])
        rows = [[_fmt(r["trial"]), *(_fmt(_num(r.get(c))) for c in params), *(unit_of(m).format(r[m]) for m in present)]
                for _, r in ranked.iterrows()]
        rows = [row + [mark] for row, mark in zip(rows, pareto_marks)] if pareto_marks else rows
        order = "Pareto-optimal first, then by " + spec.metric if pareto_marks else "best first"
        sections += [f"## trials, {order}", "", markdown_table(headers, rows), ""]
        files.append(out_dir / "trials.csv")
        result.grid.to_csv(files[-1], index=False)
        if result.pareto is not None:
            source = ("the Optuna study's best_trials" if study is not None else
                      "the MLflow runs (non-dominated filter; the Optuna study could not be opened)")
            front_headers = ["trial", *(units.label(m) for m in spec.metrics), *spec.params]
            front_rows = [[_fmt(r["trial"]), *(unit_of(m).format(_num(r[m])) for m in spec.metrics),
                           *(_fmt(r[p]) for p in spec.params)] for _, r in result.pareto.iterrows()]
            sections += [f"## Pareto-optimal trials ({len(result.pareto)} of {len(done)}; from {source})", "",
                         markdown_table(front_headers, front_rows), ""]
            files.append(out_dir / "pareto.csv")
            result.pareto.to_csv(files[-1], index=False)
            if plots and not result.pareto.empty:
                title = f"{spec.experiment}: Pareto front"
                files.append(optuna_pareto_plot(out_dir / "pareto_front.png", study, spec.metrics, spec.directions,
                                                title) if study is not None else
                             runs_pareto_plot(out_dir / "pareto_front.png", done, result.pareto, spec.metrics,
                                              spec.directions, list(spec.params), title + " (from the MLflow runs)"))
        if plots and spec.multi_objective and all(m in present for m in spec.metrics):
            for path, col in zip(spec.params, params):
                frame = ranked.assign(**{path: ranked[col].map(_num)})
                files.append(panels(out_dir / f"param_{_slug(path)}.png", frame, path, spec.metrics,
                                     f"{spec.experiment}: objectives vs {path}", bool(spec.params[path].get("log"))))
        elif plots and spec.metric in present:
            for path, col in zip(spec.params, params):
                frame = pd.DataFrame({"x": ranked[col].map(_num), "y": ranked[spec.metric]})
                files.append(scatter(out_dir / f"param_{_slug(path)}.png", frame.rename(columns={"x": path,
                                      "y": spec.metric}), path, spec.metric, [""] * len(frame),
                                      f"{spec.experiment}: {spec.metric} vs {path}", errors=False,
                                      logx=bool(spec.params[path].get("log"))))
        if plots and "test/acc" in present and "test/energy_mj" in present:
            files.append(scatter(out_dir / "acc_vs_energy.png", ranked, "test/energy_mj", "test/acc",
                                  [str(int(t)) for t in ranked["trial"]], f"{spec.experiment}: accuracy vs energy",
                                  errors=False))
    result.markdown = "\n".join(head + sections)
    (out_dir / "report.md").write_text(result.markdown + "\n")
    files.append(out_dir / "report.md")
    result.files = files
    log(result.markdown)
    log(f"\ncompare: tables and plots in {out_dir}/ ({', '.join(f.name for f in files)})")
    result.logged = _log_to_mlflow(tracker, result, log)
    return result


def _log_to_mlflow(tracker: Tracker, result: CompareResult, log: Callable[[str], None]) -> bool:
    """The files as artifacts of the study's parent run and one nested run per arm with its summaries;
    one line and False when MLflow refuses (the local files are the comparison either way)."""
    arms = arm_summaries(result.stats) if result.stats is not None else {}
    if (store := read_only_store(tracker.tracking_uri)) is not None:  # MLflow would log its refusal at length
        log(f"compare: the MLflow store {store} is read-only: the comparison is in {result.out_dir}/ only")
        return False
    try:
        tracker.log_comparison(result.parent_run_id, result.files)
        if arms:
            parent = tracker.client.get_run(result.parent_run_id)
            tracker.log_arm_runs(parent.info.experiment_id, result.parent_run_id, result.study_name, arms)
    except Exception as exc:  # noqa: BLE001 - a read-only store, a server that refuses: the files are kept
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log(f"compare: could not log the comparison to MLflow run {result.parent_run_id} ({reason}); "
            f"it is in {result.out_dir}/ only")
        return False
    log(f"compare: the same files in MLflow run {result.parent_run_id}, folder {COMPARISON_DIR}/"
        + (f"; one nested run per arm ({len(arms)}, named 'arm ...': chart them side by side)" if arms else ""))
    return True


def _num(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return value
