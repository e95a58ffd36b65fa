"""``lit-snn ablate | sweep | compare FILE``: argument parsing and the three entry points.

Stores default to the current directory (or ``--store-dir``): Optuna in ``optuna.db``, MLflow in
``mlruns.db`` with artifacts in ``mlartifacts/``; ``--storage`` takes any Optuna RDB URL
(``postgresql://user:pass@host/db``) and ``--tracking-uri`` any MLflow tracking URI.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ..store_files import check_store
from .launchers.flags import add_launcher_flags, given_slurm_flags, slurm_flags
from .launchers.slurm_settings import SlurmSettings, merge_flags, parse_launcher_block
from .spec import StudySpec, detect_kind, load_spec
from .storage import as_storage_error, default_paths
from .tracking import is_server
from .training import quiet
from .yamlio import SpecError


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="the ablation (ablations/*.yaml) or sweep (sweeps/*.yaml) file")
    parser.add_argument("--store-dir", default=None,
                        help="folder for the default stores optuna.db, mlruns.db, mlartifacts/ (default: cwd)")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow tracking URI (default: sqlite:///<store-dir>/mlruns.db)")
    parser.add_argument("--study-name", default=None,
                        help="Optuna study name (default: <name>-<fingerprint of the file and overrides>)")
    parser.add_argument("--max-epochs", type=int, default=None, help="override trainer.max_epochs for every trial")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value for every trial, e.g. --set data.init_args.limit_train=256")
    parser.add_argument("--results-dir", default="results",
                        help="where compare writes CSV, markdown and PNG (default: results/<experiment>/<study>/)")
    parser.add_argument("--verbose", action="store_true",
                        help="full tracebacks of expected failures too, and the library warnings hidden by default")


def _run_parser(prog: str, what: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=f"Run (or resume) the {what} of FILE as an Optuna "
                                     "study, every trial tracked in MLflow; then print the comparison.")
    _common(parser)
    parser.add_argument("--workers", type=int, default=1, help="trials run in parallel processes (default 1)")
    parser.add_argument("--storage", default=None,
                        help="Optuna RDB storage URL (default: sqlite:///<store-dir>/optuna.db; "
                             "e.g. postgresql://user:pass@127.0.0.1:5432/db)")
    parser.add_argument("--artifact-root", default=None,
                        help="artifact folder for new MLflow experiments (default: <store-dir>/mlartifacts; with a "
                             "tracking server, where the server keeps artifacts)")
    parser.add_argument("--no-log-checkpoints", action="store_true",
                        help="do not upload each trial's best checkpoint to MLflow (uploaded by default)")
    parser.add_argument("--neurobench", action="store_true",
                        help="also compute NeuroBench's metrics (the neurobench package) of each trial at test time")
    parser.add_argument("--heartbeat", type=int, default=10,
                        help="seconds between trial heartbeats; a trial of another host is stale after 6 missed")
    parser.add_argument("--stop-grace", type=float, default=10.0, metavar="SECONDS",
                        help="after SIGTERM or Ctrl-C, seconds a trial may take to stop before its process is "
                             "killed (default 10); the next run re-queues it")
    parser.add_argument("--storage-retry-seconds", type=float, default=120.0, metavar="SECONDS",
                        help="how long an unreachable study storage (a PostgreSQL restart) is waited for before "
                             "the study stops (default 120; 0: not at all)")
    parser.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                        help="start no new trial after this many seconds (overrides budget.time_limit_s); "
                             "the rest stays queued for the next run")
    parser.add_argument("--dry-run", action="store_true", help="validate and list the trials; run nothing")
    parser.add_argument("--no-compare", action="store_true", help="do not print/write the comparison at the end")
    add_launcher_flags(parser)
    return parser


def _load(args: argparse.Namespace, kind: str) -> StudySpec:
    if args.study_name is not None and not re.match(r"^[A-Za-z0-9_.:@+-]+$", args.study_name):
        raise SpecError(f"--study-name {args.study_name!r}: use letters, digits and _ . : @ + - only")
    if args.max_epochs is not None and args.max_epochs < 1:
        raise SpecError("--max-epochs must be >= 1")
    return load_spec(args.file, kind, sets=args.sets, max_epochs=args.max_epochs)


def _error(prog: str, exc: BaseException) -> int:
    print(f"{prog}: error: {exc}", file=sys.stderr)
    return 2


def _written_to(args: argparse.Namespace, out_dir: Path, spec: StudySpec, tracking_uri: str, **compare_kwargs):
    """``compare`` of ``spec`` (its ``report.md`` stamped, stored_report.py); an ``OSError`` on a file under
    ``--results-dir`` (read-only, no permission, a file where a folder should be, a full disk) becomes one
    line naming where the comparison would have gone: the study's stores are not there and stay as they are."""
    from lit_snn.errors import NotWritableError

    from .compare import compare
    from .stored_report import stamp_report

    try:
        result = compare(spec, tracking_uri, results_dir=args.results_dir, **compare_kwargs)
        stamp_report(result.out_dir / "report.md", spec, result.parent_run_id)
        return result
    except OSError as exc:
        root = Path(args.results_dir).resolve()
        if not exc.filename or not Path(exc.filename).resolve().is_relative_to(root):
            raise
        reason = (exc.strerror or type(exc).__name__).lower()
        raise NotWritableError(f"could not write the comparison to {out_dir.resolve()} ({reason}: {exc.filename}); "
                               f"the study is kept: `lit-snn compare {args.file} --results-dir DIR` writes it to a "
                               "writable DIR") from exc


def _interrupt(signum, _frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _guarded(prog: str, verbose: bool, run: Callable[[], int], resume: str) -> int:
    """``run()`` with its expected failures as one line and an exit code (``errors.run_command``);
    an interrupt (Ctrl-C, SIGTERM) also says what was kept and how to continue."""
    from lit_snn.errors import run_command

    def body() -> int:
        try:
            return run()
        except KeyboardInterrupt as exc:
            exc.add_note(resume)
            raise

    signal.signal(signal.SIGTERM, _interrupt)
    return run_command(prog, body, verbose)


def _run(argv: list[str] | None, kind: str) -> int:
    prog = "lit-snn ablate" if kind == "ablation" else "lit-snn sweep"
    parser = _run_parser(prog, "ablation grid" if kind == "ablation" else "hyper-parameter search")
    if kind == "sweep":
        parser.add_argument("--n-trials", type=int, default=None, help="override the file's n_trials")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    if args.stop_grace <= 0 or args.storage_retry_seconds < 0:
        parser.error("--stop-grace must be > 0 seconds and --storage-retry-seconds >= 0")
    resume = "finished trials are kept in the study's storage: run the same command again to resume"
    with quiet(args.verbose):
        return _guarded(prog, args.verbose, lambda: _run_parsed(args, kind, prog), resume)


def _run_parsed(args: argparse.Namespace, kind: str, prog: str) -> int:
    from .study import validate

    try:
        spec = _load(args, kind)
        _apply_limits(args, spec, kind)
        if args.dry_run:
            _print_dry_run(args, spec, kind, validate(spec))
            return 0
        options = _study_options(args, spec)
        check_store(options.storage)  # both, before either is opened: an unreadable one leaves the other untouched
        check_store(options.tracking_uri)
        slurm = _slurm_settings(args)
        with as_storage_error(options):
            outcome = _launch(spec, options, slurm, args.wait)
        if slurm is not None and not args.wait:
            _print_submitted(outcome, args, prog)
            return 0
    except SpecError as exc:
        return _error(prog, exc)
    _print_outcome(outcome, prog)
    if not args.no_compare and not _print_stored_report(args, spec, outcome, prog):
        _written_to(args, Path(args.results_dir) / spec.experiment / outcome.study_name, spec, options.tracking_uri,
                    study_name=options.study_name, storage=options.storage)
    if outcome.failed_keys:
        print(f"{prog}: failed (re-run to retry them): {', '.join(outcome.failed_keys)}", file=sys.stderr)
        return 1
    return 0


def _apply_limits(args: argparse.Namespace, spec: StudySpec, kind: str) -> None:
    """``--n-trials`` (a sweep's) and ``--time-limit`` over the study file's values."""
    if kind == "sweep" and args.n_trials is not None:
        if args.n_trials < 1:
            raise SpecError("--n-trials must be >= 1")
        spec.n_trials = args.n_trials
    if args.time_limit is not None:
        if args.time_limit <= 0:
            raise SpecError("--time-limit must be > 0 seconds")
        spec.time_limit_s = args.time_limit


def _print_dry_run(args: argparse.Namespace, spec: StudySpec, kind: str, points) -> None:
    """``--dry-run``: the valid study's name and its grid points (or a sweep's trials and objectives)."""
    print(f"{args.file}: valid {kind}; study {args.study_name or spec.default_study_name}")
    for point in points or []:
        print(f"  {point.key}")
    if points is None:
        print(f"  {spec.n_trials} trials over {', '.join(spec.params)}")
        print(f"  objective{'s' if spec.multi_objective else ''}: "
              + ", ".join(f"{m} ({d})" for m, d in spec.objectives) + f"; sampler {spec.sampler['type']}")


def _study_options(args: argparse.Namespace, spec: StudySpec):
    """The ``StudyOptions`` of the command line: its stores (default: ``--store-dir``'s) and flags."""
    from .study import StudyOptions

    paths = default_paths(args.store_dir)
    tracking_uri = args.tracking_uri or paths["tracking_uri"]
    return StudyOptions(
        storage=args.storage or paths["storage"],
        tracking_uri=tracking_uri,
        study_name=args.study_name or spec.default_study_name,
        artifact_root=args.artifact_root or (None if is_server(tracking_uri) else paths["artifact_root"]),
        work_dir=paths["work_dir"],
        workers=args.workers,
        heartbeat_s=args.heartbeat,
        log_checkpoints=not args.no_log_checkpoints,
        neurobench=args.neurobench,
        verbose=args.verbose,
        stop_grace_s=args.stop_grace,
        storage_retry_s=args.storage_retry_seconds,
    )


def _print_outcome(outcome, prog: str) -> None:
    """The study's counts, and what still runs elsewhere or is left to run."""
    c = outcome.counts
    print(f"{prog}: study {outcome.study_name}: {c['COMPLETE']} complete, {c['PRUNED']} pruned, {c['FAIL']} failed "
          f"trial(s) in {outcome.wall_s:.0f} s; MLflow experiment {outcome.experiment!r}")
    elsewhere = c["RUNNING"]
    if elsewhere:
        print(f"{prog}: {elsewhere} trial(s) still running in another process (it closes the study's parent run)")
    if outcome.pending > elsewhere and not outcome.failed_keys:
        print(f"{prog}: {outcome.pending - elsewhere} trial(s) still to run: run the same command again to continue")


def _slurm_settings(args: argparse.Namespace) -> SlurmSettings | None:
    """The SLURM settings of a cluster launch (the file's ``launcher:`` block, then the flags); None: local."""
    from .yamlio import load_yaml

    block = load_yaml(args.file).get("launcher")
    launcher, settings = parse_launcher_block(block, f"{args.file}: launcher")
    launcher = args.launcher or launcher
    if launcher != "slurm":
        given = given_slurm_flags(args) + (["--wait"] if args.wait else [])
        if given:
            raise SpecError(f"{', '.join(given)} only apply to a SLURM launch: add --launcher slurm "
                            "(or `launcher: {type: slurm}` in the file)")
        return None
    return merge_flags(settings, slurm_flags(args))


def _launch(spec: StudySpec, options, slurm: SlurmSettings | None, wait: bool):
    """The study run here (``run_study``), or submitted as a SLURM job array (``launchers/slurm.py``)."""
    if slurm is None:
        from .study import run_study

        return run_study(spec, options)
    from .launchers.slurm import submit

    return submit(spec, options, slurm, wait=wait)


def _print_submitted(submitted, args: argparse.Namespace, prog: str) -> None:
    """What a SLURM launch without ``--wait`` leaves the user: the job and the commands that follow it."""
    if submitted is not None:
        print(f"{prog}: submitted SLURM job array {submitted.job_id} ({submitted.tasks} worker task(s)); "
              f"`lit-snn status {args.file}` (with the same store flags) shows its trials, "
              f"`lit-snn compare {args.file}` compares them when they are done")


def _print_stored_report(args: argparse.Namespace, spec: StudySpec, outcome, prog: str) -> bool:
    """A study with nothing left to run: print the report its last compare wrote, if still current."""
    from .stored_report import report_path, stored_report

    path = report_path(args.results_dir, spec.experiment, outcome.study_name)
    text = stored_report(path, spec, outcome.parent_run_id, outcome.last_finished) if outcome.idle else None
    if text is None:
        return False
    print(text)
    print(f"\n{prog}: the stored comparison {path} (the study is unchanged since; "
          f"`lit-snn compare {args.file}` redraws it)")
    return True


def ablate_main(argv: list[str] | None = None) -> int:
    """``lit-snn ablate FILE [--workers N] [--storage URL] ...``: run or resume an ablation grid."""
    return _run(argv, "ablation")


def sweep_main(argv: list[str] | None = None) -> int:
    """``lit-snn sweep FILE [--workers N] [--n-trials N] ...``: run or resume a search (TPE/NSGA-II/random;
    pruning for one objective, Pareto front for several)."""
    return _run(argv, "sweep")


def compare_main(argv: list[str] | None = None) -> int:
    """``lit-snn compare FILE``: tables (terminal, CSV, markdown) and plots of a study's runs from MLflow."""
    parser = argparse.ArgumentParser(prog="lit-snn compare", description="Compare the runs of an ablation "
                                     "or sweep, read back from MLflow.")
    _common(parser)
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--storage", default=None,
                        help="Optuna storage URL of the study, read for a multi-objective sweep's Pareto front "
                             "(default: <store-dir>/optuna.db, else the storage the study run recorded; without "
                             "either the front is computed from the MLflow runs)")
    args = parser.parse_args(argv)
    with quiet(args.verbose):
        return _guarded("lit-snn compare", args.verbose, lambda: _compare_parsed(args), "nothing was changed")


def _compare_parsed(args: argparse.Namespace) -> int:
    try:
        spec = _load(args, detect_kind(args.file))
        tracking_uri = args.tracking_uri or default_paths(args.store_dir)["tracking_uri"]
        storage = args.storage or default_paths(args.store_dir)["storage"]
        check_store(tracking_uri)
        if spec.multi_objective:  # the Pareto front is read from the Optuna study
            check_store(storage)
        started = time.time()
        out_dir = Path(args.results_dir) / spec.experiment / (args.study_name or spec.default_study_name)
        result = _written_to(args, out_dir, spec, tracking_uri, study_name=args.study_name, plots=not args.no_plots,
                             fallback_latest=args.study_name is None, storage=storage)
    except SpecError as exc:  # a bad file, or no study of it to compare yet
        return _error("lit-snn compare", exc)
    print(f"lit-snn compare: wrote {len(result.files)} file(s) to {result.out_dir} in {time.time() - started:.1f} s")
    return 0
