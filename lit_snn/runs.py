"""``lit-snn reproduce RUN_ID`` and ``lit-snn evaluate RUN_ID``: one MLflow run of a trial, again.

A trial run in MLflow carries what is needed to redo it:

- artifact ``config.yaml``: the run config exactly as ``lit_snn.train.run_training`` got it (its
  ``seed_everything`` and ``trainer.deterministic`` included);
- param ``repro.torch_threads``: ``torch.get_num_threads()`` during the trial (the result depends on it);
- the final metrics (``test/acc``, ``test/loss``, ...);
- the best checkpoint: a ``*.ckpt`` artifact anywhere under the run's artifacts.

``reproduce`` re-trains the config with the same thread count (in a temporary folder, logging
nothing) and compares every logged ``test/*`` metric: exit 0 when all match (within ``--atol``),
1 otherwise. ``evaluate`` tests the logged checkpoint on the config's test split. Only MLflow's own
APIs are used (``MlflowClient``, ``mlflow.artifacts.download_artifacts``).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from .errors import ExpectedError, run_command

CONFIG_ARTIFACT = "config.yaml"
THREADS_PARAM = "repro.torch_threads"


def _parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"lit-snn {command}", description=(
        "Re-train an MLflow run from its config.yaml (same seed, threads and deterministic flag) and say "
        "whether its test metrics come out the same." if command == "reproduce" else
        "Test the checkpoint an MLflow run logged, on its config's test split, beside the logged metrics."))
    parser.add_argument("run_id", help="the MLflow run id (of a trial run)")
    parser.add_argument("--store-dir", default=None,
                        help="folder of the default store (mlruns.db); default: the current folder")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow tracking URI (default: sqlite:///<store-dir>/mlruns.db)")
    parser.add_argument("--verbose", action="store_true", help="tracebacks of expected failures too")
    if command == "reproduce":
        parser.add_argument("--atol", type=float, default=0.0,
                            help="largest accepted |reproduced - logged| per test metric (default 0: exact)")
    else:
        parser.add_argument("--ckpt", default=None, metavar="PATH_IN_ARTIFACTS",
                            help="which checkpoint artifact (default: the run's only *.ckpt)")
    return parser


def _reason(exc: BaseException) -> str:
    """A refused connection or a timeout (the innermost OSError) rather than the wrappers around it;
    else the first line of the message."""
    inner = exc
    while (inner.__cause__ or inner.__context__) is not None:
        inner = inner.__cause__ or inner.__context__
    text = str(inner if isinstance(inner, OSError) else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# A run's config.yaml is read from a tracking store others may write to: the classes it names are
# imported and built (jsonargparse's class_path), so only these packages' classes are taken from it.
TRUSTED_CLASS_PREFIXES = ("lit_snn.", "lightning.", "pytorch_lightning.", "torch.", "torchmetrics.")


def check_class_paths(config: Any, where: str, at: str = "") -> None:
    """Refuse (``ExpectedError``, nothing imported) a ``class_path`` in ``config`` outside
    ``TRUSTED_CLASS_PREFIXES``; a bare class name (jsonargparse resolves it among the subclasses
    already imported) is fine."""
    if isinstance(config, dict):
        for key, value in config.items():
            path = f"{at}.{key}" if at else str(key)
            if key == "class_path" and isinstance(value, str) and "." in value \
                    and not value.startswith(TRUSTED_CLASS_PREFIXES):
                raise ExpectedError(f"{where} names the class {value!r} at {path}: a run's config may only name "
                                    f"classes of {', '.join(p.rstrip('.') for p in TRUSTED_CLASS_PREFIXES)}; "
                                    "refused, nothing imported")
            check_class_paths(value, where, path)
    elif isinstance(config, list):
        for i, value in enumerate(config):
            check_class_paths(value, where, f"{at}[{i}]")


class TrialRun:
    """One MLflow run read through ``MlflowClient``: its config, thread count, metrics and artifacts."""

    def __init__(self, run_id: str, tracking_uri: str) -> None:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        from .orchestrate.storage import check_store, sqlite_path

        store = sqlite_path(tracking_uri)
        if store is not None and not store.is_file():
            raise ExpectedError(f"no MLflow store at {store} (give the study's --store-dir or --tracking-uri)")
        check_store(tracking_uri)
        # fail in seconds on an unreachable server, not after minutes of retries
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # our lines say what was fetched
        self.run_id, self.tracking_uri = run_id, tracking_uri
        try:
            self.client = MlflowClient(tracking_uri=tracking_uri)
            run = self.client.get_run(run_id)
            self.files = sorted(self._artifact_files())
            if CONFIG_ARTIFACT not in self.files:
                raise ExpectedError(f"run {run_id!r} has no {CONFIG_ARTIFACT} artifact: not a lit_snn trial run")
            with tempfile.TemporaryDirectory(prefix="lit_snn_run_") as tmp:
                self.config: dict = yaml.safe_load(Path(self.download(CONFIG_ARTIFACT, tmp)).read_text())
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise ExpectedError(f"no run {run_id!r} in {tracking_uri}") from None
            raise ExpectedError(f"cannot read run {run_id!r} from {tracking_uri}: {_reason(exc)}") from exc
        if not isinstance(self.config, dict) or not isinstance(self.config.get("trainer", {}), dict):
            raise ExpectedError(f"the {CONFIG_ARTIFACT} of run {run_id!r} is not a run config")
        check_class_paths(self.config, f"the {CONFIG_ARTIFACT} of run {run_id!r}")
        self.config.get("trainer", {}).pop("default_root_dir", None)  # where to write, not a result setting
        self.params: dict[str, str] = dict(run.data.params)
        self.metrics: dict[str, float] = dict(run.data.metrics)
        self.threads = int(self.params[THREADS_PARAM]) if THREADS_PARAM in self.params else None

    def _artifact_files(self, path: str | None = None) -> Iterator[str]:
        for info in self.client.list_artifacts(self.run_id, path):
            if info.is_dir:
                yield from self._artifact_files(info.path)
            else:
                yield info.path

    def download(self, artifact_path: str, dst: str) -> str:
        """The local path of one artifact of the run, downloaded into the folder ``dst``."""
        import mlflow.artifacts

        return mlflow.artifacts.download_artifacts(run_id=self.run_id, artifact_path=artifact_path, dst_path=dst,
                                                   tracking_uri=self.tracking_uri)

    def checkpoint(self, choice: str | None = None) -> str:
        """The checkpoint artifact to use: ``choice``, or the run's only ``*.ckpt`` artifact."""
        ckpts = [f for f in self.files if f.endswith(".ckpt")]
        if choice is not None:
            if choice not in self.files:
                raise ExpectedError(f"run {self.run_id!r} has no artifact {choice!r}"
                                    + (f"; its checkpoints: {', '.join(ckpts)}" if ckpts else ""))
            return choice
        if not ckpts:
            raise ExpectedError(f"run {self.run_id!r} logged no checkpoint (*.ckpt artifact): nothing to evaluate")
        if len(ckpts) > 1:
            raise ExpectedError(f"run {self.run_id!r} has {len(ckpts)} checkpoints; choose one with --ckpt: "
                                + ", ".join(ckpts))
        return ckpts[0]

    def logged_test_metrics(self) -> dict[str, float]:
        return {k: v for k, v in sorted(self.metrics.items()) if k.startswith("test/")}


@contextlib.contextmanager
def torch_threads(n: int | None):
    """``torch.set_num_threads(n)`` for the block (``None``: unchanged)."""
    import torch

    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def compare(logged: dict[str, float], new: dict[str, Any], atol: float = 0.0) -> tuple[list[str], list[str]]:
    """Table lines (one per logged metric: logged, new, difference) and the metrics that differ."""
    lines, differ = [], []
    width = max((len(k) for k in logged), default=0)
    for key, old in logged.items():
        value = new.get(key)
        if value is None:
            lines.append(f"{key:<{width}}  logged {old:<12.6g} now  (missing)")
            differ.append(f"{key} missing")
            continue
        value = float(value)
        diff = value - old
        same = value == old or (math.isnan(value) and math.isnan(old)) or abs(diff) <= atol
        lines.append(f"{key:<{width}}  logged {old:<12.6g} now {value:<12.6g} diff {diff:+.3g}")
        if not same:
            differ.append(f"{key} {value:.6g} vs logged {old:.6g}")
    return lines, differ


def _tracking_uri(args: argparse.Namespace) -> str:
    if args.tracking_uri:
        return args.tracking_uri
    from .orchestrate.storage import default_paths

    return default_paths(args.store_dir)["tracking_uri"]


def test_datamodule(config: dict, **init_args: Any):
    """The DataModule of a run config, its ``init_args`` updated with ``init_args`` (e.g. ``limit_test``),
    set up for ``test``."""
    from .train import build_from_dict

    config = {**config, "trainer": {**config.get("trainer", {}), "logger": False}}
    config["data"] = {**config["data"], "init_args": {**config["data"].get("init_args", {}), **init_args}}
    dm = build_from_dict(config, loggers=[]).datamodule
    dm.setup("test")
    return dm


def reproduce(run_id: str, tracking_uri: str, atol: float = 0.0) -> int:
    """Re-train the run's config with its thread count; print logged vs reproduced test metrics and a
    verdict. 0 when every logged ``test/*`` metric is reproduced (within ``atol``), 1 otherwise."""
    from .train import run_training

    run = TrialRun(run_id, tracking_uri)
    logged = run.logged_test_metrics()
    if not logged:
        raise ExpectedError(f"run {run_id!r} logged no test/* metric: nothing to compare (did the trial finish?)")
    with tempfile.TemporaryDirectory(prefix="lit_snn_reproduce_") as work, torch_threads(run.threads) as threads:
        print(f"lit-snn reproduce: re-training run {run_id} ({threads} torch threads"
              + ("" if run.threads is not None else f"; the run recorded none, {THREADS_PARAM} missing") + ")",
              flush=True)
        metrics = run_training(run.config, loggers=[], default_root_dir=work)
    lines, differ = compare(logged, metrics, atol)
    print("\n".join(lines))
    exact = all(float(metrics.get(k, math.nan)) == v for k, v in logged.items())
    verdict = "differs: " + ", ".join(differ) if differ else \
        "reproduced exactly" if exact else f"reproduced within atol {atol:g}"
    print(f"lit-snn reproduce: {verdict}", flush=True)
    return 1 if differ else 0


def evaluate(run_id: str, tracking_uri: str, ckpt: str | None = None) -> int:
    """Test the run's checkpoint artifact on its config's test split; print the metrics beside the logged ones."""
    from .checkpoints import read_checkpoint
    from .quiet import quiet_third_party
    from .train import build_from_dict, ctrl_c_as_keyboard_interrupt

    quiet_third_party()
    run = TrialRun(run_id, tracking_uri)
    artifact = run.checkpoint(ckpt)
    with tempfile.TemporaryDirectory(prefix="lit_snn_evaluate_") as work, torch_threads(run.threads) as threads:
        local = run.download(artifact, work)
        weights = read_checkpoint(local)["state_dict"]  # refused in one line if it needs code to load, or is damaged
        cli = build_from_dict(run.config, loggers=[], default_root_dir=work)
        # the weights only: a test needs nothing else of the checkpoint, and restoring its callbacks' state (the
        # trial's checkpoint folder) made Lightning warn that "the dirpath has changed"
        cli.model.load_state_dict(weights)
        with ctrl_c_as_keyboard_interrupt():
            (results,) = cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    print(f"lit-snn evaluate: run {run_id}, checkpoint {artifact} ({threads} torch threads)")
    logged = run.logged_test_metrics()
    lines, _ = compare({k: logged.get(k, math.nan) for k in sorted(results)}, results)
    print("\n".join(lines), flush=True)
    return 0


def reproduce_main(argv: list[str] | None = None) -> int:
    """``lit-snn reproduce RUN_ID [--store-dir DIR | --tracking-uri URI] [--atol A] [--verbose]``."""
    args = _parser("reproduce").parse_args(argv)
    return run_command("lit-snn reproduce", lambda: reproduce(args.run_id, _tracking_uri(args), args.atol),
                       args.verbose)


def evaluate_main(argv: list[str] | None = None) -> int:
    """``lit-snn evaluate RUN_ID [--ckpt PATH_IN_ARTIFACTS] [--store-dir DIR | --tracking-uri URI] [--verbose]``."""
    args = _parser("evaluate").parse_args(argv)
    return run_command("lit-snn evaluate", lambda: evaluate(args.run_id, _tracking_uri(args), args.ckpt),
                       args.verbose)
