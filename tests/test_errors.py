"""Expected failures are one line and an exit code; bugs keep their traceback (lit_snn.errors)."""

import errno
import json
import sys

import pytest

from lit_snn.checkpoints import CheckpointRefused
from lit_snn.data import CorruptDataError, DatasetNotFoundError
from lit_snn.errors import ConfigError, ExpectedError, describe_expected, exit_code, run_command
from lit_snn.module import LitSNN


def _raised(fn):
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 - the tests look at what was raised
        return exc
    raise AssertionError("nothing raised")


def test_expected_failures_are_one_line_with_their_exit_code():
    cases = [
        (KeyboardInterrupt(), "interrupted", 130),
        (OSError(errno.ENOSPC, "No space left on device", "/ckpt/best.ckpt"), "disk full: /ckpt/best.ckpt", 1),
        (OSError(errno.ENOSPC, "No space left on device"), "disk full (No space left on device)", 1),
        (MemoryError(), "out of memory", 1),
        (FileNotFoundError(errno.ENOENT, "checkpoint not found", "x.ckpt"), "checkpoint not found: x.ckpt", 2),
        (CorruptDataError("/d/train-images-idx3-ubyte", "not an IDX file"),
         "corrupt or unreadable data file '/d/train-images-idx3-ubyte': not an IDX file", 2),
        (ExpectedError("no run 'abc' in sqlite:///m.db"), "no run 'abc' in sqlite:///m.db", 2),
    ]
    for exc, message, code in cases:
        assert describe_expected(exc) == message, exc
        assert exit_code(exc) == code, exc


def test_missing_dataset_is_its_first_line():
    exc = DatasetNotFoundError("MNIST", "/data/MNIST/raw", "  /data/MNIST/raw/\n    train-images-idx3-ubyte\n",
                               "yann.lecun.com", detail="missing train-images-idx3-ubyte[.gz]")
    assert describe_expected(exc) == ("MNIST not found at '/data/MNIST/raw' (missing train-images-idx3-ubyte[.gz]). "
                                      "(--verbose shows the expected layout and where to get the files)")
    assert exit_code(exc) == 2


def test_a_check_of_ours_is_expected_and_wins_over_the_parsers_wrapper():
    inner = _raised(lambda: LitSNN(time_steps=-2))
    assert describe_expected(inner) == "time_steps must be >= 1, got -2"

    def wrapped():  # how jsonargparse reports a constructor's ValueError inside a Union
        try:
            LitSNN(time_steps=-2)
        except ValueError as exc:
            raise ValueError("Does not validate against any of the Union subtypes\nSubtypes: [...]\n"
                             "Errors:\n  - time_steps must be >= 1, got -2") from exc

    assert describe_expected(_raised(wrapped)) == "time_steps must be >= 1, got -2"


def test_bugs_get_no_message():
    assert describe_expected(_raised(lambda: json.loads("{"))) is None  # a ValueError, not ours
    assert describe_expected(_raised(lambda: [][1])) is None
    assert describe_expected(RuntimeError("boom")) is None
    assert describe_expected(SystemExit(1)) is None


def test_expected_is_decided_by_type_not_by_where_it_was_raised():
    from lit_snn.orchestrate.yamlio import SpecError
    from lit_snn.store_files import UnreadableStoreError

    for exc in (ConfigError("lr must be > 0, got -1"), SpecError("lr must be > 0, got -1"),
                CheckpointRefused("lr must be > 0, got -1"), UnreadableStoreError("lr must be > 0, got -1")):
        assert describe_expected(exc) == "lr must be > 0, got -1", exc  # never raised: no frame to look at
        assert exit_code(exc) == 2
    code_of_ours = {"__name__": "lit_snn.somewhere"}  # a frame in lit_snn raising a plain ValueError: a bug
    exec("def check():\n    raise ValueError('unpacking went wrong')", code_of_ours)
    assert describe_expected(_raised(code_of_ours["check"])) is None

    def wrapped():  # a library's ValueError around one of ours: ours is the message
        try:
            raise ConfigError("time_steps must be >= 1, got 0")
        except ConfigError as exc:
            raise ValueError("Does not validate against any of the Union subtypes") from exc

    assert describe_expected(_raised(wrapped)) == "time_steps must be >= 1, got 0"


def test_notes_say_what_was_kept():
    exc = KeyboardInterrupt()
    exc.add_note("best checkpoint so far kept: a.ckpt")
    assert describe_expected(exc) == "interrupted; best checkpoint so far kept: a.ckpt"


def test_run_command_prints_one_line_or_reraises_bugs(capsys):
    def full_disk():
        raise OSError(errno.ENOSPC, "No space left on device", "out.ckpt")

    assert run_command("lit-snn x", full_disk, verbose=False) == 1
    assert capsys.readouterr().err == "lit-snn x: error: disk full: out.ckpt\n"
    assert run_command("lit-snn x", full_disk, verbose=True) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and err.endswith("lit-snn x: error: disk full: out.ckpt\n")

    with pytest.raises(ZeroDivisionError):
        run_command("lit-snn x", lambda: 1 / 0)
    with pytest.raises(SystemExit):  # --help and friends exit as they always did
        run_command("lit-snn x", lambda: sys.exit(0))
    assert run_command("lit-snn x", lambda: 3) == 3 and run_command("lit-snn x", lambda: None) == 0
    assert capsys.readouterr().err == ""
