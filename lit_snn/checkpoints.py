"""Lightning checkpoints read without running code from them.

Every checkpoint lit_snn loads (a file, an MLflow artifact, a resumed fit, an evaluation) goes
through ``read_checkpoint`` first and is then loaded with ``weights_only=True`` (``WEIGHTS_ONLY``,
passed to ``Trainer.fit/test`` and ``load_from_checkpoint``): only tensors, containers and plain
values are unpickled, never an object whose unpickling would call code. lit_snn's checkpoints
need nothing more (its hyper-parameters are plain values), so no type is allow-listed. The
explicit argument keeps this true whatever torch's or Lightning's default becomes. A crafted or
damaged file is refused with one line naming it and the reason (``CheckpointRefused``, exit 2).
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

from .errors import ExpectedError

WEIGHTS_ONLY = True


class CheckpointRefused(ExpectedError):
    """A checkpoint that needs code to load, or that is not a readable checkpoint."""


def _needed_global(exc: BaseException) -> str | None:
    """What a weights-only load refused (``os.system``, ...), from torch's message."""
    found = re.search(r"(?:Unsupported global|unsupported GLOBAL)[:\s]+(?:GLOBAL\s+)?([\w.]+)", str(exc))
    return found.group(1) if found else None


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint at ``path`` as plain data (``torch.load(weights_only=True)`` on the CPU).

    Raises ``CheckpointRefused`` when it would need code to load (a pickled object) or is not a
    readable checkpoint (truncated, corrupt, not a torch file); ``FileNotFoundError`` when missing.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(2, "no such checkpoint file", str(path))
    try:
        data = torch.load(path, map_location="cpu", weights_only=WEIGHTS_ONLY)
    except pickle.UnpicklingError as exc:
        needed = _needed_global(exc)
        if "weights only" in str(exc).lower() or needed:
            raise CheckpointRefused(
                f"checkpoint {path} is refused: it needs {needed or 'a pickled object'} to load, and no code runs "
                "from a checkpoint (only tensors and plain values are read)") from exc
        raise CheckpointRefused(f"checkpoint {path} is not a readable checkpoint (corrupt: {exc})") from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, zipfile.BadZipFile) and exc.errno is not None:
            raise  # a disk error: the errors module says what happened
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointRefused(f"checkpoint {path} is not a readable checkpoint (truncated or corrupt: "
                                f"{reason})") from exc
    if not isinstance(data, dict) or "state_dict" not in data:
        raise CheckpointRefused(f"checkpoint {path} is not a Lightning checkpoint (no state_dict)")
    return data


def load_lit_snn(path: str | Path):
    """The ``LitSNN`` of the Lightning checkpoint ``path``, on the CPU, in eval mode (checked by
    ``read_checkpoint`` first, then loaded weights-only)."""
    from .module import LitSNN

    read_checkpoint(path)
    return LitSNN.load_from_checkpoint(str(path), map_location="cpu", weights_only=WEIGHTS_ONLY).eval()
