"""How a study runs (``StudyOptions``) and the names under which it records things on Optuna's trials.

The names are read back by resume, the stale-trial repair, the progress lines and ``compare``:
they never change (a study started by an older version must resume under a newer one).
"""

from __future__ import annotations

from dataclasses import dataclass

KEY_ATTR = "key"  # user attr: the grid point of an ablation trial
RUN_ATTR = "mlflow_run_id"  # user attr: the trial's nested MLflow run
REPEAT_ATTR = "repeat_of"  # user attr: the finished sweep trial whose params (and values) a sweep trial repeats
POINT_ATTR = "lit_snn:point"  # system attr: a queued ablation trial's point {values, seed, raw} (trial.py)
WORKER_ATTR = "lit_snn:worker"  # system attr: host/pid of the process running the trial
DUPLICATE_ATTR = "lit_snn:duplicate_of"  # system attr: the trial that already had this point
INTERRUPTED_ATTR = "lit_snn:interrupted"  # system attr: the number of a trial stopped by a signal (re-queued)
FIXED_PARAMS_ATTR = "fixed_params"  # system attr (Optuna's): the params ``enqueue_trial`` fixed


@dataclass
class StudyOptions:
    """Where a study lives and how it runs (the CLI fills this from its flags)."""

    storage: str
    tracking_uri: str
    study_name: str
    artifact_root: str | None = None
    work_dir: str = ".lit_snn_cache/lightning"
    workers: int = 1
    heartbeat_s: int = 10
    grace_s: int | None = None  # default: 6 heartbeats
    stop_grace_s: float = 10.0  # after SIGTERM: seconds a process may take to stop before it is ended (watchdog.py)
    storage_retry_s: float = 120.0  # a study storage unreachable for up to this long is waited for (storage.py)
    max_failures: int | None = None  # sweeps: stop asking after this many failed trials (default n_trials)
    log_checkpoints: bool = True  # each trial's best checkpoint as an MLflow artifact
    neurobench: bool = False  # NeuroBench's metrics of each trial at test time (neurobench/...)
    verbose: bool = False  # tracebacks of expected trial failures too
