"""Dotted paths into nested config dicts: ``model.neuron_overrides.reset`` <-> ``{"model": {...}}``."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from ..errors import ConfigError

_MISSING = object()


def get_path(config: dict, path: str, default: Any = _MISSING) -> Any:
    """The value at ``path``; ``KeyError`` (or ``default``) when any part is missing."""
    node: Any = config
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is _MISSING:
                raise KeyError(path)
            return default
        node = node[part]
    return node


def has_path(config: dict, path: str) -> bool:
    try:
        get_path(config, path)
    except KeyError:
        return False
    return True


def set_path(config: dict, path: str, value: Any) -> None:
    """Set ``path`` in place, creating intermediate dicts; a non-dict in the way is an error."""
    parts = path.split(".")
    node = config
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            raise ConfigError(
                f"cannot set {path!r}: {'.'.join(parts[: i + 1])!r} is {child!r}, not a mapping"
            )
        node = child
    node[parts[-1]] = copy.deepcopy(value)


def deep_merge(base: dict, update: dict) -> dict:
    """A new dict: ``update`` merged into ``base`` recursively (mappings merge, everything else replaces).

    Keys of ``update`` that contain dots are treated as dotted paths, so
    ``{"trainer.max_epochs": 3}`` and ``{"trainer": {"max_epochs": 3}}`` mean the same.
    """
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(key, str) and "." in key:
            current = get_path(out, key, None)
            if isinstance(current, dict) and isinstance(value, dict):
                value = deep_merge(current, value)
            set_path(out, key, value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def flatten(config: dict, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted_key, leaf_value)`` pairs; empty dicts are leaves (so they still show up)."""
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from flatten(value, name + ".")
        else:
            yield name, value
