"""``lit-snn``: one entry point with sub-commands.

    lit-snn train   --config configs/digits_lif.yaml [--model.neuron ar_lif] [--print_config]
                    [--ckpt_path FILE]    # resume a training from its Lightning checkpoint
                    [--verbose]           # tracebacks of expected failures too
    lit-snn ablate  ablations/default.yaml [--workers 2]
    lit-snn sweep   sweeps/lif_digits.yaml [--workers 2]
    lit-snn compare ablations/default.yaml
    lit-snn reproduce RUN_ID [--store-dir DIR | --tracking-uri URI] [--atol 0]   # re-train an MLflow run
    lit-snn evaluate  RUN_ID [--ckpt PATH_IN_ARTIFACTS]     # test an MLflow run's logged checkpoint
    lit-snn export  RUN_ID_OR_CKPT --nir FILE [--input-shape C,H,W] [--dt S]   # NIR graph (exact presets only)
    lit-snn neurobench RUN_ID_OR_CKPT [--limit N]          # NeuroBench's metrics, by the neurobench package
    lit-snn bench   [--quick]
    lit-snn neurons                       # list the neuron presets
"""

from __future__ import annotations

import sys

from .entry_point import imports_without_gc, run_then_exit

COMMANDS = ("train", "ablate", "sweep", "compare", "reproduce", "evaluate", "export", "neurobench", "bench", "neurons")


def _neurons(argv: list[str]) -> None:
    from .neurons import describe_neurons

    for name, doc in describe_neurons().items():
        print(f"{name:12s} {doc}")


def _train(argv: list[str]) -> None:
    with imports_without_gc():
        from .train import main as train_main  # inside run_command: Ctrl-C during the imports is one line too

    train_main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "train":
        from .errors import run_command

        verbose = "--verbose" in rest  # ours, not LightningCLI's
        return run_command("lit-snn train", lambda: _train([arg for arg in rest if arg != "--verbose"]), verbose)
    elif command in ("reproduce", "evaluate"):
        with imports_without_gc():
            from . import runs

        return int(getattr(runs, f"{command}_main")(rest) or 0)
    elif command in ("ablate", "sweep", "compare"):
        with imports_without_gc():
            from .orchestrate import cli as orchestrate_cli

        return int(getattr(orchestrate_cli, f"{command}_main")(rest) or 0)
    elif command == "export":
        with imports_without_gc():
            from .export.cli import export_main

        return int(export_main(rest) or 0)
    elif command == "neurobench":
        with imports_without_gc():
            from .neurobench import neurobench_main

        return int(neurobench_main(rest) or 0)
    elif command == "bench":
        with imports_without_gc():
            from .bench import main as bench_main

        return int(bench_main(rest) or 0)
    elif command == "neurons":
        _neurons(rest)
    else:
        print(f"lit-snn: unknown command {command!r}; valid commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return 0


def entry() -> None:
    """The ``lit-snn`` script: ``main()`` in a process of its own (``entry_point``: the commands'
    imports without the cyclic GC, the exit without the interpreter's teardown; 1.5 s a process),
    its status the process's."""
    sys.exit(run_then_exit(main))


if __name__ == "__main__":
    entry()
