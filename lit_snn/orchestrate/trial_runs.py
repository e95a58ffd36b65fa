"""The trial runs of a study and their metric histories, read from MLflow as frames (``compare``'s input).

``load_runs``: one row per trial run of a study's parent run (run_id, trial, key, state, seed, the
``axis.*`` tags and the metrics asked for); ``axis_texts`` maps the stored spellings of axis values to
today's; ``load_histories``: a metric per epoch of some runs. Only MLflow's own APIs are used
(``mlflow.search_runs``, ``MlflowClient.get_metric_history``).
"""

from __future__ import annotations

import math

import mlflow
import pandas as pd

from ..trial_record import TAG_KEY, TAG_PARENT, TAG_ROLE, TAG_STATE, TAG_TRIAL
from .axis_text import AXIS_TAG_PREFIX, seed_of_key, stored_spellings
from .spec import StudySpec
from .statistics import SEED_COLUMN


def load_runs(tracking_uri: str, experiment_id: str, parent_run_id: str, columns: list[str]) -> pd.DataFrame:
    """The trial runs of ``parent_run_id`` as a frame: run_id, trial, key, state, ``axis.*`` and metrics
    (its arm runs, ``Tracker.log_arm_runs``, are not trials)."""
    mlflow.set_tracking_uri(tracking_uri)
    trials = f"tags.`{TAG_PARENT}` = '{parent_run_id}' and tags.`{TAG_ROLE}` = 'trial'"
    df = mlflow.search_runs(experiment_ids=[experiment_id], output_format="pandas", filter_string=trials)
    out = pd.DataFrame({"run_id": df.get("run_id", pd.Series(dtype=str))})
    if df.empty:
        return out
    out["trial"] = pd.to_numeric(df.get(f"tags.{TAG_TRIAL}"), errors="coerce")
    out["key"] = df.get(f"tags.{TAG_KEY}")
    out["state"] = df.get(f"tags.{TAG_STATE}")
    out[SEED_COLUMN] = _seeds(df)
    for col in sorted(c for c in df.columns if c.startswith(f"tags.{AXIS_TAG_PREFIX}")):  # MLflow's order varies
        out[col[len("tags."):]] = df[col]
    for metric in columns:
        out[metric] = pd.to_numeric(df.get(f"metrics.{metric}"), errors="coerce") if f"metrics.{metric}" in df \
            else math.nan
    return out.sort_values("trial").reset_index(drop=True)


def _seeds(df: pd.DataFrame) -> pd.Series:
    """Each run's seed: its ``seed_everything`` param (logged as the trial starts); for a run without it
    (a run whose logging failed; a sweep whose base sets none) the ``seed=N`` part of its grid key."""
    seed = pd.to_numeric(df.get("params.seed_everything", pd.Series(index=df.index, dtype=object)), errors="coerce")
    if f"tags.{TAG_KEY}" in df:
        seed = seed.fillna(pd.to_numeric(df[f"tags.{TAG_KEY}"].map(seed_of_key), errors="coerce"))
    return seed.astype("Int64")


def axis_texts(runs: pd.DataFrame, spec: StudySpec) -> pd.DataFrame:
    """``runs`` with each ``axis.*`` column as the texts of the values (axis_text.value_text), whichever
    spelling the tags hold: a run tagged before 2026-12-06 holds ``True`` where a new one holds ``true``.
    The spellings known are those of the listed values (an ablation's axes, a sweep's choices); numbers
    and strings are spelled the same either way."""
    out = runs.copy()
    for path, values in spec.listed_values().items():
        column, spellings = f"{AXIS_TAG_PREFIX}{path}", stored_spellings(values)
        if column in out:
            out[column] = out[column].map(lambda tag, known=spellings: known.get(tag, tag))
    return out


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
