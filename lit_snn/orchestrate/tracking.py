"""MLflow glue: one experiment per study file, one parent run per study, one nested run per trial.

Only MLflow's own client API is used (no Optuna MLflowCallback). The tracking URI is always
explicit: MLflow 3.13+ refuses the old ``./mlruns`` file store, which is where Lightning's
``MLFlowLogger`` would otherwise fall back to. With a tracking *server* (``http(s)://``) the
experiment gets no artifact location from us: the server chooses it (``mlflow-artifacts:/`` when
it proxies its ``--artifacts-destination``), so artifacts logged on any machine land there.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import mlflow
import requests
from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from ..store_files import absolute_sqlite_url
from ..trial_record import (
    CONFIG_ARTIFACT,
    REPRO_TAG_PREFIX,
    TAG_ARM,
    TAG_NOTE,
    TAG_PARENT,
    TAG_ROLE,
    TAG_STATE,
    TAG_STUDY,
)
from .axis_text import AXIS_TAG_PREFIX, parse_key  # the axis.* tags hold axis_text's texts
from .dotted import flatten
from .storage import creation_lock
from .training import reproducibility_info, result_settings
from .yamlio import SpecError, dump_yaml

MAX_VALUE_CHARS = 500  # MLflow's param limit before 2.x raised it; stay portable to older servers
MAX_TAG_CHARS = 5000
REACH_TIMEOUT_S = 5.0
COMPARISON_DIR = "comparison"  # the parent run's artifact folder holding compare's files
# config values the training links from another field (lit_snn.train.LitSNNCLI): not logged twice
LINKED_PARAMS = {"data.init_args.time_steps": "model.time_steps"}


def _text(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    text = "None" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _metric_key(key: str) -> str:
    # MLflow keys: alphanumerics, _ - . space / ; anything else becomes _
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", key)


def slug(text: str) -> str:
    """``text`` as a file or folder name: each run of other characters than ``A-Za-z0-9_.-`` becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def arm_metric_key(metric: str, stat: str) -> str:
    """``test/acc/mean``: one statistic of one metric, as an arm run logs it (``Tracker.log_arm_runs``)."""
    return _metric_key(f"{metric}/{stat}")


def trial_params(config_items: list[tuple[str, Any]], settings: dict[str, Any]) -> list[tuple[str, Any]]:
    """A trial run's params: the flattened config and the ``settings`` that change its numbers, each
    value once (no ``None``: an unset field is the default the config file records; no linked copy,
    ``LINKED_PARAMS``; a setting only where the config does not have it already)."""
    out = {key: value for key, value in config_items if value is not None and key not in LINKED_PARAMS}
    out.update({key: value for key, value in settings.items() if value is not None and key not in out})
    return list(out.items())


def _runs_of(study_name: str, role: str) -> str:
    """An MLflow filter for the runs of ``study_name`` in ``role`` (``study``: its parent run; ``trial``)."""
    return f"tags.`{TAG_STUDY}` = '{study_name}' and tags.`{TAG_ROLE}` = '{role}'"


def is_server(tracking_uri: str) -> bool:
    return tracking_uri.startswith(("http://", "https://"))


def check_reachable(tracking_uri: str, timeout: float = REACH_TIMEOUT_S) -> None:
    """A tracking server must answer its ``/health`` within ``timeout`` seconds (``SpecError`` if not).

    MLflow's own client would retry a dead server for minutes (7 retries with backoff) before
    failing with a long traceback; this check runs once, before anything is created.
    """
    if not is_server(tracking_uri):
        return
    try:
        response = requests.get(f"{tracking_uri.rstrip('/')}/health", timeout=timeout)
        response.raise_for_status()
    except requests.RequestException as exc:
        reason = type(exc).__name__ if not str(exc) else str(exc).split(":")[-1].strip(" )'\"") or type(exc).__name__
        raise SpecError(f"MLflow tracking server {tracking_uri} is not reachable ({reason}); nothing was started: "
                        "start the server or pass another --tracking-uri") from None


class TrialLogger(MLFlowLogger):
    """Lightning's ``MLFlowLogger`` for a trial run the orchestrator opened and will close.

    Hyper-parameters are not logged (the orchestrator logs the whole resolved config once, as
    dotted params; Lightning would add a second, partial copy such as ``lr`` beside ``model.lr``),
    and ``finalize`` only uploads the checkpoints (``log_model``), leaving the run open: the
    orchestrator ends it once, with the trial's outcome.
    """

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        return None

    def after_save_checkpoint(self, checkpoint_callback) -> None:
        if getattr(checkpoint_callback, "resume_point", False):  # a SLURM task's resume checkpoint: no artifact
            return
        super().after_save_checkpoint(checkpoint_callback)

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        if self._initialized and self._checkpoint_callback:
            self._scan_and_log_checkpoints(self._checkpoint_callback)


class Tracker:
    """Thin wrapper over ``MlflowClient`` bound to one tracking URI and artifact root."""

    def __init__(self, tracking_uri: str, artifact_root: str | None = None) -> None:
        self.tracking_uri = absolute_sqlite_url(tracking_uri)
        self.artifact_root = Path(artifact_root).resolve() if artifact_root else None
        mlflow.set_tracking_uri(self.tracking_uri)
        with creation_lock(self.tracking_uri):  # the client's store creates (or migrates) a SQLite database
            self.client = MlflowClient(tracking_uri=self.tracking_uri)

    # ------------------------------------------------------------------ experiments and runs
    def experiment_id(self, name: str, create: bool = True, description: str = "") -> str | None:
        """The id of experiment ``name`` (created if missing: with an explicit artifact location
        under ``artifact_root`` when there is one, else where the server puts artifacts)."""
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None and create:
            location = None
            if self.artifact_root is not None:
                location = (self.artifact_root / slug(name)).as_uri()
            try:
                self.client.create_experiment(name, artifact_location=location)
            except MlflowException as exc:  # another process created it first
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            return None
        if experiment.lifecycle_stage == "deleted":
            self.client.restore_experiment(experiment.experiment_id)
        if description and experiment.tags.get(TAG_NOTE) != description:
            self.client.set_experiment_tag(experiment.experiment_id, TAG_NOTE, description)
        return experiment.experiment_id

    def _first_run(self, experiment_id: str, filter_string: str, order: str):
        """The run of ``filter_string`` started first (``order`` ASC) or last (DESC), None if there is none."""
        runs = self.client.search_runs([experiment_id], filter_string=filter_string,
                                       order_by=[f"attributes.start_time {order}"], max_results=1)
        return runs[0] if runs else None

    def find_parent_run(self, experiment_id: str, study_name: str) -> str | None:
        run = self._first_run(experiment_id, _runs_of(study_name, "study"), "ASC")
        return run.info.run_id if run else None

    def latest_parent_run(self, experiment_id: str) -> tuple[str, str] | None:
        """``(run_id, study_name)`` of the most recently started study run of an experiment."""
        run = self._first_run(experiment_id, f"tags.`{TAG_ROLE}` = 'study'", "DESC")
        return (run.info.run_id, run.data.tags.get(TAG_STUDY, "")) if run else None

    def is_parent_run(self, run_id: str, experiment_id: str) -> bool:
        """``run_id`` exists, is not deleted and belongs to ``experiment_id``."""
        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            return False
        return run.info.experiment_id == experiment_id and run.info.lifecycle_stage != "deleted"

    def create_parent_run(self, experiment_id: str, study_name: str, tags: dict[str, Any],
                          params: list[tuple[str, Any]], files: dict[str, str]) -> str:
        """A new study run with its tags, params and text files (e.g. ``study.yaml``)."""
        run = self.client.create_run(experiment_id, run_name=study_name,
                                     tags={TAG_STUDY: study_name, TAG_ROLE: "study",
                                           **{k: _text(v, MAX_TAG_CHARS) for k, v in tags.items()}})
        self.log_params(run.info.run_id, params)
        for name, text in files.items():
            self.client.log_text(run.info.run_id, text, name)
        return run.info.run_id

    def start_trial_run(self, experiment_id: str, parent_run_id: str, study_name: str, name: str,
                        tags: dict[str, Any]) -> str:
        """A nested run (``mlflow.parentRunId`` = the study's run) for one trial."""
        all_tags = {TAG_PARENT: parent_run_id, TAG_STUDY: study_name, TAG_ROLE: "trial", TAG_STATE: "RUNNING"}
        all_tags.update({k: _text(v, MAX_TAG_CHARS) for k, v in tags.items()})
        return self.client.create_run(experiment_id, run_name=name, tags=all_tags).info.run_id

    def running_trial_runs(self, experiment_id: str, study_name: str) -> set[str]:
        """The ids of the study's trial runs whose MLflow status is still RUNNING."""
        runs = self.client.search_runs(
            [experiment_id],
            filter_string=_runs_of(study_name, "trial") + " and attributes.status = 'RUNNING'",
        )
        return {run.info.run_id for run in runs}

    # ------------------------------------------------------------------ logging (MLflow splits large batches)
    def log_params(self, run_id: str, params: list[tuple[str, Any]]) -> None:
        self.client.log_batch(run_id, params=[Param(key, _text(value)) for key, value in params])

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        self.client.log_batch(run_id, tags=[RunTag(key, _text(value, MAX_TAG_CHARS)) for key, value in tags.items()])

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0, new_only: bool = False) -> None:
        """Log ``metrics``; with ``new_only`` those the run does not have yet (Lightning logged the others)."""
        have = set(self.client.get_run(run_id).data.metrics) if new_only else set()
        now = int(time.time() * 1000)
        items = []
        for key, value in metrics.items():
            try:
                metric = Metric(_metric_key(key), float(value), now, step)
            except (TypeError, ValueError):
                continue
            if metric.key not in have:
                items.append(metric)
        self.client.log_batch(run_id, metrics=items)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.client.log_text(run_id, text, artifact_file)

    def log_run_record(self, run_id: str, config: dict, raw: dict) -> None:
        """The record ``lit_snn.runs`` redoes a run from (``lit_snn.trial_record``): the config as params
        (without where it logs and writes), the settings outside it that change its numbers, the
        reproducibility tags, and the artifact ``CONFIG_ARTIFACT`` = ``raw``, the config exactly as
        ``run_training`` gets it."""
        logged = {**config, "trainer": {k: v for k, v in config.get("trainer", {}).items()
                                        if k not in ("logger", "callbacks", "default_root_dir")}}
        self.log_params(run_id, trial_params(flatten(logged), result_settings()))
        self.set_tags(run_id, {f"{REPRO_TAG_PREFIX}{k}": v for k, v in reproducibility_info(config).items()})
        self.log_text(run_id, dump_yaml(raw), CONFIG_ARTIFACT)

    def log_arm_runs(self, experiment_id: str, parent_run_id: str, study_name: str,
                     arms: dict[str, dict[str, float]]) -> dict[str, str]:
        """One nested run of the study's parent per arm (role ``arm``, tag ``lit_snn.arm``, the arm's
        ``axis.*`` tags) holding its summaries (``arms[arm]``: ``test/acc/mean``, ...), made by the
        first compare and updated by the next; returns arm -> run id. Per run and not as metrics of the
        parent: MLflow's chart view compares runs, so the arms then stand side by side in one chart."""
        existing = {run.data.tags.get(TAG_ARM): run.info.run_id for run in self.client.search_runs(
            [experiment_id], filter_string=_runs_of(study_name, "arm") + f" and tags.`{TAG_PARENT}` = "
                                                                          f"'{parent_run_id}'")}
        out = {}
        for arm, metrics in arms.items():
            run_id = existing.get(arm)
            if run_id is None:
                tags = {TAG_PARENT: parent_run_id, TAG_STUDY: study_name, TAG_ROLE: "arm", TAG_ARM: arm,
                        **{f"{AXIS_TAG_PREFIX}{path}": text for path, text in parse_key(arm).items()}}
                run_id = self.client.create_run(experiment_id, run_name=f"arm {arm}"[:250],
                                                tags={k: _text(v, MAX_TAG_CHARS) for k, v in tags.items()}).info.run_id
                self.client.set_terminated(run_id, "FINISHED")
            self.log_metrics(run_id, metrics)
            out[arm] = run_id
        return out

    def log_comparison(self, run_id: str, files: list[Path]) -> None:
        """Put compare's ``files`` in the run's ``comparison/`` folder, replacing what an earlier
        compare left there."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        repository = get_artifact_repository(self.client.get_run(run_id).info.artifact_uri)
        try:  # MLflow's client has no delete; its artifact repositories do (local, mlflow-artifacts, S3...)
            repository.delete_artifacts(COMPARISON_DIR)
        except (NotImplementedError, MlflowException, FileNotFoundError):
            pass  # a store that cannot delete: the files below overwrite those of the same name
        for path in files:
            self.client.log_artifact(run_id, str(path), COMPARISON_DIR)

    def finish(self, run_id: str, state: str, extra_tags: dict[str, Any] | None = None,
               status: str | None = None) -> None:
        """Tag the Optuna outcome (COMPLETE/PRUNED/FAIL) and close the run (FINISHED/FAILED/KILLED)."""
        self.set_tags(run_id, {TAG_STATE: state, **(extra_tags or {})})
        status = status or {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED"}.get(state, "KILLED")
        self.client.set_terminated(run_id, status)

    def lightning_logger(self, run_id: str, log_checkpoints: bool = True) -> TrialLogger:
        """The trial's Lightning logger, writing into the existing run ``run_id``; with
        ``log_checkpoints`` the best checkpoint is uploaded as an artifact at the end of fit."""
        return TrialLogger(tracking_uri=self.tracking_uri, run_id=run_id, log_model=log_checkpoints)
