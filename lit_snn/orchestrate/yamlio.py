"""Strict YAML reading for ablation/sweep files: errors name the file, line and column.

Two traps of plain ``yaml.safe_load`` are closed here:

- ``1e-3`` is a *string* in YAML 1.1 (PyYAML's default); here it is the float YAML 1.2 reads,
  because learning rates are written that way.
- a duplicated key silently keeps the last value; here it is an error with both lines.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError


class SpecError(ConfigError):
    """A study file (or a command-line override) is invalid; raised before any trial starts."""


class _StrictLoader(yaml.SafeLoader):
    pass


# YAML 1.2 floats without a dot (1e-3, 5E+4), on top of PyYAML's own YAML 1.1 resolver.
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            first = seen[key].start_mark
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"found duplicate key {key!r} (first defined on line {first.line + 1})", key_node.start_mark,
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _where(path: str | Path, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return str(path)
    return f"{path}:{mark.line + 1}:{mark.column + 1}"


def parse_yaml(text: str, source: str | Path = "<string>") -> Any:
    """Parse ``text``; malformed YAML raises ``SpecError('FILE:LINE:COL: malformed YAML: ...')``."""
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        detail = f"{problem} ({context})" if context and context not in problem else problem
        raise SpecError(f"{_where(source, exc)}: malformed YAML: {detail}") from None


def load_yaml(path: str | Path) -> Any:
    """Read and parse a YAML file; a missing file or malformed YAML raises ``SpecError``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc}") from None
    return parse_yaml(text, path)


def parse_value(text: str) -> Any:
    """A command-line value (``--set key=value``) read as YAML: ``3`` -> 3, ``1e-3`` -> 0.001, ``[a, b]``."""
    if text == "":
        return ""
    return parse_yaml(text, "<command line>")


def dump_yaml(data: Any) -> str:
    """Stable, readable YAML (keys in insertion order)."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
