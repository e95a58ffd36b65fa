"""One trial: the frozen context a worker runs it in, its plan (what it trains) and ``run_trial``
(train and test it inside its own MLflow run; its outcome).

A worker builds its ``TrialContext`` once (spec, options, MLflow tracker, the study's experiment and
parent run, its index) and never changes it. A claimed trial gets a ``TrialPlan``: an ablation
trial's from the point its queue entry carries (``POINT_ATTR``, written when it was queued), a sweep
trial's from the values the sampler suggests. An ablation trial queued without that record (a study
started by an older version) is planned from its fixed params: that one point is built, never the grid.
"""

from __future__ import annotations

import math
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback

from ..errors import ConfigError
from ..trial_record import (
    RESUME_ATTR,
    TAG_ERROR,
    TAG_KEY,
    TAG_OPTUNA_STUDY,
    TAG_PRUNED,
    TAG_RETRY_OF,
    TAG_TRIAL,
    TAG_WORKER,
    WORLD_SIZE_PARAM,
)
from .axis_text import axis_tags
from .options import FIXED_PARAMS_ATTR, KEY_ATTR, POINT_ATTR, RUN_ATTR, StudyOptions
from .resume import resume_checkpoint_callback, resume_point
from .space import (
    SEED_PARAM,
    GridPoint,
    decode_value,
    encode_value,
    point_config,
    point_key,
    run_name,
    suggest,
    sweep_config,
    values_key,
)
from .spec import StudySpec
from .storage import outage_kind
from .tracking import Tracker
from .training import resolve_run, run_training
from .workers import HOST


@dataclass(frozen=True)
class TrialContext:
    """What every trial of one worker shares; built once per process, never changed afterwards."""

    spec: StudySpec
    options: StudyOptions
    tracker: Tracker
    experiment_id: str
    parent_run_id: str
    index: int = 0  # the worker's number: its log lines start with [w<index>]
    log: Callable[[str], None] = print
    train: Callable[..., dict[str, float]] = run_training  # the study passes its own (tests plant stand-ins there)
    resumable: bool = False  # a SLURM task: each trial keeps its latest epoch-end checkpoint (preemption.py)
    world_size: int = 1  # a SLURM step's processes fitting each trial together (launchers/ddp_trial.py)

    def say(self, message: str) -> None:
        self.log(f"[w{self.index}] {message}")


@dataclass(frozen=True)
class TrialPlan:
    """What one claimed trial trains."""

    key: str  # an ablation's grid key, a sweep's values as text (the MLflow tag ``lit_snn.key``)
    name: str  # the MLflow run name
    config: dict  # resolved: logged as params (it carries ``trainer.logger: false`` from the resolution)
    raw: dict  # as written: what the training gets (its logger is the trial's MLflow run)
    values: dict[str, Any]  # axis or search values: the run's ``axis.*`` tags


class TrialOutcome(NamedTuple):
    state: str  # COMPLETE | PRUNED | FAIL
    values: list[float] | None  # the objectives (file order) of a COMPLETE trial


# ---------------------------------------------------------------------- plans
def point_record(point: GridPoint) -> dict:
    """What a queued ablation trial carries (``POINT_ATTR``) so that its worker never expands the grid."""
    return {"values": point.values, "seed": point.seed, "raw": point.raw}


def _queued_point(spec: StudySpec, trial: optuna.trial.Trial, key: str) -> tuple[dict[str, Any], int, dict]:
    """``(axis values, seed, raw config)`` of a claimed ablation trial, from its record or else its fixed params."""
    system = trial.storage.get_trial(trial._trial_id).system_attrs
    record = system.get(POINT_ATTR)
    if record is not None:
        values, seed, raw = record["values"], record["seed"], record["raw"]
    else:  # queued by an older version: this one point from its params
        fixed = system.get(FIXED_PARAMS_ATTR, {})
        values = {path: decode_value(fixed[path]) for path in spec.axes if path in fixed}
        seed, raw = fixed.get(SEED_PARAM), None
    known = len(values) == len(spec.axes) and seed in spec.seeds and all(v in spec.axes[p] for p, v in values.items())
    if not known or point_key(values, seed) != key:
        raise RuntimeError(f"trial {trial.number} has key {key!r}, which is not a point of this grid")
    return values, seed, raw if raw is not None else point_config(spec, values, seed)


def ablation_plan(spec: StudySpec, trial: optuna.trial.Trial) -> TrialPlan:
    """The plan of a claimed ablation trial (registers its Optuna params, which the queue fixed)."""
    key = trial.user_attrs.get(KEY_ATTR)
    values, seed, raw = _queued_point(spec, trial, key)
    for path, choices in spec.axes.items():
        got = decode_value(trial.suggest_categorical(path, [encode_value(v) for v in choices]))
        if got != values[path]:
            raise RuntimeError(f"trial {trial.number}: param {path}={got!r} does not match its key {key!r}")
    trial.suggest_categorical(SEED_PARAM, spec.seeds)
    return TrialPlan(key, run_name(values, seed), resolve_run(raw).config, raw, values)


def sweep_plan(spec: StudySpec, trial: optuna.trial.Trial) -> TrialPlan:
    """The plan of a sweep trial (samples its params, or replays those already suggested or re-queued)."""
    values = suggest(trial, spec)
    config, raw = sweep_config(spec, values)
    return TrialPlan(values_key(values), f"trial {trial.number}: {run_name(values)}", config, raw, values)


# ---------------------------------------------------------------------- running
def close_run(tracker: Tracker | None, run_id: str | None, state: str, tags: dict | None = None,
              status: str | None = None, say: Callable[[str], None] = print) -> None:
    """Close a trial's MLflow run after a failure without letting a tracking error hide the first one
    (a run left open so is closed by the next invocation: ``StudyHandle.close_runs_left_running``)."""
    if not run_id or tracker is None:
        return
    try:
        tracker.finish(run_id, state, tags, status=status)
    except Exception as exc:  # noqa: BLE001
        say(f"could not close MLflow run {run_id}: {exc}")


def objective_values(spec: StudySpec, metrics: dict[str, float]) -> list[float]:
    """The trial's objective values (file order) from the training's result; a NaN one raises."""
    values = []
    for metric in spec.metrics:
        if metric not in metrics:  # checked against the module's metric names before the study
            raise KeyError(f"run_training returned no {metric!r} (got {sorted(metrics)})")
        value = float(metrics[metric])
        if math.isnan(value):
            raise ConfigError(f"{metric} is NaN")
        values.append(value)
    return values


def plan_and_run(ctx: TrialContext, trial: optuna.trial.Trial,
                 make_plan: Callable[[StudySpec, optuna.trial.Trial], TrialPlan]) -> TrialOutcome:
    """``run_trial`` with the plan ``make_plan`` gives; a plan that cannot be made fails the trial alone."""
    started = time.time()
    try:
        plan = make_plan(ctx.spec, trial)
    except Exception as exc:  # noqa: BLE001 - one failing trial must not stop the study
        return _failed(ctx, trial, "?", None, exc, started)
    return run_trial(ctx, trial, plan)


def run_trial(ctx: TrialContext, trial: optuna.trial.Trial, plan: TrialPlan) -> TrialOutcome:
    """Train and test one trial inside its own MLflow run; its outcome (Optuna is told by the caller).

    A failing trial does not stop the study: an expected failure (bad data, disk full) is one log
    line, anything else its traceback. An interrupt closes the run as KILLED and goes up.
    """
    run_id, started = None, time.time()
    try:
        root = trial_dir(ctx.options, trial.number)
        raw, run_id = plan.raw, _resumed_run(ctx, trial)
        if run_id is None:
            run_id = _start_run(ctx, trial, plan)
        elif (point := resume_point(trial.storage.get_trial(trial._trial_id).system_attrs)) is not None:
            raw = {**raw, "ckpt_path": str(point[0])}
            ctx.say(f"trial {trial.number} {plan.key}: resumed from its checkpoint after epoch {point[1] + 1}")
        metrics = ctx.train(raw, callbacks=_callbacks(ctx, trial, root), default_root_dir=str(root),
                            loggers=[ctx.tracker.lightning_logger(run_id, ctx.options.log_checkpoints)])
        # per-epoch curves and test metrics are in the run already (Lightning's logger); add the rest
        ctx.tracker.log_metrics(run_id, metrics, new_only=True)
        objective = objective_values(ctx.spec, metrics)
        ctx.tracker.finish(run_id, "COMPLETE")  # the invoking process's progress line reports it (progress.py)
        return TrialOutcome("COMPLETE", objective)
    except optuna.TrialPruned as exc:
        close_run(ctx.tracker, run_id, "PRUNED", {TAG_PRUNED: str(exc)}, say=ctx.say)
        return TrialOutcome("PRUNED", None)
    except (KeyboardInterrupt, SystemExit) as exc:  # Lightning turns Ctrl-C/SIGTERM into exit(1)
        close_run(ctx.tracker, run_id, "FAIL", {TAG_ERROR: "interrupted"}, status="KILLED", say=ctx.say)
        raise KeyboardInterrupt from exc
    except Exception as exc:  # noqa: BLE001 - one failing trial must not stop the study
        if outage_kind(exc) is not None:  # a full or unreachable store stops the study (its trial is re-queued)
            close_run(ctx.tracker, run_id, "FAIL", {TAG_ERROR: "storage"}, status="KILLED", say=ctx.say)
            raise
        return _failed(ctx, trial, plan.key, run_id, exc, started)


def trial_dir(options: StudyOptions, number: int) -> Path:
    """The folder of trial ``number``'s Lightning checkpoints."""
    return Path(options.work_dir) / options.study_name.replace("/", "_") / f"trial-{number:04d}"


def _resumed_run(ctx: TrialContext, trial: optuna.trial.Trial) -> str | None:
    """The MLflow run of a trial its requeued SLURM task takes back (reopened), else None."""
    frozen = trial.storage.get_trial(trial._trial_id)
    run_id = frozen.user_attrs.get(RUN_ATTR)
    if RESUME_ATTR not in frozen.system_attrs or not run_id:
        return None
    ctx.tracker.client.update_run(run_id, status="RUNNING")  # the interrupted fit's logger had ended it
    return run_id


def _start_run(ctx: TrialContext, trial: optuna.trial.Trial, plan: TrialPlan) -> str:
    """The trial's nested MLflow run (its id recorded on the trial) with the record that redoes it."""
    tags = {TAG_KEY: plan.key, TAG_TRIAL: trial.number, TAG_OPTUNA_STUDY: ctx.options.study_name,
            TAG_WORKER: f"{HOST}:{os.getpid()}",
            **axis_tags(plan.values)}
    retry_of = RetryHeartbeatStaleTrialCallback.retried_trial_number(trial.storage.get_trial(trial._trial_id))
    if retry_of is not None:
        tags[TAG_RETRY_OF] = retry_of
    run_id = ctx.tracker.start_trial_run(ctx.experiment_id, ctx.parent_run_id, ctx.options.study_name,
                                         plan.name[:250], tags)
    trial.set_user_attr(RUN_ATTR, run_id)
    # the trainer's logger/callbacks are the orchestrator's (MLflow, pruning), not part of the config
    ctx.tracker.log_run_record(run_id, plan.config, plan.raw)
    if ctx.world_size > 1:  # a DDP fit: the batch each step averages is world_size times the config's
        ctx.tracker.log_params(run_id, [(WORLD_SIZE_PARAM, ctx.world_size)])
    return run_id


def _callbacks(ctx: TrialContext, trial: optuna.trial.Trial, root: Path) -> list:
    """The trial's Lightning callbacks: ``training_callbacks`` and a sweep's pruning."""
    callbacks = training_callbacks(ctx.options, ctx.resumable, root)
    if ctx.spec.prunes:  # a sweep with a pruner (never multi-objective)
        from optuna_integration import PyTorchLightningPruningCallback

        callbacks.append(PyTorchLightningPruningCallback(trial, ctx.spec.pruner.get("monitor", "val/acc")))
    return callbacks


def training_callbacks(options: StudyOptions, resumable: bool, root: Path) -> list:
    """The callbacks of a trial's fit that do not talk to Optuna (every DDP rank of the trial has them):
    NeuroBench's metrics (``--neurobench``) and, in a SLURM task (``resumable``), the trial's latest
    epoch-end checkpoint (what a requeued task resumes it from)."""
    callbacks: list = [resume_checkpoint_callback(root)] if resumable else []
    if options.neurobench:
        from lit_snn.neurobench import NeuroBenchCallback

        callbacks.append(NeuroBenchCallback())
    return callbacks


def _failed(ctx: TrialContext, trial: optuna.trial.Trial, key: str, run_id: str | None, exc: Exception,
            started: float) -> TrialOutcome:
    """Report a failed trial (one line if expected, else its traceback) and close its run; called in ``except``."""
    from lit_snn.errors import describe_expected

    expected = describe_expected(exc)
    error = expected or f"{type(exc).__name__}: {exc}"
    detail = "" if expected and not ctx.options.verbose else f"\n{traceback.format_exc()}"
    ctx.say(f"trial {trial.number} FAIL {key} {error} ({time.time() - started:.1f} s){detail}")
    close_run(ctx.tracker, run_id, "FAIL", {TAG_ERROR: error}, say=ctx.say)
    return TrialOutcome("FAIL", None)
