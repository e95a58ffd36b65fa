"""Ablations and searches: YAML -> Optuna study (grid, or TPE/NSGA-II + pruner; one or more objectives)
-> trials -> MLflow -> comparison (a Pareto front for several objectives).

Entry points (wired to ``lit-snn ablate | sweep | compare`` in ``lit_snn/cli.py``):

- ``ablate_main(argv)``, ``sweep_main(argv)``, ``compare_main(argv)``: the command lines.
- ``load_spec(path, kind)`` -> ``StudySpec``; ``run_study(spec, StudyOptions(...))`` -> ``StudyOutcome``;
  ``compare(spec, tracking_uri)`` -> ``CompareResult``.

Files: spec.py (YAML -> AblationSpec | SweepSpec; spec_schema.py: the pydantic schema and its one-line
messages, spec_cross.py: base config and checks across keys), space.py (grid / ranges, metric and data
checks, resolved up front), axis_text.py (the one spelling of an axis value: keys, tags, params), study.py
(run_study: the study, its parent run, the loops, the outcome), trial_queue.py (queue, claims,
stale repair), trial.py (the frozen trial context, TrialPlan, run_trial), loops.py (one worker loop
per kind), worker_processes.py (--workers N), options.py (StudyOptions, attribute names),
adaptive.py + sequential.py (seeds in rounds), progress.py (trial k/N lines), storage.py (Optuna
storage, creation lock, unreadable stores), tracking.py (MLflow, server checks, arm runs),
workers.py (identity, heartbeat, death with the parent), pruning.py, training.py (the training
entry points, reproducibility record), compare.py (the report, per kind), report_text.py (its
tables and sentences), plots.py, stored_report.py (a finished study's report, reused), pareto.py
(non-dominated filter), statistics.py (seed statistics; equivalence.py: TOST, planning.py: seeds
for a given power), units.py (each metric's display unit), cli.py (argparse, one-line failures).
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
