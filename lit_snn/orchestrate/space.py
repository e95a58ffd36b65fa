"""Search spaces: an ablation's grid (axes x seeds, every point resolved up front) and a sweep's ranges.

Everything here runs before a trial exists, so a bad axis path, an unknown preset or a value the
training code rejects stops the command with a message and nothing in Optuna or MLflow.
"""

from __future__ import annotations

import difflib
import inspect
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna

from lit_snn.errors import config_problem

from .axis_text import key_text, value_text
from .dotted import deep_merge, flatten, get_path, has_path, set_path
from .spec import StudySpec
from .training import resolve_run
from .yamlio import SpecError

# Resolved-config mappings whose keys are free-form kwargs: a new key under them is checked by
# the training code (resolve_run), not by "is it already in the resolved base".
FREE_FORM = ("model.backbone_kwargs", "data.init_args")
SEED_PARAM = "seed"


@dataclass(frozen=True)
class GridPoint:
    """One ablation trial: axis values + seed, its unique key, and its resolved config."""

    values: dict[str, Any]
    seed: int
    key: str
    config: dict  # resolved (logged as params and config.yaml)
    raw: dict  # as written (base + overrides + point): what run_training gets
    metrics: frozenset[str]  # what its training logs
    check_data: Callable[[], None] = field(compare=False, repr=False)  # its DataModule's file check

    @property
    def params(self) -> dict[str, Any]:
        """Optuna params of the point (non-scalar axis values JSON-encoded)."""
        out = {path: encode_value(v) for path, v in self.values.items()}
        out[SEED_PARAM] = self.seed
        return out


def encode_value(value: Any) -> Any:
    """An axis value as an Optuna categorical choice: scalars as they are, lists/dicts as JSON text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return "json:" + value_text(value)


def decode_value(value: Any) -> Any:
    """An Optuna param back to the axis value (``encode_value``'s inverse)."""
    if isinstance(value, str) and value.startswith("json:"):
        return json.loads(value[5:])
    return value


def point_key(values: dict[str, Any], seed: int) -> str:
    """The unique, stable name of a grid point, e.g. ``model.neuron=lif,seed=0`` (axis_text.key_text)."""
    return key_text(values, seed)


def run_name(values: dict[str, Any], seed: int | None = None) -> str:
    """A readable MLflow run name from axis or search values, e.g. ``neuron=ar_lif time_steps=4 seed=1``:
    the last part of each path (the whole path where two share it), floats to 4 digits."""
    leaves = [path.rsplit(".", 1)[-1] for path in values]
    parts = []
    for (path, value), leaf in zip(values.items(), leaves):
        shown = value if isinstance(value, str) else f"{value:.4g}" if isinstance(value, float) else json.dumps(value)
        parts.append(f"{leaf if leaves.count(leaf) == 1 else path}={shown}")
    return " ".join(parts + ([f"seed={seed}"] if seed is not None else []))


def values_key(values: dict[str, Any]) -> str:
    """``path=value,...`` of a sweep trial's values, floats to 4 digits: its key and its progress label."""
    return ",".join(f"{p}={v:.4g}" if isinstance(v, float) else f"{p}={v}" for p, v in values.items())


# ---------------------------------------------------------------------- path checks
def _trainer_args() -> set[str]:
    import lightning as L

    return set(inspect.signature(L.Trainer.__init__).parameters) - {"self"}


def check_config_path(resolved_base: dict, path: str, what: str) -> None:
    """``SpecError`` unless ``path`` names a setting of the resolved base config (or a valid field)."""
    if has_path(resolved_base, path):
        return
    parent, _, leaf = path.rpartition(".")
    if parent == "model.neuron_overrides":
        from lit_snn.neurons import NeuronConfig

        if leaf in NeuronConfig.field_names():
            return
        raise SpecError(
            f"{what} {path!r}: {leaf!r} is not a neuron field; valid fields: {', '.join(NeuronConfig.field_names())}"
        )
    if parent == "trainer":
        if leaf in _trainer_args():
            return
        close = difflib.get_close_matches(leaf, sorted(_trainer_args()), n=3)
        raise SpecError(f"{what} {path!r}: {leaf!r} is not a lightning.Trainer argument"
                        + (f" (did you mean {', '.join(close)}?)" if close else ""))
    if parent in FREE_FORM and has_path(resolved_base, parent) and \
            isinstance(get_path(resolved_base, parent), (dict, type(None))):
        return
    known = [key for key, _ in flatten(resolved_base)]
    close = difflib.get_close_matches(path, known, n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise SpecError(f"{what} {path!r} is not a setting of the resolved base config{hint}")


def _resolve(config: dict, where: str):
    try:
        return resolve_run(config)
    except Exception as exc:  # noqa: BLE001 - whatever the training code rejects, report it up front
        message = config_problem(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
        raise SpecError(f"{where}: {message}") from None


def _check_presets(values: list, where: str) -> None:
    from lit_snn.neurons import list_neurons

    unknown = [v for v in values if v not in list_neurons()]
    if unknown:
        raise SpecError(f"{where}: unknown neuron preset(s) {unknown}; known presets: {', '.join(list_neurons())}")


def _where(spec: StudySpec) -> str:
    return str(spec.source) if spec.source else spec.name


# ---------------------------------------------------------------------- ablation grid
def expand_grid(spec: StudySpec) -> list[GridPoint]:
    """Every grid point x seed of an ablation, each with its resolved config, in a stable order.

    Raises ``SpecError`` (a ``ValueError``) for an unknown path, preset or value: all points are
    resolved here, before anything runs.
    """
    where = _where(spec)
    resolved_base = _resolve(spec.base, f"{where}: base config").config
    for path in spec.axes:
        check_config_path(resolved_base, path, "axis")
    if "model.neuron" in spec.axes:
        _check_presets(spec.axes["model.neuron"], f"{where}: axis model.neuron")
    points: list[GridPoint] = []
    paths = list(spec.axes)
    for combo in itertools.product(*(spec.axes[p] for p in paths)):
        values = dict(zip(paths, combo))
        if any(all(json.dumps(values[p], sort_keys=True) == json.dumps(v, sort_keys=True)
                   for p, v in entry.items()) for entry in spec.exclude):
            continue
        for seed in spec.seeds:
            config = point_config(spec, values, seed)
            key = point_key(values, seed)
            resolved = _resolve(config, f"{where}: grid point {key}")
            points.append(GridPoint(values, seed, key, resolved.config, config, resolved.metrics, resolved.check_data))
    if not points:
        raise SpecError(f"{where}: the exclude list removes every grid point")
    check_metrics(spec, [p.metrics for p in points])
    return points


def _with_values(base: dict, values: dict[str, Any]) -> dict:
    """A copy of ``base`` with each ``path: value`` of ``values`` set."""
    config = deep_merge(base, {})
    for path, value in values.items():
        set_path(config, path, value)
    return config


def point_config(spec: StudySpec, values: dict[str, Any], seed: int) -> dict:
    """The config of one grid point as written (base + axis values + seed): what ``run_training`` gets."""
    return _with_values(spec.base, {**values, "seed_everything": seed})


def grid_data_checks(points: list[GridPoint]) -> list[Callable[[], None]]:
    """One ``check_data`` per distinct dataset config of the grid."""
    return list({json.dumps(p.config.get("data"), sort_keys=True, default=str): p.check_data for p in points}.values())


def check_data(spec: StudySpec, checks: list[Callable[[], None]]) -> None:
    """The files of every dataset the trials read exist (``SpecError`` naming the path and how to
    get them): a missing dataset stops the study before its first trial, not in it."""
    from lit_snn.data.errors import DatasetNotFoundError

    for check in checks:
        try:
            check()
        except DatasetNotFoundError as exc:
            found = str(exc).splitlines()[0].rstrip(".")
            raise SpecError(f"{_where(spec)}: {found}; where to get it: {exc.source}") from None


def check_metrics(spec: StudySpec, logged: list[frozenset[str]]) -> None:
    """Every objective must be a metric that every trial's training logs: a typo stops the study
    here, not after the first trial has trained to its end."""
    everywhere = frozenset.intersection(*logged)
    for metric in spec.metrics:
        if metric in everywhere:
            continue
        close = difflib.get_close_matches(metric, sorted(everywhere), n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        some = " (only some trials log it)" if any(metric in names for names in logged) else ""
        raise SpecError(f"{_where(spec)}: metric {metric!r} is not logged by the training{some}; {hint}"
                        f"it logs {', '.join(sorted(m for m in everywhere if '/firing_rate/' not in m))} "
                        "and test/firing_rate/<layer>")


# ---------------------------------------------------------------------- sweep ranges
def check_sweep(spec: StudySpec):
    """Resolve the base and each range end / choice of a sweep; returns the base's ``ResolvedRun``."""
    where = _where(spec)
    base = _resolve(spec.base, f"{where}: base config")
    logged = [base.metrics]
    for path, p in spec.params.items():
        check_config_path(base.config, path, "search parameter")
        probes = p["choices"] if p["type"] == "categorical" else [p["low"], p["high"]]
        if path == "model.neuron":
            _check_presets(probes, f"{where}: params.model.neuron")
        for value in probes:
            logged.append(_resolve(_with_values(spec.base, {path: value}), f"{where}: params.{path}={value!r}").metrics)
    check_metrics(spec, logged)
    return base


def suggest(trial: optuna.trial.BaseTrial, spec: StudySpec) -> dict[str, Any]:
    """Sample (or replay fixed) values for a sweep's params: ``{path: value}``."""
    values: dict[str, Any] = {}
    for path, p in spec.params.items():
        if p["type"] == "categorical":
            values[path] = trial.suggest_categorical(path, p["choices"])
        elif p["type"] == "int":
            values[path] = trial.suggest_int(path, p["low"], p["high"], step=p.get("step") or 1,
                                             log=bool(p.get("log", False)))
        else:
            values[path] = trial.suggest_float(path, float(p["low"]), float(p["high"]), step=p.get("step"),
                                               log=bool(p.get("log", False)))
    return values


def sweep_config(spec: StudySpec, values: dict[str, Any]) -> tuple[dict, dict]:
    """``(resolved, as written)`` configs of one sweep trial."""
    config = _with_values(spec.base, values)
    return resolve_run(config).config, config
