"""What a running study shows: ``trial k/N started`` and ``trial k/N finished`` lines, the time since
the start and, from the first finished trial on, an estimate of the time left.

The trials' states live in the study's storage, which every worker writes, in this process or
another, on this machine or another: ``Follower`` runs a thread in the invoking process that reads
the study's trials every ``interval_s`` seconds while the trials run (in worker processes, or in
this process itself with one worker) and prints one plain line per trial that started or finished
since the last read (plain lines: they read the same in a terminal, a log file or CI). ``Progress``
turns successive reads into those lines and holds no thread, so it is tested on its own.

Counting: ``k`` counts the study's points (an ablation's grid point, a sweep's trial), so a resumed
study goes on from the points finished before; a point retried in this invocation is counted once.
The estimate of the time left is the mean duration of the trials finished in this invocation times
the points left, less what the running trials have done already, shared over the trials that run
at once (at least the number of local workers).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from optuna.trial import FrozenTrial, TrialState

from .options import KEY_ATTR
from .space import values_key

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
QUIET_S = 20.0  # the longest stretch without a line while a study runs (plus one read interval)


class Ticking:
    """``with Ticking(log, "compiling the CPU kernels"):`` prints ``  ... still compiling the CPU kernels
    (0:40)`` every ``every_s`` seconds until the block ends: a long single step that says it is alive."""

    def __init__(self, log: Callable[[str], None], what: str, every_s: float = QUIET_S) -> None:
        self.log, self.what, self.every_s = log, what, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="lit-snn-ticking")

    def _loop(self) -> None:
        started = time.time()
        while not self._stop.wait(self.every_s):
            self.log(f"  ... still {self.what} ({clock(time.time() - started)})")

    def __enter__(self) -> Ticking:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def trial_point(spec, trial: FrozenTrial):
    """The point ``trial`` of a study of ``spec`` runs: an ablation's grid key, a sweep's trial number."""
    return trial.user_attrs.get(KEY_ATTR) if spec.kind == "ablation" else trial.number


def trial_label(spec, trial: FrozenTrial) -> str:
    """How a line names ``trial``: an ablation's grid key, ``#<number> path=value,...`` for a sweep."""
    if spec.kind == "ablation":
        return str(trial.user_attrs.get(KEY_ATTR))
    return f"#{trial.number} {values_key(trial.params)}"


def clock(seconds: float) -> str:
    """``seconds`` as ``m:ss`` (``h:mm:ss`` from an hour on)."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """The progress lines of one invocation of a study, from successive reads of its trials.

    ``total``: the study's points (grid size or ``n_trials``); ``point_of(trial)``: which point a
    trial runs (an ablation's grid key, a sweep's trial number); ``label_of(trial)``: how a line
    names it; ``metrics``: the objective names, in the order of ``trial.values``; ``workers``: the
    trials this invocation runs at once; ``ignore(trial)``: trials never reported (duplicates).
    The trials of ``initial`` (the study when the invocation starts) that are already finished are
    counted, not reported.
    """

    def __init__(self, initial: list[FrozenTrial], total: int, *, point_of: Callable[[FrozenTrial], object],
                 label_of: Callable[[FrozenTrial], str], metrics: list[str], workers: int = 1,
                 ignore: Callable[[FrozenTrial], bool] = lambda _: False, started: float | None = None) -> None:
        self.total, self.point_of, self.label_of, self.metrics = total, point_of, label_of, metrics
        self.workers, self.ignore = max(1, workers), ignore
        self.started = time.time() if started is None else started
        self._old = {t.number for t in initial if t.state in FINISHED}  # finished before: never reported
        self._done = {point_of(t) for t in initial if t.state in (TrialState.COMPLETE, TrialState.PRUNED)}
        self._points = set(self._done) | {point_of(t) for t in initial if t.state == TrialState.RUNNING}
        self._announced = {t.number for t in initial if t.state == TrialState.RUNNING}  # in the header's count
        self._reported: set[int] = set()
        self._durations: list[float] = []

    def update(self, trials: list[FrozenTrial], now: float | None = None) -> list[str]:
        """The lines for what changed since the last call (``trials``: the study's trials now)."""
        now = time.time() if now is None else now
        lines = []
        for trial in sorted(trials, key=lambda t: t.number):
            if trial.number in self._old or self.ignore(trial):
                continue
            if trial.state in (TrialState.RUNNING, *FINISHED) and trial.number not in self._announced:
                self._announced.add(trial.number)
                self._points.add(self.point_of(trial))
                lines.append(f"trial {self._k(self._points)}/{self.total} started: {self.label_of(trial)} "
                             f"(elapsed {clock(now - self.started)})")
            if trial.state in FINISHED and trial.number not in self._reported:
                self._reported.add(trial.number)
                lines.append(self._finished_line(trial, trials, now))
        return lines

    def still(self, trials: list[FrozenTrial], now: float | None = None) -> str:
        """A line for a quiet stretch (no trial started or finished): what runs, how far, the time left."""
        now = time.time() if now is None else now
        running = sum(t.state == TrialState.RUNNING for t in trials)
        what = f"{running} trial(s) running" if running else "waiting for the workers to start a trial"
        eta = self.eta(trials, now)
        return (f"  ... {what}; {self._k(self._done)}/{self.total} finished, elapsed {clock(now - self.started)}"
                + (f", about {clock(eta)} left" if eta is not None else ""))

    def _k(self, points: set) -> int:
        return min(len(points), self.total)  # a sweep's retried trial is a new number: never past N

    def _finished_line(self, trial: FrozenTrial, trials: list[FrozenTrial], now: float) -> str:
        self._done.add(self.point_of(trial))
        took = _duration(trial)
        if took is not None:
            self._durations.append(took)
        outcome = trial.state.name
        if trial.state == TrialState.COMPLETE and trial.values:
            fmt = ".4g" if len(self.metrics) > 1 else ".4f"
            outcome += " " + ", ".join(f"{m}={v:{fmt}}" for m, v in zip(self.metrics, trial.values))
        line = f"trial {self._k(self._done)}/{self.total} finished: {self.label_of(trial)} {outcome}"
        line += f" in {took:.0f} s" if took is not None else ""
        line += f"; elapsed {clock(now - self.started)}"
        eta = self.eta(trials, now)
        return line + (f", about {clock(eta)} left" if eta is not None else "")

    def eta(self, trials: list[FrozenTrial], now: float) -> float | None:
        """Seconds until every point is finished (None before the first trial of this invocation finished)."""
        if not self._durations:
            return None
        mean = sum(self._durations) / len(self._durations)
        running = [t for t in trials if t.state == TrialState.RUNNING and t.datetime_start is not None]
        left = max(0, self.total - len(self._done))
        if not left:
            return 0.0
        ran = [now - t.datetime_start.timestamp() for t in running]
        work = sum(max(mean - r, 0.0) for r in ran) + max(0, left - len(running)) * mean
        return work / max(1, min(max(self.workers, len(running)), left))


def _duration(trial: FrozenTrial) -> float | None:
    if trial.datetime_start is None or trial.datetime_complete is None:
        return None
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


class Follower:
    """Prints ``progress``'s lines from ``read()`` (the study's trials) every ``interval_s`` seconds in a
    daemon thread from ``start()`` to ``stop()``, which reads once more (the last trials' lines). When
    ``quiet_s`` seconds pass without a line (trials longer than that, workers importing torch), it
    prints ``Progress.still``'s line, so the terminal never looks stuck."""

    def __init__(self, read: Callable[[], list[FrozenTrial]], progress: Progress,
                 log: Callable[[str], None] = print, interval_s: float = 2.0, quiet_s: float = QUIET_S) -> None:
        self.read, self.progress, self.log, self.interval_s, self.quiet_s = read, progress, log, interval_s, quiet_s
        self._last_line = time.time()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._failing = False  # one line per run of failed reads, not one every interval
        self._thread = threading.Thread(target=self._loop, daemon=True, name="lit-snn-progress")

    def poll(self) -> None:
        with self._lock:
            try:
                trials = self.read()
            except Exception as exc:  # noqa: BLE001 - a failed read must not stop the study; the next one retries
                if not self._failing:
                    self.log(f"progress: could not read the study's trials ({type(exc).__name__}: {exc})")
                self._failing = True
                return
            self._failing = False
            lines = self.progress.update(trials)
            if not lines and time.time() - self._last_line >= self.quiet_s:
                lines = [self.progress.still(trials)]
            for line in lines:
                self.log(line)
            if lines:
                self._last_line = time.time()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.poll()

    def start(self) -> Follower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval_s + 30)
        self.poll()

    def __enter__(self) -> Follower:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
