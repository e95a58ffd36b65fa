"""Static-image DataModule base and the embedded default: scikit-learn's 8x8 digits."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .augment import AugmentConfig, BatchCollate
from .base import SNNDataModule


class TensorImageDataset(Dataset):
    """In-memory images ``[N, C, H, W]`` (uint8 or float in [0, 1]) with int labels ``[N]``.

    Items are ``(image [C, H, W], label int)``; normalisation happens in the collate_fn.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | np.ndarray) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.images[i], int(self.labels[i])


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


class StaticDataModule(SNNDataModule):
    """Base for static image datasets (direct encoding: the model repeats x over T).

    ``time_steps`` is accepted and only logged. Training batches get the augmentation in
    ``augment`` (see :mod:`lit_snn.data.augment`: crop/flip, ``auto_augment`` with
    ``randaugment_magnitude``, ``random_erasing`` probability, mixup/cutmix); val/test are only
    normalised.
    """

    is_event = False
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)

    def __init__(
        self,
        root: str = "data",
        batch_size: int = 64,
        num_workers: int = 0,
        time_steps: int = 4,
        seed: int = 0,
        val_fraction: float = 0.1,
        limit_train: int | None = None,
        limit_val: int | None = None,
        limit_test: int | None = None,
        crop_padding: int = 0,
        hflip: bool = False,
        auto_augment: str = "none",
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        randaugment_magnitude: int = 10,
        random_erasing: float = 0.0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(
            root=root,
            batch_size=batch_size,
            num_workers=num_workers,
            time_steps=time_steps,
            seed=seed,
            val_fraction=val_fraction,
            limit_train=limit_train,
            limit_val=limit_val,
            limit_test=limit_test,
            pin_memory=pin_memory,
        )
        self.augment = AugmentConfig(crop_padding, hflip, auto_augment, mixup_alpha, cutmix_alpha,
                                     randaugment_magnitude, random_erasing)

    def collate_fn(self, stage: str):
        aug = self.augment if stage == "train" else None
        return BatchCollate(self.mean, self.std, self.num_classes, aug, seed=self.seed)

    def _describe_extra(self) -> dict[str, Any]:
        return {
            "encoding": "direct (static image repeated over T by the model)",
            "augment": self.augment.describe(),
            "norm_mean": ",".join(f"{m:.4f}" for m in self.mean),
            "norm_std": ",".join(f"{s:.4f}" for s in self.std),
        }


class DigitsDataModule(StaticDataModule):
    """scikit-learn's bundled 8x8 handwritten digits (1797 samples, 10 classes, 1 channel).

    Offline, no setup. Split (deterministic for a given ``seed``): a stratified
    ``test_fraction`` (default 20%) test set, then a stratified ``val_fraction`` of the rest
    as validation. Pixel values 0..16 are scaled to [0, 1] and normalised with the fixed
    dataset statistics below. ``image_size`` > 8 upsamples bilinearly (default: native 8x8).

    Batches: x float32 ``[B, 1, H, W]``, y int64 ``[B]``.
    """

    name = "digits"
    num_classes = 10
    in_channels = 1
    # statistics of all 1797 images scaled to [0, 1] (fixed so they don't depend on the split)
    mean = (0.3053,)
    std = (0.3760,)

    def __init__(
        self,
        root: str = "data",
        batch_size: int = 64,
        num_workers: int = 0,
        time_steps: int = 4,
        seed: int = 0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        image_size: int | tuple[int, int] = 8,
        limit_train: int | None = None,
        limit_val: int | None = None,
        limit_test: int | None = None,
        crop_padding: int = 0,
        hflip: bool = False,
        auto_augment: str = "none",
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
    ) -> None:
        super().__init__(
            root=root,
            batch_size=batch_size,
            num_workers=num_workers,
            time_steps=time_steps,
            seed=seed,
            val_fraction=val_fraction,
            limit_train=limit_train,
            limit_val=limit_val,
            limit_test=limit_test,
            crop_padding=crop_padding,
            hflip=hflip,
            auto_augment=auto_augment,
            mixup_alpha=mixup_alpha,
            cutmix_alpha=cutmix_alpha,
        )
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        self.test_fraction = float(test_fraction)
        self.image_size = image_size

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        images, labels = load_digits_arrays()  # [1797, 8, 8] float in [0,1], [1797]
        x = torch.from_numpy(images)[:, None]  # [N, 1, 8, 8]
        if self.image_size != (8, 8):
            x = F.interpolate(x, size=self.image_size, mode="bilinear", align_corners=False)
        rest, test = seeded_split(len(labels), self.test_fraction, self.seed, labels)
        tr, va = seeded_split(len(rest), self.val_fraction, self.seed + 1, labels[rest])
        train_idx, val_idx = rest[tr], rest[va]
        self.split_indices = {"train": train_idx, "val": val_idx, "test": test}
        self.train_set = TensorImageDataset(x[train_idx], labels[train_idx])
        self.val_set = TensorImageDataset(x[val_idx], labels[val_idx])
        self.test_set = TensorImageDataset(x[test], labels[test])
        self._apply_limits()

    def _describe_extra(self) -> dict[str, Any]:
        d = super()._describe_extra()
        d["source"] = "sklearn.datasets.load_digits (embedded)"
        d["split_rule"] = (
            f"stratified seeded: test {self.test_fraction:g} of all, then val "
            f"{self.val_fraction:g} of the rest (numpy default_rng(seed), val seed+1)"
        )
        return d


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """sklearn digits as (images float32 ``[1797, 8, 8]`` in [0, 1], labels int64 ``[1797]``)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images.astype(np.float32) / 16.0), d.target.astype(np.int64)
