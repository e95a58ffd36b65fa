"""The worker loops, one per kind (as Optuna keeps its ``_optimize`` loop apart from ``Study``).

Ablation (``run_ablation``): reap stale trials, claim the next queued trial, run it; until the
queue is empty or the deadline. Before running a claimed trial the worker checks that no other
trial of the same key is finished or running with a lower number, which keeps "each point
completed once" even when two orchestrators race on one study.
Sweep (``run_sweep``): Optuna's ``study.optimize`` (it runs the heartbeat, fails stale trials and
pops re-queued ones) until ``n_trials`` trials are finished or running, or ``max_failures`` failed.
"""

from __future__ import annotations

import time

import optuna
from optuna.trial import TrialState

from .options import DUPLICATE_ATTR, INTERRUPTED_ATTR, KEY_ATTR, REPEAT_ATTR, WORKER_ATTR
from .space import suggest
from .storage import as_storage_error
from .trial import TrialContext, ablation_plan, plan_and_run, sweep_plan
from .trial_queue import DONE, StudyHandle
from .watchdog import StopWatchdog
from .workers import Heartbeat, identity


class TrialFailed(Exception):
    """A sweep trial failed (already reported in its MLflow run and our log line)."""


def work(ctx: TrialContext, handle: StudyHandle, deadline: float | None = None, parent_pid: int | None = None) -> None:
    """Run the study's trials in this process until none is left (or ``deadline``, a ``time.time()``).

    A store that is full or cannot be reached (after ``options.storage_retry_s``) ends it with a
    ``StorageError``. A stop signal ends the process within ``options.stop_grace_s`` even inside a native call, and a
    worker (``parent_pid``) within seconds of its parent's death (watchdog.py)."""
    # a full or unreachable store: one line (storage.py), not its traceback
    with StopWatchdog(ctx.options.stop_grace_s, parent_pid, say=ctx.say), as_storage_error(ctx.options):
        if ctx.spec.kind == "sweep":
            run_sweep(ctx, handle, deadline)
        else:
            run_ablation(ctx, handle, deadline)


# ---------------------------------------------------------------------- ablation: claim and run
def run_ablation(ctx: TrialContext, handle: StudyHandle, deadline: float | None) -> None:
    """Claim and run queued trials until the queue is empty or ``deadline`` has passed."""
    while deadline is None or time.time() < deadline:
        handle.reap()
        claimed = handle.claim()
        if claimed is None:
            return
        run_claimed(ctx, handle, *claimed)
    ctx.say("time limit reached: not starting more trials (re-run to continue)")


def run_claimed(ctx: TrialContext, handle: StudyHandle, trial: optuna.trial.Trial, trial_id: int) -> str:
    """Run one claimed ablation trial and tell Optuna its state (returned; SKIPPED: another trial has its point)."""
    with Heartbeat(handle.storage, trial_id, ctx.options.heartbeat_s):
        duplicate = handle.duplicate_of(trial.number, trial.user_attrs.get(KEY_ATTR))
        if duplicate is not None:
            handle.storage.set_trial_system_attr(trial_id, DUPLICATE_ATTR, duplicate)
            handle.study.tell(trial, state=TrialState.FAIL)
            ctx.say(f"trial {trial.number}: point already taken by trial {duplicate}, skipped")
            return "SKIPPED"
        try:
            outcome = plan_and_run(ctx, trial, ablation_plan)
        except KeyboardInterrupt:
            handle.requeue_interrupted(trial.number)
            raise
        handle.tell(trial, outcome)
    return outcome.state


# ---------------------------------------------------------------------- sweep: Optuna's loop
def run_sweep(ctx: TrialContext, handle: StudyHandle, deadline: float | None) -> None:
    """``study.optimize`` until ``n_trials`` are finished or running; stops early after ``max_failures``."""
    handle.reap()
    if not _sweep_room(ctx, handle):
        return

    running: list[int] = []  # the trial this process runs: re-queued when a signal stops it

    def objective(trial: optuna.trial.Trial):
        running[:] = [trial.number]
        try:
            return _sweep_trial(ctx, handle, trial)
        except KeyboardInterrupt:  # marked before Optuna tells FAIL (a finished trial takes no attrs)
            handle.storage.set_trial_system_attr(trial._trial_id, INTERRUPTED_ATTR, trial.number)
            raise

    def stop_when_full(study: optuna.Study, _trial) -> None:
        if not _sweep_room(ctx, handle):
            study.stop()

    timeout = None if deadline is None else max(deadline - time.time(), 1e-3)
    try:
        handle.study.optimize(objective, timeout=timeout, catch=(TrialFailed,), gc_after_trial=False,
                              callbacks=[optuna.study.MaxTrialsCallback(ctx.spec.n_trials, states=DONE),
                                         stop_when_full])
    except KeyboardInterrupt:  # Optuna told the running trial FAIL: it is queued again, as a killed worker's
        for number in running:
            handle.requeue_interrupted(number)
        raise
    if deadline is not None and time.time() >= deadline and _sweep_room(ctx, handle):
        ctx.say("time limit reached: not starting more trials (re-run to continue)")


def _sweep_trial(ctx: TrialContext, handle: StudyHandle, trial: optuna.trial.Trial):
    """One sweep trial: its values (a finished twin's, or trained); raises to tell Optuna PRUNED or FAIL."""
    handle.storage.set_trial_system_attr(trial._trial_id, WORKER_ATTR, identity())
    twin = _finished_twin(ctx, handle, trial)
    if twin is not None:
        return twin.values if ctx.spec.multi_objective else twin.value
    outcome = plan_and_run(ctx, trial, sweep_plan)
    if outcome.state == "PRUNED":
        raise optuna.TrialPruned()
    if outcome.state != "COMPLETE":
        raise TrialFailed(outcome.state)
    return outcome.values if ctx.spec.multi_objective else outcome.values[0]


def _sweep_room(ctx: TrialContext, handle: StudyHandle) -> bool:
    """Whether to ask for another trial: fewer than ``max_failures`` failed, fewer than ``n_trials`` taken."""
    failures = len(handle.unretried_failures())
    limit = ctx.options.max_failures or ctx.spec.n_trials
    if failures >= limit:
        ctx.say(f"{failures} failed trials (limit {limit}): not asking for more")
        return False
    taken = _taken(handle)
    if taken >= ctx.spec.n_trials and handle.settle_ownerless():
        return _sweep_room(ctx, handle)  # a trial no worker owned was counted: re-queued now
    return taken < ctx.spec.n_trials


def _taken(handle: StudyHandle) -> int:
    counts = handle.counts()
    return counts["COMPLETE"] + counts["PRUNED"] + counts["RUNNING"]


def _finished_twin(ctx: TrialContext, handle: StudyHandle,
                   trial: optuna.trial.Trial) -> optuna.trial.FrozenTrial | None:
    """The COMPLETE trial whose params equal those the sampler just gave ``trial``, tagged on ``trial``
    as ``repeat_of`` (NSGA-II's crossover and mutation can hand out a finished configuration again).

    Its values are reused instead of training again (Optuna's FAQ on duplicated samples): a trial is
    seeded, so retraining would report the same values and the sampler sees the objective's true
    value; failing or pruning the repeat instead would tell it the configuration is bad (a pruned
    trial ranks last in TPE) or drop it from NSGA-II's population, skewing its statistics."""
    suggest(trial, ctx.spec)  # registers the params; sweep_plan's suggest gets the same values back
    for other in handle.trials((TrialState.COMPLETE,)):
        if other.number != trial.number and other.params == trial.params:
            trial.set_user_attr(REPEAT_ATTR, other.number)
            ctx.say(f"trial {trial.number}: the params of trial {other.number}, its values reused (not trained again)")
            return other
    return None
