"""``lit-snn status FILE``: where a study stands, read from its Optuna storage (nothing is changed).

Finished / running / queued / failed trials, per worker (host and SLURM job, as each worker recorded
itself on the trials it claimed), the time since the study's first trial started and an estimate of
the time left (progress.py's: the mean duration of the finished trials times the points left, less
what the running trials have done, shared over the workers running now). Local and cluster studies
alike: every worker writes the same storage.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections import Counter, defaultdict
from datetime import datetime

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..store_files import safe_url
from .options import DUPLICATE_ATTR, KEY_ATTR, WORKER_ATTR
from .progress import Progress, clock, trial_label, trial_point
from .spec import StudySpec, detect_kind
from .storage import default_paths, make_storage, sqlite_path
from .yamlio import SpecError

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _parser() -> argparse.ArgumentParser:
    from .cli import _common

    parser = argparse.ArgumentParser(prog="lit-snn status", description="Where a study of FILE stands: finished, "
                                     "running, queued and failed trials, per host and SLURM job, elapsed time "
                                     "and an estimate of the time left (read only).")
    _common(parser)
    parser.add_argument("--storage", default=None,
                        help="Optuna storage of the study (default: sqlite:///<store-dir>/optuna.db; "
                             "journal:PATH or postgresql://... as given to ablate/sweep)")
    return parser


def worker_label(trial: FrozenTrial) -> str:
    """``host job 123_4`` (a SLURM task) or ``host pid 567`` (a local worker) of the trial's worker."""
    worker = trial.system_attrs.get(WORKER_ATTR)
    if not isinstance(worker, dict):
        return "unknown worker"
    if worker.get("job"):
        return f"{worker.get('host')} job {worker['job']}"
    return f"{worker.get('host')} pid {worker.get('pid')}"


def _total(spec: StudySpec, trials: list[FrozenTrial]) -> int:
    """The study's points: a sweep's ``n_trials``; an ablation's queued keys (every point is queued when
    the study is opened; resolving the grid again would build a Trainer per point)."""
    if spec.kind == "sweep":
        return spec.n_trials
    return len({t.user_attrs.get(KEY_ATTR) for t in trials if DUPLICATE_ATTR not in t.system_attrs})


def status_lines(spec: StudySpec, trials: list[FrozenTrial], total: int, now: float | None = None) -> list[str]:
    """The report of a study's ``trials`` (``total``: its points)."""
    now = time.time() if now is None else now
    trials = [t for t in trials if DUPLICATE_ATTR not in t.system_attrs]
    by_state = Counter(t.state for t in trials)
    point, label_of = functools.partial(trial_point, spec), functools.partial(trial_label, spec)
    done = {point(t) for t in trials if t.state in FINISHED}
    failed_open = sorted({str(point(t)) for t in trials if t.state == TrialState.FAIL} - {str(p) for p in done})
    lines = [f"  finished {len(done)}/{total} ({by_state[TrialState.COMPLETE]} complete, "
             f"{by_state[TrialState.PRUNED]} pruned), running {by_state[TrialState.RUNNING]}, "
             f"queued {by_state[TrialState.WAITING]}, failed {by_state[TrialState.FAIL]}"
             + (f" ({len(failed_open)} not finished since: re-run the study to retry them)" if failed_open else "")]
    starts = [t.datetime_start.timestamp() for t in trials if t.datetime_start is not None]
    if starts:
        running = [t for t in trials if t.state == TrialState.RUNNING]
        progress = Progress([], total, point_of=point, label_of=label_of,
                            metrics=spec.metrics, workers=len({worker_label(t) for t in running}),
                            started=min(starts))
        progress.update(trials, now)  # every finished trial's duration: the estimate's mean
        eta = progress.eta(trials, now)
        ends = [t.datetime_complete.timestamp() for t in trials if t.datetime_complete is not None]
        until = now if running or by_state[TrialState.WAITING] or not ends else max(ends)
        lines.append(f"  elapsed {clock(until - min(starts))} since the first trial started"
                     + (f"; about {clock(eta)} left at the current pace" if eta and (running or len(done) < total)
                        else ""))
    workers: dict[str, Counter] = defaultdict(Counter)
    current: dict[str, list[str]] = defaultdict(list)
    for trial in trials:
        if trial.state == TrialState.WAITING:
            continue
        label = worker_label(trial)
        workers[label][trial.state.name] += 1
        if trial.state == TrialState.RUNNING and trial.datetime_start is not None:
            current[label].append(f"{label_of(trial)} for {clock(now - trial.datetime_start.timestamp())}")
    if workers:
        lines.append("  by worker:")
    for label in sorted(workers):
        counts = workers[label]
        text = ", ".join(f"{counts[s]} {s.lower()}" for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING") if counts[s])
        lines.append(f"    {label}: {text}" + (f" (now {'; '.join(current[label])})" if current[label] else ""))
    return lines


def status_main(argv: list[str] | None = None) -> int:
    """``lit-snn status FILE [--store-dir DIR | --storage URL] [--study-name NAME]``: a study's state."""
    from lit_snn.errors import run_command

    args = _parser().parse_args(argv)
    return run_command("lit-snn status", lambda: _status(args), args.verbose)


def _status(args: argparse.Namespace) -> int:
    from .cli import _error, _load

    try:
        spec = _load(args, detect_kind(args.file))
        storage_url = args.storage or default_paths(args.store_dir)["storage"]
        name = args.study_name or spec.default_study_name
        path = sqlite_path(storage_url)
        if path is not None and not path.is_file():
            raise SpecError(f"no study store {path}: run `lit-snn {_verb(spec)} {args.file}` first "
                            "(or give its --store-dir / --storage)")
        storage = make_storage(storage_url, heartbeat_interval=None)
        if name not in {s.study_name for s in storage.get_all_studies()}:
            raise SpecError(f"no study {name!r} in {safe_url(storage_url)}: run `lit-snn {_verb(spec)} {args.file}` "
                            "first (same --set/--max-epochs), or name it with --study-name")
        study = optuna.load_study(study_name=name, storage=storage)
        trials = study.get_trials(deepcopy=False)
    except SpecError as exc:
        return _error("lit-snn status", exc)
    print(f"study {name} ({spec.kind}) in {safe_url(storage_url)} at {datetime.now():%Y-%m-%d %H:%M:%S}")
    for line in status_lines(spec, trials, _total(spec, trials)):
        print(line)
    return 0


def _verb(spec: StudySpec) -> str:
    return "ablate" if spec.kind == "ablation" else "sweep"
