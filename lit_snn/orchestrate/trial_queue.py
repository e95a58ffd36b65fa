"""The study's queue as one process sees it: open the Optuna study, queue an ablation's points, claim
a queued trial, and repair what dead workers left (stale trials, MLflow runs left open).

Ablation: every grid point x seed is queued once (its key as the user attr ``key``, its point as the
system attr ``lit_snn:point``: a worker plans it from that record, see trial.py); workers only *pop*
queued trials, so nothing is sampled. A trial left RUNNING by a dead worker is found stale (its
process is gone on this host, or its heartbeat is older than the grace period) and marked FAIL: an
ablation queues its point again, a sweep re-queues its sampled point with Optuna's
``RetryHeartbeatStaleTrialCallback``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Collection
from datetime import datetime

import numpy as np
import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from .options import FIXED_PARAMS_ATTR, INTERRUPTED_ATTR, KEY_ATTR, POINT_ATTR, RUN_ATTR, WORKER_ATTR, StudyOptions
from .pruning import make_pruner
from .space import GridPoint, expand_grid
from .spec import StudySpec, sampler_class
from .storage import make_storage
from .tracking import TAG_STATE, Tracker
from .trial import TrialOutcome, close_run, point_record
from .workers import identity, is_dead_local

LIVE = (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)
DONE = (TrialState.COMPLETE, TrialState.PRUNED)


def make_sampler(spec: StudySpec, index: int, workers: int, resumed_at: int = 0) -> optuna.samplers.BaseSampler:
    """Worker ``index``'s sampler: the spec's, seeded per worker (an ablation's never samples).

    ``resumed_at``: the number of trials the study had when this process opened it. A resumed sweep's
    sampler gets a seed derived from it: with the first run's seed it would draw that run's points again
    (a random sampler, TPE's start-up trials)."""
    if spec.kind == "ablation":  # every param is fixed by the queue
        return optuna.samplers.RandomSampler(seed=index)
    options = {k: v for k, v in spec.sampler.items() if k != "type"}
    seed = options.pop("seed", 0)
    seed = None if seed is None else int(seed) + index  # workers must not draw the same points
    if seed is not None and resumed_at:
        seed = int(np.random.SeedSequence([seed, resumed_at]).generate_state(1)[0])
    if spec.sampler["type"] == "tpe" and workers > 1:
        options.setdefault("constant_liar", True)  # running trials count as pessimistic results
    # NSGA-II: each worker's sampler builds the next generation from the trials in the shared storage
    return sampler_class(spec.sampler["type"])(seed=seed, **options)


class StudyHandle:
    """One process's view of the study's queue: query, queue, claim, and repair stale trials.

    ``points``: the ablation's grid, which only the queueing (invoking) process needs: it passes the one
    validation built; None builds it here; a worker, which plans each trial from its record, passes [].
    ``tracker``: closes the MLflow runs of stale trials (None: no runs to close).
    """

    def __init__(self, spec: StudySpec, options: StudyOptions, index: int = 0, *, create: bool = False,
                 points: list[GridPoint] | None = None, log: Callable[[str], None] = print,
                 tracker: Tracker | None = None) -> None:
        self.spec, self.options, self.index, self.log, self.tracker = spec, options, index, log, tracker
        self._retry = RetryHeartbeatStaleTrialCallback() if spec.kind == "sweep" else None
        self.grace_s = options.grace_s or 6 * options.heartbeat_s  # a trial's heartbeat is stale after this
        self.storage = make_storage(options.storage, options.heartbeat_s, options.grace_s, on_stale=self._on_stale,
                                    retry_s=options.storage_retry_s)
        self.study = self._open(create)
        self.study_id = self.storage.get_study_id_from_name(options.study_name)
        if points is None and spec.kind == "ablation":
            points = expand_grid(spec)
        self.points = {p.key: p for p in points or []}

    def _open(self, create: bool) -> optuna.Study:
        spec, options = self.spec, self.options
        sampler = make_sampler(spec, self.index, options.workers, self._trials_so_far())
        max_epochs = spec.base.get("trainer", {}).get("max_epochs")
        pruner = make_pruner(spec.pruner, max_epochs) if spec.kind == "sweep" else optuna.pruners.NopPruner()
        if not create:
            return optuna.load_study(study_name=options.study_name, storage=self.storage, sampler=sampler,
                                     pruner=pruner)
        study = optuna.create_study(storage=self.storage, study_name=options.study_name, sampler=sampler,
                                    pruner=pruner, directions=spec.directions, load_if_exists=True)
        if study.metric_names != spec.metrics:  # optuna-dashboard names the objectives by them
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(spec.metrics)
        return study

    def _trials_so_far(self) -> int:
        """How many trials the study already has (0 for a new study or an ablation, which never samples)."""
        if self.spec.kind != "sweep":
            return 0
        try:
            study_id = self.storage.get_study_id_from_name(self.options.study_name)
        except KeyError:
            return 0
        return len(self.storage.get_all_trials(study_id, deepcopy=False))

    def say(self, message: str) -> None:
        self.log(f"[w{self.index}] {message}")

    # ------------------------------------------------------------------ queries
    def trials(self, states: tuple[TrialState, ...] | None = None) -> list[optuna.trial.FrozenTrial]:
        # through the study (Optuna's cached storage), which must have seen a trial before it runs
        return self.study.get_trials(deepcopy=False, states=states)

    def trial_id(self, number: int) -> int:
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
        retried = self._retried()
        return [t for t in self.trials((TrialState.FAIL,)) if t.number not in retried]

    def completed_values(self) -> dict[str, float]:
        """Key -> (first) objective value of each COMPLETE ablation trial: what adaptive seeds decide on."""
        return {t.user_attrs.get(KEY_ATTR): t.values[0] for t in self.trials((TrialState.COMPLETE,))}

    def duplicate_of(self, number: int, key: str) -> int | None:
        """The trial that has ``key`` already: finished, or running with a lower number than ``number``."""
        for other in self.trials((TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)):
            same = other.number != number and other.user_attrs.get(KEY_ATTR) == key
            if same and (other.state != TrialState.RUNNING or other.number < number):
                return other.number
        return None

    # ------------------------------------------------------------------ queue
    def _enqueue(self, params: dict, key: str, record: dict | None) -> None:
        """``study.enqueue_trial`` with the point's record as a system attr, in the same insert (a worker
        never sees the trial without it); a trial queued without one (older studies) is planned from params."""
        system = {FIXED_PARAMS_ATTR: params, **({POINT_ATTR: record} if record is not None else {})}
        self.study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING, system_attrs=system,
                                                       user_attrs={KEY_ATTR: key}))

    def enqueue_missing(self, keys: Collection[str] | None = None) -> int:
        """Queue each grid point (of ``keys``; default: all) that has no waiting, running or finished
        (COMPLETE/PRUNED) trial."""
        live = self._live_keys()
        added = 0
        for key, point in self.points.items():
            if key not in live and (keys is None or key in keys):
                self._enqueue(point.params, key, point_record(point))
                added += 1
        return added

    def _on_stale(self, study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        """A stale trial was just marked FAIL: close its MLflow run and queue its point again."""
        self.say(f"trial {frozen.number} was left running by a dead worker: re-queued")
        close_run(self.tracker, frozen.user_attrs.get(RUN_ATTR), "FAIL",
                  {"lit_snn.stale": "true", "lit_snn.error": "worker died; the point was re-queued"}, "KILLED",
                  say=self.say)
        self._queue_again(study, frozen)

    def _queue_again(self, study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        """Queue the point of the failed trial ``frozen`` again: a sweep's with Optuna's retry callback
        (the retry names it, so it is not counted as a failure), an ablation's unless another trial has it."""
        if self._retry is not None:
            if frozen.number not in self._retried():
                self._retry(study, frozen)
            return
        key = frozen.user_attrs.get(KEY_ATTR)
        params = frozen.system_attrs.get(FIXED_PARAMS_ATTR)
        if key is None or params is None or key in self._live_keys():
            return
        point = self.points.get(key)  # the invoking process has the grid: an older trial gets its record now
        self._enqueue(params, key, point_record(point) if point else frozen.system_attrs.get(POINT_ATTR))

    def _retried(self) -> set[int]:
        return {n for t in self.trials() for n in RetryHeartbeatStaleTrialCallback.retry_history(t)}

    def requeue_interrupted(self, number: int) -> None:
        """Trial ``number``, which this process was running when a signal stopped it (SIGTERM, Ctrl-C, its
        parent's death): FAIL, and its point queued again as a killed worker's is (its MLflow run was
        closed as KILLED by ``run_trial``). The mark lets the next run's ``reap`` finish a re-queue cut short."""
        trial_id = self.trial_id(number)
        try:
            self.storage.set_trial_system_attr(trial_id, INTERRUPTED_ATTR, number)
            self.storage.set_trial_state_values(trial_id, TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # told already (a sweep's: Optuna's loop tells FAIL before re-raising the interrupt)
        frozen = self.storage.get_trial(trial_id)
        if frozen.state == TrialState.FAIL and frozen.system_attrs.get(INTERRUPTED_ATTR) == number:
            self.say(f"trial {number} was stopped by a signal: re-queued")
            self._queue_again(self.study, frozen)

    def _requeue_left_interrupted(self) -> None:
        """Sweep trials stopped by a signal whose re-queue was cut short (a second signal): queued now."""
        if self._retry is None:
            return  # an ablation's failed points are queued again by ``enqueue_missing``
        retried = self._retried()
        for frozen in self.trials((TrialState.FAIL,)):
            if frozen.system_attrs.get(INTERRUPTED_ATTR) == frozen.number and frozen.number not in retried:
                self._retry(self.study, frozen)

    def settle_ownerless(self, poll_s: float = 1.0) -> bool:
        """Wait until no RUNNING trial is without a recorded worker, then ``reap``; whether there was one.

        A sweep worker records itself on its trial right after Optuna's ``ask`` made it RUNNING; a process
        stopped in between (SIGTERM of a study, seen once in four CI runs) leaves a trial no worker owns,
        which ``reap`` may fail only after the heartbeat grace. Counted as running, it would end the next
        run one trial short ("still to run"). A live owner records itself within milliseconds, so this
        polls: an owner recorded ends the wait; otherwise the grace passes and ``reap`` re-queues it."""
        waited, until = False, time.monotonic() + self.grace_s + 5 * poll_s
        while time.monotonic() < until:
            ownerless = [t for t in self.trials((TrialState.RUNNING,)) if WORKER_ATTR not in t.system_attrs]
            if not ownerless:
                break
            if not waited:
                self.say(f"trial(s) {', '.join(str(t.number) for t in ownerless)} left running with no worker "
                         f"recorded (a process stopped as it began them): repaired within {self.grace_s} s")
            waited = True
            time.sleep(poll_s)
            self.reap()
        return waited

    def reap(self) -> None:
        """Fail trials left RUNNING by dead workers (``_on_stale`` queues their points again).

        Optuna's ``fail_stale_trials`` judges by heartbeat only; two cases it cannot see are
        handled first: a worker on this host whose process is gone (found at once, not after the
        grace period) and a trial claimed by a worker that died before its first heartbeat.
        """
        self._requeue_left_interrupted()
        for frozen in self.trials((TrialState.RUNNING,)):
            worker = frozen.system_attrs.get(WORKER_ATTR)
            if worker is not None:
                stale = is_dead_local(worker)
            else:  # claimed, then died before recording its worker
                started = frozen.datetime_start
                stale = started is not None and (datetime.now() - started).total_seconds() > self.grace_s
            if not stale:
                continue
            trial_id = self.trial_id(frozen.number)
            if self._complete_from_run(trial_id, frozen):
                continue
            try:
                if not self.storage.set_trial_state_values(trial_id, TrialState.FAIL):
                    continue
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another process got there first
            self._on_stale(self.study, self.storage.get_trial(trial_id))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(self.study)  # other hosts: heartbeat older than the grace

    def _complete_from_run(self, trial_id: int, frozen: optuna.trial.FrozenTrial) -> bool:
        """Whether the stale trial ``frozen`` was completed from its MLflow run: a run closed COMPLETE with
        every objective logged, whose worker lost the study storage before telling Optuna (a database
        outage), is not trained again."""
        run_id = frozen.user_attrs.get(RUN_ATTR)
        if self.tracker is None or not run_id:
            return False
        try:
            run = self.tracker.client.get_run(run_id)
            values = [float(run.data.metrics[metric]) for metric in self.spec.metrics]
        except Exception:  # noqa: BLE001 - no such run, a metric missing: the trial is re-queued as usual
            return False
        if run.info.status != "FINISHED" or run.data.tags.get(TAG_STATE) != "COMPLETE":
            return False
        try:
            self.storage.set_trial_state_values(trial_id, TrialState.COMPLETE, values)
        except optuna.exceptions.UpdateFinishedTrialError:
            return True  # another process completed it first
        self.say(f"trial {frozen.number} finished in MLflow but its result never reached Optuna: completed "
                 "from its run (not trained again)")
        return True

    def tell(self, trial: optuna.trial.Trial, outcome: TrialOutcome) -> None:
        """Tell Optuna the outcome of a trial run outside ``study.optimize``: its values, or PRUNED / FAIL."""
        if outcome.state == "COMPLETE":
            self.study.tell(trial, outcome.values)
        else:
            self.study.tell(trial, state=TrialState.PRUNED if outcome.state == "PRUNED" else TrialState.FAIL)

    def requeued(self) -> int:
        """After the worker processes ended: how many trials wait in the queue once the trials of dead
        workers are re-queued (``reap``); a worker stopped by a signal or killed leaves its trial so."""
        self.reap()
        return self.counts()["WAITING"]

    def claim(self) -> tuple[optuna.trial.Trial, int] | None:
        """The next queued ablation trial for this worker, or None when the queue is empty."""
        for frozen in self.trials((TrialState.WAITING,)):
            trial_id = self.trial_id(frozen.number)
            try:
                # identity first: a worker killed right after the claim below is then recognised as dead
                # at once (a losing concurrent claimer may overwrite it; the winner records itself again)
                self.storage.set_trial_system_attr(trial_id, WORKER_ATTR, identity())
                if self.storage.set_trial_state_values(trial_id, TrialState.RUNNING):
                    self.storage.set_trial_system_attr(trial_id, WORKER_ATTR, identity())
                    return optuna.trial.Trial(self.study, trial_id), trial_id
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
        return None

    def close_runs_left_running(self, experiment_id: str) -> None:
        """Close the MLflow runs that finished trials left RUNNING, as KILLED for a failed trial, as
        their state says otherwise. A worker that could not close its run leaves that: the workers
        of a killed parent, all interrupted at once, tag their runs FAIL, and in 1 of 4-6 runs of the
        sigkill fault test one of those runs stayed RUNNING (SQLite stores; cause not pinned down);
        no stale-trial check sees a FAIL trial again."""
        if self.tracker is None or not experiment_id:
            return
        running = self.tracker.running_trial_runs(experiment_id, self.options.study_name)
        if not running:
            return
        for frozen in self.trials((TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)):
            run_id = frozen.user_attrs.get(RUN_ATTR)
            if run_id in running:
                self.say(f"trial {frozen.number}'s MLflow run was left running: closed now")
                close_run(self.tracker, run_id, frozen.state.name, {"lit_snn.closed_late": "true"},
                          "KILLED" if frozen.state == TrialState.FAIL else None, say=self.say)
