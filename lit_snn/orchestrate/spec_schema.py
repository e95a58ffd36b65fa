"""The schema of ablation and sweep files, declared with pydantic: one model per kind, each key's type and bounds.

``validate_file(kind, data, where)`` is the only way in: the first problem becomes one ``SpecError`` line,
``FILE: <key path>: <what is wrong>, got <value>[; e.g. <example>]``; ``_one_line`` translates any pydantic
error (its ``loc`` walked through the file's data is the key path; its message, the hint of its pattern or
the key's example says what is valid). Validators are written only for what pydantic cannot declare: values
listed once, one key against another (exclude, baseline and adaptive seeds against the axes). What needs the
base config or the Optuna classes is in spec_cross.py. A new key: docs/study-files.md.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    Tag,
    TypeAdapter,
    ValidationError,
    WrapValidator,
    field_validator,
    model_validator,
)

from .yamlio import SpecError

DOTTED_PATH = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
NAME = r"^[A-Za-z0-9_.-]+$"
# "ablation/default": relative, no empty, "." or ".." part, so results/<experiment>/ stays inside --results-dir
EXPERIMENT = r"^(?!\.{1,2}(/|$))[A-Za-z0-9_.-]+(/(?!\.{1,2}(/|$))[A-Za-z0-9_.-]+)*$"
METRIC = r"^(train_seconds|(train|val|test)/[A-Za-z0-9_./-]+)$"
KNOWN_METRICS = ("test/acc", "test/acc_top5", "test/loss", "test/firing_rate", "test/sops", "test/energy_mj",
                 "test/ann_energy_mj", "val/acc_best", "val/acc", "val/loss", "train_seconds")
PATTERN_HINTS = {  # what a value that misses the pattern should be (pydantic would print the regex)
    DOTTED_PATH: "a dotted config path like 'model.neuron_overrides.reset'",
    NAME: "letters, digits, '_', '-' or '.' (without `name:`, the file's name)",
    EXPERIMENT: "names of letters, digits, '_', '-' or '.' joined by '/' (it is also the folder under "
                "--results-dir), e.g. ablation/default",
    METRIC: f"a stage/name metric such as {', '.join(KNOWN_METRICS)}",
}
EXAMPLES = {  # top-level key -> an example, added to a wrong type's line
    "axes": "{model.neuron: [lif, ar_lif]}",
    "seeds": "[0, 1, 2] or {adaptive: {start: 3, step: 2, max: 15}}",
    "exclude": "[{model.neuron: lif, model.time_steps: 4}]",
    "baseline": "{model.neuron: lif}",
    "equivalence_margin": "{test/acc: 0.3} (points for accuracy, µJ for energy)",
    "min_effect": "{test/acc: 0.3} (points for accuracy, µJ for energy)",
    "params": "{model.lr: {type: float, low: 0.001, high: 0.1, log: true}, model.time_steps: [2, 4]}",
    "objectives": "[{metric: val/acc_best, direction: maximize}, {metric: test/energy_mj, direction: minimize}] "
                  "(for one objective use `metric:` and `direction:`)",
    "sampler": "{type: tpe, seed: 0}",
    "pruner": "{type: median, monitor: val/acc}",
}

PROBLEMS = {  # pydantic's error type -> the line's wording where pydantic's message names its internals
    "missing": "missing: this key is required",
    "model_type": "input should be a mapping",
    "model_attributes_type": "input should be a mapping",
    "union_tag_invalid": "type must be one of {expected_tags}",
    "union_tag_not_found": "needs a `type:` (float, int or categorical) or a list of choices",
}

DottedPath = Annotated[str, StringConstraints(pattern=DOTTED_PATH)]
Metric = Annotated[str, StringConstraints(pattern=METRIC)]
Direction = Literal["maximize", "minimize"]
Seed = Annotated[StrictInt, Field(ge=0, lt=2**32)]
Positive = Annotated[float, Field(gt=0)]


def same(a: Any, b: Any) -> bool:
    """Equal as the fingerprint sees them (JSON text), so 1 and True or 1 and 1.0 stay apart."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _listed_once(values: list) -> list:
    """Each value once (as the fingerprint tells them apart) and finite: pydantic's ``unique`` tells 1 from True."""
    for i, value in enumerate(values):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"value {value!r} is not a finite number")
        if any(same(value, other) for other in values[:i]):
            raise ValueError(f"value {value!r} is listed twice")
    return values


def _validated_input(value: Any, handler: Any) -> Any:
    """Checked as declared, kept as written (1 stays 1 for a float range: the fingerprint tells 1 from 1.0)."""
    handler(value)
    return value


class _Schema(BaseModel):
    """Strict types (no '3' -> 3, no True -> 1), no NaN/inf, no keys beyond the declared ones."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, regex_engine="python-re")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        """All unknown keys at once with the valid ones (pydantic reports one ``extra_forbidden`` per key)."""
        unknown = sorted(map(str, set(data) - set(cls.model_fields))) if isinstance(data, dict) else []
        if unknown and cls.model_config.get("extra") == "forbid":
            raise ValueError(f"unknown key(s) {unknown}; valid: {sorted(cls.model_fields)}")
        return data


class Budget(_Schema):
    max_epochs: Annotated[StrictInt, Field(ge=1)] | None = None  # trainer.max_epochs (--max-epochs wins)
    trial_time_limit_s: Positive | None = None  # trainer.max_time
    time_limit_s: Positive | None = None  # no new trial after this many seconds


class AdaptivePlan(_Schema):
    """``seeds: {adaptive: {start, step, max}}``: seeds 0..start-1 first, then ``step`` more per round."""

    model_config = ConfigDict(frozen=True)  # a spec's field (AblationSpec.adaptive)
    start: Annotated[StrictInt, Field(ge=2)]
    step: Annotated[StrictInt, Field(ge=1)]
    max: StrictInt

    @model_validator(mode="after")
    def _max_from_start(self) -> AdaptivePlan:
        if self.max < self.start:
            raise ValueError(f"max must be >= start ({self.start}), got {self.max}")
        return self


class AdaptiveSeedsFile(_Schema):
    adaptive: AdaptivePlan


SeedList = Annotated[list[Seed], Field(min_length=1), AfterValidator(_listed_once)]
Seeds = Annotated[  # a list, or a mapping for adaptive seeds: one branch's errors, not both
    Union[Annotated[SeedList, Tag("list")], Annotated[AdaptiveSeedsFile, Tag("mapping")]],
    Discriminator(lambda value: "mapping" if isinstance(value, (dict, AdaptiveSeedsFile)) else "list"),
]


def _axes_apart(axes: dict[str, list]) -> dict[str, list]:
    if "seed_everything" in axes:
        raise ValueError("seed_everything cannot be an axis: list the seeds under `seeds:`")
    for a, b in itertools.pairwise(sorted(axes)):
        if b.startswith(a + "."):
            raise ValueError(f"{a} and {b} overlap (one is inside the other)")
    return axes


Axes = Annotated[dict[DottedPath, Annotated[list[Any], Field(min_length=1), AfterValidator(_listed_once)]],
                 Field(min_length=1), AfterValidator(_axes_apart)]


class Objective(_Schema):
    metric: Metric
    direction: Direction | None = None  # inferred from the metric's name


def _metrics_once(objectives: list[Objective]) -> list[Objective]:
    _listed_once([o.metric for o in objectives])
    return objectives


class _Range(_Schema):
    log: StrictBool = False
    step: Positive | None = None

    @model_validator(mode="after")
    def _ordered(self) -> _Range:
        if not self.low < self.high:
            raise ValueError(f"{self.type} needs low < high, got low={self.low!r}, high={self.high!r}")
        if self.log and self.low <= 0:
            raise ValueError(f"log scale needs low > 0, got {self.low!r}")
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be combined")
        return self


class FloatRange(_Range):
    type: Literal["float"]
    low: float
    high: float


class IntRange(_Range):
    type: Literal["int"]
    low: StrictInt
    high: StrictInt
    step: Annotated[StrictInt, Field(ge=1)] | None = None


def _scalars(choices: list) -> list:
    if any(not (c is None or isinstance(c, (bool, int, float, str))) for c in choices):
        raise ValueError(f"categorical choices must be scalars (None, bool, int, float, str), got {choices!r}")
    return choices


class Categorical(_Schema):
    type: Literal["categorical"]
    choices: Annotated[list[Any], Field(min_length=1), AfterValidator(_scalars)]


Param = Annotated[  # a list is short for {type: categorical, choices: [...]}
    Annotated[Union[FloatRange, IntRange, Categorical], Field(discriminator="type")],
    WrapValidator(_validated_input),
    BeforeValidator(lambda p: {"type": "categorical", "choices": p} if isinstance(p, list) else p),
]


class Sampler(_Schema):
    """``type`` and ``seed``; the other keys are the Optuna sampler's own arguments (kept as given)."""

    model_config = ConfigDict(extra="allow")
    type: Literal["tpe", "nsga2", "random"] = "tpe"
    seed: int | None = 0


class Pruner(_Schema):
    """``type`` (default: median, none with several objectives) and ``monitor``; the rest: the pruner's arguments."""

    model_config = ConfigDict(extra="allow")
    type: Literal["median", "percentile", "hyperband", "successive_halving", "threshold", "none"] | None = None
    monitor: Metric = "val/acc"


class StudyFile(_Schema):
    """The keys of both kinds, in the order they are checked (the first bad one is reported)."""

    base_config: Annotated[str, StringConstraints(min_length=1)] = None
    base: dict[str, Any] = None
    overrides: dict[DottedPath, Any] = {}
    budget: Budget = Budget()
    name: Annotated[str, StringConstraints(pattern=NAME)] | None = None  # default: the file's stem
    experiment: Annotated[str, StringConstraints(pattern=EXPERIMENT)] | None = None  # default: <kind>/<name>
    description: Any = None  # any scalar, shown as text
    metric: Metric = None  # default: the kind's (test/acc, val/acc_best)
    direction: Direction = None  # default: from the metric's name
    # where the workers run: checked and read by launchers/slurm_settings.py (not a trial's computation,
    # so not in the fingerprint)
    launcher: dict[str, Any] | None = None

    @field_validator("overrides", "budget", "exclude", "baseline", "equivalence_margin", "min_effect", "sampler",
                     "pruner", mode="before", check_fields=False)
    @classmethod
    def _null_is_the_default(cls, value: Any, info: Any) -> Any:
        """``exclude:`` with nothing after it (YAML null) means the key's default."""
        return cls.model_fields[info.field_name].get_default(call_default_factory=True) if value is None else value

    @model_validator(mode="after")
    def _has_a_base(self) -> StudyFile:
        if self.base_config is None and self.base is None:
            raise ValueError("needs a base config: `base_config: configs/....yaml` and/or an inline `base:` mapping")
        return self


class AblationFile(StudyFile):
    axes: Axes
    seeds: Seeds = None  # default: [the base's seed_everything]
    exclude: list[Annotated[dict[DottedPath, Any], Field(min_length=1)]] = []  # against the axes: spec_cross.py
    baseline: dict[DottedPath, Any] = {}
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05
    equivalence_margin: dict[Metric, Positive] = {}
    min_effect: dict[Metric, Positive] = {}

    @model_validator(mode="after")
    def _against_the_axes(self) -> AblationFile:
        """Exclude entries and the baseline name axes and their values; adaptive seeds decide the arms of one
        axis against its baseline: one axis, a baseline and an arm left."""
        for entry in self.exclude:
            for path, value in entry.items():
                _a_value_of(self.axes, path, value, f"exclude entry {entry!r}")
        for path, value in self.baseline.items():
            _a_value_of(self.axes, path, value, "baseline")
        if isinstance(self.seeds, AdaptiveSeedsFile):
            if len(self.axes) != 1:
                raise ValueError(f"adaptive seeds need exactly one axis (they decide each value against the axis' "
                                 f"baseline), this file has {len(self.axes)}: {', '.join(self.axes)}; use a seed "
                                 "list or one study per axis")
            path, values = next(iter(self.axes.items()))
            left = [v for v in values if not any(same(entry[path], v) for entry in self.exclude)]
            baseline = self.baseline.get(path, values[0])
            if not any(same(baseline, v) for v in left):
                raise ValueError(f"adaptive seeds: the baseline {baseline!r} of {path} is excluded")
            if len(left) < 2:
                raise ValueError(f"adaptive seeds need an arm to compare with the baseline: axis {path} has "
                                 f"{len(left)} value(s) left")
        return self


def _a_value_of(axes: dict[str, list], path: str, value: Any, what: str) -> None:
    if path not in axes:
        raise ValueError(f"{what}: {path!r} is not an axis ({', '.join(axes)})")
    if not any(same(value, v) for v in axes[path]):
        raise ValueError(f"{what}: {value!r} is not a value of axis {path} ({axes[path]!r})")


class SweepFile(StudyFile):
    objectives: Annotated[list[Objective], Field(min_length=2), AfterValidator(_metrics_once)] = None  # 2 or more
    n_trials: Annotated[StrictInt, Field(ge=1)]
    seed: Seed = 0  # the training seed (seed_everything) of every trial
    params: Annotated[dict[DottedPath, Param], Field(min_length=1)]
    sampler: Sampler = Sampler()
    pruner: Pruner = Pruner()

    @model_validator(mode="before")
    @classmethod
    def _objectives_or_metric(cls, data: Any) -> Any:
        both = sorted(k for k in ("metric", "direction") if k in data)
        if "objectives" in data and both:
            raise ValueError(f"`objectives:` and {' / '.join(f'`{k}:`' for k in both)} exclude each other: "
                             "name one objective with metric/direction, or several under objectives")
        return data


SCHEMAS: dict[str, type[StudyFile]] = {"ablation": AblationFile, "sweep": SweepFile}


def file_keys(kind: str) -> set[str]:
    """The top-level keys a file of ``kind`` may have."""
    return set(SCHEMAS[kind].model_fields)


def validate_file(kind: str, data: dict, where: str) -> StudyFile:
    """``data`` (a parsed file, a mapping) -> its kind's model; the first problem as one ``SpecError`` line."""
    return validated(SCHEMAS[kind], data, where)


def validated(schema: Any, value: Any, where: str) -> Any:
    """``value`` validated as ``schema`` (a model or a type); a problem is one ``SpecError`` line led by ``where``."""
    try:
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            return schema.model_validate(value)
        return TypeAdapter(schema, config=_Schema.model_config).validate_python(value)
    except ValidationError as exc:
        raise SpecError(f"{where}: {_one_line(exc.errors()[0], value)}") from None


def _one_line(error: dict, data: Any) -> str:
    """``<key path>: <what is wrong>, got <value>[; e.g. <example>]`` from one of pydantic's errors."""
    loc, got = error["loc"], f"got {error['input']!r}"
    if loc[-1:] == ("[key]",):  # (..., the key, "[key]"): a mapping's key, not its value
        loc, got = loc[:-2], f"got the key {error['input']!r}"
    path = _key_path(loc, data, missing=error["type"] == "missing")
    ctx = error.get("ctx", {})
    if error["type"] == "value_error":
        problem, got = str(ctx["error"]), ""
    elif error["type"] == "string_pattern_mismatch":
        problem, got = f"{error['input']!r} is not {PATTERN_HINTS[ctx['pattern']]}", ""
    else:
        problem = PROBLEMS[error["type"]].format(**ctx) if error["type"] in PROBLEMS else error["msg"]
        problem, got = problem[:1].lower() + problem[1:], "" if error["type"] == "missing" else got
    wrong_type = error["type"].endswith(("_type", "too_short", "union_tag_invalid"))
    example = EXAMPLES.get(path.split(".")[0].split("[")[0]) if wrong_type else None
    line = ", ".join(part for part in (problem, got) if part)
    return f"{path + ': ' if path else ''}{line}{f'; e.g. {example}' if example else ''}"


def _key_path(loc: tuple, data: Any, missing: bool) -> str:
    """The error's location as the file spells it (``seeds.adaptive.start``, ``objectives[1]``): the parts of
    ``loc`` found in ``data`` plus a missing key; pydantic's names of union members are no keys and are left out."""
    parts, node = [], data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node or isinstance(node, list) and isinstance(part, int):
            parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
            node = node[part]
        elif missing and i == len(loc) - 1:
            parts.append(f".{part}")
    return "".join(parts).lstrip(".")
