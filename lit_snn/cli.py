"""``lit-snn``: one entry point with sub-commands.

    lit-snn train   --config configs/digits_lif.yaml [--model.neuron ar_lif] [--print_config]
                    [--ckpt_path FILE]    # resume a training from its Lightning checkpoint
                    [--verbose]           # tracebacks of expected failures too
    lit-snn ablate  ablations/default.yaml [--workers 2]
    lit-snn sweep   sweeps/lif_digits.yaml [--workers 2]
    lit-snn compare ablations/default.yaml
    lit-snn status  ablations/default.yaml  # finished/running/queued/failed trials, per host and SLURM job
    lit-snn reproduce RUN_ID [--store-dir DIR | --tracking-uri URI] [--atol 0]   # re-train an MLflow run
    lit-snn evaluate  RUN_ID [--ckpt PATH_IN_ARTIFACTS]     # test an MLflow run's logged checkpoint
    lit-snn export  RUN_ID_OR_CKPT --nir FILE [--input-shape C,H,W] [--dt S]   # NIR graph (exact presets only)
    lit-snn neurobench RUN_ID_OR_CKPT [--limit N]          # NeuroBench's metrics, by the neurobench package
    lit-snn inspect RUN_ID_OR_CKPT [--samples 4] [--out DIR]  # spike rasters, membrane traces, rate maps (PNG)
    lit-snn bench   [--quick] [--device cpu] [--e2e]   # neuron benchmark; --e2e: a training step per library
    lit-snn neurons                       # list the neuron presets
    lit-snn doctor  [--root DIR] [--json] # versions, every backend vs the reference, stores, datasets
"""

from __future__ import annotations

import difflib
import importlib
import sys

from .entry_point import imports_without_gc, run_then_exit


def _neurons(argv: list[str]) -> None:
    from .neurons import describe_neurons

    for name, doc in describe_neurons().items():
        print(f"{name:12s} {doc}")


# command -> (module, function): imported on use, so that ``lit-snn neurons`` pays for none of them
_IMPORTED = {
    "train": (".tracked_train", "main"),
    "ablate": (".orchestrate.cli", "ablate_main"), "sweep": (".orchestrate.cli", "sweep_main"),
    "compare": (".orchestrate.cli", "compare_main"), "status": (".orchestrate.status", "status_main"),
    "reproduce": (".runs", "reproduce_main"), "evaluate": (".runs", "evaluate_main"),
    "export": (".export.cli", "export_main"),
    "neurobench": (".neurobench", "neurobench_main"),
    "inspect": (".inspect.cli", "inspect_main"),
    "bench": (".bench", "main"),
    "doctor": (".doctor", "doctor_main"),
}
COMMANDS = (*_IMPORTED, "neurons")


def _command(command: str):
    """The function that runs ``command``, its module imported without the cyclic GC
    (``entry_point.imports_without_gc``)."""
    module, name = _IMPORTED[command]
    with imports_without_gc():
        return getattr(importlib.import_module(module, __package__), name)


def _train(argv: list[str], verbose: bool) -> None:
    """``lit-snn train``, imported inside run_command (Ctrl-C during the imports is one line too);
    its metrics are for in-process callers, not the exit status."""
    _command("train")(argv, verbose=verbose)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "train":
        from .errors import run_command

        verbose = "--verbose" in rest  # ours, not LightningCLI's
        return run_command("lit-snn train", lambda: _train([arg for arg in rest if arg != "--verbose"], verbose),
                           verbose)
    if command == "neurons":
        _neurons(rest)
        return 0
    if command in _IMPORTED:
        return int(_command(command)(rest) or 0)
    close = difflib.get_close_matches(command, COMMANDS, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    print(f"lit-snn: unknown command {command!r}; valid commands: {', '.join(COMMANDS)}{hint}", file=sys.stderr)
    return 2


def entry() -> None:
    """The ``lit-snn`` script: ``main()`` in a process of its own (``entry_point``: the commands'
    imports without the cyclic GC, the exit without the interpreter's teardown; 1.5 s a process),
    its status the process's."""
    sys.exit(run_then_exit(main))


if __name__ == "__main__":
    entry()
