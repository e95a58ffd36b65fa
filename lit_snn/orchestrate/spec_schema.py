"""The schema of ablation and sweep files: one pydantic model per kind, for the top-level keys and their types.

``validate_file(kind, data, where)`` is the only way in: an unknown top-level key, a wrong type or a
bad value raises ``SpecError("FILE: <key>: <value> ... <what is valid>")``, one line. Each key's value
check is a ``before`` validator calling its function in spec_values.py, so the message is the one
written there (pydantic's own multi-line ``ValidationError`` never reaches the user; a type the
validators let through would still get one line: key path, pydantic's message and the value).

Checks across keys that need the base config or the axes (exclude entries naming axes, baseline
values, adaptive seeds vs one axis, sampler/pruner options vs the Optuna class) are in spec_cross.py.

A new top-level key: one field on ``StudyFile`` (both kinds), ``AblationFile`` or ``SweepFile`` (its
type; a nested model when its structure is fixed; a ``before`` validator for its message), then read
it where the spec is built (``spec.py``: ``_common`` for both kinds, ``_ablation`` / ``_sweep``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from . import spec_values as v
from .yamlio import SpecError

Direction = Literal["maximize", "minimize"]


class _Schema(BaseModel):
    """Strict types (no '3' -> 3, no True -> 1), no NaN/inf, no keys beyond the declared ones."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Budget(_Schema):
    max_epochs: int | None = Field(None, ge=1)  # trainer.max_epochs
    trial_time_limit_s: int | float | None = Field(None, gt=0)  # trainer.max_time
    time_limit_s: int | float | None = Field(None, gt=0)  # no new trial after this many seconds


class AdaptivePlan(_Schema):
    start: int = Field(ge=2)
    step: int = Field(ge=1)
    max: int


class AdaptiveSeedsFile(_Schema):
    adaptive: AdaptivePlan


class Objective(_Schema):
    metric: str
    direction: Direction | None = None  # inferred from the metric's name


class Sampler(_Schema):
    """``type`` and ``seed``; the other keys are the Optuna sampler's own arguments (kept as given)."""

    model_config = ConfigDict(extra="allow")
    type: Literal[v.SAMPLERS] = "tpe"  # type: ignore[valid-type]
    seed: int | None = 0


class Pruner(_Schema):
    """``type`` (default: median, none with several objectives) and ``monitor``; the rest: the pruner's arguments."""

    model_config = ConfigDict(extra="allow")
    type: Literal[v.PRUNERS] | None = None  # type: ignore[valid-type]
    monitor: str = "val/acc"


class StudyFile(_Schema):
    """The keys of both kinds, in the order they are checked (the first bad one is reported)."""

    base_config: str | None = None
    base: dict[str, Any] | None = None
    overrides: dict[str, Any] = {}
    budget: Budget = Budget()
    name: str | None = None  # default: the file's stem
    experiment: str | None = None  # default: <kind>/<name>
    description: Any = None  # any scalar, shown as text
    metric: str | None = None  # default: the kind's (test/acc, val/acc_best)
    direction: Direction | None = None  # default: from the metric's name
    # where the workers run: checked and read by launchers/slurm_settings.py (not a trial's computation,
    # so not in the fingerprint)
    launcher: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _has_a_base(self) -> StudyFile:
        if self.base_config is None and self.base is None:
            raise ValueError("needs a base config: `base_config: configs/....yaml` and/or an inline `base:` mapping")
        return self

    @field_validator("base_config", mode="before")
    @classmethod
    def _base_config(cls, ref: Any) -> Any:
        if not isinstance(ref, str) or not ref:
            raise ValueError(f"base_config must be a path, got {ref!r}")
        return ref

    @field_validator("base", mode="before")
    @classmethod
    def _base(cls, base: Any) -> Any:
        if not isinstance(base, dict):
            raise ValueError(f"base must be a mapping, got {type(base).__name__}")
        return base

    @field_validator("overrides", mode="before")
    @classmethod
    def _overrides(cls, overrides: Any) -> Any:
        overrides = overrides or {}
        if not isinstance(overrides, dict):
            raise ValueError(f"overrides must be a mapping of dotted paths to values, got {overrides!r}")
        for key in overrides:
            v.check_path("overrides", key)
        return overrides

    @field_validator("budget", mode="before")
    @classmethod
    def _budget(cls, budget: Any) -> Any:
        return v.check_budget(budget)

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, name: Any) -> Any:
        return v.check_name(name) if name else None

    @field_validator("experiment", mode="before")
    @classmethod
    def _experiment(cls, experiment: Any, info: ValidationInfo) -> Any:
        name = info.data.get("name") or info.context["default_name"]
        return v.check_experiment(experiment, name) if experiment else None

    @field_validator("metric", mode="before")
    @classmethod
    def _metric(cls, metric: Any) -> Any:
        return v.metric_and_direction({"metric": metric}, "")[0]

    @field_validator("direction", mode="before")
    @classmethod
    def _direction(cls, direction: Any) -> Any:
        if direction not in ("maximize", "minimize"):
            raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
        return direction


class AblationFile(StudyFile):
    axes: dict[str, list[Any]] = Field(None, validate_default=True)  # required: None gets the message
    seeds: list[int] | AdaptiveSeedsFile | None = None  # default: [the base's seed_everything]
    exclude: list[dict[str, Any]] = []
    baseline: dict[str, Any] = {}
    alpha: float = 0.05
    equivalence_margin: dict[str, float] = {}
    min_effect: dict[str, float] = {}

    @field_validator("axes", mode="before")
    @classmethod
    def _axes(cls, axes: Any) -> Any:
        return v.check_axes(axes)

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, seeds: Any) -> Any:
        return v.check_adaptive(seeds) if isinstance(seeds, dict) else v.check_seeds(seeds)

    @field_validator("exclude", mode="before")
    @classmethod
    def _exclude(cls, exclude: Any) -> Any:
        return v.check_exclude(exclude)

    @field_validator("baseline", mode="before")
    @classmethod
    def _baseline(cls, baseline: Any) -> Any:
        return v.check_baseline(baseline)

    @field_validator("alpha", mode="before")
    @classmethod
    def _alpha(cls, alpha: Any) -> Any:
        return v.check_alpha(alpha)

    @field_validator("equivalence_margin", "min_effect", mode="before")
    @classmethod
    def _per_metric(cls, value: Any, info: ValidationInfo) -> Any:
        return v.check_per_metric(value, info.field_name)


class SweepFile(StudyFile):
    objectives: list[Objective] | None = None  # instead of metric/direction: 2 or more
    n_trials: int = Field(None, validate_default=True)
    seed: int = 0  # the training seed (seed_everything) of every trial
    params: dict[str, dict[str, Any]] = Field(None, validate_default=True)  # a list: categorical choices
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

    @field_validator("params", mode="before")
    @classmethod
    def _params(cls, params: Any) -> Any:
        return v.check_params(params)

    @field_validator("n_trials", mode="before")
    @classmethod
    def _n_trials(cls, n_trials: Any) -> Any:
        return v.check_n_trials(n_trials)

    @field_validator("seed", mode="before")
    @classmethod
    def _seed(cls, seed: Any) -> Any:
        return v.check_seeds(seed)[0]

    @field_validator("sampler", mode="before")
    @classmethod
    def _sampler(cls, sampler: Any) -> Any:
        return v.check_sampler(sampler)

    @field_validator("pruner", mode="before")
    @classmethod
    def _pruner(cls, pruner: Any) -> Any:
        return v.check_pruner(pruner)

    @field_validator("objectives", mode="before")
    @classmethod
    def _objectives(cls, objectives: Any) -> Any:
        return v.check_objectives(objectives)


SCHEMAS: dict[str, type[StudyFile]] = {"ablation": AblationFile, "sweep": SweepFile}


def file_keys(kind: str) -> set[str]:
    """The top-level keys a file of ``kind`` may have."""
    return set(SCHEMAS[kind].model_fields)


def validate_file(kind: str, data: dict, where: str, default_name: str) -> StudyFile:
    """``data`` (a parsed file, a mapping) -> its kind's model; the first problem as one ``SpecError`` line."""
    try:
        return SCHEMAS[kind].model_validate(data, context={"default_name": default_name})
    except ValidationError as exc:
        raise SpecError(f"{where}: {_one_line(exc.errors()[0])}") from None


def _one_line(error: dict) -> str:
    """A validator's own message, else the key path, pydantic's message and the value."""
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])
    loc, got = list(error["loc"]), f"got {error['input']!r}"
    if loc[-1:] == ["[key]"]:  # a mapping's key: (..., the key, "[key]")
        loc, got = loc[:-2], f"got the key {error['input']!r}"
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
    return f"{path or 'the file'}: {error['msg'][:1].lower()}{error['msg'][1:]}, {got}"
