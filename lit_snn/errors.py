"""Expected failures end in one line: ``lit-snn <command>: error: <what happened>`` and an exit code.

An *expected* failure is one the user can act on (Ctrl-C, a full disk, missing or corrupt data, a
bad config value, an unknown MLflow run); its traceback is printed only with ``--verbose``.
Anything else is a bug and keeps its traceback. Which is which is decided by the exception's type
alone: lit_snn's own error classes (``ExpectedError`` and its subclasses such as ``SpecError``'s
``ConfigError``, ``CheckpointRefused``, ``UnreadableStoreError``; ``ConfigError``, which every check
of a value raises; the data package's missing/corrupt data errors) and the library types listed in
``describe_expected`` that mean bad input or a machine's state. Light to import (no torch, no
Lightning): the data package's error classes are checked only when that package is loaded.
"""

from __future__ import annotations

import argparse
import difflib
import errno
import importlib
import inspect
import re
import sys
import traceback
from collections.abc import Callable

DISK_FULL = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})  # no space, quota exceeded
NOT_WRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})  # a read-only mount, no permission


class ExpectedError(Exception):
    """A failure whose message is written for the user (a bad config, a run id that does not exist)."""

    exit_code = 2


class ConfigError(ValueError):
    """A value lit_snn's own checks refuse (a constructor's argument, a config field, a neuron setting):
    the message names the value and what is valid. A ``ValueError``, so that jsonargparse reports it
    as a value that does not validate, and code catching ``ValueError`` keeps working."""


class NotWritableError(ExpectedError):
    """A place the command must write cannot be written (read-only, no permission, a file in the way):
    the machine's state, not the input, so exit 1 as for a full disk."""

    exit_code = 1


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its explicit causes (``raise ... from cause``), outermost first."""
    out = [exc]
    while out[-1].__cause__ is not None and len(out) < 20:
        out.append(out[-1].__cause__)
    return out


def _ours(exc: BaseException) -> bool:
    """One of lit_snn's own error classes: its message is written for the user."""
    return isinstance(exc, (ExpectedError, ConfigError, *_data_errors()))


_NOISE = ("Subtypes:", "Given value type:")  # jsonargparse's Union report: the types tried, the value's type


def _one_line(text) -> str:
    lines = (line.strip() for line in str(text).splitlines())
    return " ".join(" ".join(line.split()) for line in lines if line and not line.startswith(_NOISE))


# jsonargparse's report of a bad ``class_path`` + ``init_args`` value: each Union subtype tried (the class,
# then None); only the class's problem matters
_CLASS_PROBLEM = re.compile(r'Parser key "(?P<key>[\w.]+)": Does not validate against any of the Union subtypes.*?'
                            r"Problem with given class_path '(?P<cls>[\w.]+)': (?P<problem>.*?)"
                            r"(?: - Expected a <class 'NoneType'>.*)?$")
_NOT_ACCEPTED = re.compile(r"Option '(?P<option>\w+)' is not accepted")


def init_arguments(class_path: str) -> list[str]:
    """The keyword arguments ``class_path``'s constructor accepts, through the ``**kwargs`` it forwards to
    its bases (as jsonargparse resolves them); ``[]`` when the class cannot be imported."""
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return []
    names: list[str] = []
    for klass in inspect.getmro(cls):
        if "__init__" not in vars(klass):
            continue
        params = list(inspect.signature(klass.__init__).parameters.values())[1:]  # without self
        names += [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in names]
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break  # nothing forwarded further up
    return names


def _class_path_message(text: str) -> str | None:
    """One line for jsonargparse's "Does not validate against any of the Union subtypes" about a
    ``class_path`` value: the key and class, and for an unknown argument a "did you mean" from the
    class's real arguments (``--data.init_args.batchsize 8``); None for any other message."""
    match = _CLASS_PROBLEM.search(text)
    if match is None:
        return None
    key, class_path, problem = match["key"], match["cls"], match["problem"].strip()
    short = class_path.rpartition(".")[2]
    unknown = _NOT_ACCEPTED.fullmatch(problem)
    if unknown is None:
        return f"{key} ({short}): {problem}"
    valid = init_arguments(class_path)
    close = difflib.get_close_matches(unknown["option"], valid, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    listed = f" (its arguments: {', '.join(valid)})" if valid else ""
    return f"{key}: {short} has no argument '{unknown['option']}'{hint}{listed}"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


def _config_message(exc: BaseException) -> str:
    """The most specific message: the innermost cause of one of our own error classes (a constructor's
    check, not jsonargparse's "Does not validate against any of the Union subtypes" around it)."""
    chain = _chain(exc)
    ours = [e for e in chain if _ours(e) and not isinstance(e, ExpectedError)]
    picked = ours[-1] if ours else chain[0]
    return _first_line(picked) if isinstance(picked, _data_errors()) else _one_line(picked)


def _data_errors() -> tuple[type, ...]:
    module = sys.modules.get("lit_snn.data.errors")  # not loaded: no exception can be one of its
    return (module.DatasetNotFoundError, module.CorruptDataError) if module else ()


def _out_of_memory(exc: BaseException) -> bool:  # torch.OutOfMemoryError (CUDA) is a RuntimeError
    return isinstance(exc, MemoryError) or (type(exc).__name__ == "OutOfMemoryError"
                                            and type(exc).__module__.startswith("torch"))


def describe_expected(exc: BaseException) -> str | None:
    """One line saying what happened, for an expected failure; ``None`` for a bug.

    Expected, by type: lit_snn's own classes (``ExpectedError`` and subclasses, ``ConfigError``, the data
    package's ``DatasetNotFoundError``/``CorruptDataError``), also as the cause of a ``ValueError``
    wrapping them (jsonargparse's report of a constructor's check); and these library types, which
    mean bad input or the machine's state, never a bug of ours: ``KeyboardInterrupt`` (Ctrl-C),
    ``OSError`` with a full-disk or not-writable errno (a place the command writes), ``MemoryError``
    and torch's ``OutOfMemoryError``, ``FileNotFoundError`` (a path the user gave),
    ``argparse.ArgumentError`` (argparse's and jsonargparse's parse errors).

    Notes added to the exception (``exc.add_note``: what was kept, how to resume) follow the message.
    """
    msg: str | None = None
    if isinstance(exc, KeyboardInterrupt):
        msg = "interrupted"
    elif isinstance(exc, ExpectedError):
        msg = _config_message(exc)
    elif isinstance(exc, OSError) and exc.errno in DISK_FULL:
        msg = f"disk full: {exc.filename}" if exc.filename else f"disk full ({exc.strerror or exc})"
    elif isinstance(exc, OSError) and exc.errno in NOT_WRITABLE and exc.filename:
        msg = f"cannot write {exc.filename}: {(exc.strerror or str(exc)).lower()}"
    elif _out_of_memory(exc):
        msg = "out of memory" + (f": {_first_line(exc)}" if str(exc) else "")
    elif isinstance(exc, _data_errors()):  # their first line names the file or folder
        msg = _first_line(exc)
        if isinstance(exc, FileNotFoundError) and "\n" in str(exc).strip():
            msg += " (--verbose shows the expected layout and where to get the files)"
    elif isinstance(exc, FileNotFoundError):
        msg = f"{exc.strerror or 'file not found'}: {exc.filename}" if exc.filename else _first_line(exc)
    elif isinstance(exc, argparse.ArgumentError):  # jsonargparse's and argparse's parse errors
        msg = _one_line(exc)
    elif isinstance(exc, ValueError) and any(_ours(e) for e in _chain(exc)):  # a check of ours, maybe wrapped
        msg = _config_message(exc)
    if msg is None:
        return None
    msg = _class_path_message(msg) or msg  # a class_path value's problem, not every Union subtype tried
    notes = [_one_line(n) for n in getattr(exc, "__notes__", ())]
    return "; ".join([msg, *notes])


def config_problem(exc: BaseException) -> str:
    """One line for a config value the training code rejected (a constructor's check, or jsonargparse's
    Union report around it), as ``lit-snn train`` prints it; for the study's grid and range checks."""
    return describe_expected(exc) or _class_path_message(_one_line(exc)) or _one_line(exc)


def exit_code(exc: BaseException) -> int:
    """130 for Ctrl-C, 1 for a full disk, memory or a place that cannot be written, 2 for bad input (config,
    data, run id)."""
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, ExpectedError):
        return exc.exit_code
    if _out_of_memory(exc) or (isinstance(exc, OSError) and exc.errno in DISK_FULL | NOT_WRITABLE):
        return 1
    return 2


def run_command(prog: str, fn: Callable[[], int | None], verbose: bool = False) -> int:
    """Run ``fn``; an expected failure prints ``{prog}: error: {message}`` to stderr (after its
    traceback with ``verbose``) and returns its exit code; a bug is re-raised with its traceback."""
    try:
        return int(fn() or 0)
    except BaseException as exc:  # SystemExit passes below: describe_expected gives it no message
        message = None if isinstance(exc, SystemExit) else describe_expected(exc)
        if message is None:
            raise
        if verbose:
            traceback.print_exception(exc)
        print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
        return exit_code(exc)
