"""One spelling of an axis (or searched) value as text; every other form of the value derives from it here.

The text is the spelling of a grid point's key: a string as it is, anything else as JSON with sorted
keys (``lif``, ``2``, ``0.5``, ``true``, ``null``, ``[1, 2]``). From it come the key
``path=text,...,seed=N`` (``key_text``; ``space.point_key``), a grid point's label (the key without
its seed; ``statistics.grid_label``), the ``axis.<path>`` tags of a trial run (``axis_tags``) and the
Optuna param of a list or dict (``json:`` + text; ``space.encode_value``, a scalar is its own param).
``parse_key`` reads a key (or a label) back to its texts; ``parse_text`` a text back to a value.

Trial runs tagged before 2026-12-06 hold Python's ``str`` spelling in their ``axis.*`` tags
(``True``, ``None``, ``['a', 'b']``; for strings, ints and floats it is the same text as here):
``stored_spellings`` maps both spellings of the listed values to their text, so such a study
compares as it did.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

SEED_PART = "seed"  # the last part of a grid point's key: ``...,seed=N``
AXIS_TAG_PREFIX = "axis."  # a trial run's tag ``axis.<path>`` holds the text of its value of ``path``

# a key's parts are joined by "," and each starts with "path=": a "," inside a JSON value is followed by
# a space (json.dumps' separator), so it never starts a part
_PART = re.compile(r",(?=[A-Za-z_][\w.\-]*=)")


def value_text(value: Any) -> str:
    """The text of a value: a string as it is, anything else as JSON with sorted keys."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def parse_text(text: Any) -> Any:
    """The value of a text: the JSON value where the text reads as JSON (numbers, ``true``, ``null``,
    lists, dicts), else the string. A string that reads as JSON (``"2"``) comes back as that JSON value:
    the text alone cannot tell them apart (the study file's listed values can: ``stored_spellings``).
    Anything but a string (a missing tag's NaN) comes back as it is."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def key_text(values: dict[str, Any], seed: int | None = None) -> str:
    """``path=text,path=text`` of ``values`` in their order, with ``,seed=N`` last when ``seed`` is given."""
    parts = [f"{path}={value_text(value)}" for path, value in values.items()]
    return ",".join(parts + ([f"{SEED_PART}={seed}"] if seed is not None else []))


def parse_key(key: str) -> dict[str, str]:
    """``{path: text}`` of a key or a grid point's label (``seed`` among them for a key): ``key_text``'s inverse."""
    parts = (part.partition("=") for part in _PART.split(key)) if key else ()
    return {path: text for path, _, text in parts}


def seed_of_key(key: Any) -> int | None:
    """The seed of a grid point's key (None for a key without one: a sweep's, or no key)."""
    if not isinstance(key, str):
        return None
    seed = parse_key(key).get(SEED_PART)
    return int(seed) if seed is not None and re.fullmatch(r"\d+", seed) else None


def axis_tags(values: dict[str, Any]) -> dict[str, str]:
    """The ``axis.<path>`` tags of a trial run with these values."""
    return {f"{AXIS_TAG_PREFIX}{path}": value_text(value) for path, value in values.items()}


def stored_spellings(listed: Iterable[Any]) -> dict[str, str]:
    """Each spelling an ``axis.*`` tag may hold for the ``listed`` values -> the value's text: the text
    itself, and ``str(value)``, which runs tagged before 2026-12-06 hold (``True`` for ``true``)."""
    out = {str(value): value_text(value) for value in listed}
    out.update({value_text(value): value_text(value) for value in listed})  # a text always reads as itself
    return out
