"""Ablation and sweep files -> a validated ``AblationSpec`` or ``SweepSpec`` (structure only; configs are resolved
in space.py). The file format, the order of the checks and how to add a key: docs/study-files.md.

spec_schema.py declares the files' keys, types and bounds (pydantic, one model per kind) and turns its errors
into one line; spec_cross.py builds the base config and checks across keys; this module turns the validated
file into the spec of its kind, whose methods hold what differs by kind.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .dotted import set_path
from .spec_cross import base_config, check_sets, pruner_of, sampler_class, sampler_of
from .spec_schema import AblationFile, AdaptivePlan, Seed, SweepFile, validate_file, validated
from .yamlio import SpecError, load_yaml

__all__ = ["AblationSpec", "AdaptivePlan", "SpecError", "StudySpec", "SweepSpec", "detect_kind", "load_spec",
           "sampler_class", "spec_from_dict"]


@dataclass
class StudySpec(ABC):
    """What an ablation and a sweep both have; ``base`` is the merged config every trial starts from."""

    kind: ClassVar[str]  # "ablation" | "sweep": shown and stored (MLflow tags, the study's user attrs)
    name: str
    experiment: str
    base: dict
    metric: str
    direction: str
    source: Path | None = None
    description: str = ""
    time_limit_s: float | None = None
    cli_sets: list[str] = field(default_factory=list)
    # [(metric, direction), ...]: one entry (= metric, direction) unless the sweep lists `objectives:`;
    # with several, ``metric``/``direction`` are the first one's (the order of the trials table)
    objectives: list[tuple[str, str]] = field(default_factory=list)
    adaptive = None  # no rounds of seeds (an AblationSpec's `seeds: {adaptive: ...}`)

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
    def prunes(self) -> bool:
        """Whether trials report to an Optuna pruner (a sweep's ``pruner:`` other than none)."""
        return False

    @property
    def fingerprint(self) -> str:
        """Hash of everything that changes what a trial computes (not n_trials, time limits, baseline or alpha).

        It is part of the default study name, so an edited file (or other ``--set`` overrides) starts a new
        study instead of mixing incomparable trials; the same command resumes.
        """
        payload = {"kind": self.kind, "base": self.base, "metric": self.metric, "direction": self.direction}
        if self.multi_objective:  # single-objective payloads (and so existing study names) stay as they were
            payload["objectives"] = [list(o) for o in self.objectives]
        payload.update(self._fingerprinted())
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:10]

    @abstractmethod
    def _fingerprinted(self) -> dict:
        """The kind's own part of the fingerprint."""

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
        return out

    @abstractmethod
    def space_tag(self) -> dict[str, str]:
        """The parent run's tag naming what varies: ``{"lit_snn.axes" | "lit_snn.params": "path,path"}``."""

    @abstractmethod
    def space_params(self) -> list[tuple[str, Any]]:
        """The parent run's params of what varies (``axis.PATH`` and seeds, or ``search.PATH``)."""

    @abstractmethod
    def listed_values(self) -> dict[str, list]:
        """Path -> the values the file lists for it (the axes; a sweep's categorical choices), in its order."""


@dataclass
class AblationSpec(StudySpec):
    """A grid (``axes``, less ``exclude``) times ``seeds``; the seed statistics' settings for the report.

    Adaptive seeds (``adaptive``) add their plan, ``alpha``, ``baseline`` and the metric's equivalence
    margin to the fingerprint: they choose which trials run. Otherwise those only change the report.
    """

    kind: ClassVar[str] = "ablation"
    axes: dict[str, list] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=list)  # every seed that may run (adaptive: 0..max-1)
    adaptive: AdaptivePlan | None = None  # the rounds of `seeds: {adaptive: ...}`; None: every seed runs
    exclude: list[dict] = field(default_factory=list)
    baseline: dict[str, Any] = field(default_factory=dict)  # axis path -> its baseline value (report only)
    alpha: float = 0.05  # significance level of the seed statistics (report only)
    # metric -> a positive difference in the metric's display unit (units.unit_of; report only)
    equivalence_margin: dict[str, float] = field(default_factory=dict)  # the TOST margin: equivalent within ±
    min_effect: dict[str, float] = field(default_factory=dict)  # the difference seeds are planned for

    def _fingerprinted(self) -> dict:
        out: dict[str, Any] = {"axes": self.axes, "seeds": self.seeds, "exclude": self.exclude}
        if self.adaptive is not None:  # files with a seed list keep their fingerprint byte for byte
            # the decision rule picks the trials that run: fixed with the study (error control)
            out["adaptive"] = {**self.adaptive.model_dump(), "alpha": self.alpha, "baseline": self.baseline,
                               "equivalence_margin": self.equivalence_margin.get(self.metric)}
        return out

    def baseline_of(self, path: str) -> Any:
        """The baseline value of axis ``path``: the file's ``baseline:`` entry, else its first listed value."""
        return self.baseline.get(path, self.axes[path][0])

    def describe(self) -> dict:
        return {**super().describe(), "axes": self.axes, "seeds": self.seeds, "exclude": self.exclude,
                "baseline": self.baseline, "adaptive": self.adaptive.model_dump() if self.adaptive else None,
                "alpha": self.alpha, "equivalence_margin": self.equivalence_margin, "min_effect": self.min_effect}

    def space_tag(self) -> dict[str, str]:
        return {"lit_snn.axes": ",".join(self.axes)}

    def space_params(self) -> list[tuple[str, Any]]:
        return [*(("axis." + p, v) for p, v in self.axes.items()), ("seeds", self.seeds)]

    def listed_values(self) -> dict[str, list]:
        return self.axes


@dataclass
class SweepSpec(StudySpec):
    """``n_trials`` drawn by an Optuna sampler from ``params`` (one or several objectives), pruned by ``pruner``."""

    kind: ClassVar[str] = "sweep"
    params: dict[str, dict] = field(default_factory=dict)
    n_trials: int = 0
    seed: int = 0
    sampler: dict = field(default_factory=dict)
    pruner: dict = field(default_factory=dict)

    @property
    def prunes(self) -> bool:
        return self.pruner.get("type") != "none"  # never with several objectives (checked at load)

    def _fingerprinted(self) -> dict:
        return {"params": self.params, "seed": self.seed, "sampler": self.sampler, "pruner": self.pruner}

    def describe(self) -> dict:
        return {**super().describe(), "params": self.params, "n_trials": self.n_trials, "seed": self.seed,
                "sampler": self.sampler, "pruner": self.pruner}

    def space_tag(self) -> dict[str, str]:
        return {"lit_snn.params": ",".join(self.params)}

    def space_params(self) -> list[tuple[str, Any]]:
        return [*(("search." + p, v) for p, v in self.params.items()), ("seeds", [])]  # [] as logged before

    def listed_values(self) -> dict[str, list]:
        return {path: p["choices"] for path, p in self.params.items() if p["type"] == "categorical"}


def default_direction(metric: str) -> str:
    """The direction a metric is optimized in when the file does not say (from its name)."""
    name = metric.split("/")[-1]
    # energy_ratio is ANN / SNN energy (higher is better); checked before the plain energy words
    higher_is_better = "acc" in name or name in ("energy_ratio", "high_code_fraction")
    lower_is_better = not higher_is_better and any(
        word in name for word in ("loss", "energy", "sops", "macs", "firing", "seconds"))
    return "minimize" if lower_is_better else "maximize"


def _objective(metric: str | None, direction: str | None, default: str) -> dict[str, str]:
    """``{"metric", "direction"}``: the file's, else ``default`` and the metric's default direction."""
    metric = metric or default
    return {"metric": metric, "direction": direction or default_direction(metric)}


def _common(file: AblationFile | SweepFile, source: Path | None) -> dict:
    """The shared fields' values (less the base, metric and direction)."""
    limit = file.budget.time_limit_s
    return {"name": file.name, "experiment": file.experiment, "source": source,
            "description": str(file.description or "").strip(), "time_limit_s": float(limit) if limit else None}


def _ablation(file: AblationFile, base: dict, common: dict, sets: list[str], where: str) -> AblationSpec:
    adaptive = getattr(file.seeds, "adaptive", None)
    if adaptive:
        seeds = list(range(adaptive.max))
    elif file.seeds is not None:
        seeds = file.seeds
    else:  # the base's seed_everything
        default_seed = base.get("seed_everything", 0)
        seeds = [validated(Seed, default_seed if type(default_seed) is int else 0, f"{where}: seed_everything")]
    check_sets(file.axes, sets, where)
    return AblationSpec(**common, base=base, **_objective(file.metric, file.direction, "test/acc"), cli_sets=sets,
                        axes=file.axes, seeds=seeds, adaptive=adaptive, exclude=file.exclude, baseline=file.baseline,
                        alpha=file.alpha, equivalence_margin=file.equivalence_margin, min_effect=file.min_effect)


def _sweep(file: SweepFile, base: dict, common: dict, sets: list[str], where: str) -> SweepSpec:
    objectives = [_objective(o.metric, o.direction, "") for o in file.objectives or ()]
    first = objectives[0] if objectives else _objective(file.metric, file.direction, "val/acc_best")
    set_path(base, "seed_everything", file.seed)
    return SweepSpec(**common, base=base, **first, cli_sets=sets, params=file.params,
                     n_trials=file.n_trials, seed=file.seed, sampler=sampler_of(file, where),
                     pruner=pruner_of(file, where), objectives=[(o["metric"], o["direction"]) for o in objectives])


def spec_from_dict(data: Any, kind: str, *, source: Path | None = None, sets: list[str] | tuple[str, ...] = (),
                   max_epochs: int | None = None) -> StudySpec:
    """Validate the structure of a parsed study file; ``SpecError`` names the file and the problem."""
    where = str(source) if source else "<spec>"
    if not isinstance(data, dict):
        raise SpecError(f"{where}: a study file must be a mapping at the top level, got {type(data).__name__}")
    if kind not in ("ablation", "sweep"):
        raise ValueError(f"kind must be 'ablation' or 'sweep', got {kind!r}")
    if kind == "ablation" and "params" in data and "axes" not in data:
        raise SpecError(f"{where}: this is a sweep file (it has `params:`, no `axes:`): run it with `lit-snn sweep`")
    if kind == "sweep" and "axes" in data and "params" not in data:
        raise SpecError(f"{where}: this is an ablation file (it has `axes:`, no `params:`): run it with "
                        "`lit-snn ablate`")
    name = data.get("name") or (source.stem if source else kind)  # the file's stem is checked as a name too
    file = validate_file(kind, {**data, "name": name, "experiment": data.get("experiment") or f"{kind}/{name}"}, where)
    sets = list(sets)
    base = base_config(file, source, max_epochs, sets, where)
    build = _ablation if isinstance(file, AblationFile) else _sweep
    return build(file, base, _common(file, source), sets, where)


def load_spec(path: str | Path, kind: str, *, sets: list[str] | tuple[str, ...] = (),
              max_epochs: int | None = None) -> StudySpec:
    """Read an ablation (``kind="ablation"``) or sweep file and validate its structure."""
    path = Path(path)
    return spec_from_dict(load_yaml(path), kind, source=path, sets=sets, max_epochs=max_epochs)


def detect_kind(path: str | Path) -> str:
    """``"ablation"`` for a file with ``axes:``, ``"sweep"`` for one with ``params:``."""
    data = load_yaml(path)
    if isinstance(data, dict) and "params" in data and "axes" not in data:
        return "sweep"
    return "ablation"
