"""The embedded default dataset: scikit-learn's bundled 8x8 handwritten digits."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .base import Splits, as_hw
from .splits import checked_test_fraction, holdout_split
from .static import StaticDataModule, TensorImageDataset


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """sklearn digits as (images float32 ``[1797, 8, 8]`` in [0, 1], labels int64 ``[1797]``).

    Read from the file scikit-learn ships (``sklearn/datasets/data/digits.csv.gz``: 64 pixel values
    and the label per row, what ``load_digits`` parses) without importing scikit-learn, which
    costs 0.7 s a process (a study's every worker pays it); ``load_digits`` where the file moved."""
    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec and spec.origin else None
    if path is not None and path.is_file():
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",")  # [1797, 65]
        pixels, labels = table[:, :-1], table[:, -1]
    else:
        from sklearn.datasets import load_digits

        d = load_digits()
        pixels, labels = d.data, d.target
    return pixels.reshape(-1, 8, 8).astype(np.float32) / 16.0, labels.astype(np.int64)


class DigitsDataModule(StaticDataModule):
    """scikit-learn's bundled 8x8 handwritten digits (1797 samples, 10 classes, 1 channel).

    Offline, no setup. Split (deterministic for a given ``seed``,
    :func:`~lit_snn.data.splits.holdout_split`): a stratified ``test_fraction`` test set, then a
    stratified ``val_fraction`` of the rest as validation. Pixel values 0..16 are scaled to
    [0, 1] and normalised with the fixed dataset statistics below.

    Batches: x float32 ``[B, 1, H, W]``, y int64 ``[B]``.

    Args:
        test_fraction: share of all samples in the test set, in (0, 1).
        image_size: batch images' size; above 8 upsamples bilinearly (default: native 8x8).
    """

    name = "digits"
    num_classes = 10
    in_channels = 1
    # statistics of all 1797 images scaled to [0, 1] (fixed so they don't depend on the split)
    mean = (0.3053,)
    std = (0.3760,)

    def __init__(self, test_fraction: float = 0.2, image_size: int | tuple[int, int] = 8, **kwargs) -> None:
        super().__init__(**kwargs)
        self.test_fraction = checked_test_fraction(test_fraction)
        self.image_size = as_hw(image_size)

    def load_splits(self) -> Splits:
        images, labels = load_digits_arrays()  # [1797, 8, 8] float in [0,1], [1797]
        x = torch.from_numpy(images)[:, None]  # [N, 1, 8, 8]
        if self.image_size != (8, 8):
            x = F.interpolate(x, size=self.image_size, mode="bilinear", align_corners=False)
        self.split_indices = holdout_split(labels, self.test_fraction, self.val_fraction, self.seed)
        train, val, test = (self.split_indices[k] for k in ("train", "val", "test"))
        return (TensorImageDataset(x[train], labels[train]), TensorImageDataset(x[val], labels[val]),
                TensorImageDataset(x[test], labels[test]))
