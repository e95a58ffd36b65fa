"""``entry_point``: in a command's own process (``run_then_exit``) the imports run without the
cyclic GC and what they made is frozen out of later collections; the process ends with main's
status and output, every atexit handler registered after it run, without the interpreter's
teardown; a raising main exits as Python always does; in a process that only calls a command's
main (a test), neither happens."""

import gc
import subprocess
import sys
import textwrap

from lit_snn.entry_point import imports_without_gc

PROGRAM = textwrap.dedent("""
    import atexit, gc, sys
    from lit_snn.entry_point import imports_without_gc, run_then_exit

    class Finalized:  # prints when the interpreter's teardown clears this module
        def __del__(self):
            print("teardown ran", flush=True)

    marker = Finalized()

    def main():
        with imports_without_gc():
            import json  # noqa: F401
            inside = gc.isenabled()
        print(f"gc during imports {inside}, after {gc.isenabled()}, frozen {gc.get_freeze_count() > 0}")
        atexit.register(lambda: print("later handler ran"))
        sys.stdout.write("buffered output, no newline")  # still in the buffer at exit
        if sys.argv[1] == "raise":
            raise RuntimeError("boom")
        return int(sys.argv[1])

    sys.exit(run_then_exit(main))
""")
GC_LINE = "gc during imports False, after True, frozen True\n"


def run(arg: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROGRAM, arg], capture_output=True, text=True, timeout=60)


def test_status_output_and_later_handlers_kept_teardown_skipped():
    for status in (0, 3):
        done = run(str(status))
        assert done.returncode == status, done.stderr
        assert done.stdout == GC_LINE + "buffered output, no newlinelater handler ran\n"  # no "teardown ran"


def test_a_raising_main_exits_as_python_does():
    done = run("raise")
    assert done.returncode == 1
    assert "RuntimeError: boom" in done.stderr
    assert "later handler ran" in done.stdout and "teardown ran" in done.stdout  # the ordinary exit


def test_imports_keep_the_gc_in_a_process_that_only_calls_main():
    frozen = gc.get_freeze_count()
    with imports_without_gc():
        assert gc.isenabled()
    assert gc.isenabled() and gc.get_freeze_count() == frozen


def test_the_lit_snn_script_ends_with_its_status():
    listed = subprocess.run([sys.executable, "-m", "lit_snn.cli", "neurons"], capture_output=True, text=True,
                            timeout=120)
    assert listed.returncode == 0 and "ar_lif" in listed.stdout
    unknown = subprocess.run([sys.executable, "-m", "lit_snn.cli", "no-such-command"], capture_output=True,
                             text=True, timeout=120)
    assert unknown.returncode == 2 and "unknown command 'no-such-command'" in unknown.stderr
