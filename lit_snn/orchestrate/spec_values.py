"""The value checks of a study file's keys, one function per key: each raises ``ValueError`` with the
one line a user reads (without the file name, which ``spec_schema.validate_file`` puts in front).

They run as the pydantic schema's ``before`` validators (spec_schema.py), so a wrong value gets
today's message naming the key, the value and what is valid instead of pydantic's multi-line report.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass
from typing import Any

KNOWN_METRICS = ("test/acc", "test/acc_top5", "test/loss", "test/firing_rate", "test/sops",
                 "test/energy_mj", "test/ann_energy_mj", "val/acc_best", "val/acc", "val/loss",
                 "train_seconds")
METRIC_RE = re.compile(r"^(train|val|test)/[A-Za-z0-9_./-]+$")
# "ablation/default": relative, no empty, "." or ".." part, so results/<experiment>/ stays inside --results-dir
EXPERIMENT_RE = re.compile(r"^(?!\.{1,2}(/|$))[A-Za-z0-9_.-]+(/(?!\.{1,2}(/|$))[A-Za-z0-9_.-]+)*$")
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
PATH_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
SAMPLERS = ("tpe", "nsga2", "random")
PRUNERS = ("median", "percentile", "hyperband", "successive_halving", "threshold", "none")
BUDGET_KEYS = ("max_epochs", "trial_time_limit_s", "time_limit_s")
ADAPTIVE_KEYS = ("start", "step", "max")
ADAPTIVE_EXAMPLE = "{adaptive: {start: 3, step: 2, max: 15}}"
PARAM_KEYS = {"float": {"type", "low", "high", "log", "step"}, "int": {"type", "low", "high", "log", "step"},
              "categorical": {"type", "choices"}}


@dataclass(frozen=True)
class AdaptiveSeeds:
    """``seeds: {adaptive: {start, step, max}}``: seeds 0..start-1 first, then ``step`` more per round."""

    start: int
    step: int
    max: int


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def same(a: Any, b: Any) -> bool:
    """Equal as the fingerprint sees them (JSON text), so 1 and True or 1 and 1.0 stay apart."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def check_path(where: str, path: Any) -> str:
    """A dotted config path; ``where`` (e.g. ``axes``) leads the message."""
    if not isinstance(path, str) or not PATH_RE.match(path):
        raise ValueError(f"{where}: {path!r} is not a dotted config path like 'model.neuron_overrides.reset'")
    return path


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(f"name must be letters, digits, '_', '-' or '.', got {name!r}")
    return name


def check_experiment(experiment: Any, name: str) -> str:
    if not isinstance(experiment, str) or not EXPERIMENT_RE.match(experiment):
        raise ValueError(f"experiment must be names of letters, digits, '_', '-' or '.' joined by '/' (it is also "
                         f"the folder under --results-dir), e.g. ablation/{name}; got {experiment!r}")
    return experiment


def metric_and_direction(data: dict, default: str) -> tuple[str, str]:
    """``metric`` (else ``default``) and ``direction`` (else inferred from the metric's name)."""
    metric = data.get("metric", default)
    if not isinstance(metric, str) or not (metric in KNOWN_METRICS or METRIC_RE.match(metric)):
        raise ValueError(f"metric must be a stage/name metric such as {', '.join(KNOWN_METRICS)}; got {metric!r}")
    name = metric.split("/")[-1]
    # energy_ratio is ANN / SNN energy (higher is better); checked before the plain energy words
    higher_is_better = "acc" in name or name in ("energy_ratio", "high_code_fraction")
    lower_is_better = not higher_is_better and any(
        word in name for word in ("loss", "energy", "sops", "macs", "firing", "seconds"))
    direction = data.get("direction", "minimize" if lower_is_better else "maximize")
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    return metric, direction


def check_budget(budget: Any) -> dict:
    budget = budget or {}
    if not isinstance(budget, dict):
        raise ValueError(f"budget must be a mapping with keys {sorted(BUDGET_KEYS)}, got {budget!r}")
    unknown = sorted(set(budget) - set(BUDGET_KEYS))
    if unknown:
        raise ValueError(f"unknown budget key(s) {unknown}; valid: {sorted(BUDGET_KEYS)}")
    check_max_epochs(budget.get("max_epochs"))
    for key in ("trial_time_limit_s", "time_limit_s"):
        value = budget.get(key)
        if value is not None and (not is_number(value) or value <= 0):
            raise ValueError(f"budget.{key} must be a number of seconds > 0, got {value!r}")
    return budget


def check_max_epochs(epochs: Any) -> None:
    """``budget.max_epochs`` (or ``--max-epochs``, which wins over it)."""
    if epochs is not None and (not is_int(epochs) or epochs < 1):
        raise ValueError(f"budget.max_epochs must be an integer >= 1, got {epochs!r}")


def check_seeds(value: Any) -> list[int]:
    """A seed list (or one seed): integers in [0, 2**32), no duplicates."""
    if is_int(value):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ValueError(f"seeds must be a non-empty list of integers, got {value!r}")
    for seed in value:
        if not is_int(seed) or not 0 <= seed < 2**32:
            raise ValueError(f"seeds must be integers in [0, 2**32), got {seed!r} in {value!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"seeds contain duplicates: {value!r}")
    return list(value)


def check_adaptive(value: dict) -> dict:
    """``seeds: {adaptive: {start, step, max}}``: start >= 2, step >= 1, max >= start."""
    if set(value) != {"adaptive"}:
        extra = sorted(map(str, set(value) - {"adaptive"}))
        raise ValueError(f"seeds: {f'unknown key(s) {extra}' if extra else 'an empty mapping'}; give a list of "
                         f"seeds or {ADAPTIVE_EXAMPLE}")
    plan = value["adaptive"]
    if not isinstance(plan, dict):
        raise ValueError(f"seeds.adaptive must be a mapping like {{start: 3, step: 2, max: 15}}, got {plan!r}")
    unknown = sorted(set(plan) - set(ADAPTIVE_KEYS))
    if unknown:
        raise ValueError(f"seeds.adaptive: unknown key(s) {unknown}; valid: {list(ADAPTIVE_KEYS)}")
    missing = [key for key in ADAPTIVE_KEYS if key not in plan]
    if missing:
        raise ValueError(f"seeds.adaptive: missing {missing}; give all of {list(ADAPTIVE_KEYS)}")
    for key, low in (("start", 2), ("step", 1), ("max", plan["start"])):  # start is checked first
        if not is_int(plan[key]) or plan[key] < low:
            need = "max >= start" if key == "max" else f"{key} >= {low}"
            raise ValueError(f"seeds.adaptive.{key} must be an integer with {need}, got {plan[key]!r}")
    return value


def check_axes(axes: Any) -> dict[str, list]:
    """Dotted paths to non-empty lists of distinct finite values; no axis inside another."""
    if not isinstance(axes, dict) or not axes:
        raise ValueError("axes must be a non-empty mapping of dotted config paths to lists of values")
    for path, values in axes.items():
        check_path("axes", path)
        if path == "seed_everything":
            raise ValueError("seed_everything cannot be an axis: list the seeds under `seeds:`")
        if not isinstance(values, list):
            raise ValueError(f"axis {path}: values must be a list, got {values!r}")
        if not values:
            raise ValueError(f"axis {path} is empty: give it at least one value")
        for i, value in enumerate(values):
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"axis {path}: value {value!r} is not a finite number")
            if any(same(value, other) for other in values[:i]):
                raise ValueError(f"axis {path}: value {value!r} is listed twice")
    for a, b in itertools.pairwise(sorted(axes)):
        if b.startswith(a + "."):
            raise ValueError(f"axes {a} and {b} overlap (one is inside the other)")
    return axes


def check_exclude(exclude: Any) -> list[dict]:
    """The entries' shape; that they name axes and their values is checked with the axes (spec_cross.py)."""
    exclude = exclude or []
    if not isinstance(exclude, list):
        raise ValueError(f"exclude must be a list of mappings (axis path -> value), got {exclude!r}")
    for entry in exclude:
        if not isinstance(entry, dict) or not entry:
            raise ValueError(f"exclude entry {entry!r} must be a non-empty mapping of axis path -> value")
    return exclude


def check_baseline(baseline: Any) -> dict:
    baseline = baseline or {}
    if not isinstance(baseline, dict):
        raise ValueError(f"baseline must be a mapping of axis path -> value, e.g. {{model.neuron: lif}}; "
                         f"got {baseline!r}")
    return baseline


def check_alpha(alpha: Any) -> float:
    if not is_number(alpha) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a number with 0 < alpha < 1, got {alpha!r}")
    return float(alpha)


def check_per_metric(value: Any, key: str) -> dict[str, float]:
    """``equivalence_margin:`` / ``min_effect:``: metric -> a positive number (its display unit)."""
    value = value or {}
    example = "{test/acc: 0.3} (points for accuracy, µJ for energy)"
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be a mapping of metric -> positive number, e.g. {example}; got {value!r}")
    out: dict[str, float] = {}
    for metric, number in value.items():
        if not isinstance(metric, str) or not METRIC_RE.match(metric):
            raise ValueError(f"{key}: {metric!r} is not a metric name (e.g. test/acc)")
        if not is_number(number) or not number > 0:
            raise ValueError(f"{key}: {metric} must be a positive number in its display unit, got {number!r}")
        out[metric] = float(number)
    return out


def check_params(params: Any) -> dict[str, dict]:
    """Dotted paths to search ranges; a list is short for ``{type: categorical, choices: [...]}``."""
    if not isinstance(params, dict) or not params:
        raise ValueError("params must be a non-empty mapping of dotted config paths to search ranges")
    return {check_path("params", path): check_param(f"params.{path}", p) for path, p in params.items()}


def check_param(where: str, p: Any) -> dict:
    if isinstance(p, list):
        p = {"type": "categorical", "choices": p}
    if not isinstance(p, dict):
        raise ValueError(f"{where}: expected {{type: float|int|categorical, ...}}, got {p!r}")
    kind = p.get("type")
    if kind not in PARAM_KEYS:
        raise ValueError(f"{where}: type must be one of float, int, categorical; got {kind!r}")
    unknown = sorted(set(p) - PARAM_KEYS[kind])
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown} for type {kind}; valid: {sorted(PARAM_KEYS[kind])}")
    if kind == "categorical":
        choices = p.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ValueError(f"{where}: categorical needs a non-empty `choices` list")
        if any(not (c is None or isinstance(c, (bool, int, float, str))) for c in choices):
            raise ValueError(f"{where}: categorical choices must be scalars (None, bool, int, float, str): {choices!r}")
        return dict(p)
    low, high = p.get("low"), p.get("high")
    check = is_int if kind == "int" else is_number
    if not check(low) or not check(high) or not low < high:
        raise ValueError(f"{where}: {kind} needs numbers low < high, got low={low!r}, high={high!r}")
    if p.get("log") and low <= 0:
        raise ValueError(f"{where}: log scale needs low > 0, got {low!r}")
    if p.get("log") and p.get("step") is not None:
        raise ValueError(f"{where}: log and step cannot be combined")
    return dict(p)


def check_n_trials(n_trials: Any) -> int:
    if not is_int(n_trials) or n_trials < 1:
        raise ValueError(f"n_trials must be an integer >= 1, got {n_trials!r}")
    return n_trials


def check_objectives(items: Any) -> list[dict]:
    """``objectives:``: 2 or more ``{metric, direction}`` mappings, each metric once."""
    example = "[{metric: val/acc_best, direction: maximize}, {metric: test/energy_mj, direction: minimize}]"
    if not isinstance(items, list) or len(items) < 2:
        raise ValueError(f"objectives must be a list of 2 or more {{metric, direction}} mappings, e.g. {example}; "
                         f"got {items!r} (for one objective use `metric:` and `direction:`)")
    seen: list[str] = []
    for i, item in enumerate(items):
        w = f"objectives[{i}]"
        if not isinstance(item, dict) or "metric" not in item:
            raise ValueError(f"{w}: expected a mapping {{metric: ..., direction: maximize|minimize}}, got {item!r}")
        unknown = sorted(set(item) - {"metric", "direction"})
        if unknown:
            raise ValueError(f"{w}: unknown key(s) {unknown}; valid: ['direction', 'metric']")
        try:
            metric, _ = metric_and_direction(item, "")
        except ValueError as exc:
            raise ValueError(f"{w}: {exc}") from None
        if metric in seen:
            raise ValueError(f"{w}: metric {metric!r} is listed twice")
        seen.append(metric)
    return items


def check_sampler(sampler: Any) -> dict:
    """The mapping and its ``type``; its other keys are checked against the Optuna class (spec_cross.py)."""
    sampler = sampler or {}
    if not isinstance(sampler, dict):
        raise ValueError(f"sampler must be a mapping like {{type: tpe, seed: 0}}, got {sampler!r}")
    if sampler.get("type", "tpe") not in SAMPLERS:
        raise ValueError(f"sampler.type must be one of {SAMPLERS}, got {sampler['type']!r}")
    return sampler


def check_pruner(pruner: Any) -> dict:
    """The mapping, its ``type`` and ``monitor``; the other keys are checked against the Optuna class."""
    pruner = pruner or {}
    if not isinstance(pruner, dict):
        raise ValueError(f"pruner must be a mapping like {{type: median}}, got {pruner!r}")
    if pruner.get("type", "median") not in PRUNERS:
        raise ValueError(f"pruner.type must be one of {PRUNERS}, got {pruner['type']!r}")
    monitor = pruner.get("monitor", "val/acc")
    if not isinstance(monitor, str) or not METRIC_RE.match(monitor):
        raise ValueError(f"pruner.monitor must be a logged metric like val/acc, got {monitor!r}")
    return pruner
