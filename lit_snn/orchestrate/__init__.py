"""Ablations and searches: YAML -> Optuna study (grid, or TPE/NSGA-II + pruner; one or more objectives)
-> trials -> MLflow -> comparison (a Pareto front for several objectives).

Entry points (wired to ``lit-snn ablate | sweep | compare`` in ``lit_snn/cli.py``):

- ``ablate_main(argv)``, ``sweep_main(argv)``, ``compare_main(argv)``: the command lines.
- ``load_spec(path, kind)`` -> ``StudySpec``; ``run_study(spec, StudyOptions(...))`` -> ``StudyOutcome``;
  ``compare(spec, tracking_uri)`` -> ``CompareResult``.

Files: spec.py (YAML -> validated spec), space.py (grid / ranges, metric and data checks, resolved
up front), study.py (queue, workers, resume, the one parent run), storage.py (Optuna RDB storage,
creation lock, the atomic study attribute), tracking.py (MLflow, server checks), workers.py
(identity, heartbeat, death with the parent), pruning.py (the Optuna pruner), training.py (the
training entry points, reproducibility record), compare.py (tables and plots), pareto.py
(non-dominated filter), statistics.py (seed statistics; equivalence.py: TOST, planning.py: seeds for
a given power), cli.py (argparse, one-line failures).
"""

from .cli import ablate_main, compare_main, sweep_main
from .compare import CompareResult, compare
from .spec import StudySpec, load_spec
from .study import StudyOptions, StudyOutcome, run_study
from .yamlio import SpecError

__all__ = [
    "CompareResult",
    "SpecError",
    "StudyOptions",
    "StudyOutcome",
    "StudySpec",
    "ablate_main",
    "compare",
    "compare_main",
    "load_spec",
    "run_study",
    "sweep_main",
]
