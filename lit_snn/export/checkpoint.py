"""A trained ``LitSNN`` from a Lightning checkpoint path or an MLflow trial run (its ``*.ckpt`` artifact)."""

from __future__ import annotations

import tempfile
from pathlib import Path

DEFAULT_TRACKING_URI = "sqlite:///./mlruns.db"


def load_model(run_or_ckpt: str, tracking_uri: str = DEFAULT_TRACKING_URI):
    """``(model, run)``: ``LitSNN.load_from_checkpoint`` of a checkpoint file (``run`` None), or of
    the one checkpoint artifact of the MLflow trial run ``run_or_ckpt`` (``run`` its
    ``lit_snn.runs.TrialRun``, whose ``config`` builds the run's own data); on the CPU, in eval mode,
    read without running code from the file (``lit_snn.checkpoints``)."""
    from ..checkpoints import load_lit_snn
    from ..runs import TrialRun

    if Path(run_or_ckpt).is_file():
        return load_lit_snn(run_or_ckpt), None
    run = TrialRun(run_or_ckpt, tracking_uri)
    with tempfile.TemporaryDirectory(prefix="lit_snn_ckpt_") as tmp:
        local = run.download(run.checkpoint(), tmp)
        return load_lit_snn(local), run
