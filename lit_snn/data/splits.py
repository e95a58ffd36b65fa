"""Seeded, stratified index splits shared by the DataModules."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError


def seeded_split(n: int, val_fraction: float, seed: int, labels=None) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic train/val index split of ``range(n)``; ``round(val_fraction * n)`` go to val.

    With ``labels`` the split is stratified: class c gets ``floor(val_fraction * n_c)`` and the
    remaining val slots go to the classes with the largest fractional parts (ties broken by the
    seeded generator), so small datasets still get a validation set.
    Returns sorted index arrays ``(train_idx, val_idx)``.
    """
    rng = np.random.default_rng(seed)
    n_val = round(val_fraction * n)
    if n_val <= 0:
        return np.arange(n), np.arange(0, dtype=np.int64)
    if labels is None:
        perm = rng.permutation(n)
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    exact = val_fraction * counts
    take = np.floor(exact).astype(np.int64)
    extra = n_val - int(take.sum())
    if extra > 0:
        frac = exact - take + rng.random(len(classes)) * 1e-9  # random tie-break
        take[np.argsort(-frac, kind="stable")[:extra]] += 1
    take = np.minimum(take, counts)
    val = []
    for c, k in zip(classes, take):
        idx = np.flatnonzero(labels == c)
        val.append(idx[rng.permutation(len(idx))][:k])
    val_idx = np.sort(np.concatenate(val))
    return np.setdiff1d(np.arange(n), val_idx), val_idx


def holdout_split(labels: np.ndarray, test_fraction: float, val_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Split of a dataset published without a test set (digits, nmnist_digits).

    A stratified seeded ``test_fraction`` of all samples is the test set, then a stratified
    ``val_fraction`` of the rest (seed + 1) is validation. Returns sorted index arrays under
    ``"train"``, ``"val"`` and ``"test"``.
    """
    labels = np.asarray(labels)
    rest, test = seeded_split(len(labels), test_fraction, seed, labels)
    tr, va = seeded_split(len(rest), val_fraction, seed + 1, labels[rest])
    return {"train": rest[tr], "val": rest[va], "test": test}


def checked_test_fraction(test_fraction: float) -> float:
    """``test_fraction`` as a float, or ValueError when it is not in (0, 1)."""
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction}")
    return float(test_fraction)
