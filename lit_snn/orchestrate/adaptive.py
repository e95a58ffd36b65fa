"""Adaptive seeds in a study: which trials the current round needs, the verdicts, and their report.

Everything here is a pure function of the finished trials (``(axis value, seed) -> metric``):
``replay`` walks the looks of the plan (sequential.py) from the first round, decides each
comparison at every look whose trials are all COMPLETE and stops at the first round that is not,
so a killed study resumes where it was (the same command recomputes the round) and a finished
one queues nothing. The study runs ``run_rounds``; ``compare`` calls ``report_section`` on the
MLflow runs, which gives the same verdicts from the same values.

One axis only (spec.py rejects more): arm ``v`` at seed ``s`` is the trial ``{axis: v, seed: s}``,
its observation the trial's ``metric``, and a comparison is the paired differences arm - baseline
over seeds 0..n-1 of the look. A decided arm gets no more seeds; the baseline runs while any of
its comparisons goes on. A trial that failed leaves its round incomplete: the round waits (the next
invocation queues the point again, as for any failed ablation trial).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

from .axis_text import value_text
from .sequential import CONTINUE, DIFFERENT, EQUIVALENT, UNDECIDED, Design, decide, design
from .space import GridPoint
from .spec import StudySpec
from .statistics import SEED_COLUMN, logged_differences
from .units import is_points, unit_of

Observations = dict[tuple[str, int], float]  # (axis value as text, seed) -> the study's metric


@dataclass
class ArmState:
    """One arm against the baseline: its verdict, the round (1-based) that gave it, and its numbers."""

    arm: str
    verdict: str = CONTINUE
    round: int | None = None
    seeds: int = 0  # seeds it ran (or runs in the current round)
    delta: float = math.nan  # mean paired difference arm - baseline at its last look (logged scale)


@dataclass
class RoundsState:
    """Where an adaptive study stands: ``round`` (0-based look index; ``len(plan.looks)`` when done)
    and ``needed``: arm (or baseline) -> seeds 0..n-1 the current round needs."""

    plan: Design
    path: str
    baseline: str
    arms: list[ArmState]
    round: int = 0
    needed: dict[str, int] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return not self.needed

    @property
    def trainings(self) -> int:
        """Trainings the plan runs up to now (the current round's included)."""
        return sum(a.seeds for a in self.arms) + max(a.seeds for a in self.arms)

    @property
    def full(self) -> int:
        """Trainings of ``max`` seeds everywhere."""
        return (len(self.arms) + 1) * self.plan.max_seeds

    def summary(self) -> str:
        """One line: the verdicts so far and the trainings saved (or planned so far)."""
        counts = {v: sum(a.verdict == v for a in self.arms) for v in (DIFFERENT, EQUIVALENT, UNDECIDED, CONTINUE)}
        told = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        if self.finished:
            return (f"adaptive seeds: {len(self.arms)} comparison(s) vs {self.baseline}: {told}; {self.trainings} "
                    f"trainings, {self.full - self.trainings} saved against {self.plan.max_seeds} seeds everywhere "
                    f"({self.full})")
        return (f"adaptive seeds: round {self.round + 1} of {len(self.plan.looks)} "
                f"({self.plan.looks[self.round]} seeds) not complete; {told}; re-run to go on")


def _arms(spec: StudySpec) -> tuple[str, str, list[str]]:
    """``(axis path, baseline, arms)`` as text (as MLflow tags and statistics.py compare them)."""
    path, values = next(iter(spec.axes.items()))
    excluded = {value_text(entry[path]) for entry in spec.exclude}
    baseline = value_text(spec.baseline_of(path))
    arms = [value_text(v) for v in values]
    return path, baseline, [arm for arm in arms if arm not in excluded and arm != baseline]


def margin_of(spec: StudySpec) -> float | None:
    """The equivalence margin of the study's metric in its logged scale (the file gives display units)."""
    margin = spec.equivalence_margin.get(spec.metric)
    return None if margin is None else margin / unit_of(spec.metric).scale


def plan_of(spec: StudySpec) -> Design:
    """The calibrated design of an adaptive ablation (cached in sequential.design)."""
    assert spec.adaptive is not None, "not an adaptive-seed study"
    plan = spec.adaptive
    return design(plan.start, plan.step, plan.max, spec.alpha, len(_arms(spec)[2]))


def replay(spec: StudySpec, observations: Observations) -> RoundsState:
    """The verdicts and the current round from the finished trials' values (see the module docstring)."""
    path, baseline, names = _arms(spec)
    plan = plan_of(spec)
    margin = margin_of(spec)
    state = RoundsState(plan, path, baseline, [ArmState(name) for name in names])
    for k, n in enumerate(plan.looks):
        going = [a for a in state.arms if a.verdict == CONTINUE]
        for arm in going:
            arm.seeds = n
        state.round = k
        if any((label, seed) not in observations for label in [baseline, *(a.arm for a in going)]
               for seed in range(n)):
            state.needed = {label: n for label in [baseline, *(a.arm for a in going)]}
            return state
        differences = [logged_differences([observations[a.arm, s] for s in range(n)],
                                          [observations[baseline, s] for s in range(n)]).tolist() for a in going]
        for arm, verdict, d in zip(going, decide(plan, differences, margin), differences):
            arm.delta = sum(d) / n
            if verdict != CONTINUE:
                arm.verdict, arm.round = verdict, k + 1
        if all(a.verdict != CONTINUE for a in state.arms):
            break
    state.round = len(plan.looks)
    return state


# ---------------------------------------------------------------------- in a study
class _Handle(Protocol):  # what run_rounds needs of trial_queue.StudyHandle (the study's queue)
    spec: StudySpec
    points: dict[str, GridPoint]

    def completed_values(self) -> dict[str, float]: ...

    def enqueue_missing(self, keys: Collection[str] | None = None) -> int: ...


def observations_of(handle: _Handle) -> Observations:
    """``(axis value, seed) -> value`` of the study's COMPLETE trials."""
    path = next(iter(handle.spec.axes))
    out: Observations = {}
    for key, value in handle.completed_values().items():
        point = handle.points.get(key)
        if point is not None:
            out[value_text(point.values[path]), point.seed] = value
    return out


def round_keys(handle: _Handle, state: RoundsState | None = None) -> list[str]:
    """The grid keys of the current round (none when the study is decided)."""
    state = state or replay(handle.spec, observations_of(handle))
    path = state.path
    return [key for key, p in handle.points.items() if p.seed < state.needed.get(value_text(p.values[path]), 0)]


def enqueue_round(handle: _Handle) -> int:
    """Queue the current round's trials that have no waiting, running or finished trial."""
    return handle.enqueue_missing(set(round_keys(handle)))


def run_rounds(handle: _Handle, run_workers: Callable[[], None], log: Callable[[str], None] = print) -> RoundsState:
    """Round after round: queue the round's trials, run the workers until the queue is empty, decide;
    until every comparison is decided, or a round stays incomplete (a failed trial, the time limit)."""
    state = replay(handle.spec, observations_of(handle))
    while not state.finished:
        handle.enqueue_missing(set(round_keys(handle, state)))
        going = ", ".join(label for label in state.needed if label != state.baseline)
        log(f"adaptive seeds: round {state.round + 1} of {len(state.plan.looks)}: seeds 0-"
            f"{state.plan.looks[state.round] - 1} of {state.baseline} and {going}")
        run_workers()
        before, state = state, replay(handle.spec, observations_of(handle))
        if state.round == before.round and not state.finished:
            break
    log(state.summary())
    return state


# ---------------------------------------------------------------------- in the report
def report_section(spec: StudySpec, done: pd.DataFrame, columns: dict[str, str]) -> list[str]:
    """The markdown section of ``compare``'s report on an adaptive study (none for a seed list):
    per comparison its verdict and round, and the trainings saved against ``max`` seeds everywhere.

    ``done``: the COMPLETE runs with a ``seed`` column and the axis value in ``columns[path]``."""
    if spec.adaptive is None:
        return []
    path = next(iter(spec.axes))
    rows = done.dropna(subset=[spec.metric, SEED_COLUMN]) if spec.metric in done else done.iloc[0:0]
    means = rows.groupby([rows[columns[path]].astype(str), rows[SEED_COLUMN].astype(int)])[spec.metric].mean()
    state = replay(spec, {(str(label), int(seed)): float(v) for (label, seed), v in means.items()})
    unit = unit_of(spec.metric)
    margin = spec.equivalence_margin.get(spec.metric)
    plan = state.plan
    equivalent = (f"`equivalent` (within ±{margin:g}{unit.suffix}, TOST)" if margin is not None else
                  f"(no `equivalence_margin` for {spec.metric}: no `equivalent` verdict)")
    out = [f"## adaptive seeds: {spec.metric}, {path} against {state.baseline}", "",
           f"Rounds of {list(plan.looks)} seeds (start {spec.adaptive.start}, step {spec.adaptive.step}, max "
           f"{spec.adaptive.max}). After each round an arm is decided `different` (paired t past the O'Brien-Fleming "
           f"boundary) or {equivalent}, or goes on; family-wise error at most {spec.alpha:g} over the "
           f"{len(state.arms)} comparison(s) and all rounds (lit_snn/orchestrate/sequential.py). A decided arm gets "
           "no more seeds, the baseline runs while any comparison goes on.", ""]
    head = ["arm", "verdict", "round", "seeds", f"delta ({unit.name})" if unit.name else "delta"]
    table = [[a.arm, a.verdict, "-" if a.round is None else f"{a.round} of {len(plan.looks)}", str(a.seeds),
              "-" if math.isnan(a.delta) else f"{unit.show(a.delta):+.2f}" if is_points(spec.metric) else
              f"{unit.show(a.delta):+.3g}"] for a in state.arms]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in table)]
    out += ["", f"Trainings: {state.trainings} of {state.full} ({spec.adaptive.max} seeds everywhere): "
            + (f"{state.full - state.trainings} saved." if state.finished else
               f"round {state.round + 1} not complete yet (re-run the study to go on)."), ""]
    return out

