"""MLflow glue: one experiment per study file, one parent run per study, one nested run per trial.

Only MLflow's own client API is used (no Optuna MLflowCallback). The tracking URI is always
explicit: MLflow 3.13+ refuses the old ``./mlruns`` file store, which is where Lightning's
``MLFlowLogger`` would otherwise fall back to.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from .storage import absolute_sqlite_url

MAX_VALUE_CHARS = 500  # MLflow's param limit before 2.x raised it; stay portable to older servers
MAX_TAG_CHARS = 5000
BATCH = 100  # MLflow accepts at most 100 params/tags per log_batch
PARENT_RUN_ATTR = "mlflow_parent_run_id"
TAG_STUDY = "lit_snn.study"
TAG_ROLE = "lit_snn.role"
TAG_STATE = "lit_snn.state"
TAG_KEY = "lit_snn.key"
TAG_TRIAL = "optuna.trial_number"
AXIS_TAG_PREFIX = "axis."


def _text(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    text = "None" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _metric_key(key: str) -> str:
    # MLflow keys: alphanumerics, _ - . space / ; anything else becomes _
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", key)


def safe_url(url: str) -> str:
    """A database URL with its password masked, fit for a tag."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


class Tracker:
    """Thin wrapper over ``MlflowClient`` bound to one tracking URI and artifact root."""

    def __init__(self, tracking_uri: str, artifact_root: str | None = None) -> None:
        self.tracking_uri = absolute_sqlite_url(tracking_uri)
        self.artifact_root = Path(artifact_root).resolve() if artifact_root else None
        mlflow.set_tracking_uri(self.tracking_uri)
        self.client = MlflowClient(tracking_uri=self.tracking_uri)

    # ------------------------------------------------------------------ experiments and runs
    def experiment_id(self, name: str, create: bool = True) -> str | None:
        """The id of experiment ``name`` (created, with an explicit artifact location, if missing)."""
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                self.client.restore_experiment(experiment.experiment_id)
            return experiment.experiment_id
        if not create:
            return None
        location = None
        if self.artifact_root is not None:
            location = (self.artifact_root / re.sub(r"[^A-Za-z0-9_.-]+", "_", name)).as_uri()
        return self.client.create_experiment(name, artifact_location=location)

    def find_parent_run(self, experiment_id: str, study_name: str) -> str | None:
        runs = self.client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{TAG_STUDY}` = '{study_name}' and tags.`{TAG_ROLE}` = 'study'",
            order_by=["attributes.start_time ASC"],
            max_results=1,
        )
        return runs[0].info.run_id if runs else None

    def latest_parent_run(self, experiment_id: str) -> tuple[str, str] | None:
        """``(run_id, study_name)`` of the most recently started study run of an experiment."""
        runs = self.client.search_runs(
            [experiment_id], filter_string=f"tags.`{TAG_ROLE}` = 'study'",
            order_by=["attributes.start_time DESC"], max_results=1,
        )
        return (runs[0].info.run_id, runs[0].data.tags.get(TAG_STUDY, "")) if runs else None

    def parent_run(self, experiment_id: str, study_name: str, tags: dict[str, Any], known_id: str | None) -> str:
        """Reuse the study's parent run (by id, else by tag) or create it; it is (re)marked RUNNING."""
        run_id = None
        if known_id:
            try:
                run = self.client.get_run(known_id)
                if run.info.experiment_id == experiment_id and run.info.lifecycle_stage != "deleted":
                    run_id = known_id
            except mlflow.exceptions.MlflowException:
                run_id = None
        run_id = run_id or self.find_parent_run(experiment_id, study_name)
        if run_id is None:
            run = self.client.create_run(
                experiment_id, run_name=study_name,
                tags={TAG_STUDY: study_name, TAG_ROLE: "study",
                      **{k: _text(v, MAX_TAG_CHARS) for k, v in tags.items()}},
            )
            return run.info.run_id
        self.client.update_run(run_id, status="RUNNING")
        self.set_tags(run_id, tags)
        return run_id

    def start_trial_run(self, experiment_id: str, parent_run_id: str, study_name: str, name: str,
                        tags: dict[str, Any]) -> str:
        """A nested run (``mlflow.parentRunId`` = the study's run) for one trial."""
        all_tags = {"mlflow.parentRunId": parent_run_id, TAG_STUDY: study_name, TAG_ROLE: "trial", TAG_STATE: "RUNNING"}
        all_tags.update({k: _text(v, MAX_TAG_CHARS) for k, v in tags.items()})
        return self.client.create_run(experiment_id, run_name=name, tags=all_tags).info.run_id

    # ------------------------------------------------------------------ logging
    def log_params(self, run_id: str, params: Iterable[tuple[str, Any]]) -> None:
        items = [Param(key, _text(value)) for key, value in params]
        for i in range(0, len(items), BATCH):
            self.client.log_batch(run_id, params=items[i: i + BATCH])

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        items = [RunTag(key, _text(value, MAX_TAG_CHARS)) for key, value in tags.items()]
        for i in range(0, len(items), BATCH):
            self.client.log_batch(run_id, tags=items[i: i + BATCH])

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        items = []
        for key, value in metrics.items():
            try:
                items.append(Metric(_metric_key(key), float(value), now, step))
            except (TypeError, ValueError):
                continue
        for i in range(0, len(items), BATCH):
            self.client.log_batch(run_id, metrics=items[i: i + BATCH])

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.client.log_text(run_id, text, artifact_file)

    def finish(self, run_id: str, state: str, extra_tags: dict[str, Any] | None = None,
               status: str | None = None) -> None:
        """Tag the Optuna outcome (COMPLETE/PRUNED/FAIL) and close the run (FINISHED/FAILED/KILLED)."""
        tags = {TAG_STATE: state, **(extra_tags or {})}
        self.set_tags(run_id, tags)
        status = status or {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED"}.get(state, "KILLED")
        self.client.set_terminated(run_id, status)

    def lightning_logger(self, run_id: str):
        """A Lightning ``MLFlowLogger`` writing into the existing run ``run_id``."""
        from lightning.pytorch.loggers import MLFlowLogger

        return MLFlowLogger(tracking_uri=self.tracking_uri, run_id=run_id)
