"""Run an ablation or a sweep as an Optuna study shared by worker processes through an RDB storage.

Ablation: every grid point x seed is enqueued exactly once (``study.enqueue_trial`` with the point
as fixed params and its key as the user attr ``key``); workers only *pop* queued trials, so
nothing is sampled and no point runs twice, whatever the number of workers or machines.
Sweep: workers run ``study.optimize`` (seeded TPE, NSGA-II or random) until ``n_trials`` trials are
finished or running (``MaxTrialsCallback``). A sweep with several ``objectives`` is an Optuna
multi-objective study (one direction per objective; no pruning, which Optuna does not support there).

Resume = run the same command again. Finished trials are kept. A trial left RUNNING by a dead
worker is found stale (its process is gone on this host, or its heartbeat is older than the grace
period) and marked FAIL: an ablation queues its grid point again (``enqueue_missing``), a sweep
re-queues its sampled point with Optuna's ``RetryHeartbeatStaleTrialCallback``. Before running a
popped trial a worker checks that no other trial of the same key is finished or running with a
lower number, which keeps "each point completed once" even when two orchestrators race on one
study. One MLflow parent run per study is claimed atomically in the study storage.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
import traceback
import warnings
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from ..entry_point import imports_without_gc, run_then_exit
from .adaptive import enqueue_round, round_keys, run_rounds
from .axis_text import axis_tags
from .progress import Follower, Progress, Ticking
from .pruning import make_pruner
from .space import (
    SEED_PARAM,
    GridPoint,
    check_data,
    check_sweep,
    decode_value,
    encode_value,
    expand_grid,
    grid_data_checks,
    run_name,
    suggest,
    sweep_config,
)
from .spec import StudySpec, sampler_class
from .storage import make_storage, study_attr_once
from .tracking import (
    PARENT_RUN_ATTR,
    TAG_KEY,
    TAG_TRIAL,
    Tracker,
    check_reachable,
    is_server,
    safe_url,
)
from .training import quiet_libraries, run_training
from .workers import HOST, Heartbeat, die_with_parent, identity, is_dead_local
from .yamlio import SpecError, dump_yaml

KEY_ATTR = "key"  # user attr: the grid point of an ablation trial
RUN_ATTR = "mlflow_run_id"  # user attr: the trial's nested MLflow run
WORKER_ATTR = "lit_snn:worker"  # system attr: host/pid of the process running the trial
DUPLICATE_ATTR = "lit_snn:duplicate_of"  # system attr: the trial that already had this point
REPEAT_ATTR = "repeat_of"  # user attr: the finished sweep trial whose params (and values) a sweep trial repeats
FINGERPRINT_ATTR = "lit_snn:fingerprint"  # study user attr
TAG_BEST, TAG_BEST_RUN = "lit_snn.best_trial", "lit_snn.best_trial_run_id"  # a sweep's parent run: its best trial
TAG_PARETO = "lit_snn.pareto_trials"  # a multi-objective sweep's parent run: the numbers of its Pareto-optimal trials
LIVE = (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)
DONE = (TrialState.COMPLETE, TrialState.PRUNED)


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
    max_failures: int | None = None  # sweeps: stop asking after this many failed trials (default n_trials)
    log_checkpoints: bool = True  # each trial's best checkpoint as an MLflow artifact
    neurobench: bool = False  # NeuroBench's metrics of each trial at test time (neurobench/...)
    verbose: bool = False  # tracebacks of expected trial failures too


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


@dataclass
class _WorkerContext:
    spec: StudySpec
    options: StudyOptions
    experiment_id: str
    parent_run_id: str
    index: int
    deadline: float | None
    threads: int | None
    parent_pid: int


class TrialFailed(Exception):
    """A sweep trial failed (already reported in its MLflow run and our log line)."""


def _make_sampler(spec: StudySpec, index: int, workers: int) -> optuna.samplers.BaseSampler:
    if spec.kind == "ablation":  # every param is fixed by the queue; the sampler never samples
        return optuna.samplers.RandomSampler(seed=index)
    options = {k: v for k, v in spec.sampler.items() if k != "type"}
    seed = options.pop("seed", 0)
    seed = None if seed is None else int(seed) + index  # workers must not draw the same points
    if spec.sampler["type"] == "tpe" and workers > 1:
        options.setdefault("constant_liar", True)  # running trials count as pessimistic results
    # NSGA-II: each worker's sampler builds the next generation from the trials in the shared storage
    return sampler_class(spec.sampler["type"])(seed=seed, **options)


def _expected(exc: BaseException) -> str | None:
    from lit_snn.errors import describe_expected

    return describe_expected(exc)


class StudyHandle:
    """One process's view of the study: claim, run and report trials; find stale ones; queue points."""

    def __init__(self, spec: StudySpec, options: StudyOptions, index: int = 0, *, create: bool = False,
                 points: list[GridPoint] | None = None, log: Callable[[str], None] = print) -> None:
        self.spec, self.options, self.index, self.log = spec, options, index, log
        self._retry = RetryHeartbeatStaleTrialCallback() if spec.kind == "sweep" else None
        self.storage = make_storage(options.storage, options.heartbeat_s, options.grace_s, on_stale=self._on_stale)
        sampler = _make_sampler(spec, index, options.workers)
        max_epochs = spec.base.get("trainer", {}).get("max_epochs")
        pruner = make_pruner(spec.pruner, max_epochs) if spec.kind == "sweep" else optuna.pruners.NopPruner()
        if create:
            self.study = optuna.create_study(storage=self.storage, study_name=options.study_name, sampler=sampler,
                                             pruner=pruner, directions=spec.directions, load_if_exists=True)
            if self.study.metric_names != spec.metrics:  # optuna-dashboard names the objectives by them
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    self.study.set_metric_names(spec.metrics)
        else:
            self.study = optuna.load_study(study_name=options.study_name, storage=self.storage, sampler=sampler,
                                           pruner=pruner)
        self.study_id = self.storage.get_study_id_from_name(options.study_name)
        if spec.kind == "ablation":
            points = points if points is not None else expand_grid(spec)
            self.points = {p.key: p for p in points}
        else:
            self.points = {}
        self.tracker: Tracker | None = None
        self.experiment_id = ""
        self.parent_run_id = ""

    # ------------------------------------------------------------------ queries
    def trials(self, states: tuple[TrialState, ...] | None = None) -> list[optuna.trial.FrozenTrial]:
        # through the study (Optuna's cached storage), which must have seen a trial before it runs
        return self.study.get_trials(deepcopy=False, states=states)

    def _trial_id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)

    def counts(self) -> dict[str, int]:
        out = {state.name: 0 for state in TrialState}
        for trial in self.trials():
            out[trial.state.name] += 1
        return out

    def _live_keys(self) -> set[str]:
        return {t.user_attrs.get(KEY_ATTR) for t in self.trials(LIVE)}

    def unretried_failures(self) -> list[optuna.trial.FrozenTrial]:
        """Sweep trials that failed and were not queued again (stale ones are retried)."""
        retried = {n for t in self.trials() for n in RetryHeartbeatStaleTrialCallback.retry_history(t)}
        return [t for t in self.trials((TrialState.FAIL,)) if t.number not in retried]

    # ------------------------------------------------------------------ queue and stale trials
    def completed_values(self) -> dict[str, float]:
        """Key -> (first) objective value of each COMPLETE ablation trial: what adaptive seeds decide on."""
        return {t.user_attrs.get(KEY_ATTR): t.values[0] for t in self.trials((TrialState.COMPLETE,))}

    def enqueue_missing(self, keys: Collection[str] | None = None) -> int:
        """Queue each grid point (of ``keys``; default: all) that has no waiting, running or finished
        (COMPLETE/PRUNED) trial."""
        live = self._live_keys()
        added = 0
        for key, point in self.points.items():
            if key not in live and (keys is None or key in keys):
                self.study.enqueue_trial(point.params, user_attrs={KEY_ATTR: key})
                added += 1
        return added

    def _on_stale(self, study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        """A stale trial was just marked FAIL: close its MLflow run and queue its point again (a
        sweep's with Optuna's retry callback, an ablation's grid point unless another trial has it)."""
        self.log(f"[w{self.index}] trial {frozen.number} was left running by a dead worker: re-queued")
        run_id = frozen.user_attrs.get(RUN_ATTR)
        if run_id and self.tracker is not None:
            self._close_run(run_id, "FAIL", {"lit_snn.stale": "true",
                                             "lit_snn.error": "worker died; the point was re-queued"}, "KILLED")
        if self._retry is not None:
            self._retry(study, frozen)
        elif frozen.user_attrs.get(KEY_ATTR) in self.points and frozen.user_attrs[KEY_ATTR] not in self._live_keys():
            point = self.points[frozen.user_attrs[KEY_ATTR]]
            self.study.enqueue_trial(point.params, user_attrs={KEY_ATTR: point.key})

    def reap(self) -> None:
        """Fail trials left RUNNING by dead workers (``_on_stale`` queues their points again).

        Optuna's ``fail_stale_trials`` judges by heartbeat only; two cases it cannot see are
        handled first: a worker on this host whose process is gone (found at once, not after the
        grace period) and a trial claimed by a worker that died before its first heartbeat.
        """
        grace = self.options.grace_s or 6 * self.options.heartbeat_s
        for frozen in self.trials((TrialState.RUNNING,)):
            worker = frozen.system_attrs.get(WORKER_ATTR)
            if worker is not None:
                stale = is_dead_local(worker)
            else:  # claimed, then died before recording its worker
                started = frozen.datetime_start
                stale = started is not None and (datetime.now() - started).total_seconds() > grace
            if not stale:
                continue
            trial_id = self._trial_id(frozen.number)
            try:
                if not self.storage.set_trial_state_values(trial_id, TrialState.FAIL):
                    continue
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another process got there first
            self._on_stale(self.study, self.storage.get_trial(trial_id))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(self.study)  # other hosts: heartbeat older than the grace

    # ------------------------------------------------------------------ ablation: claim and run
    def _pop_waiting(self) -> int | None:
        for frozen in self.trials((TrialState.WAITING,)):
            trial_id = self._trial_id(frozen.number)
            try:
                # identity first: a worker killed right after the claim below is then recognised as dead
                # at once (a losing concurrent claimer may overwrite it; claim() records the winner again)
                self.storage.set_trial_system_attr(trial_id, WORKER_ATTR, identity())
                if self.storage.set_trial_state_values(trial_id, TrialState.RUNNING):
                    return trial_id
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
        return None

    def claim(self) -> tuple[optuna.trial.Trial, int] | None:
        """The next queued ablation trial for this worker, or None when the queue is empty."""
        trial_id = self._pop_waiting()
        if trial_id is None:
            return None
        self.storage.set_trial_system_attr(trial_id, WORKER_ATTR, identity())
        return optuna.trial.Trial(self.study, trial_id), trial_id

    def work(self, deadline: float | None = None) -> None:
        """Run trials until none is left (or ``deadline``, a ``time.time()``, has passed)."""
        if self.spec.kind == "sweep":
            return self._optimize(deadline)
        while deadline is None or time.time() < deadline:
            self.reap()
            claimed = self.claim()
            if claimed is None:
                return
            self.run_trial(*claimed)
        self.log(f"[w{self.index}] time limit reached: not starting more trials (re-run to continue)")

    def _duplicate_of(self, number: int, key: str) -> int | None:
        for other in self.trials((TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)):
            same = other.number != number and other.user_attrs.get(KEY_ATTR) == key
            if same and (other.state != TrialState.RUNNING or other.number < number):
                return other.number
        return None

    def run_trial(self, trial: optuna.trial.Trial, trial_id: int) -> str:
        """Run one claimed ablation trial end to end and report it to Optuna and MLflow; returns its state."""
        with Heartbeat(self.storage, trial_id, self.options.heartbeat_s):
            duplicate = self._duplicate_of(trial.number, trial.user_attrs.get(KEY_ATTR))
            if duplicate is not None:
                self.storage.set_trial_system_attr(trial_id, DUPLICATE_ATTR, duplicate)
                self.study.tell(trial, state=TrialState.FAIL)
                self.log(f"[w{self.index}] trial {trial.number}: point already taken by trial {duplicate}, skipped")
                return "SKIPPED"
            try:
                state, values = self._execute(trial)
            except KeyboardInterrupt:
                self.study.tell(trial, state=TrialState.FAIL)
                raise
            if state == "COMPLETE":
                self.study.tell(trial, values)
            else:
                self.study.tell(trial, state=TrialState.PRUNED if state == "PRUNED" else TrialState.FAIL)
        return state

    # ------------------------------------------------------------------ sweep: Optuna's loop
    def _sweep_room(self) -> bool:
        failures = len(self.unretried_failures())
        limit = self.options.max_failures or self.spec.n_trials
        if failures >= limit:
            self.log(f"[w{self.index}] {failures} failed trials (limit {limit}): not asking for more")
            return False
        counts = self.counts()
        return counts["COMPLETE"] + counts["PRUNED"] + counts["RUNNING"] < self.spec.n_trials

    def _finished_twin(self, trial: optuna.trial.Trial) -> optuna.trial.FrozenTrial | None:
        """The COMPLETE trial whose params equal those the sampler just gave ``trial``, tagged on ``trial``
        as ``repeat_of`` (NSGA-II's crossover and mutation can hand out a finished configuration again).

        Its values are reused instead of training again (Optuna's FAQ on duplicated samples): a trial is
        seeded, so retraining would report the same values and the sampler sees the objective's true
        value; failing or pruning the repeat instead would tell it the configuration is bad (a pruned
        trial ranks last in TPE) or drop it from NSGA-II's population, skewing its statistics."""
        suggest(trial, self.spec)  # registers the params; _trial_setup's suggest gets the same values back
        for other in self.trials((TrialState.COMPLETE,)):
            if other.number != trial.number and other.params == trial.params:
                trial.set_user_attr(REPEAT_ATTR, other.number)
                self.log(f"[w{self.index}] trial {trial.number}: the params of trial {other.number}, its values "
                         "reused (not trained again)")
                return other
        return None

    def _optimize(self, deadline: float | None) -> None:
        """``study.optimize`` until ``n_trials`` are finished or running (Optuna runs the heartbeat,
        fails stale trials, pops re-queued ones); stops early after ``max_failures`` failures."""
        self.reap()
        if not self._sweep_room():
            return

        def objective(trial: optuna.trial.Trial):
            self.storage.set_trial_system_attr(trial._trial_id, WORKER_ATTR, identity())
            twin = self._finished_twin(trial)
            if twin is not None:
                return twin.values if self.spec.multi_objective else twin.value
            state, values = self._execute(trial)
            if state == "PRUNED":
                raise optuna.TrialPruned()
            if state != "COMPLETE":
                raise TrialFailed(state)
            return values if self.spec.multi_objective else values[0]

        def stop_when_full(study: optuna.Study, _trial) -> None:
            if not self._sweep_room():
                study.stop()

        timeout = None if deadline is None else max(deadline - time.time(), 1e-3)
        self.study.optimize(objective, timeout=timeout, catch=(TrialFailed,), gc_after_trial=False,
                            callbacks=[optuna.study.MaxTrialsCallback(self.spec.n_trials, states=DONE),
                                       stop_when_full])
        if deadline is not None and time.time() >= deadline and self._sweep_room():
            self.log(f"[w{self.index}] time limit reached: not starting more trials (re-run to continue)")

    # ------------------------------------------------------------------ one trial, either kind
    def _trial_setup(self, trial: optuna.trial.Trial) -> tuple[str, str, dict, dict, dict[str, Any]]:
        """``(key, run name, resolved config, raw config, axis values)`` of a claimed trial (registers
        its Optuna params). The raw config (as written) is what ``run_training`` gets: the resolved
        one carries ``trainer.logger: false`` from validation, which would override the MLflow logger.
        """
        if self.spec.kind == "sweep":
            values = suggest(trial, self.spec)
            key = ",".join(f"{p}={v:.4g}" if isinstance(v, float) else f"{p}={v}" for p, v in values.items())
            return (key, f"trial {trial.number}: {run_name(values)}", *sweep_config(self.spec, values), values)
        key = trial.user_attrs.get(KEY_ATTR)
        point = self.points.get(key)
        if point is None:
            raise RuntimeError(f"trial {trial.number} has key {key!r}, which is not a point of this grid")
        for path, values in self.spec.axes.items():
            got = decode_value(trial.suggest_categorical(path, [encode_value(v) for v in values]))
            if got != point.values[path]:
                raise RuntimeError(f"trial {trial.number}: param {path}={got!r} does not match its key {key!r}")
        trial.suggest_categorical(SEED_PARAM, self.spec.seeds)
        return key, run_name(point.values, point.seed), point.config, point.raw, point.values

    def _close_run(self, run_id: str | None, state: str, tags: dict | None = None, status: str | None = None) -> None:
        """Close a trial's MLflow run after a failure without letting a tracking error hide the first one
        (a run left open so is closed by the next invocation: ``close_runs_left_running``)."""
        if not run_id or self.tracker is None:
            return
        try:
            self.tracker.finish(run_id, state, tags, status=status)
        except Exception as exc:  # noqa: BLE001
            self.log(f"[w{self.index}] could not close MLflow run {run_id}: {exc}")

    def close_runs_left_running(self) -> None:
        """Close the MLflow runs that finished trials left RUNNING, as KILLED for a failed trial, as
        their state says otherwise. A worker that could not close its run leaves that: the workers
        of a killed parent, all interrupted at once, tag their runs FAIL, and in 1 of 4-6 runs of the
        sigkill fault test one of those runs stayed RUNNING (SQLite stores; cause not pinned down);
        no stale-trial check sees a FAIL trial again."""
        if self.tracker is None or not self.experiment_id:
            return
        running = self.tracker.running_trial_runs(self.experiment_id, self.options.study_name)
        if not running:
            return
        for frozen in self.trials((TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)):
            run_id = frozen.user_attrs.get(RUN_ATTR)
            if run_id in running:
                self.log(f"[w{self.index}] trial {frozen.number}'s MLflow run was left running: closed now")
                self._close_run(run_id, frozen.state.name, {"lit_snn.closed_late": "true"},
                                "KILLED" if frozen.state == TrialState.FAIL else None)

    def _objective_values(self, metrics: dict[str, float]) -> list[float]:
        """The trial's objective values (file order) from ``run_training``'s result; a NaN one raises."""
        values = []
        for metric in self.spec.metrics:
            if metric not in metrics:  # checked against the module's metric names before the study
                raise KeyError(f"run_training returned no {metric!r} (got {sorted(metrics)})")
            value = float(metrics[metric])
            if math.isnan(value):
                raise ValueError(f"{metric} is NaN")
            values.append(value)
        return values

    def _execute(self, trial: optuna.trial.Trial) -> tuple[str, list[float] | None]:
        """Train and test one trial inside its own MLflow run; ``(COMPLETE | PRUNED | FAIL, values)``.

        A failing trial does not stop the study: an expected failure (bad data, disk full) is one
        log line, anything else its traceback. An interrupt closes the run as KILLED and goes up.
        """
        from optuna_integration import PyTorchLightningPruningCallback

        assert self.tracker is not None
        tracker, key, run_id, started = self.tracker, "?", None, time.time()
        try:
            key, name, config, raw, values = self._trial_setup(trial)
            tags = {TAG_KEY: key, TAG_TRIAL: trial.number, "optuna.study": self.options.study_name,
                    "lit_snn.worker": f"{HOST}:{os.getpid()}",
                    **axis_tags(values)}
            retry_of = RetryHeartbeatStaleTrialCallback.retried_trial_number(self.storage.get_trial(trial._trial_id))
            if retry_of is not None:
                tags["lit_snn.retry_of"] = retry_of
            run_id = tracker.start_trial_run(self.experiment_id, self.parent_run_id, self.options.study_name,
                                             name[:250], tags)
            trial.set_user_attr(RUN_ATTR, run_id)
            # the trainer's logger/callbacks are the orchestrator's (MLflow, pruning), not part of the config
            tracker.log_run_record(run_id, config, raw)
            callbacks: list = []
            if self.options.neurobench:
                from lit_snn.neurobench import NeuroBenchCallback

                callbacks.append(NeuroBenchCallback())
            pruning = self.spec.kind == "sweep" and self.spec.pruner.get("type") != "none"  # never multi-objective
            if pruning:
                callbacks.append(PyTorchLightningPruningCallback(trial, self.spec.pruner.get("monitor", "val/acc")))
            root = Path(self.options.work_dir) / self.options.study_name.replace("/", "_") / f"trial-{trial.number:04d}"
            metrics = run_training(raw, callbacks=callbacks, default_root_dir=str(root),
                                   loggers=[tracker.lightning_logger(run_id, self.options.log_checkpoints)])
            # per-epoch curves and test metrics are in the run already (Lightning's logger); add the rest
            tracker.log_metrics(run_id, metrics, new_only=True)
            objective = self._objective_values(metrics)
            tracker.finish(run_id, "COMPLETE")  # the invoking process's progress line reports it (progress.py)
            return "COMPLETE", objective
        except optuna.TrialPruned as exc:
            self._close_run(run_id, "PRUNED", {"lit_snn.pruned": str(exc)})
            return "PRUNED", None
        except (KeyboardInterrupt, SystemExit) as exc:  # Lightning turns Ctrl-C/SIGTERM into exit(1)
            self._close_run(run_id, "FAIL", {"lit_snn.error": "interrupted"}, status="KILLED")
            raise KeyboardInterrupt from exc
        except Exception as exc:  # noqa: BLE001 - one failing trial must not stop the study
            expected = _expected(exc)
            error = expected or f"{type(exc).__name__}: {exc}"
            detail = "" if expected and not self.options.verbose else f"\n{traceback.format_exc()}"
            self.log(f"[w{self.index}] trial {trial.number} FAIL {key} {error} ({time.time() - started:.1f} s){detail}")
            self._close_run(run_id, "FAIL", {"lit_snn.error": error})
            return "FAIL", None


# ---------------------------------------------------------------------- processes
def _worker_entry(ctx: _WorkerContext) -> None:
    """A spawned worker process: its trials, then its end without the interpreter's teardown."""
    run_then_exit(lambda: _work(ctx))


def _work(ctx: _WorkerContext) -> None:
    die_with_parent(ctx.parent_pid)
    with imports_without_gc():
        import lit_snn.train  # noqa: F401  # what every trial imports, before the first one
    quiet_libraries(ctx.options.verbose)
    if ctx.threads:
        import torch

        torch.set_num_threads(ctx.threads)
    handle = StudyHandle(ctx.spec, ctx.options, ctx.index)
    handle.tracker = Tracker(ctx.options.tracking_uri, ctx.options.artifact_root)
    handle.experiment_id, handle.parent_run_id = ctx.experiment_id, ctx.parent_run_id
    try:
        handle.work(ctx.deadline)
    except KeyboardInterrupt:
        pass


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def validate(spec: StudySpec) -> list[GridPoint] | None:
    """Resolve every trial config up front, check the objectives against the metrics the training
    logs and the datasets' files (``SpecError`` on anything wrong); the grid for ablations."""
    if spec.kind == "ablation":
        points = expand_grid(spec)
        check_data(spec, grid_data_checks(points))
        return points
    check_data(spec, [check_sweep(spec).check_data])  # the base's data: search parameters rarely change it
    return None


def _parent_run(handle: StudyHandle, tracker: Tracker, spec: StudySpec, experiment_id: str, total: int) -> str:
    """The study's one MLflow parent run, created by whichever process gets there first."""
    options = handle.options
    tags = {"lit_snn.kind": spec.kind, "lit_snn.fingerprint": spec.fingerprint, "lit_snn.spec_file": spec.source or "",
            "optuna.storage": safe_url(options.storage), "lit_snn.metric": ",".join(spec.metrics),
            "lit_snn.direction": ",".join(spec.directions),
            "lit_snn.axes" if spec.kind == "ablation" else "lit_snn.params": ",".join(spec.axes or spec.params)}
    if spec.description:
        tags["mlflow.note.content"] = spec.description
    params = [("metric", ",".join(spec.metrics)), ("direction", ",".join(spec.directions)),
              *(("axis." + p, v) for p, v in spec.axes.items()), *(("search." + p, v) for p, v in spec.params.items()),
              ("seeds", spec.seeds), ("n_trials", total)]
    return study_attr_once(
        handle.storage, handle.study_id, PARENT_RUN_ATTR,
        make=lambda: tracker.create_parent_run(experiment_id, options.study_name, tags, params,
                                               {"study.yaml": dump_yaml(spec.describe())}),
        valid=lambda run_id: tracker.is_parent_run(run_id, experiment_id))


def run_study(spec: StudySpec, options: StudyOptions, log: Callable[[str], None] = print) -> StudyOutcome:
    """Validate, open (or resume) the study and its MLflow parent run, and run it with ``options.workers``.

    Nothing is created in Optuna or MLflow unless every trial config resolves, every objective is
    a metric the training logs and the tracking server answers.
    """
    started = time.time()
    points = validate(spec)
    check_reachable(options.tracking_uri)
    tracker = Tracker(options.tracking_uri, options.artifact_root)  # creates the MLflow store once, here
    handle = StudyHandle(spec, options, 0, create=True, points=points, log=log)
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
    total = len(points) if points is not None else spec.n_trials
    parent_run_id = _parent_run(handle, tracker, spec, experiment_id, total)
    tracker.client.update_run(parent_run_id, status="RUNNING")  # also repairs a run left by a killed parent
    handle.tracker, handle.experiment_id, handle.parent_run_id = tracker, experiment_id, parent_run_id

    handle.reap()
    handle.close_runs_left_running()
    # new, and failed last time (adaptive seeds: of the current round)
    added = enqueue_round(handle) if spec.adaptive else handle.enqueue_missing() if spec.kind == "ablation" else 0
    counts = handle.counts()
    log(f"study {options.study_name} ({spec.kind}, {total} trials) in {safe_url(options.storage)}; "
        f"MLflow experiment {spec.experiment!r} run {parent_run_id} at {tracker.tracking_uri}")
    log(f"  finished {counts['COMPLETE'] + counts['PRUNED']}, queued {counts['WAITING']} (new {added}), "
        f"running elsewhere {counts['RUNNING']}; {options.workers} worker(s)")
    if is_server(tracker.tracking_uri):
        log(f"  MLflow UI: {tracker.tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{parent_run_id}")

    idle = not counts["WAITING"] and not counts["RUNNING"] and (
        spec.kind == "ablation" or counts["COMPLETE"] + counts["PRUNED"] >= spec.n_trials)
    if idle:
        log("  nothing left to run: every trial of the study is finished")
    else:
        from lit_snn.neurons.cpu.warmup import precompile_cpu_kernels  # imports torch: not at the CLI's start

        with Ticking(log, "compiling the CPU kernels"):
            precompile_cpu_kernels([p.config for p in points] if points is not None else [spec.base], log)
    deadline = started + spec.time_limit_s if spec.time_limit_s else None
    interrupted = False
    follower = None if idle else _follow(handle, spec, options, total, log).start()

    def run_workers() -> None:  # until the queue is empty (or the deadline)
        if options.workers <= 1:
            handle.work(deadline)
        else:
            _run_processes(spec, options, experiment_id, parent_run_id, deadline, log)

    try:
        if idle:
            pass
        elif spec.adaptive:
            run_rounds(handle, run_workers, log)  # queue a round, run it, decide, until all are decided
        else:
            run_workers()
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        if follower is not None:
            follower.stop()
        outcome = _summarize(handle, spec, options, experiment_id, parent_run_id, started)
        _close_parent(handle, tracker, spec, outcome, interrupted)
    outcome.idle = idle
    outcome.last_finished = max((t.datetime_complete for t in handle.trials() if t.datetime_complete), default=None)
    return outcome


def _follow(handle: StudyHandle, spec: StudySpec, options: StudyOptions, total: int,
            log: Callable[[str], None]) -> Follower:
    """The progress lines of this invocation, from the study's storage (``progress.py``)."""
    reader = make_storage(options.storage, heartbeat_interval=None)  # its own connections: read from a thread

    def label(trial: optuna.trial.FrozenTrial) -> str:
        if spec.kind == "ablation":
            return str(trial.user_attrs.get(KEY_ATTR))
        return f"#{trial.number} " + ",".join(f"{p}={v:.4g}" if isinstance(v, float) else f"{p}={v}"
                                              for p, v in trial.params.items())

    progress = Progress(handle.trials(), total, metrics=spec.metrics, workers=options.workers, label_of=label,
                        point_of=lambda t: t.user_attrs.get(KEY_ATTR) if spec.kind == "ablation" else t.number,
                        ignore=lambda t: DUPLICATE_ATTR in t.system_attrs)
    return Follower(lambda: reader.get_all_trials(handle.study_id, deepcopy=False), progress, log)


def _close_parent(handle: StudyHandle, tracker: Tracker, spec: StudySpec, outcome: StudyOutcome,
                  interrupted: bool) -> None:
    """Record the study's counts on the parent run and close it, unless another process still runs
    trials of it (that one closes it; a dead one's run is reopened by the next invocation)."""
    run_id = outcome.parent_run_id
    tracker.log_metrics(run_id, {f"trials_{k.lower()}": v for k, v in outcome.counts.items()})
    # an ablation has no "best" (that would be its luckiest seed): compare gives each arm a run with its mean and CI
    if spec.kind == "sweep" and spec.multi_objective:  # no single best: the Pareto front (compare lists it)
        front = sorted(t.number for t in handle.study.best_trials)
        tracker.log_metrics(run_id, {"pareto_trials": len(front)})
        tracker.set_tags(run_id, {TAG_PARETO: ",".join(map(str, front))})
    elif spec.kind == "sweep" and outcome.counts["COMPLETE"]:
        best = handle.study.best_trial
        tracker.log_metrics(run_id, {f"best_trial/{spec.metric}": best.value, "best_trial/number": best.number})
        tracker.set_tags(run_id, {TAG_BEST: best.number, TAG_BEST_RUN: best.user_attrs.get(RUN_ATTR, "")})
    if outcome.counts["RUNNING"] and not interrupted:
        return
    status = "KILLED" if interrupted or (outcome.pending and not outcome.failed_keys) else \
        "FAILED" if outcome.failed_keys else "FINISHED"
    tracker.client.set_terminated(run_id, status)


def _run_processes(spec: StudySpec, options: StudyOptions, experiment_id: str, parent_run_id: str,
                   deadline: float | None, log: Callable[[str], None]) -> None:
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no forked torch/sqlite state
    threads = max(1, _cpu_count() // options.workers)
    procs = [ctx.Process(target=_worker_entry, name=f"lit-snn-worker-{i}",
                         args=(_WorkerContext(spec, options, experiment_id, parent_run_id, i, deadline, threads,
                                              os.getpid()),))
             for i in range(options.workers)]
    log(f"  starting {options.workers} worker processes (each loads torch and Lightning first) ...")
    for proc in procs:
        proc.start()
    try:
        for proc in procs:
            proc.join()
    except KeyboardInterrupt:  # Ctrl-C reached the whole process group; a SIGTERM only this process
        for proc in procs:
            proc.terminate()  # the workers close their runs as KILLED and stop
        for proc in procs:
            proc.join(timeout=30)
        raise
    crashed = [p.name for p in procs if p.exitcode not in (0, None)]
    if crashed:
        log(f"worker process(es) {', '.join(crashed)} exited abnormally; re-run to resume their trials")


def _summarize(handle: StudyHandle, spec: StudySpec, options: StudyOptions, experiment_id: str,
               parent_run_id: str, started: float) -> StudyOutcome:
    handle.reap()
    handle.close_runs_left_running()
    counts = handle.counts()
    outcome = StudyOutcome(options.study_name, spec.experiment, experiment_id, parent_run_id, counts,
                           wall_s=time.time() - started)
    if spec.kind == "ablation":
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
