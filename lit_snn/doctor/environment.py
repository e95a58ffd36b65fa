"""What this machine has: package versions, the CPU path (numba and its kernel cache), the GPU, the
Optuna and MLflow stores, and the datasets under a root. Each function returns table rows."""

from __future__ import annotations

import glob
import importlib.metadata
import importlib.util
import os
import platform
import sqlite3
from dataclasses import dataclass

OK, WARN, FAIL = "ok", "warn", "FAIL"
PACKAGES = ("torch", "triton", "numba", "lightning", "optuna", "mlflow")
NUMBA_MODULES = ("numba_kernels", "numba_parallel")  # lit_snn/neurons/cpu/ modules with compiled kernels


@dataclass
class Row:
    check: str
    status: str  # OK | WARN | FAIL
    detail: str


def version_rows(gpu: bool) -> list[Row]:
    """Python and the packages' versions (from their metadata: nothing imported)."""
    rows = [Row("python", OK, f"{platform.python_version()} ({platform.python_implementation()})")]
    for name in PACKAGES:
        try:
            rows.append(Row(name, OK, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            if name == "triton":
                status, why = (FAIL, "the GPU's neurons need it: pip install triton") if gpu else \
                    (OK, "needed only on a GPU")
            elif name == "numba":
                status, why = WARN, "the CPU path runs torch ops per step (slower): pip install numba"
            else:
                status, why = FAIL, f"lit_snn needs it: pip install {name}"
            rows.append(Row(name, status, f"not installed ({why})"))
    return rows


def numba_dispatchers() -> list:
    """The numba-compiled functions of the CPU path's kernel modules (imports numba)."""
    from ..neurons.cpu import numba_kernels, numba_parallel

    return [obj for module in (numba_kernels, numba_parallel) for obj in vars(module).values()
            if hasattr(obj, "stats") and hasattr(obj, "py_func")]


def numba_cache_files() -> tuple[str, int]:
    """(numba's cache folder for the kernels, how many kernel index files it holds)."""
    dispatchers = numba_dispatchers()
    folder = dispatchers[0].stats.cache_path if dispatchers else ""
    files = [f for m in NUMBA_MODULES for f in glob.glob(os.path.join(folder, f"{m}.*.nbi"))]
    return folder, len(files)


def numba_compile_counts() -> tuple[int, int]:
    """(kernel signatures loaded from numba's cache, compiled) in this process so far."""
    stats = [d.stats for d in numba_dispatchers()]
    return sum(sum(s.cache_hits.values()) for s in stats), sum(sum(s.cache_misses.values()) for s in stats)


def cpu_path_row() -> tuple[Row, str | None]:
    """The CPU path's row and the backend its check runs under: ``numba``, or None where the CPU
    path is the PyTorch reference itself (numba off), which leaves nothing to check against it."""
    from ..neurons.cpu import scan

    if not scan.USE_NUMBA:
        return Row("cpu path", OK, "CPU: the PyTorch reference (numba off: LIT_SNN_CPU_NUMBA=0; unset it for the "
                                   "numba kernels)"), None
    if importlib.util.find_spec("numba") is None:
        return Row("cpu path", WARN, "CPU: the PyTorch reference (numba off: numba is not installed)"), None
    try:
        folder, count = numba_cache_files()
    except ImportError as err:  # numba present but broken: multistep_cpu runs the reference the same way
        return Row("cpu path", WARN, f"CPU: the PyTorch reference (numba off: numba does not import: {err})"), None
    cache = f"kernel cache warm ({count} index files in {folder})" if count else \
        f"kernel cache cold ({folder}): the first use compiles them (1-3 minutes)"
    return Row("cpu path", OK, f"numba kernels; {cache}"), "numba"


def gpu_row() -> tuple[Row, bool]:
    """The GPU (name, memory, compute capability) or a warning; and whether there is one."""
    import torch

    if not torch.cuda.is_available():
        return Row("gpu", WARN, "none: the Triton kernels are not checked; training runs on the CPU path"), False
    props = torch.cuda.get_device_properties(0)
    more = f" (+{torch.cuda.device_count() - 1} more)" if torch.cuda.device_count() > 1 else ""
    return Row("gpu", OK, f"{props.name}, {props.total_memory / 2**30:.0f} GiB, sm_{props.major}{props.minor}, "
                          f"CUDA {torch.version.cuda}{more}"), True


def _sqlite_row(check: str, path, table: str, what: str) -> Row:
    """A SQLite store: its file readable and holding ``table`` (a count of ``what``), or where it will be made."""
    if not path.exists():
        parent = path.parent
        while not parent.exists():
            parent = parent.parent
        if os.access(parent, os.W_OK):
            return Row(check, OK, f"{path} not created yet (the first study creates it)")
        return Row(check, FAIL, f"{path} cannot be created: {parent} is not writable")
    try:  # read-only: the doctor never creates or migrates a store
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 (our table names)
    except sqlite3.Error as err:
        return Row(check, FAIL, f"{path} is not readable as a store ({err})")
    return Row(check, OK, f"{path}: {count} {what}")


def journal_row(url: str) -> Row:
    """A ``journal:PATH`` storage: its file readable (and writable), or its folder writable to create it."""
    from ..orchestrate.journal import journal_path

    check = "optuna storage"
    try:
        path = journal_path(url)
    except ValueError as err:
        return Row(check, FAIL, str(err))
    if not path.exists():
        parent = path.parent
        while not parent.exists():
            parent = parent.parent
        if os.access(parent, os.W_OK):
            return Row(check, OK, f"journal {path} not created yet (the first study creates it)")
        return Row(check, FAIL, f"journal {path} cannot be created: {parent} is not writable")
    if not path.is_file() or not os.access(path, os.R_OK):
        return Row(check, FAIL, f"journal {path} is not a readable file")
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):  # its lock files go beside it
        return Row(check, FAIL, f"journal {path}: it or its folder is not writable (studies append to it and "
                                "lock it with files beside it)")
    return Row(check, OK, f"journal {path}: {path.stat().st_size} bytes")


def optuna_row(url: str) -> Row:
    """The Optuna storage: a SQLite file, a journal file, or a database server answering ``SELECT 1``."""
    from ..orchestrate.journal import is_journal
    from ..orchestrate.storage import sqlite_path, with_available_driver

    if is_journal(url):
        return journal_row(url)
    path = sqlite_path(url)
    if path is not None:
        return _sqlite_row("optuna storage", path, "studies", "studies")
    import sqlalchemy

    from ..store_files import safe_url

    try:
        engine = sqlalchemy.create_engine(with_available_driver(url), connect_args={"connect_timeout": 5})
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
        engine.dispose()
    except Exception as err:  # noqa: BLE001  (any driver's error: the store is not usable)
        return Row("optuna storage", FAIL, f"{safe_url(url)} not reachable ({str(err).splitlines()[0]})")
    return Row("optuna storage", OK, f"{safe_url(url)} answers")


def tracking_row(uri: str) -> Row:
    """The MLflow tracking URI: a server answering ``/health``, a SQLite file, or a folder."""
    from ..orchestrate.storage import sqlite_path
    from ..orchestrate.tracking import check_reachable, is_server
    from ..orchestrate.yamlio import SpecError
    from ..store_files import safe_url

    if is_server(uri):
        try:
            check_reachable(uri)
        except SpecError as err:
            return Row("mlflow tracking", FAIL, str(err).split(";")[0])
        return Row("mlflow tracking", OK, f"{safe_url(uri)} answers /health")
    path = sqlite_path(uri)
    if path is not None:
        return _sqlite_row("mlflow tracking", path, "runs", "runs")
    return Row("mlflow tracking", OK, f"{uri} (not a server or SQLite: not checked)")


def dataset_rows(root: str) -> list[Row]:
    """Each registered dataset: where it was found under ``root`` (or the system folders), or the path looked at."""
    from ..data import DATAMODULES, DatasetNotFoundError, SNNDataModule

    rows = []
    for name, cls in DATAMODULES.items():
        if cls.check_data is SNNDataModule.check_data:
            rows.append(Row(f"data {name}", OK, "embedded (no files)"))
            continue
        try:
            module = cls(root=root)
            module.check_data()
        except DatasetNotFoundError as err:
            looked = [os.path.abspath(err.path), *getattr(module, "system_dirs", ())]
            rows.append(Row(f"data {name}", WARN, f"absent (looked in {', '.join(looked)})"))
        except Exception as err:  # noqa: BLE001  (a reader's missing package, a corrupt index: say it, go on)
            rows.append(Row(f"data {name}", WARN, f"not usable: {str(err).splitlines()[0]}"))
        else:
            rows.append(Row(f"data {name}", OK, f"present in {module.data_dir}"))
    return rows
