"""``python -m lit_snn.orchestrate ablate|sweep|compare FILE ...`` (same as ``lit-snn ablate ...``)."""

import sys

from .cli import ablate_main, compare_main, sweep_main

COMMANDS = {"ablate": ablate_main, "sweep": sweep_main, "compare": compare_main}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(f"usage: python -m lit_snn.orchestrate {{{'|'.join(COMMANDS)}}} FILE [options]", file=sys.stderr)
        sys.exit(2)
    sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
