"""The record of a run: the names under which a trial (or ``lit-snn train``) is stored, and its reader.

An MLflow run of a trial or of ``lit-snn train`` holds what is needed to redo it:

- artifact ``CONFIG_ARTIFACT``: the run config exactly as ``lit_snn.train.run_training`` got it (its
  ``seed_everything`` and ``trainer.deterministic`` included);
- param ``THREADS_PARAM``: ``torch.get_num_threads()`` during the run (the result depends on it), beside
  the flattened config; tags ``repro.*`` (versions, host, git commit);
- tags ``TAG_*`` below (its study, role, outcome, grid point, trial number, ...);
- the final metrics (``test/acc``, ...) and the best checkpoint as a ``*.ckpt`` artifact.

An Optuna trial holds its MLflow run's id (``RUN_ATTR``) and the ``*_ATTR`` attributes below; the study
its fingerprint (``FINGERPRINT_ATTR``). Every name is read back by resume, compare, reproduce and the
stale-trial repair: they never change (a store written by an older version is read by a newer one).

``TrialRun`` reads one run's record back through ``MlflowClient``. Light to import (no torch, no
Lightning, no orchestrator): ``lit_snn.runs``, ``lit_snn.export`` and ``lit_snn.orchestrate`` all read
the names here.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import ExpectedError
from .store_files import check_store, sqlite_path

# ---------------------------------------------------------------- a run's files and params (MLflow)
CONFIG_ARTIFACT = "config.yaml"  # the run config as run_training got it
THREADS_PARAM = "repro.torch_threads"  # torch's CPU thread count (changes the summation order)
WORLD_SIZE_PARAM = "repro.world_size"  # a DDP trial's processes (only when > 1: launchers/ddp_trial.py)
REPRO_TAG_PREFIX = "repro."  # repro.<what>: versions, host, git commit of the process that ran it

# ---------------------------------------------------------------- a run's tags (MLflow)
TAG_STUDY = "lit_snn.study"  # the study's name
TAG_ROLE = "lit_snn.role"  # "study" (the parent run), "trial", "arm" (compare's summaries), "train"
TAG_STATE = "lit_snn.state"  # the Optuna outcome: RUNNING, COMPLETE, PRUNED, FAIL
TAG_KEY = "lit_snn.key"  # the trial's grid point (axis_text's key)
TAG_TRIAL = "optuna.trial_number"
TAG_OPTUNA_STUDY = "optuna.study"
TAG_OPTUNA_STORAGE = "optuna.storage"  # a study run: its Optuna storage URL, the password masked
TAG_WORKER = "lit_snn.worker"  # host:pid of the process that ran the trial
TAG_RETRY_OF = "lit_snn.retry_of"  # the stale trial this one retries
TAG_ERROR = "lit_snn.error"  # a failed or killed run: what happened, in one line
TAG_PRUNED = "lit_snn.pruned"  # a pruned trial: the pruner's message
TAG_STALE = "lit_snn.stale"  # a trial whose worker died (its point was queued again)
TAG_CLOSED_LATE = "lit_snn.closed_late"  # a run closed by the stale-trial repair after its trial ended
TAG_ARM = "lit_snn.arm"  # an arm run: the arm it summarises (path=value, or a grid point's path=value,...)
TAG_COMMAND = "lit_snn.command"  # lit-snn train: the command line
TAG_RESUMED_FROM = "lit_snn.resumed_from"  # lit-snn train --ckpt_path: the checkpoint it resumed
TAG_BEST, TAG_BEST_RUN = "lit_snn.best_trial", "lit_snn.best_trial_run_id"  # a sweep's parent run: its best trial
TAG_PARETO = "lit_snn.pareto_trials"  # a multi-objective sweep's parent run: the numbers of its Pareto-optimal trials
TAG_NOTE = "mlflow.note.content"  # the description the MLflow UI shows on an experiment or run
TAG_PARENT = "mlflow.parentRunId"  # MLflow's nesting: a trial or arm run's study run

# ---------------------------------------------------------------- a trial's and a study's attributes (Optuna)
RUN_ATTR = "mlflow_run_id"  # user attr: the trial's nested MLflow run
PARENT_RUN_ATTR = "mlflow_parent_run_id"  # study system attr: the study's MLflow run
KEY_ATTR = "key"  # user attr: the grid point of an ablation trial
REPEAT_ATTR = "repeat_of"  # user attr: the finished sweep trial whose params (and values) a sweep trial repeats
POINT_ATTR = "lit_snn:point"  # system attr: a queued ablation trial's point {values, seed, raw} (trial.py)
WORKER_ATTR = "lit_snn:worker"  # system attr: host/pid of the process running the trial
DUPLICATE_ATTR = "lit_snn:duplicate_of"  # system attr: the trial that already had this point
INTERRUPTED_ATTR = "lit_snn:interrupted"  # system attr: the number of a trial stopped by a signal (re-queued)
RESUME_ATTR = "lit_snn:resume"  # system attr: {"job": "123_4", "dir": <trial>/resume, "signal": "USR2"} (resume.py)
BEAT_ATTR = "lit_snn:heartbeat"  # system attr: time.time() of a trial's last heartbeat (journal storage)
FIXED_PARAMS_ATTR = "fixed_params"  # system attr (Optuna's): the params ``enqueue_trial`` fixed
FINGERPRINT_ATTR = "lit_snn:fingerprint"  # study user attr: the spec's fingerprint

# A run's config is read from a tracking store others may write to: the classes it names are
# imported and built (jsonargparse's class_path), so only these packages' classes are taken from it.
TRUSTED_CLASS_PREFIXES = ("lit_snn.", "lightning.", "pytorch_lightning.", "torch.", "torchmetrics.")


def check_class_paths(config: Any, where: str, at: str = "") -> None:
    """Refuse (``ExpectedError``, nothing imported) a ``class_path`` in ``config`` outside
    ``TRUSTED_CLASS_PREFIXES``; a bare class name (jsonargparse resolves it among the subclasses
    already imported) is fine."""
    if isinstance(config, dict):
        for key, value in config.items():
            path = f"{at}.{key}" if at else str(key)
            if key == "class_path" and isinstance(value, str) and "." in value \
                    and not value.startswith(TRUSTED_CLASS_PREFIXES):
                raise ExpectedError(f"{where} names the class {value!r} at {path}: a run's config may only name "
                                    f"classes of {', '.join(p.rstrip('.') for p in TRUSTED_CLASS_PREFIXES)}; "
                                    "refused, nothing imported")
            check_class_paths(value, where, path)
    elif isinstance(config, list):
        for i, value in enumerate(config):
            check_class_paths(value, where, f"{at}[{i}]")


def _reason(exc: BaseException) -> str:
    """A refused connection or a timeout (the innermost OSError) rather than the wrappers around it;
    else the first line of the message."""
    inner = exc
    while (inner.__cause__ or inner.__context__) is not None:
        inner = inner.__cause__ or inner.__context__
    text = str(inner if isinstance(inner, OSError) else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class TrialRun:
    """One MLflow run's record read through ``MlflowClient``: its config, thread count, metrics and artifacts."""

    def __init__(self, run_id: str, tracking_uri: str) -> None:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        store = sqlite_path(tracking_uri)
        if store is not None and not store.is_file():
            raise ExpectedError(f"no MLflow store at {store} (give the study's --store-dir or --tracking-uri)")
        check_store(tracking_uri)
        # fail in seconds on an unreachable server, not after minutes of retries
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # our lines say what was fetched
        self.run_id, self.tracking_uri = run_id, tracking_uri
        try:
            self.client = MlflowClient(tracking_uri=tracking_uri)
            run = self.client.get_run(run_id)
            self.files = sorted(self._artifact_files())
            self.config = self._read_config()
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise ExpectedError(f"no run {run_id!r} in {tracking_uri}") from None
            raise ExpectedError(f"cannot read run {run_id!r} from {tracking_uri}: {_reason(exc)}") from exc
        self.params: dict[str, str] = dict(run.data.params)
        self.metrics: dict[str, float] = dict(run.data.metrics)
        self.threads = int(self.params[THREADS_PARAM]) if THREADS_PARAM in self.params else None

    def _read_config(self) -> dict:
        """The run's ``CONFIG_ARTIFACT``, checked (a run config naming trusted classes only), without
        ``trainer.default_root_dir`` (where to write, not a result setting)."""
        import yaml

        if CONFIG_ARTIFACT not in self.files:
            raise ExpectedError(f"run {self.run_id!r} has no {CONFIG_ARTIFACT} artifact: not a lit_snn trial run")
        with tempfile.TemporaryDirectory(prefix="lit_snn_run_") as tmp:
            config = yaml.safe_load(Path(self.download(CONFIG_ARTIFACT, tmp)).read_text())
        if not isinstance(config, dict) or not isinstance(config.get("trainer", {}), dict):
            raise ExpectedError(f"the {CONFIG_ARTIFACT} of run {self.run_id!r} is not a run config")
        check_class_paths(config, f"the {CONFIG_ARTIFACT} of run {self.run_id!r}")
        config.get("trainer", {}).pop("default_root_dir", None)
        return config

    def _artifact_files(self, path: str | None = None) -> Iterator[str]:
        for info in self.client.list_artifacts(self.run_id, path):
            if info.is_dir:
                yield from self._artifact_files(info.path)
            else:
                yield info.path

    def download(self, artifact_path: str, dst: str) -> str:
        """The local path of one artifact of the run, downloaded into the folder ``dst``."""
        import mlflow.artifacts

        return mlflow.artifacts.download_artifacts(run_id=self.run_id, artifact_path=artifact_path, dst_path=dst,
                                                   tracking_uri=self.tracking_uri)

    def checkpoint(self, choice: str | None = None) -> str:
        """The checkpoint artifact to use: ``choice``, or the run's only ``*.ckpt`` artifact."""
        ckpts = [f for f in self.files if f.endswith(".ckpt")]
        if choice is not None:
            if choice not in self.files:
                raise ExpectedError(f"run {self.run_id!r} has no artifact {choice!r}"
                                    + (f"; its checkpoints: {', '.join(ckpts)}" if ckpts else ""))
            return choice
        if not ckpts:
            raise ExpectedError(f"run {self.run_id!r} logged no checkpoint (*.ckpt artifact): nothing to evaluate")
        if len(ckpts) > 1:
            raise ExpectedError(f"run {self.run_id!r} has {len(ckpts)} checkpoints; choose one with --ckpt: "
                                + ", ".join(ckpts))
        return ckpts[0]

    def logged_test_metrics(self) -> dict[str, float]:
        return {k: v for k, v in sorted(self.metrics.items()) if k.startswith("test/")}
