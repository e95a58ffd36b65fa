"""How a study runs (``StudyOptions``), and the names under which it records things on Optuna's trials
(``lit_snn.trial_record``'s, imported here for the modules that take them with the options)."""

from __future__ import annotations

from dataclasses import dataclass

from ..trial_record import (
    DUPLICATE_ATTR,
    FIXED_PARAMS_ATTR,
    INTERRUPTED_ATTR,
    KEY_ATTR,
    POINT_ATTR,
    REPEAT_ATTR,
    RUN_ATTR,
    WORKER_ATTR,
)

__all__ = ["DUPLICATE_ATTR", "FIXED_PARAMS_ATTR", "INTERRUPTED_ATTR", "KEY_ATTR", "POINT_ATTR", "REPEAT_ATTR",
           "RUN_ATTR", "WORKER_ATTR", "StudyOptions"]


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
