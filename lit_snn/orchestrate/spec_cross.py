"""What a study file's schema cannot check alone: the base config (read from disk, with overrides, budget and
``--set``), ``--set`` against the axes, sampler/pruner options against the Optuna class, pruning vs several
objectives. Each raises ``SpecError("FILE: ...")``, one line. (Exclude entries, the baseline and adaptive seeds
against the axes: ``AblationFile``'s validator in spec_schema.py.)
"""

from __future__ import annotations

import inspect
import math
import warnings
from pathlib import Path

from .dotted import deep_merge, set_path
from .spec_schema import Budget, DottedPath, StudyFile, SweepFile, validated
from .yamlio import SpecError, load_yaml, parse_value

# Quiet trainers under the orchestrator; a base config that sets these wins.
ORCHESTRATOR_DEFAULTS = {"trainer": {"enable_progress_bar": False, "enable_model_summary": False}}


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


def base_config(file: StudyFile, source: Path | None, max_epochs: int | None, sets: list[str], where: str) -> dict:
    """The config every trial starts from: defaults < base_config < base < overrides < budget < ``--set``."""
    base: dict = {}
    if file.base_config is not None:
        path = _find_base_config(file.base_config, source)
        loaded = load_yaml(path)
        if not isinstance(loaded, dict):
            raise SpecError(f"{path}: a config must be a mapping, got {type(loaded).__name__}")
        base = loaded
    if file.base is not None:
        base = deep_merge(base, file.base)
    base = deep_merge(deep_merge(ORCHESTRATOR_DEFAULTS, base), file.overrides)
    if max_epochs is not None:  # --max-epochs, checked as the key it wins over
        validated(Budget, {"max_epochs": max_epochs}, f"{where}: --max-epochs")
    epochs = max_epochs if max_epochs is not None else file.budget.max_epochs
    if epochs is not None:
        set_path(base, "trainer.max_epochs", epochs)
    if file.budget.trial_time_limit_s is not None:
        set_path(base, "trainer.max_time", _seconds_to_max_time(file.budget.trial_time_limit_s))
    for item in sets:
        key, sep, text = item.partition("=")
        if not sep:
            raise SpecError(f"--set {item!r}: expected KEY=VALUE, e.g. --set trainer.max_epochs=2")
        set_path(base, validated(DottedPath, key.strip(), f"--set {item!r}"), parse_value(text))
    return base


def check_sets(axes: dict[str, list], sets: list[str], where: str) -> None:
    """No ``--set`` on an axis (the file's values would be overwritten in every point)."""
    for path in axes:
        if path in {item.partition("=")[0].strip() for item in sets}:
            raise SpecError(f"{where}: --set {path}=... conflicts with the axis {path}")


def sampler_class(kind: str) -> type:
    """The Optuna sampler class of a sweep's ``sampler.type``."""
    import optuna

    return {"tpe": optuna.samplers.TPESampler, "nsga2": optuna.samplers.NSGAIISampler,
            "random": optuna.samplers.RandomSampler}[kind]


def sampler_of(file: SweepFile, where: str) -> dict:
    """``{type, seed, **options}``, checked by the Optuna sampler itself (e.g. NSGA-II's population_size >= 2)."""
    sampler = file.sampler.model_dump()
    cls = sampler_class(sampler["type"])
    _check_kwargs(cls, sampler, where, "sampler")
    try:  # the sampler's own checks, before anything runs
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cls(**{k: v for k, v in sampler.items() if k != "type"})
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{where}: sampler: {cls.__name__} rejects {sampler!r}: {exc}") from None
    return sampler


def pruner_of(file: SweepFile, where: str) -> dict:
    """``{type, monitor, **options}``; the default type is median, none with several objectives."""
    multi_objective = file.objectives is not None
    pruner = file.pruner.model_dump()
    pruner["type"] = pruner["type"] or ("none" if multi_objective else "median")
    if multi_objective and pruner["type"] != "none":
        # optuna 5.0, trial/_trial.py: Trial.report and Trial.should_prune raise (Optuna's not-implemented error,
        # "... is not supported for multi-objective optimization") when the study has several directions
        raise SpecError(f"{where}: pruner {pruner['type']!r}: Optuna's pruners do not support several objectives "
                        "(Trial.report raises for a multi-objective study); set `pruner: {type: none}` "
                        "or drop the `pruner:` entry")
    if pruner["type"] != "none":
        from .pruning import PRUNER_CLASSES

        _check_kwargs(PRUNER_CLASSES[pruner["type"]], pruner, where, "pruner", skip={"type", "monitor"})
    return pruner


def _check_kwargs(cls: type, given: dict, where: str, what: str, skip: set = frozenset({"type"})) -> None:
    valid = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(given) - set(skip) - valid)
    if unknown:
        raise SpecError(f"{where}: {what}: unknown option(s) {unknown} for {cls.__name__}; valid: {sorted(valid)}")
