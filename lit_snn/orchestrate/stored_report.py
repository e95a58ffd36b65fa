"""The comparison a finished study already has: its ``report.md``, printed instead of redrawn.

``compare`` re-reads every run from MLflow and redraws the plots (a minute or two for the default
ablation on a shared 2-core machine). When an invocation has nothing left to run, the report the
last compare wrote (``<results-dir>/<experiment>/<study>/report.md``) says the same, provided that
it was written after the study's last trial finished, for the same MLflow parent run and the same
study file (its report-only settings, ``baseline`` or ``alpha``, change the report, not the
study). A stamp beside the report (``report.stamp.json``: the parent run, a hash of the file's
settings and of the report's text) records that when ``compare`` has written it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

from .spec import StudySpec
from .yamlio import dump_yaml

REPORT, STAMP = "report.md", "report.stamp.json"


def report_path(results_dir: str | Path, experiment: str, study_name: str) -> Path:
    """Where ``compare`` writes the report of a study (``compare.compare``'s ``out_dir``)."""
    return Path(results_dir) / experiment / study_name / REPORT


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _stamp(report: Path, spec: StudySpec, parent_run_id: str) -> dict:
    return {"parent_run_id": parent_run_id, "spec": _sha(dump_yaml(spec.describe())),
            "report": _sha(report.read_text())}


def stamp_report(report: Path, spec: StudySpec, parent_run_id: str) -> None:
    """Record that ``report`` (just written by ``compare``) is the report of ``spec``'s study run ``parent_run_id``."""
    report.with_name(STAMP).write_text(json.dumps(_stamp(report, spec, parent_run_id)) + "\n")


def stored_report(report: Path, spec: StudySpec, parent_run_id: str, last_finished: datetime | None) -> str | None:
    """The text of ``report`` when it is the up-to-date report of ``spec``'s study run ``parent_run_id``
    (stamped after ``last_finished``, a naive local time as Optuna's), else None."""
    stamp = report.with_name(STAMP)
    try:
        written = stamp.stat().st_mtime
        recorded = json.loads(stamp.read_text())
        current = _stamp(report, spec, parent_run_id)
    except (OSError, ValueError):
        return None
    if last_finished is None or written <= last_finished.timestamp() or recorded != current:
        return None
    return report.read_text().rstrip("\n")
