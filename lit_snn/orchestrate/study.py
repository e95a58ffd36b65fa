"""Run an ablation or a sweep as an Optuna study shared by worker processes through an RDB storage.

Ablation: every grid point x seed is enqueued exactly once (``study.enqueue_trial`` with the point
as fixed params and its key as the user attr ``key``); workers only *pop* queued trials, so
nothing is sampled and no point runs twice, whatever the number of workers.
Sweep: workers ``study.ask()`` (seeded TPE, NSGA-II or random) until ``n_trials`` trials are finished
or running. A sweep with several ``objectives`` is an Optuna multi-objective study (one direction per
objective; ``study.tell(trial, [v1, v2, ...])``; no pruning, which Optuna does not support there).

Resume = run the same command again. Finished trials are kept. A trial left RUNNING by a killed
worker is found stale (its process is gone on this host, or its heartbeat is older than the grace
period), marked FAIL, and its point queued again; failed points are queued again on the next
invocation. Before running a popped trial a worker checks that no other trial of the same key is
finished or running with a lower number, which keeps "each point completed once" even when two
orchestrators race on one study.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from .dotted import flatten
from .pruning import MetricRecorder, OptunaPruning, make_pruner
from .space import (
    SEED_PARAM,
    GridPoint,
    check_sweep,
    decode_value,
    encode_value,
    expand_grid,
    suggest,
    sweep_config,
)
from .spec import StudySpec, sampler_class
from .storage import make_storage
from .tracking import AXIS_TAG_PREFIX, PARENT_RUN_ATTR, TAG_KEY, TAG_TRIAL, Tracker, safe_url
from .training import quiet_libraries, reproducibility_info, run_training
from .workers import HOST, Heartbeat, identity, is_dead_local
from .yamlio import SpecError, dump_yaml

KEY_ATTR = "key"  # user attr: the grid point of an ablation trial
RUN_ATTR = "mlflow_run_id"  # user attr: the trial's nested MLflow run
RETRY_ATTR = "retry_of"  # user attr: number of the stale/failed trial this one re-runs
WORKER_ATTR = "lit_snn:worker"  # system attr: host/pid of the process running the trial
STALE_ATTR = "lit_snn:stale"  # system attr: set before a dead worker's trial is failed
FINGERPRINT_ATTR = "lit_snn:fingerprint"  # study user attr
LIVE = (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)


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


@dataclass
class StudyOutcome:
    """What one invocation left behind."""

    study_name: str
    experiment: str
    experiment_id: str
    parent_run_id: str
    counts: dict[str, int] = field(default_factory=dict)
    pending: int = 0  # ablation points not finished (queued, running elsewhere or failed)
    failed_keys: list[str] = field(default_factory=list)
    wall_s: float = 0.0

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


class StudyHandle:
    """One process's view of the study: claim, run and report trials; find stale ones; queue points."""

    def __init__(self, spec: StudySpec, options: StudyOptions, index: int = 0, *, create: bool = False,
                 points: list[GridPoint] | None = None, log: Callable[[str], None] = print) -> None:
        self.spec, self.options, self.index, self.log = spec, options, index, log
        self.storage = make_storage(options.storage, options.heartbeat_s, options.grace_s, on_stale=self._on_stale)
        sampler = _make_sampler(spec, index, options.workers)
        max_epochs = spec.base.get("trainer", {}).get("max_epochs")
        pruner = make_pruner(spec.pruner, max_epochs) if spec.kind == "sweep" else optuna.pruners.NopPruner()
        if create:
            self.study = optuna.create_study(storage=self.storage, study_name=options.study_name, sampler=sampler,
                                             pruner=pruner, directions=spec.directions, load_if_exists=True)
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

    def _live_keys(self, exclude_number: int | None = None) -> set[str]:
        return {t.user_attrs.get(KEY_ATTR) for t in self.trials(LIVE) if t.number != exclude_number}

    # ------------------------------------------------------------------ queue
    def enqueue_missing(self) -> int:
        """Queue each grid point that has no waiting, running or finished (COMPLETE/PRUNED) trial."""
        live = self._live_keys()
        added = 0
        for key, point in self.points.items():
            if key not in live:
                self.study.enqueue_trial(point.params, user_attrs={KEY_ATTR: key})
                added += 1
        return added

    def _requeue(self, frozen: optuna.trial.FrozenTrial) -> None:
        params = frozen.system_attrs.get("fixed_params") or frozen.params
        user_attrs = {RETRY_ATTR: frozen.number}
        if self.spec.kind == "ablation":
            key = frozen.user_attrs.get(KEY_ATTR)
            if key is None or key in self._live_keys(exclude_number=frozen.number):
                return
            point = self.points.get(key)
            params = point.params if point is not None else params
            user_attrs[KEY_ATTR] = key
        elif not params:
            return  # died before sampling: the sweep simply asks for another trial
        self.study.enqueue_trial(params, user_attrs=user_attrs)

    def _on_stale(self, study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        """A stale trial was just marked FAIL: close its MLflow run and queue its point again."""
        self.log(f"[w{self.index}] trial {frozen.number} was left running by a dead worker: re-queued")
        run_id = frozen.user_attrs.get(RUN_ATTR)
        if run_id and self.tracker is not None:
            try:
                self.tracker.finish(run_id, "FAIL", {"lit_snn.stale": "true",
                                                     "lit_snn.error": "worker died; the point was re-queued"},
                                    status="KILLED")
            except Exception as exc:  # noqa: BLE001 - the run may be gone; the study state is what matters
                self.log(f"[w{self.index}] could not close MLflow run {run_id} of trial {frozen.number}: {exc}")
        self._requeue(frozen)

    def reap(self) -> None:
        """Fail and re-queue trials left RUNNING by dead workers (local pid check, then heartbeats)."""
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
                self.storage.set_trial_system_attr(trial_id, STALE_ATTR, True)
                if not self.storage.set_trial_state_values(trial_id, TrialState.FAIL):
                    continue
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another process got there first
            self._on_stale(self.study, self.storage.get_trial(trial_id))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(self.study)  # other hosts: heartbeat older than the grace

    # ------------------------------------------------------------------ claim
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

    def _sweep_has_room(self) -> bool:
        counts = self.counts()
        taken = counts["COMPLETE"] + counts["PRUNED"] + counts["RUNNING"]
        retried = {t.user_attrs.get(RETRY_ATTR) for t in self.trials()}
        failures = sum(1 for t in self.trials((TrialState.FAIL,)) if t.number not in retried)
        max_failures = self.options.max_failures or self.spec.n_trials
        if failures >= max_failures:
            self.log(f"[w{self.index}] {failures} failed trials (limit {max_failures}): not asking for more")
            return False
        return taken < self.spec.n_trials

    def claim(self) -> tuple[optuna.trial.Trial, int] | None:
        """The next trial for this worker (a queued one, or for a sweep a new one while budget remains)."""
        trial_id = self._pop_waiting()
        if trial_id is None:
            if self.spec.kind != "sweep" or not self._sweep_has_room():
                return None
            with warnings.catch_warnings():  # ask() warns that heartbeats are meant for optimize(); we beat ourselves
                warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
                trial = self.study.ask()
            trial_id = self._trial_id(trial.number)
        self.storage.set_trial_system_attr(trial_id, WORKER_ATTR, identity())
        return optuna.trial.Trial(self.study, trial_id), trial_id

    # ------------------------------------------------------------------ run
    def work(self, deadline: float | None = None) -> None:
        """Claim and run trials until none is left (or ``deadline``, a ``time.time()``, has passed)."""
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

    def _trial_setup(self, trial: optuna.trial.Trial) -> tuple[str, dict, dict, dict[str, Any]]:
        """``(key, resolved config, raw config, axis values)`` of a claimed trial (registers its Optuna params).

        The raw config (as written) is what ``run_training`` gets: the resolved one carries
        ``trainer.logger: false`` from validation, which would override the MLflow logger.
        """
        if self.spec.kind == "sweep":
            values = suggest(trial, self.spec)
            key = ",".join(f"{p}={v:.4g}" if isinstance(v, float) else f"{p}={v}" for p, v in values.items())
            return (key, *sweep_config(self.spec, values), values)
        key = trial.user_attrs.get(KEY_ATTR)
        point = self.points.get(key)
        if point is None:
            raise RuntimeError(f"trial {trial.number} has key {key!r}, which is not a point of this grid")
        for path, values in self.spec.axes.items():
            got = decode_value(trial.suggest_categorical(path, [encode_value(v) for v in values]))
            if got != point.values[path]:
                raise RuntimeError(f"trial {trial.number}: param {path}={got!r} does not match its key {key!r}")
        trial.suggest_categorical(SEED_PARAM, self.spec.seeds)
        return key, point.config, point.raw, point.values

    def run_trial(self, trial: optuna.trial.Trial, trial_id: int) -> str:
        """Run one claimed trial end to end and report it to Optuna and MLflow; returns its state."""
        started = time.time()
        with Heartbeat(self.storage, trial_id, self.options.heartbeat_s):
            if self.spec.kind == "ablation":
                duplicate = self._duplicate_of(trial.number, trial.user_attrs.get(KEY_ATTR))
                if duplicate is not None:
                    self.storage.set_trial_system_attr(trial_id, "lit_snn:duplicate_of", duplicate)
                    self.study.tell(trial, state=TrialState.FAIL)
                    self.log(f"[w{self.index}] trial {trial.number}: point already taken by trial {duplicate}, skipped")
                    return "SKIPPED"
            state, values, key, error = self._execute(trial, trial_id)
            if state == "COMPLETE":
                self.study.tell(trial, values if self.spec.multi_objective else values[0])
            else:
                self.study.tell(trial, state=TrialState.PRUNED if state == "PRUNED" else TrialState.FAIL)
        fmt = ".4g" if self.spec.multi_objective else ".4f"
        shown = ", ".join(f"{m}={v:{fmt}}" for m, v in zip(self.spec.metrics, values)) if values else (error or "")
        self.log(f"[w{self.index}] trial {trial.number} {state} {key} {shown} ({time.time() - started:.1f} s)")
        return state

    def _close_run(self, run_id: str | None, state: str, tags: dict | None = None, status: str | None = None) -> None:
        """Close a trial's MLflow run after a failure without letting a tracking error hide the first one."""
        if not run_id or self.tracker is None:
            return
        try:
            self.tracker.finish(run_id, state, tags, status=status)
        except Exception as exc:  # noqa: BLE001
            self.log(f"[w{self.index}] could not close MLflow run {run_id}: {exc}")

    def _objective_values(self, metrics: dict[str, float]) -> list[float]:
        """The trial's objective values (file order) from ``run_training``'s result; a missing or NaN one raises."""
        values = []
        for i, metric in enumerate(self.spec.metrics):
            which = f"objective {i + 1} of {len(self.spec.metrics)}, " if self.spec.multi_objective else ""
            if metric not in metrics:
                raise KeyError(f"run_training returned no {metric!r} ({which}got {sorted(metrics)})")
            value = float(metrics[metric])
            if math.isnan(value):
                raise ValueError(f"{metric} is NaN" + (f" ({which[:-2]})" if which else ""))
            values.append(value)
        return values

    def _execute(self, trial: optuna.trial.Trial, trial_id: int) -> tuple[str, list[float] | None, str, str | None]:
        assert self.tracker is not None
        tracker, key, run_id = self.tracker, "?", None
        pruning: OptunaPruning | None = None
        try:
            key, config, raw, values = self._trial_setup(trial)
            tags = {TAG_KEY: key, TAG_TRIAL: trial.number, "optuna.study": self.options.study_name,
                    "lit_snn.worker": f"{HOST}:{os.getpid()}",
                    **{f"{AXIS_TAG_PREFIX}{path}": value for path, value in values.items()}}
            if trial.user_attrs.get(RETRY_ATTR) is not None:
                tags["lit_snn.retry_of"] = trial.user_attrs[RETRY_ATTR]
            run_id = tracker.start_trial_run(self.experiment_id, self.parent_run_id, self.options.study_name,
                                             f"{trial.number:04d} {key}"[:250], tags)
            trial.set_user_attr(RUN_ATTR, run_id)
            # the trainer's logger/callbacks are the orchestrator's (MLflow, pruning), not part of the config
            logged = {**config, "trainer": {k: v for k, v in config.get("trainer", {}).items()
                                            if k not in ("logger", "callbacks", "default_root_dir")}}
            tracker.log_params(run_id, flatten(logged))
            tracker.set_tags(run_id, {f"repro.{k}": v for k, v in reproducibility_info(config).items()})
            tracker.log_text(run_id, dump_yaml(logged), "config.yaml")
            recorder = MetricRecorder()
            callbacks: list = [recorder]
            if self.spec.kind == "sweep" and self.spec.pruner.get("type") != "none":  # never multi-objective (spec.py)
                pruning = OptunaPruning(trial, self.spec.pruner.get("monitor", "val/acc"))
                callbacks.append(pruning)
            root = Path(self.options.work_dir) / self.options.study_name.replace("/", "_") / f"trial-{trial.number:04d}"
            metrics = run_training(raw, callbacks=callbacks, loggers=[tracker.lightning_logger(run_id)],
                                   default_root_dir=str(root))
            metrics = {**recorder.metrics(), **metrics}
            # per-epoch train/val curves are already in the run (Lightning's MLFlowLogger); add the rest
            tracker.log_metrics(run_id, {k: v for k, v in metrics.items()
                                         if not k.startswith(("train/", "val/")) or k == "val/acc_best"})
            values = self._objective_values(metrics)
            tracker.finish(run_id, "COMPLETE")
            return "COMPLETE", values, key, None
        except optuna.TrialPruned as exc:
            self._close_run(run_id, "PRUNED", {"lit_snn.pruned": str(exc)})
            return "PRUNED", None, key, str(exc)
        except KeyboardInterrupt:
            self._close_run(run_id, "FAIL", {"lit_snn.error": "interrupted"}, status="KILLED")
            self.study.tell(trial, state=TrialState.FAIL)
            raise
        except Exception as exc:  # noqa: BLE001 - one failing trial must not stop the study
            if pruning is not None and pruning.pruned:  # TrialPruned wrapped on its way out of fit
                self._close_run(run_id, "PRUNED")
                return "PRUNED", None, key, "pruned"
            error = f"{type(exc).__name__}: {exc}"
            self.log(f"[w{self.index}] trial {trial.number} failed:\n{traceback.format_exc()}")
            self._close_run(run_id, "FAIL", {"lit_snn.error": error})
            return "FAIL", None, key, error


# ---------------------------------------------------------------------- processes
def _worker_entry(ctx: _WorkerContext) -> None:
    quiet_libraries()
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
    """Resolve every trial config up front (``SpecError`` on anything wrong); the grid for ablations."""
    if spec.kind == "ablation":
        return expand_grid(spec)
    check_sweep(spec)
    return None


def run_study(spec: StudySpec, options: StudyOptions, log: Callable[[str], None] = print) -> StudyOutcome:
    """Validate, open (or resume) the study and its MLflow parent run, and run it with ``options.workers``.

    Nothing is created in Optuna or MLflow unless every trial config resolves.
    """
    started = time.time()
    points = validate(spec)
    handle = StudyHandle(spec, options, 0, create=True, points=points, log=log)
    stored = handle.study.user_attrs.get(FINGERPRINT_ATTR)
    if stored is not None and stored != spec.fingerprint:
        raise SpecError(
            f"study {options.study_name!r} in {safe_url(options.storage)} was made from a different "
            f"{spec.kind} (fingerprint {stored}, this file gives {spec.fingerprint}); drop --study-name to use "
            f"the default name {spec.default_study_name!r}, or pick a new one"
        )
    tracker = Tracker(options.tracking_uri, options.artifact_root)
    experiment_id = tracker.experiment_id(spec.experiment)
    parent_tags = {"lit_snn.kind": spec.kind, "lit_snn.fingerprint": spec.fingerprint,
                   "lit_snn.spec_file": spec.source or "", "optuna.storage": safe_url(options.storage),
                   "lit_snn.metric": ",".join(spec.metrics), "lit_snn.direction": ",".join(spec.directions)}
    if spec.kind == "ablation":
        parent_tags["lit_snn.axes"] = ",".join(spec.axes)
    else:
        parent_tags["lit_snn.params"] = ",".join(spec.params)
    parent_run_id = tracker.parent_run(experiment_id, options.study_name, parent_tags,
                                       handle.study.user_attrs.get(PARENT_RUN_ATTR))
    if stored is None:
        handle.study.set_user_attr(FINGERPRINT_ATTR, spec.fingerprint)
        tracker.log_text(parent_run_id, dump_yaml(spec.describe()), "study.yaml")
        tracker.log_params(parent_run_id, [("metric", ",".join(spec.metrics)), ("direction", ",".join(spec.directions)),
                                           *(("axis." + p, v) for p, v in spec.axes.items()),
                                           *(("search." + p, v) for p, v in spec.params.items()),
                                           ("seeds", spec.seeds), ("n_trials", spec.n_trials)])
    handle.study.set_user_attr(PARENT_RUN_ATTR, parent_run_id)
    handle.tracker, handle.experiment_id, handle.parent_run_id = tracker, experiment_id, parent_run_id

    handle.reap()
    added = handle.enqueue_missing() if spec.kind == "ablation" else 0
    counts = handle.counts()
    total = len(points) if points is not None else spec.n_trials
    log(f"study {options.study_name} ({spec.kind}, {total} trials) in {safe_url(options.storage)}; "
        f"MLflow experiment {spec.experiment!r} run {parent_run_id} at {tracker.tracking_uri}")
    log(f"  finished {counts['COMPLETE'] + counts['PRUNED']}, queued {counts['WAITING']} (new {added}), "
        f"running elsewhere {counts['RUNNING']}; {options.workers} worker(s)")

    deadline = started + spec.time_limit_s if spec.time_limit_s else None
    status = "FINISHED"
    try:
        if options.workers <= 1:
            handle.work(deadline)
        else:
            _run_processes(spec, options, experiment_id, parent_run_id, deadline, log)
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        outcome = _summarize(handle, spec, options, experiment_id, parent_run_id, started)
        if status == "FINISHED" and (outcome.failed_keys or outcome.pending):
            status = "FAILED" if outcome.failed_keys else "KILLED"
        tracker.log_metrics(parent_run_id, {f"trials_{k.lower()}": v for k, v in outcome.counts.items()})
        if spec.multi_objective:  # no single best: the size of the Pareto front (compare lists it)
            tracker.log_metrics(parent_run_id, {"pareto_trials": len(handle.study.best_trials)})
        else:
            try:
                best = handle.study.best_value
                tracker.log_metrics(parent_run_id, {f"best/{spec.metric}": best})
            except ValueError:
                pass
        tracker.client.set_terminated(parent_run_id, status)
    return outcome


def _run_processes(spec: StudySpec, options: StudyOptions, experiment_id: str, parent_run_id: str,
                   deadline: float | None, log: Callable[[str], None]) -> None:
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no forked torch/sqlite state
    threads = max(1, _cpu_count() // options.workers)
    procs = [ctx.Process(target=_worker_entry, name=f"lit-snn-worker-{i}",
                         args=(_WorkerContext(spec, options, experiment_id, parent_run_id, i, deadline, threads),))
             for i in range(options.workers)]
    for proc in procs:
        proc.start()
    try:
        for proc in procs:
            proc.join()
    except KeyboardInterrupt:
        for proc in procs:
            proc.join(timeout=30)
        raise
    crashed = [p.name for p in procs if p.exitcode not in (0, None)]
    if crashed:
        log(f"worker process(es) {', '.join(crashed)} exited abnormally; re-run to resume their trials")


def _summarize(handle: StudyHandle, spec: StudySpec, options: StudyOptions, experiment_id: str,
               parent_run_id: str, started: float) -> StudyOutcome:
    handle.reap()
    counts = handle.counts()
    outcome = StudyOutcome(options.study_name, spec.experiment, experiment_id, parent_run_id, counts,
                           wall_s=time.time() - started)
    if spec.kind == "ablation":
        done = {t.user_attrs.get(KEY_ATTR) for t in handle.trials((TrialState.COMPLETE, TrialState.PRUNED))}
        failed = {t.user_attrs.get(KEY_ATTR) for t in handle.trials((TrialState.FAIL,))
                  if t.system_attrs.get("lit_snn:duplicate_of") is None}  # trial 0 can be the original
        outcome.failed_keys = sorted(k for k in failed - done if k is not None)
        outcome.pending = sum(1 for key in handle.points if key not in done)
    else:
        retried = {t.user_attrs.get(RETRY_ATTR) for t in handle.trials()}
        outcome.failed_keys = [str(t.number) for t in handle.trials((TrialState.FAIL,)) if t.number not in retried]
        outcome.pending = max(0, spec.n_trials - counts["COMPLETE"] - counts["PRUNED"])
    return outcome
