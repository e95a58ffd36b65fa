"""Pareto fronts: the non-dominated filter compare uses on MLflow runs and on an ablation's arms.

A point ``a`` **dominates** ``b`` when ``a`` is at least as good in every objective and strictly
better in at least one (better = larger for ``maximize``, smaller for ``minimize``). The Pareto set
is every point no other point dominates. This is Optuna's own definition (``Study.best_trials``),
so the consequences match it: points with equal values do not dominate each other, hence
duplicates of a non-dominated point are all in the set, and a tie in one objective is decided by
the others. Points with a NaN objective are never in the set and never dominate another.

When compare can open the Optuna study it takes ``study.best_trials``; ``non_dominated`` is the
same selection for the cases it cannot (only MLflow is at hand) and for the ablation plot.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError

DIRECTIONS = ("maximize", "minimize")


def non_dominated(values: Sequence[Sequence[float]] | np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Boolean mask of the Pareto-optimal rows of ``values`` (n points x k objectives).

    ``directions`` gives ``"maximize"`` or ``"minimize"`` per column. O(n^2 k), meant for the
    tens to thousands of trials of a study.
    """
    if any(d not in DIRECTIONS for d in directions):
        raise ConfigError(f"directions must be 'maximize' or 'minimize', got {list(directions)!r}")
    points = np.asarray(values, dtype=float)
    if points.size == 0:
        return np.zeros(len(points), dtype=bool)
    if points.ndim != 2 or points.shape[1] != len(directions):
        raise ConfigError(f"values must be n x {len(directions)} (one column per direction), got {points.shape}")
    loss = points * np.array([-1.0 if d == "maximize" else 1.0 for d in directions])  # smaller is better
    valid = ~np.isnan(loss).any(axis=1)
    mask = valid.copy()
    for i in np.flatnonzero(valid):
        others = loss[valid]
        no_worse = (others <= loss[i]).all(axis=1)
        better = (others < loss[i]).any(axis=1)
        mask[i] = not (no_worse & better).any()
    return mask


def pareto_rows(frame: pd.DataFrame, objectives: Sequence[tuple[str, str]]) -> pd.Series:
    """``non_dominated`` over the columns of ``frame`` named by ``objectives`` [(column, direction), ...].

    Returns a boolean Series aligned with ``frame`` (a missing or non-numeric value: not optimal).
    """
    if frame.empty:
        return pd.Series([], index=frame.index, dtype=bool)
    columns = [pd.to_numeric(frame[c], errors="coerce") if c in frame else pd.Series(np.nan, index=frame.index)
               for c, _ in objectives]
    values = np.column_stack([c.to_numpy(dtype=float) for c in columns])
    return pd.Series(non_dominated(values, [d for _, d in objectives]), index=frame.index, dtype=bool)
