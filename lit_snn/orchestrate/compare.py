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

Layout: ``compare`` finds the study, reads its runs (each ``axis.*`` column as the values' texts,
axis_text.py, whichever spelling the tags hold) and hands a ``Report`` (the files written, the
markdown sections) to one function per kind, ``_compare_ablation`` or ``_compare_sweep``; the
report's text comes from report_text.py, its figures from plots.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import ConfigError
from ..store_files import read_only_store, sqlite_path
from ..trial_record import RUN_ATTR, TAG_OPTUNA_STORAGE
from .adaptive import report_section as adaptive_report_section
from .axis_text import AXIS_TAG_PREFIX, parse_key, parse_text, value_text
from .pareto import pareto_rows
from .plots import axis_figure, curves_plot, optuna_pareto_plot, panels, runs_pareto_plot, scatter
from .report_text import as_number, front_table, mean_std_table, report_head, stats_sections, trials_table
from .spec import AblationSpec, StudySpec
from .statistics import (
    GRID_AXIS,
    LEVEL,
    SEED_COLUMN,
    Comparison,
    arm_stats,
    display_table,
    per_seed,
    seed_statistics,
)
from .storage import make_storage
from .tracking import COMPARISON_DIR, Tracker, arm_metric_key, slug
from .trial_runs import axis_texts, load_histories, load_runs
from .units import unit_of

CURVE_METRIC = "val/acc"  # the per-epoch history drawn in learning_curves.png
ACC_ENERGY = [("test/acc", "maximize"), ("test/energy_mj", "minimize")]  # the Pareto ring of acc_vs_energy.png
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


@dataclass
class Report:
    """What one compare writes into ``out_dir``: the files in the order written, each registered once
    (all of them go to MLflow too), and the markdown sections of ``report.md`` in order."""

    out_dir: Path
    files: list[Path] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)

    def path(self, name: str) -> Path:
        return self.out_dir / name

    def add(self, path: Path) -> Path:
        """Register a file written into ``out_dir`` (a plot's); one name twice is a bug of compare."""
        if path in self.files:
            raise ConfigError(f"compare wrote {path.name} twice")
        self.files.append(path)
        return path

    def csv(self, name: str, frame: pd.DataFrame) -> Path:
        frame.to_csv(self.path(name), index=False)
        return self.add(self.path(name))

    def section(self, *lines: str) -> None:
        self.sections.extend(lines)

    def write(self, head: list[str]) -> str:
        """Write ``report.md`` (``head``, then the sections) as the last file; returns its markdown."""
        markdown = "\n".join(head + self.sections)
        self.path("report.md").write_text(markdown + "\n")
        self.add(self.path("report.md"))
        return markdown


# ---------------------------------------------------------------------- numbers
def _agg(frame: pd.DataFrame, by: list[str], metrics: list[str]) -> pd.DataFrame:
    grouped = frame.groupby(by, sort=False, dropna=False)
    out = grouped.size().rename("n").to_frame()
    for metric in metrics:
        out[f"{metric}_mean"] = grouped[metric].mean()
        out[f"{metric}_std"] = grouped[metric].std(ddof=1).fillna(0.0)
    return out.reset_index()


def _order(frame: pd.DataFrame, column: str, values: list[Any]) -> pd.DataFrame:
    rank = {value_text(v): i for i, v in enumerate(values)}
    return frame.assign(_rank=frame[column].map(lambda v: rank.get(str(v), len(rank)))).sort_values(
        "_rank", kind="stable").drop(columns="_rank")


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
        frame = frame.assign(ci_low=frame["ci_low"].fillna(frame["mean"]),  # n = 1: no band
                             ci_high=frame["ci_high"].fillna(frame["mean"]))
        out[path] = _order(frame.sort_values("epoch", kind="stable"), "value", axes[path]).reset_index(drop=True)
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
                        **{p: front[f"{AXIS_TAG_PREFIX}{p}"].map(parse_text) for p in spec.params}})
    return out[columns].reset_index(drop=True)


# ---------------------------------------------------------------------- entry point
def _find_parent(tracker: Tracker, spec: StudySpec, study_name: str | None, fallback_latest: bool,
                 log: Callable[[str], None]) -> tuple[str, str, str]:
    """``(experiment id, parent run id, study name)``; ``SpecError`` when there is no such study."""
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
            log: Callable[[str], None] = print) -> CompareResult:
    """Build, print and write the comparison of one study (``SpecError`` when there is none to compare).

    ``storage``: the Optuna storage URL, tried first (then the one the study run recorded) when a
    multi-objective sweep's Pareto front is read from the study; not needed otherwise.
    """
    tracker = Tracker(tracking_uri)
    experiment_id, parent_run_id, name = _find_parent(tracker, spec, study_name, fallback_latest, log)
    metrics = list(dict.fromkeys([*spec.metrics, *BASE_METRICS]))
    runs = axis_texts(load_runs(tracker.tracking_uri, experiment_id, parent_run_id, metrics), spec)
    result = CompareResult(name, parent_run_id, runs, metrics)
    out_dir = Path(results_dir) / spec.experiment / name  # per study: another study of the file never overwrites it
    out_dir.mkdir(parents=True, exist_ok=True)
    result.out_dir = out_dir
    done = runs[runs["state"] == "COMPLETE"] if not runs.empty else runs
    states = runs["state"].value_counts().to_dict() if not runs.empty else {}
    report = Report(out_dir)
    report.csv("runs.csv", runs)
    if done.empty:
        report.section("No COMPLETE trial yet.")
    else:
        present = [m for m in metrics if done[m].notna().any()]
        if isinstance(spec, AblationSpec):
            _compare_ablation(spec, tracker, done, present, result, report, plots)
        else:
            _compare_sweep(spec, tracker, done, present, result, report, plots, storage, log)
    result.markdown = report.write(report_head(spec, name, parent_run_id, tracker.tracking_uri, states))
    result.files = report.files
    log(result.markdown)
    log(f"\ncompare: tables and plots in {out_dir}/ ({', '.join(f.name for f in report.files)})")
    result.logged = _log_to_mlflow(tracker, result, log)
    return result


# ---------------------------------------------------------------------- an ablation
def _compare_ablation(spec: StudySpec, tracker: Tracker, done: pd.DataFrame, present: list[str],
                      result: CompareResult, report: Report, plots: bool) -> None:
    """The tables per axis and per grid point, the seed statistics and the ablation's figures."""
    columns = {path: f"{AXIS_TAG_PREFIX}{path}" for path in spec.axes}
    stats, result.comparisons = seed_statistics(done, spec.axes, columns, present, spec.baseline, spec.alpha,
                                                equivalence_margin=spec.equivalence_margin,
                                                min_effect=spec.min_effect)
    result.stats = stats
    shown = list(dict.fromkeys([spec.metric, *(m for m in ("test/firing_rate", "test/energy_mj")
                                               if m in present)])) if spec.metric in present else []
    for path, col in columns.items():
        table = _order(_agg(done, [col], present), col, spec.axes[path])
        result.per_axis[path] = table.rename(columns={col: path})
        report.section(f"## {path}", "", mean_std_table(table, [col], present, [path]), "")
        report.csv(f"axis_{slug(path)}.csv", result.per_axis[path])
        if plots and shown:
            estimation = _estimation_data(stats, done, path, col, shown[0], value_text(spec.baseline_of(path)))
            report.add(axis_figure(report.path(f"axis_{slug(path)}.png"), _pivot(stats, path, shown), shown,
                                   f"{spec.experiment}: by {path} (n = seeds)", path, estimation))
    grid = _agg(done, list(columns.values()), present)
    for path, col in reversed(columns.items()):
        grid = _order(grid, col, spec.axes[path])
    result.grid = grid.rename(columns={col: path for path, col in columns.items()})
    if len(columns) > 1:  # with one axis this is the table above
        report.section("## every grid point (over seeds)", "",
                       mean_std_table(grid, list(columns.values()), present, list(spec.axes)), "")
    report.csv("grid.csv", result.grid)
    report.section(*stats_sections(spec, stats, result.comparisons, present))
    report.section(*adaptive_report_section(spec, done, columns))  # adaptive seeds: verdicts, trainings saved
    report.csv("stats.csv", display_table(stats))  # display units; the frame stays logged
    if plots and "test/acc" in present and "test/energy_mj" in present:
        _ablation_pareto(spec, stats, report)
    if plots:
        histories = load_histories(tracker.tracking_uri, list(done["run_id"]), CURVE_METRIC)
        if not histories.empty:
            curves = learning_curves(done, histories, spec.axes, columns)
            report.add(curves_plot(report.path("learning_curves.png"), curves, CURVE_METRIC,
                                   f"{spec.experiment}: learning curves"))


def _ablation_pareto(spec: StudySpec, stats: pd.DataFrame, report: Report) -> None:
    """The arms (grid points with several axes) on accuracy vs energy, the Pareto-optimal ones ringed and named."""
    several = len(spec.axes) > 1
    points = _pivot(stats, GRID_AXIS if several else next(iter(spec.axes)), ["test/acc", "test/energy_mj"])
    labels = [",".join(parse_key(v).values()) if several else v for v in points["value"]]
    front = pareto_arms(points)
    report.section("## Pareto-optimal arms (max test acc, min energy; over the means)", "",
                   ", ".join(f"`{v}`" for v in points.loc[front, "value"]) or "none", "")
    report.add(scatter(report.path("acc_vs_energy.png"), points, "test/energy_mj", "test/acc", labels,
                       f"{spec.experiment}: accuracy vs energy (mean, {LEVEL:.0%} CI over seeds)",
                       mark=front, mark_label="Pareto-optimal (max acc, min energy)"))


# ---------------------------------------------------------------------- a sweep
def _compare_sweep(spec: StudySpec, tracker: Tracker, done: pd.DataFrame, present: list[str],
                   result: CompareResult, report: Report, plots: bool, storage: str | None,
                   log: Callable[[str], None]) -> None:
    """The trials ranked (Pareto-optimal first with several objectives), the Pareto front and the sweep's figures."""
    ranked = done.sort_values(spec.metric, ascending=spec.direction == "minimize")
    params = {path: f"{AXIS_TAG_PREFIX}{path}" for path in spec.params}
    study = None
    if spec.multi_objective:
        recorded = tracker.client.get_run(result.parent_run_id).data.tags.get(TAG_OPTUNA_STORAGE)
        study = _open_study(result.study_name, [storage, recorded], spec, log)
        result.pareto_source = "optuna" if study is not None else "mlflow"
        result.pareto = pareto_front(spec, done, study)
        ranked = ranked.assign(pareto=ranked["trial"].isin(result.pareto["trial"])).sort_values(
            "pareto", ascending=False, kind="stable")
    result.grid = ranked.rename(columns={col: path for path, col in params.items()})
    marks = ["yes" if v else "" for v in ranked["pareto"]] if spec.multi_objective else None
    order = "Pareto-optimal first, then by " + spec.metric if marks else "best first"
    report.section(f"## trials, {order}", "", trials_table(ranked, params, present, marks), "")
    report.csv("trials.csv", result.grid)
    if result.pareto is not None:
        source = ("the Optuna study's best_trials" if study is not None else
                  "the MLflow runs (non-dominated filter; the Optuna study could not be opened)")
        report.section(f"## Pareto-optimal trials ({len(result.pareto)} of {len(done)}; from {source})", "",
                       front_table(result.pareto, spec.metrics, list(spec.params)), "")
        report.csv("pareto.csv", result.pareto)
        if plots and not result.pareto.empty:
            title = f"{spec.experiment}: Pareto front"
            front_png = report.path("pareto_front.png")
            report.add(optuna_pareto_plot(front_png, study, spec.metrics, spec.directions, title)
                       if study is not None else
                       runs_pareto_plot(front_png, done, result.pareto, spec.metrics, spec.directions,
                                        list(spec.params), title + " (from the MLflow runs)"))
    if plots:
        _sweep_plots(spec, ranked, params, present, report)


def _sweep_plots(spec: StudySpec, ranked: pd.DataFrame, params: dict[str, str], present: list[str],
                 report: Report) -> None:
    """The objective(s) against each searched parameter, and accuracy vs energy (one point per trial)."""
    for path, col in params.items():
        name, logx = report.path(f"param_{slug(path)}.png"), bool(spec.params[path].get("log"))
        if spec.multi_objective and all(m in present for m in spec.metrics):
            report.add(panels(name, ranked.assign(**{path: ranked[col].map(as_number)}), path, spec.metrics,
                              f"{spec.experiment}: objectives vs {path}", logx))
        elif spec.metric in present:
            frame = pd.DataFrame({path: ranked[col].map(as_number), spec.metric: ranked[spec.metric]})
            report.add(scatter(name, frame, path, spec.metric, [""] * len(frame),
                               f"{spec.experiment}: {spec.metric} vs {path}", errors=False, logx=logx))
    if "test/acc" in present and "test/energy_mj" in present:
        report.add(scatter(report.path("acc_vs_energy.png"), ranked, "test/energy_mj", "test/acc",
                           [str(int(t)) for t in ranked["trial"]], f"{spec.experiment}: accuracy vs energy",
                           errors=False))


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
