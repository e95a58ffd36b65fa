"""Run an ablation or a sweep as an Optuna study shared by worker processes through an RDB storage.

Ablation: every grid point x seed is queued exactly once (trial_queue.py); workers only *pop* queued
trials, so nothing is sampled and no point runs twice, whatever the number of workers or machines.
Sweep: workers run ``study.optimize`` (seeded TPE, NSGA-II or random) until ``n_trials`` trials are
finished or running (loops.py). A sweep with several ``objectives`` is an Optuna multi-objective
study (one direction per objective; no pruning, which Optuna does not support there).

Resume = run the same command again. Finished trials are kept; trials left RUNNING by dead workers
are failed and their points queued again (``StudyHandle.reap``). One MLflow parent run per study is
claimed atomically in the study storage. The parts: trial_queue.py (queue, claims, stale trials),
trial.py (a trial's frozen context, its plan, ``run_trial``), loops.py (one worker loop per kind),
worker_processes.py (``--workers N``); this module opens the study and its parent run, runs the
loops (adaptive seeds: in rounds) and sums up.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from optuna.trial import TrialState

from ..store_files import safe_url
from ..trial_record import (
    FINGERPRINT_ATTR,
    PARENT_RUN_ATTR,
    TAG_BEST,
    TAG_BEST_RUN,
    TAG_NOTE,
    TAG_OPTUNA_STORAGE,
    TAG_PARETO,
)
from .adaptive import enqueue_round, round_keys, run_rounds
from .loops import TrialFailed, work
from .options import DUPLICATE_ATTR, KEY_ATTR, POINT_ATTR, REPEAT_ATTR, RUN_ATTR, WORKER_ATTR, StudyOptions
from .progress import Follower, Progress, Ticking, trial_label, trial_point
from .space import GridPoint, check_data, check_sweep, expand_grid, grid_data_checks
from .spec import AblationSpec, StudySpec, SweepSpec
from .storage import make_storage, study_attr_once
from .tracking import Tracker, check_reachable, is_server
from .training import run_training
from .trial import TrialContext
from .trial_queue import DONE, LIVE, StudyHandle
from .worker_processes import run_processes
from .yamlio import SpecError, dump_yaml

__all__ = ["DONE", "DUPLICATE_ATTR", "FINGERPRINT_ATTR", "KEY_ATTR", "LIVE", "POINT_ATTR", "REPEAT_ATTR", "RUN_ATTR",
           "TAG_BEST", "TAG_BEST_RUN", "TAG_PARETO", "WORKER_ATTR", "StudyHandle", "StudyOptions", "StudyOutcome",
           "TrialFailed", "run_study", "validate"]



@dataclass
class StudyOutcome:
    """What one invocation left behind."""

    study_name: str
    experiment: str
    experiment_id: str
    parent_run_id: str
    counts: dict[str, int] = field(default_factory=dict)
    pending: int = 0  # trials not finished (queued, running elsewhere or failed)
    failed_keys: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    idle: bool = False  # nothing was left to run: every trial was finished before this invocation
    last_finished: datetime | None = None  # when the study's last trial finished (Optuna's local time)

    @property
    def ok(self) -> bool:
        return not self.failed_keys


def validate(spec: StudySpec) -> list[GridPoint] | None:
    """Resolve every trial config up front, check the objectives against the metrics the training
    logs and the datasets' files (``SpecError`` on anything wrong); the grid for ablations."""
    if isinstance(spec, AblationSpec):
        points = expand_grid(spec)
        check_data(spec, grid_data_checks(points))
        return points
    check_data(spec, [check_sweep(spec).check_data])  # the base's data: search parameters rarely change it
    return None


def run_study(spec: StudySpec, options: StudyOptions, log: Callable[[str], None] = print) -> StudyOutcome:
    """Validate, open (or resume) the study and its MLflow parent run, and run it with ``options.workers``.

    Nothing is created in Optuna or MLflow unless every trial config resolves, every objective is
    a metric the training logs and the tracking server answers.
    """
    started = time.time()
    points = validate(spec)
    total = len(points) if points is not None else spec.n_trials
    ctx, handle = open_study(spec, options, points, total, log)
    handle.reap()
    handle.close_runs_left_running(ctx.experiment_id)
    # new, and failed last time (adaptive seeds: of the current round)
    added = enqueue_round(handle) if spec.adaptive else \
        handle.enqueue_missing() if isinstance(spec, AblationSpec) else 0
    idle = announce(ctx, handle, total, added)
    if not idle:
        from lit_snn.neurons.cpu.warmup import precompile_cpu_kernels  # imports torch: not at the CLI's start

        with Ticking(log, "compiling the CPU kernels"):
            precompile_cpu_kernels([p.config for p in points] if points is not None else [spec.base], log)
    deadline = started + spec.time_limit_s if spec.time_limit_s else None
    interrupted = False
    follower = None if idle else follow_progress(handle, spec, options, total, log).start()
    try:
        if not idle:
            _run_loops(ctx, handle, deadline)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        if follower is not None:
            follower.stop()
        outcome = summarize(ctx, handle, started)
        close_parent(handle, ctx.tracker, spec, outcome, interrupted)
    outcome.idle = idle
    outcome.last_finished = max((t.datetime_complete for t in handle.trials() if t.datetime_complete), default=None)
    return outcome


def open_study(spec: StudySpec, options: StudyOptions, points: list[GridPoint] | None, total: int,
          log: Callable[[str], None]) -> tuple[TrialContext, StudyHandle]:
    """The study (created, or resumed when its fingerprint matches), its MLflow parent run, and the
    context this process runs trials in."""
    check_reachable(options.tracking_uri)
    tracker = Tracker(options.tracking_uri, options.artifact_root)  # creates the MLflow store once, here
    handle = StudyHandle(spec, options, 0, create=True, points=points, log=log, tracker=tracker)
    stored = handle.study.user_attrs.get(FINGERPRINT_ATTR)
    if stored is not None and stored != spec.fingerprint:
        raise SpecError(
            f"study {options.study_name!r} in {safe_url(options.storage)} was made from a different "
            f"{spec.kind} (fingerprint {stored}, this file gives {spec.fingerprint}); drop --study-name to use "
            f"the default name {spec.default_study_name!r}, or pick a new one"
        )
    if stored is None:
        handle.study.set_user_attr(FINGERPRINT_ATTR, spec.fingerprint)
    experiment_id = tracker.experiment_id(spec.experiment, description=spec.description)
    parent_run_id = _parent_run(handle, tracker, spec, experiment_id, total)
    tracker.client.update_run(parent_run_id, status="RUNNING")  # also repairs a run left by a killed parent
    # run_training looked up here, at call time: the tests plant stand-ins in this module
    return TrialContext(spec, options, tracker, experiment_id, parent_run_id, 0, log, run_training), handle


def announce(ctx: TrialContext, handle: StudyHandle, total: int, added: int) -> bool:
    """The study's header lines; whether nothing is left to run (every trial finished before)."""
    spec, options, log = ctx.spec, ctx.options, ctx.log
    counts = handle.counts()
    log(f"study {options.study_name} ({spec.kind}, {total} trials) in {safe_url(options.storage)}; "
        f"MLflow experiment {spec.experiment!r} run {ctx.parent_run_id} at {ctx.tracker.tracking_uri}")
    log(f"  finished {counts['COMPLETE'] + counts['PRUNED']}, queued {counts['WAITING']} (new {added}), "
        f"running elsewhere {counts['RUNNING']}; {options.workers} worker(s)")
    if is_server(ctx.tracker.tracking_uri):
        log(f"  MLflow UI: {ctx.tracker.tracking_uri.rstrip('/')}/#/experiments/{ctx.experiment_id}/runs/"
            f"{ctx.parent_run_id}")
    idle = not counts["WAITING"] and not counts["RUNNING"] and (
        isinstance(spec, AblationSpec) or counts["COMPLETE"] + counts["PRUNED"] >= spec.n_trials)
    if idle:
        log("  nothing left to run: every trial of the study is finished")
    return idle


def _run_loops(ctx: TrialContext, handle: StudyHandle, deadline: float | None) -> None:
    """The worker loops in this process (one worker) or in worker processes; adaptive seeds: round by round."""

    def run_workers() -> None:  # until the queue is empty (or the deadline)
        if ctx.options.workers <= 1:
            work(ctx, handle, deadline)
        else:
            run_processes(ctx.spec, ctx.options, ctx.experiment_id, ctx.parent_run_id, deadline, ctx.log,
                          requeued=handle.requeued)

    if ctx.spec.adaptive:
        run_rounds(handle, run_workers, ctx.log)  # queue a round, run it, decide, until all are decided
    else:
        run_workers()


def _parent_run(handle: StudyHandle, tracker: Tracker, spec: StudySpec, experiment_id: str, total: int) -> str:
    """The study's one MLflow parent run, created by whichever process gets there first."""
    options = handle.options
    tags = {"lit_snn.kind": spec.kind, "lit_snn.fingerprint": spec.fingerprint, "lit_snn.spec_file": spec.source or "",
            TAG_OPTUNA_STORAGE: safe_url(options.storage), "lit_snn.metric": ",".join(spec.metrics),
            "lit_snn.direction": ",".join(spec.directions), **spec.space_tag()}
    if spec.description:
        tags[TAG_NOTE] = spec.description
    params = [("metric", ",".join(spec.metrics)), ("direction", ",".join(spec.directions)),
              *spec.space_params(), ("n_trials", total)]
    return study_attr_once(
        handle.storage, handle.study_id, PARENT_RUN_ATTR,
        make=lambda: tracker.create_parent_run(experiment_id, options.study_name, tags, params,
                                               {"study.yaml": dump_yaml(spec.describe())}),
        valid=lambda run_id: tracker.is_parent_run(run_id, experiment_id))


def follow_progress(handle: StudyHandle, spec: StudySpec, options: StudyOptions, total: int,
            log: Callable[[str], None]) -> Follower:
    """The progress lines of this invocation, from the study's storage (``progress.py``)."""
    reader = make_storage(options.storage, heartbeat_interval=None)  # its own connections: read from a thread
    progress = Progress(handle.trials(), total, metrics=spec.metrics, workers=options.workers,
                        label_of=functools.partial(trial_label, spec), point_of=functools.partial(trial_point, spec),
                        ignore=lambda t: DUPLICATE_ATTR in t.system_attrs)
    return Follower(lambda: reader.get_all_trials(handle.study_id, deepcopy=False), progress, log)


def close_parent(handle: StudyHandle, tracker: Tracker, spec: StudySpec, outcome: StudyOutcome,
                  interrupted: bool) -> None:
    """Record the study's counts on the parent run and close it, unless another process still runs
    trials of it (that one closes it; a dead one's run is reopened by the next invocation)."""
    run_id = outcome.parent_run_id
    tracker.log_metrics(run_id, {f"trials_{k.lower()}": v for k, v in outcome.counts.items()})
    # an ablation has no "best" (that would be its luckiest seed): compare gives each arm a run with its mean and CI
    if spec.multi_objective:  # no single best: the Pareto front (compare lists it)
        front = sorted(t.number for t in handle.study.best_trials)
        tracker.log_metrics(run_id, {"pareto_trials": len(front)})
        tracker.set_tags(run_id, {TAG_PARETO: ",".join(map(str, front))})
    elif isinstance(spec, SweepSpec) and outcome.counts["COMPLETE"]:
        best = handle.study.best_trial
        tracker.log_metrics(run_id, {f"best_trial/{spec.metric}": best.value, "best_trial/number": best.number})
        tracker.set_tags(run_id, {TAG_BEST: best.number, TAG_BEST_RUN: best.user_attrs.get(RUN_ATTR, "")})
    if outcome.counts["RUNNING"] and not interrupted:
        return
    status = "KILLED" if interrupted or (outcome.pending and not outcome.failed_keys) else \
        "FAILED" if outcome.failed_keys else "FINISHED"
    tracker.client.set_terminated(run_id, status)


def summarize(ctx: TrialContext, handle: StudyHandle, started: float) -> StudyOutcome:
    """The invocation's outcome, after a last repair of stale trials and runs left open."""
    spec = ctx.spec
    handle.reap()
    handle.close_runs_left_running(ctx.experiment_id)
    counts = handle.counts()
    outcome = StudyOutcome(ctx.options.study_name, spec.experiment, ctx.experiment_id, ctx.parent_run_id, counts,
                           wall_s=time.time() - started)
    if isinstance(spec, AblationSpec):
        done = {t.user_attrs.get(KEY_ATTR) for t in handle.trials(DONE)}
        failed = {t.user_attrs.get(KEY_ATTR) for t in handle.trials((TrialState.FAIL,))
                  if t.system_attrs.get(DUPLICATE_ATTR) is None}  # trial 0 can be the original
        outcome.failed_keys = sorted(k for k in failed - done if k is not None)
        planned = round_keys(handle) if spec.adaptive else handle.points  # adaptive: none left once decided
        outcome.pending = sum(1 for key in planned if key not in done)
    else:
        outcome.failed_keys = [str(t.number) for t in handle.unretried_failures()]
        outcome.pending = max(0, spec.n_trials - counts["COMPLETE"] - counts["PRUNED"])
    return outcome
