"""Ablation and sweep files -> a validated ``StudySpec`` (structure only; configs are resolved in space.py).

An **ablation** file::

    name: default                         # optional; default: the file name
    description: one line
    base_config: configs/digits_lif.yaml  # and/or an inline `base:` mapping (merged over it)
    overrides: {data.init_args.limit_train: 512}   # dotted or nested, applied to every trial
    axes:                                 # dotted config path -> values; the grid is their product
      model.neuron: [lif, ar_lif]
    seeds: [0, 1]                         # each grid point runs once per seed (seed_everything);
                                          # or adaptive: {adaptive: {start: 3, step: 2, max: 15}}
    exclude:                              # optional: drop the grid points matching ALL items of an entry
      - {model.neuron: lif, model.time_steps: 2}
    metric: test/acc                      # the study's objective, read from run_training's result
    direction: maximize
    budget: {max_epochs: 3, trial_time_limit_s: 300, time_limit_s: 3600}
    baseline: {model.neuron: lif}         # optional: the arm each axis is tested against (default: its
                                          # first listed value)
    alpha: 0.05                           # optional: significance level of the Holm-adjusted p-values
    equivalence_margin: {test/acc: 0.3}   # optional, per metric in its display unit (units.py: points
                                          # for accuracy, µJ for energy): an arm within ± this of its
                                          # baseline is tested for equivalence (TOST)
    min_effect: {test/acc: 0.5}           # optional, per metric in its display unit: the difference the
                                          # report plans seeds for (80% power), beside the observed one

**Adaptive seeds** (``seeds: {adaptive: {start, step, max}}``, one axis only): seeds 0..start-1 run
first, then ``step`` more per round for the arms not yet decided, up to ``max`` (sequential.py
decides each arm against the baseline after every round; adaptive.py runs the rounds). Then
``alpha``, ``baseline`` and the ``equivalence_margin`` of ``metric`` decide which trials run: with
the plan they enter the fingerprint (a rule changed after seeing results would break the error guarantee).

Otherwise ``baseline``, ``alpha``, ``equivalence_margin`` and ``min_effect`` only change the report of ``lit-snn
compare`` (statistics.py), not what a trial computes: they stay out of the fingerprint, so editing
them keeps (and resumes) the study.

A **sweep** file has the same base keys plus ``params`` (path -> ``{type: float|int|categorical,
low, high, log, step, choices}``), ``n_trials``, ``seed`` (the training seed), ``sampler``
(``{type: tpe|nsga2|random, seed, n_startup_trials, ...}``; other keys are the Optuna sampler's own
arguments, e.g. ``population_size`` of NSGA-II) and ``pruner`` (``{type: median|hyperband|
percentile|successive_halving|threshold|none, monitor: val/acc, ...}``; other keys are the Optuna
pruner's own arguments, e.g. ``n_warmup_steps``; one step = one epoch).

**Several objectives** (sweeps only): instead of ``metric``/``direction`` a sweep may list two or
more under ``objectives:``; the study is then an Optuna multi-objective study and ``lit-snn
compare`` writes its Pareto-optimal trials (``pareto.csv``, ``pareto_front.png``)::

    objectives:
      - {metric: val/acc_best, direction: maximize}
      - {metric: test/energy_mj, direction: minimize}   # direction optional: inferred as for `metric`
    sampler: {type: nsga2, population_size: 8, seed: 0}  # or tpe (multi-objective TPE) or random
    pruner: {type: none}                                 # the default with several objectives

Optuna's pruners do not support several objectives (``Trial.report`` and ``Trial.should_prune``
raise "... is not supported for multi-objective optimization" in Optuna 5.0), so any other pruner is
rejected when the file is loaded.

Budget: ``max_epochs`` sets ``trainer.max_epochs``; ``trial_time_limit_s`` sets
``trainer.max_time``; ``time_limit_s`` stops handing out new trials after that many seconds of
one invocation (the rest stay queued: re-run the command to continue).
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .dotted import deep_merge, set_path
from .yamlio import SpecError, load_yaml, parse_value

COMMON_KEYS = {"name", "description", "experiment", "base_config", "base", "overrides", "metric",
               "direction", "budget", "launcher"}  # launcher: where the workers run (launchers/slurm_settings.py)
ABLATION_KEYS = COMMON_KEYS | {"axes", "seeds", "exclude", "baseline", "alpha", "equivalence_margin", "min_effect"}
SWEEP_KEYS = COMMON_KEYS | {"params", "n_trials", "seed", "sampler", "pruner", "objectives"}
BUDGET_KEYS = {"max_epochs", "trial_time_limit_s", "time_limit_s"}
KNOWN_METRICS = ("test/acc", "test/acc_top5", "test/loss", "test/firing_rate", "test/sops",
                 "test/energy_mj", "test/ann_energy_mj", "val/acc_best", "val/acc", "val/loss",
                 "train_seconds")
_METRIC_RE = re.compile(r"^(train|val|test)/[A-Za-z0-9_./-]+$")
# "ablation/default": relative, no empty, "." or ".." part, so results/<experiment>/ stays inside --results-dir
_EXPERIMENT_RE = re.compile(r"^(?!\.{1,2}(/|$))[A-Za-z0-9_.-]+(/(?!\.{1,2}(/|$))[A-Za-z0-9_.-]+)*$")
_PATH_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# Quiet trainers under the orchestrator; a base config that sets these wins.
ORCHESTRATOR_DEFAULTS = {"trainer": {"enable_progress_bar": False, "enable_model_summary": False}}
SAMPLERS = ("tpe", "nsga2", "random")
PRUNERS = ("median", "percentile", "hyperband", "successive_halving", "threshold", "none")


@dataclass(frozen=True)
class AdaptiveSeeds:
    """``seeds: {adaptive: {start, step, max}}``: seeds 0..start-1 first, then ``step`` more per round."""

    start: int
    step: int
    max: int


@dataclass
class StudySpec:
    """One validated ablation or sweep; ``base`` is the merged config every trial starts from."""

    kind: str  # "ablation" | "sweep"
    name: str
    experiment: str
    base: dict
    metric: str
    direction: str
    source: Path | None = None
    description: str = ""
    time_limit_s: float | None = None
    # ablation
    axes: dict[str, list] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=list)  # every seed that may run (adaptive: 0..max-1)
    adaptive: AdaptiveSeeds | None = None  # the rounds of `seeds: {adaptive: ...}`; None: every seed runs
    exclude: list[dict] = field(default_factory=list)
    baseline: dict[str, Any] = field(default_factory=dict)  # axis path -> its baseline value (report only)
    alpha: float = 0.05  # significance level of the seed statistics (report only)
    # metric -> a positive difference in the metric's display unit (units.unit_of; report only)
    equivalence_margin: dict[str, float] = field(default_factory=dict)  # the TOST margin: equivalent within ±
    min_effect: dict[str, float] = field(default_factory=dict)  # the difference seeds are planned for
    # sweep
    params: dict[str, dict] = field(default_factory=dict)
    n_trials: int = 0
    seed: int = 0
    sampler: dict = field(default_factory=dict)
    pruner: dict = field(default_factory=dict)
    cli_sets: list[str] = field(default_factory=list)
    # [(metric, direction), ...]: one entry (= metric, direction) unless the sweep lists `objectives:`;
    # with several, ``metric``/``direction`` are the first one's (the order of the trials table)
    objectives: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.objectives:
            self.objectives = [(self.metric, self.direction)]

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def metrics(self) -> list[str]:
        """The objective metrics, in the file's order."""
        return [metric for metric, _ in self.objectives]

    @property
    def directions(self) -> list[str]:
        return [direction for _, direction in self.objectives]

    @property
    def fingerprint(self) -> str:
        """Hash of everything that changes what a trial computes (not n_trials, time limits, baseline or alpha).

        Adaptive seeds add their plan, ``alpha``, ``baseline`` and the metric's equivalence margin: they
        choose which trials run. It is part of the default study name, so an edited file (or other ``--set`` overrides)
        starts a new study instead of mixing incomparable trials; the same command resumes.
        """
        payload = {"kind": self.kind, "base": self.base, "metric": self.metric, "direction": self.direction}
        if self.multi_objective:  # single-objective payloads (and so existing study names) stay as they were
            payload["objectives"] = [list(o) for o in self.objectives]
        if self.kind == "ablation":
            payload.update(axes=self.axes, seeds=self.seeds, exclude=self.exclude)
            if self.adaptive is not None:  # files with a seed list keep their fingerprint byte for byte
                # the decision rule picks the trials that run: fixed with the study (error control)
                payload["adaptive"] = {**asdict(self.adaptive), "alpha": self.alpha, "baseline": self.baseline,
                                       "equivalence_margin": self.equivalence_margin.get(self.metric)}
        else:
            payload.update(params=self.params, seed=self.seed, sampler=self.sampler, pruner=self.pruner)
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:10]

    def baseline_of(self, path: str) -> Any:
        """The baseline value of axis ``path``: the file's ``baseline:`` entry, else its first listed value."""
        return self.baseline.get(path, self.axes[path][0])

    @property
    def default_study_name(self) -> str:
        return f"{self.name}-{self.fingerprint}"

    def describe(self) -> dict:
        """A plain dict of the spec (logged with the parent run)."""
        out = {"kind": self.kind, "name": self.name, "experiment": self.experiment,
               "source": str(self.source) if self.source else None, "description": self.description,
               "metric": self.metric, "direction": self.direction, "time_limit_s": self.time_limit_s,
               "fingerprint": self.fingerprint, "cli_sets": self.cli_sets, "base": self.base}
        if self.multi_objective:
            out["objectives"] = [{"metric": m, "direction": d} for m, d in self.objectives]
        if self.kind == "ablation":
            out.update(axes=self.axes, seeds=self.seeds, exclude=self.exclude, baseline=self.baseline,
                       adaptive=asdict(self.adaptive) if self.adaptive else None,
                       alpha=self.alpha, equivalence_margin=self.equivalence_margin, min_effect=self.min_effect)
        else:
            out.update(params=self.params, n_trials=self.n_trials, seed=self.seed, sampler=self.sampler,
                       pruner=self.pruner)
        return out


# ---------------------------------------------------------------------- helpers
def _fail(where: str, message: str) -> SpecError:
    return SpecError(f"{where}: {message}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_path(where: str, path: Any) -> str:
    if not isinstance(path, str) or not _PATH_RE.match(path):
        raise _fail(where, f"{path!r} is not a dotted config path like 'model.neuron_overrides.reset'")
    return path


def _find_base_config(ref: str, source: Path | None) -> Path:
    """``base_config`` as given (absolute or from the cwd), else next to the file, else one level up."""
    candidates = [Path(ref)]
    if source is not None and not Path(ref).is_absolute():
        candidates += [source.parent / ref, source.parent.parent / ref]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise SpecError(f"{source or '<spec>'}: base_config {ref!r} not found (tried {tried})")


def _seconds_to_max_time(seconds: float) -> str:
    s = math.ceil(seconds)
    return f"{s // 86400:02d}:{s % 86400 // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _apply_sets(base: dict, sets: list[str], where: str) -> dict:
    for item in sets:
        key, sep, text = item.partition("=")
        if not sep:
            raise SpecError(f"--set {item!r}: expected KEY=VALUE, e.g. --set trainer.max_epochs=2")
        set_path(base, _check_path(f"--set {item!r}", key.strip()), parse_value(text))
    return base


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


# ---------------------------------------------------------------------- sections
def _base(data: dict, source: Path | None, where: str) -> dict:
    if "base_config" not in data and "base" not in data:
        raise _fail(where, "needs a base config: `base_config: configs/....yaml` and/or an inline `base:` mapping")
    base: dict = {}
    if "base_config" in data:
        ref = data["base_config"]
        if not isinstance(ref, str) or not ref:
            raise _fail(where, f"base_config must be a path, got {ref!r}")
        path = _find_base_config(ref, source)
        loaded = load_yaml(path)
        if not isinstance(loaded, dict):
            raise SpecError(f"{path}: a config must be a mapping, got {type(loaded).__name__}")
        base = loaded
    if "base" in data:
        if not isinstance(data["base"], dict):
            raise _fail(where, f"base must be a mapping, got {type(data['base']).__name__}")
        base = deep_merge(base, data["base"])
    overrides = data.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise _fail(where, f"overrides must be a mapping of dotted paths to values, got {overrides!r}")
    for key in overrides:
        _check_path(f"{where}: overrides", key)
    return deep_merge(deep_merge(ORCHESTRATOR_DEFAULTS, base), overrides)


def _budget(data: dict, base: dict, where: str, max_epochs: int | None) -> float | None:
    budget = data.get("budget") or {}
    if not isinstance(budget, dict):
        raise _fail(where, f"budget must be a mapping with keys {sorted(BUDGET_KEYS)}, got {budget!r}")
    unknown = sorted(set(budget) - BUDGET_KEYS)
    if unknown:
        raise _fail(where, f"unknown budget key(s) {unknown}; valid: {sorted(BUDGET_KEYS)}")
    epochs = max_epochs if max_epochs is not None else budget.get("max_epochs")
    if epochs is not None:
        if not _is_int(epochs) or epochs < 1:
            raise _fail(where, f"budget.max_epochs must be an integer >= 1, got {epochs!r}")
        set_path(base, "trainer.max_epochs", epochs)
    for key in ("trial_time_limit_s", "time_limit_s"):
        value = budget.get(key)
        if value is not None and (not _is_number(value) or value <= 0):
            raise _fail(where, f"budget.{key} must be a number of seconds > 0, got {value!r}")
    if budget.get("trial_time_limit_s") is not None:
        set_path(base, "trainer.max_time", _seconds_to_max_time(budget["trial_time_limit_s"]))
    limit = budget.get("time_limit_s")
    return float(limit) if limit is not None else None


def _metric(data: dict, where: str, default: str) -> tuple[str, str]:
    metric = data.get("metric", default)
    if not isinstance(metric, str) or not (metric in KNOWN_METRICS or _METRIC_RE.match(metric)):
        raise _fail(where, f"metric must be a stage/name metric such as {', '.join(KNOWN_METRICS)}; got {metric!r}")
    name = metric.split("/")[-1]
    # energy_ratio is ANN / SNN energy (higher is better); checked before the plain energy words
    higher_is_better = "acc" in name or name in ("energy_ratio", "high_code_fraction")
    lower_is_better = not higher_is_better and any(
        word in name for word in ("loss", "energy", "sops", "macs", "firing", "seconds"))
    direction = data.get("direction", "minimize" if lower_is_better else "maximize")
    if direction not in ("maximize", "minimize"):
        raise _fail(where, f"direction must be 'maximize' or 'minimize', got {direction!r}")
    return metric, direction


def _seeds(value: Any, where: str) -> list[int]:
    if _is_int(value):
        value = [value]
    if not isinstance(value, list) or not value:
        raise _fail(where, f"seeds must be a non-empty list of integers, got {value!r}")
    for seed in value:
        if not _is_int(seed) or not 0 <= seed < 2**32:
            raise _fail(where, f"seeds must be integers in [0, 2**32), got {seed!r} in {value!r}")
    if len(set(value)) != len(value):
        raise _fail(where, f"seeds contain duplicates: {value!r}")
    return list(value)


ADAPTIVE_KEYS = ("start", "step", "max")
ADAPTIVE_EXAMPLE = "{adaptive: {start: 3, step: 2, max: 15}}"


def _adaptive(value: dict, where: str) -> AdaptiveSeeds:
    """``seeds: {adaptive: {start, step, max}}`` -> ``AdaptiveSeeds`` (start >= 2, step >= 1, max >= start)."""
    if set(value) != {"adaptive"}:
        extra = sorted(map(str, set(value) - {"adaptive"}))
        raise _fail(where, f"seeds: {f'unknown key(s) {extra}' if extra else 'an empty mapping'}; give a list of "
                           f"seeds or {ADAPTIVE_EXAMPLE}")
    plan = value["adaptive"]
    if not isinstance(plan, dict):
        raise _fail(where, f"seeds.adaptive must be a mapping like {{start: 3, step: 2, max: 15}}, got {plan!r}")
    unknown = sorted(set(plan) - set(ADAPTIVE_KEYS))
    if unknown:
        raise _fail(where, f"seeds.adaptive: unknown key(s) {unknown}; valid: {list(ADAPTIVE_KEYS)}")
    missing = [key for key in ADAPTIVE_KEYS if key not in plan]
    if missing:
        raise _fail(where, f"seeds.adaptive: missing {missing}; give all of {list(ADAPTIVE_KEYS)}")
    for key, low in (("start", 2), ("step", 1), ("max", plan["start"])):  # start is checked first
        if not _is_int(plan[key]) or plan[key] < low:
            need = "max >= start" if key == "max" else f"{key} >= {low}"
            raise _fail(where, f"seeds.adaptive.{key} must be an integer with {need}, got {plan[key]!r}")
    return AdaptiveSeeds(plan["start"], plan["step"], plan["max"])


def _check_adaptive(spec: StudySpec, where: str) -> None:
    """Adaptive seeds decide the arms of one axis against its baseline: one axis, a baseline and an arm left."""
    if len(spec.axes) != 1:
        raise _fail(where, f"adaptive seeds need exactly one axis (they decide each value against the axis' "
                           f"baseline), this file has {len(spec.axes)}: {', '.join(spec.axes)}; use a seed list "
                           "or one study per axis")
    path, values = next(iter(spec.axes.items()))
    left = [v for v in values if not any(_same(entry[path], v) for entry in spec.exclude)]
    if not any(_same(spec.baseline_of(path), v) for v in left):
        raise _fail(where, f"adaptive seeds: the baseline {spec.baseline_of(path)!r} of {path} is excluded")
    if len(left) < 2:
        raise _fail(where, f"adaptive seeds need an arm to compare with the baseline: axis {path} has "
                           f"{len(left)} value(s) left")


def _axes(data: dict, where: str, sets: list[str]) -> dict[str, list]:
    axes = data.get("axes")
    if not isinstance(axes, dict) or not axes:
        raise _fail(where, "axes must be a non-empty mapping of dotted config paths to lists of values")
    set_keys = {item.partition("=")[0].strip() for item in sets}
    out: dict[str, list] = {}
    for path, values in axes.items():
        _check_path(f"{where}: axes", path)
        if path == "seed_everything":
            raise _fail(where, "seed_everything cannot be an axis: list the seeds under `seeds:`")
        if path in set_keys:
            raise _fail(where, f"--set {path}=... conflicts with the axis {path}")
        if not isinstance(values, list):
            raise _fail(where, f"axis {path}: values must be a list, got {values!r}")
        if not values:
            raise _fail(where, f"axis {path} is empty: give it at least one value")
        for i, value in enumerate(values):
            if isinstance(value, float) and not math.isfinite(value):
                raise _fail(where, f"axis {path}: value {value!r} is not a finite number")
            if any(_same(value, other) for other in values[:i]):
                raise _fail(where, f"axis {path}: value {value!r} is listed twice")
        out[path] = list(values)
    paths = sorted(out)
    for a, b in itertools.pairwise(paths):
        if b.startswith(a + "."):
            raise _fail(where, f"axes {a} and {b} overlap (one is inside the other)")
    return out


def _exclude(data: dict, axes: dict[str, list], where: str) -> list[dict]:
    exclude = data.get("exclude") or []
    if not isinstance(exclude, list):
        raise _fail(where, f"exclude must be a list of mappings (axis path -> value), got {exclude!r}")
    for entry in exclude:
        if not isinstance(entry, dict) or not entry:
            raise _fail(where, f"exclude entry {entry!r} must be a non-empty mapping of axis path -> value")
        for path, value in entry.items():
            if path not in axes:
                raise _fail(where, f"exclude entry {entry!r}: {path!r} is not an axis ({', '.join(axes)})")
            if not any(_same(value, v) for v in axes[path]):
                raise _fail(where, f"exclude entry {entry!r}: {value!r} is not a value of axis {path}")
    return exclude


def _baseline(data: dict, axes: dict[str, list], where: str) -> dict[str, Any]:
    baseline = data.get("baseline") or {}
    if not isinstance(baseline, dict):
        raise _fail(where, f"baseline must be a mapping of axis path -> value, e.g. {{model.neuron: lif}}; "
                           f"got {baseline!r}")
    out: dict[str, Any] = {}
    for path, value in baseline.items():
        if path not in axes:
            raise _fail(where, f"baseline: {path!r} is not an axis ({', '.join(axes)})")
        match = [v for v in axes[path] if _same(value, v)]
        if not match:
            raise _fail(where, f"baseline: {value!r} is not a value of axis {path} ({axes[path]!r})")
        out[path] = match[0]
    return out


def _alpha(data: dict, where: str) -> float:
    alpha = data.get("alpha", 0.05)
    if not _is_number(alpha) or not 0 < alpha < 1:
        raise _fail(where, f"alpha must be a number with 0 < alpha < 1, got {alpha!r}")
    return float(alpha)


def _per_metric(data: dict, key: str, where: str) -> dict[str, float]:
    """``equivalence_margin:`` / ``min_effect:``: metric -> a positive number (its display unit)."""
    value = data.get(key) or {}
    example = "{test/acc: 0.3} (points for accuracy, µJ for energy)"
    if not isinstance(value, dict):
        raise _fail(where, f"{key} must be a mapping of metric -> positive number, e.g. {example}; got {value!r}")
    out: dict[str, float] = {}
    for metric, number in value.items():
        if not isinstance(metric, str) or not _METRIC_RE.match(metric):
            raise _fail(where, f"{key}: {metric!r} is not a metric name (e.g. test/acc)")
        if not _is_number(number) or not number > 0 or not math.isfinite(number):
            raise _fail(where, f"{key}: {metric} must be a positive number in its display unit, got {number!r}")
        out[metric] = float(number)
    return out


def _params(data: dict, where: str) -> dict[str, dict]:
    params = data.get("params")
    if not isinstance(params, dict) or not params:
        raise _fail(where, "params must be a non-empty mapping of dotted config paths to search ranges")
    out: dict[str, dict] = {}
    for path, p in params.items():
        _check_path(f"{where}: params", path)
        w = f"{where}: params.{path}"
        if isinstance(p, list):
            p = {"type": "categorical", "choices": p}
        if not isinstance(p, dict):
            raise _fail(w, f"expected {{type: float|int|categorical, ...}}, got {p!r}")
        kind = p.get("type")
        allowed = {"float": {"type", "low", "high", "log", "step"}, "int": {"type", "low", "high", "log", "step"},
                   "categorical": {"type", "choices"}}
        if kind not in allowed:
            raise _fail(w, f"type must be one of float, int, categorical; got {kind!r}")
        unknown = sorted(set(p) - allowed[kind])
        if unknown:
            raise _fail(w, f"unknown key(s) {unknown} for type {kind}; valid: {sorted(allowed[kind])}")
        if kind == "categorical":
            choices = p.get("choices")
            if not isinstance(choices, list) or not choices:
                raise _fail(w, "categorical needs a non-empty `choices` list")
            if any(not (c is None or isinstance(c, (bool, int, float, str))) for c in choices):
                raise _fail(w, f"categorical choices must be scalars (None, bool, int, float, str): {choices!r}")
        else:
            low, high = p.get("low"), p.get("high")
            check = _is_int if kind == "int" else _is_number
            if not check(low) or not check(high) or not low < high:
                raise _fail(w, f"{kind} needs numbers low < high, got low={low!r}, high={high!r}")
            if p.get("log") and low <= 0:
                raise _fail(w, f"log scale needs low > 0, got {low!r}")
            if p.get("log") and p.get("step") is not None:
                raise _fail(w, "log and step cannot be combined")
        out[path] = dict(p)
    return out


def sampler_class(kind: str) -> type:
    """The Optuna sampler class of a sweep's ``sampler.type``."""
    import optuna

    return {"tpe": optuna.samplers.TPESampler, "nsga2": optuna.samplers.NSGAIISampler,
            "random": optuna.samplers.RandomSampler}[kind]


def _sampler(data: dict, where: str) -> dict:
    given = data.get("sampler") or {}
    if not isinstance(given, dict):
        raise _fail(where, f"sampler must be a mapping like {{type: tpe, seed: 0}}, got {given!r}")
    sampler = {"type": "tpe", "seed": 0, **given}
    if sampler["type"] not in SAMPLERS:
        raise _fail(where, f"sampler.type must be one of {SAMPLERS}, got {sampler['type']!r}")
    cls = sampler_class(sampler["type"])
    _check_kwargs(cls, sampler, where, "sampler")
    import warnings

    try:  # the sampler's own checks (e.g. NSGA-II's population_size >= 2), before anything runs
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cls(**{k: v for k, v in sampler.items() if k != "type"})
    except (TypeError, ValueError) as exc:
        raise _fail(where, f"sampler: {cls.__name__} rejects {given!r}: {exc}") from None
    return sampler


def _objectives(data: dict, where: str) -> list[tuple[str, str]] | None:
    """``objectives:`` -> ``[(metric, direction), ...]`` (2 or more); ``None`` when the file has none."""
    if "objectives" not in data:
        return None
    both = sorted(k for k in ("metric", "direction") if k in data)
    if both:
        raise _fail(where, f"`objectives:` and {' / '.join(f'`{k}:`' for k in both)} exclude each other: "
                           "name one objective with metric/direction, or several under objectives")
    items = data["objectives"]
    example = "[{metric: val/acc_best, direction: maximize}, {metric: test/energy_mj, direction: minimize}]"
    if not isinstance(items, list) or len(items) < 2:
        raise _fail(where, f"objectives must be a list of 2 or more {{metric, direction}} mappings, e.g. {example}; "
                           f"got {items!r} (for one objective use `metric:` and `direction:`)")
    out: list[tuple[str, str]] = []
    for i, item in enumerate(items):
        w = f"{where}: objectives[{i}]"
        if not isinstance(item, dict) or "metric" not in item:
            raise _fail(w, f"expected a mapping {{metric: ..., direction: maximize|minimize}}, got {item!r}")
        unknown = sorted(set(item) - {"metric", "direction"})
        if unknown:
            raise _fail(w, f"unknown key(s) {unknown}; valid: ['direction', 'metric']")
        metric, direction = _metric(item, w, "")
        if metric in (m for m, _ in out):
            raise _fail(w, f"metric {metric!r} is listed twice")
        out.append((metric, direction))
    return out


def _pruner(data: dict, where: str, multi_objective: bool = False) -> dict:
    given = data.get("pruner") or {}
    if not isinstance(given, dict):
        raise _fail(where, f"pruner must be a mapping like {{type: median}}, got {given!r}")
    pruner = {"type": "none" if multi_objective else "median", "monitor": "val/acc", **given}
    if pruner["type"] not in PRUNERS:
        raise _fail(where, f"pruner.type must be one of {PRUNERS}, got {pruner['type']!r}")
    if multi_objective and pruner["type"] != "none":
        # optuna 5.0, trial/_trial.py: Trial.report and Trial.should_prune raise (Optuna's not-implemented error,
        # "... is not supported for multi-objective optimization") when the study has several directions
        raise _fail(where, f"pruner {pruner['type']!r}: Optuna's pruners do not support several objectives "
                           "(Trial.report raises for a multi-objective study); set `pruner: {type: none}` "
                           "or drop the `pruner:` entry")
    if not isinstance(pruner["monitor"], str) or not _METRIC_RE.match(pruner["monitor"]):
        raise _fail(where, f"pruner.monitor must be a logged metric like val/acc, got {pruner['monitor']!r}")
    if pruner["type"] != "none":
        from .pruning import PRUNER_CLASSES

        _check_kwargs(PRUNER_CLASSES[pruner["type"]], pruner, where, "pruner", skip={"type", "monitor"})
    return pruner


def _check_kwargs(cls: type, given: dict, where: str, what: str, skip: set = frozenset({"type"})) -> None:
    valid = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(given) - set(skip) - valid)
    if unknown:
        raise _fail(where, f"{what}: unknown option(s) {unknown} for {cls.__name__}; valid: {sorted(valid)}")


# ---------------------------------------------------------------------- entry points
def spec_from_dict(
    data: Any,
    kind: str,
    *,
    source: Path | None = None,
    sets: list[str] | tuple[str, ...] = (),
    max_epochs: int | None = None,
) -> StudySpec:
    """Validate the structure of a parsed study file; ``SpecError`` names the file and the problem."""
    where = str(source) if source else "<spec>"
    if not isinstance(data, dict):
        raise _fail(where, f"a study file must be a mapping at the top level, got {type(data).__name__}")
    if kind not in ("ablation", "sweep"):
        raise ValueError(f"kind must be 'ablation' or 'sweep', got {kind!r}")
    other = "sweep" if kind == "ablation" else "ablation"
    if kind == "ablation" and "params" in data and "axes" not in data:
        raise _fail(where, "this is a sweep file (it has `params:`, no `axes:`): run it with `lit-snn sweep`")
    if kind == "sweep" and "axes" in data and "params" not in data:
        raise _fail(where, "this is an ablation file (it has `axes:`, no `params:`): run it with `lit-snn ablate`")
    valid = ABLATION_KEYS if kind == "ablation" else SWEEP_KEYS
    unknown = sorted(set(data) - valid)
    if unknown:
        raise _fail(where, f"unknown key(s) {unknown} in a {kind} file (a {other}-only key?); valid: {sorted(valid)}")
    sets = list(sets)
    base = _base(data, source, where)
    time_limit = _budget(data, base, where, max_epochs)
    base = _apply_sets(base, sets, where)
    name = data.get("name") or (source.stem if source else kind)
    if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_.-]+$", name):
        raise _fail(where, f"name must be letters, digits, '_', '-' or '.', got {name!r}")
    experiment = data.get("experiment") or f"{kind}/{name}"
    if not isinstance(experiment, str) or not _EXPERIMENT_RE.match(experiment):
        raise _fail(where, f"experiment must be names of letters, digits, '_', '-' or '.' joined by '/' (it is also "
                           f"the folder under --results-dir), e.g. ablation/{name}; got {experiment!r}")
    description = str(data.get("description") or "").strip()
    if kind == "ablation":
        metric, direction = _metric(data, where, "test/acc")
        axes = _axes(data, where, sets)
        default_seed = base.get("seed_everything", 0)
        given = data.get("seeds", [default_seed if _is_int(default_seed) else 0])
        adaptive = _adaptive(given, where) if isinstance(given, dict) else None
        seeds = list(range(adaptive.max)) if adaptive else _seeds(given, where)
        spec = StudySpec(kind, name, experiment, base, metric, direction, source, description, time_limit,
                         axes=axes, seeds=seeds, adaptive=adaptive, exclude=_exclude(data, axes, where),
                         cli_sets=sets, baseline=_baseline(data, axes, where), alpha=_alpha(data, where),
                         equivalence_margin=_per_metric(data, "equivalence_margin", where),
                         min_effect=_per_metric(data, "min_effect", where))
        if adaptive:
            _check_adaptive(spec, where)
        return spec
    objectives = _objectives(data, where)
    metric, direction = objectives[0] if objectives else _metric(data, where, "val/acc_best")
    n_trials = data.get("n_trials")
    if not _is_int(n_trials) or n_trials < 1:
        raise _fail(where, f"n_trials must be an integer >= 1, got {n_trials!r}")
    seed = _seeds(data.get("seed", 0), where)[0]
    set_path(base, "seed_everything", seed)
    return StudySpec(kind, name, experiment, base, metric, direction, source, description, time_limit,
                     params=_params(data, where), n_trials=n_trials, seed=seed, sampler=_sampler(data, where),
                     pruner=_pruner(data, where, objectives is not None), cli_sets=sets,
                     objectives=objectives or [])


def load_spec(
    path: str | Path, kind: str, *, sets: list[str] | tuple[str, ...] = (), max_epochs: int | None = None
) -> StudySpec:
    """Read an ablation (``kind="ablation"``) or sweep file and validate its structure."""
    path = Path(path)
    return spec_from_dict(load_yaml(path), kind, source=path, sets=sets, max_epochs=max_epochs)


def detect_kind(path: str | Path) -> str:
    """``"ablation"`` for a file with ``axes:``, ``"sweep"`` for one with ``params:``."""
    data = load_yaml(path)
    if isinstance(data, dict) and "params" in data and "axes" not in data:
        return "sweep"
    return "ablation"
