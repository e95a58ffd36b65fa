"""``lit-snn``: one entry point with sub-commands.

    lit-snn train   --config configs/digits_lif.yaml [--model.neuron ar_lif] [--print_config]
    lit-snn ablate  ablations/default.yaml [--workers 2]
    lit-snn sweep   sweeps/lif_digits.yaml [--workers 2]
    lit-snn compare ablations/default.yaml
    lit-snn bench   [--quick]
    lit-snn neurons                       # list the neuron presets
"""

from __future__ import annotations

import sys

COMMANDS = ("train", "ablate", "sweep", "compare", "bench", "neurons")


def _neurons(argv: list[str]) -> None:
    from .neurons import describe_neurons

    for name, doc in describe_neurons().items():
        print(f"{name:12s} {doc}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "train":
        from .train import main as train_main

        try:
            train_main(rest)
        except (ValueError, FileNotFoundError) as exc:  # bad config or missing data: one clear line
            print(f"lit-snn train: error: {exc}", file=sys.stderr)
            return 2
    elif command in ("ablate", "sweep", "compare"):
        from .orchestrate import cli as orchestrate_cli

        return int(getattr(orchestrate_cli, f"{command}_main")(rest) or 0)
    elif command == "bench":
        from .bench import main as bench_main

        return int(bench_main(rest) or 0)
    elif command == "neurons":
        _neurons(rest)
    else:
        print(f"lit-snn: unknown command {command!r}; valid commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
