"""A trained ``LitSNN`` from a Lightning checkpoint path or an MLflow trial run (its ``*.ckpt`` artifact)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import ExpectedError

DEFAULT_TRACKING_URI = "sqlite:///./mlruns.db"


def looks_like_path(source: str) -> bool:
    """A checkpoint path rather than an MLflow run id (hex): a ``.ckpt`` name or a folder separator in it."""
    return source.endswith(".ckpt") or "/" in source or os.sep in source


def load_model(run_or_ckpt: str, tracking_uri: str = DEFAULT_TRACKING_URI):
    """``(model, run)``: ``LitSNN.load_from_checkpoint`` of a checkpoint file (``run`` None), or of
    the one checkpoint artifact of the MLflow trial run ``run_or_ckpt`` (``run`` its
    ``lit_snn.trial_record.TrialRun``, whose ``config`` builds the run's own data); on the CPU, in eval mode,
    read without running code from the file (``lit_snn.checkpoints``)."""
    from ..checkpoints import load_lit_snn
    from ..trial_record import TrialRun

    if looks_like_path(run_or_ckpt) and not Path(run_or_ckpt).is_file():  # a path, not a run id: not "no such run"
        raise ExpectedError(f"{run_or_ckpt} is a folder, not a checkpoint file" if Path(run_or_ckpt).is_dir()
                            else f"no such checkpoint file: {run_or_ckpt}")
    if Path(run_or_ckpt).is_file():
        return load_lit_snn(run_or_ckpt), None
    run = TrialRun(run_or_ckpt, tracking_uri)
    with tempfile.TemporaryDirectory(prefix="lit_snn_ckpt_") as tmp:
        local = run.download(run.checkpoint(), tmp)
        return load_lit_snn(local), run
