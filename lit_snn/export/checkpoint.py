"""A trained ``LitSNN`` from a Lightning checkpoint path or an MLflow run id (its ``*.ckpt`` artifact)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import ExpectedError

DEFAULT_TRACKING_URI = "sqlite:///./mlruns.db"


def _checkpoint_artifacts(client, run_id: str, path: str | None = None) -> list[str]:
    """Every artifact path ending in ``.ckpt`` under ``path`` of the run."""
    found = []
    for info in client.list_artifacts(run_id, path):
        if info.is_dir:
            found += _checkpoint_artifacts(client, run_id, info.path)
        elif info.path.endswith(".ckpt"):
            found.append(info.path)
    return found


def load_model(run_or_ckpt: str, tracking_uri: str = DEFAULT_TRACKING_URI):
    """``LitSNN.load_from_checkpoint`` of a checkpoint file, or of the one ``*.ckpt`` artifact of the
    MLflow run ``run_or_ckpt`` in ``tracking_uri``; on the CPU, in eval mode."""
    from ..module import LitSNN

    if Path(run_or_ckpt).is_file():
        return LitSNN.load_from_checkpoint(run_or_ckpt, map_location="cpu").eval()
    import mlflow.artifacts
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri[len("sqlite:///"):]).is_file():
        raise ExpectedError(f"{run_or_ckpt!r} is not a checkpoint file, and there is no MLflow store at "
                            f"{tracking_uri[len('sqlite:///'):]} to look it up as a run (give --tracking-uri)")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    try:
        ckpts = _checkpoint_artifacts(MlflowClient(tracking_uri=tracking_uri), run_or_ckpt)
    except MlflowException as exc:
        raise ExpectedError(f"{run_or_ckpt!r} is neither a checkpoint file nor a run in {tracking_uri}: "
                            f"{str(exc).splitlines()[0]}") from None
    if len(ckpts) != 1:
        raise ExpectedError(f"run {run_or_ckpt!r} has {len(ckpts)} *.ckpt artifacts ({', '.join(ckpts) or 'none'}); "
                            "give the checkpoint file instead")
    with tempfile.TemporaryDirectory(prefix="lit_snn_ckpt_") as tmp:
        local = mlflow.artifacts.download_artifacts(run_id=run_or_ckpt, artifact_path=ckpts[0], dst_path=tmp,
                                                    tracking_uri=tracking_uri)
        return LitSNN.load_from_checkpoint(local, map_location="cpu").eval()
