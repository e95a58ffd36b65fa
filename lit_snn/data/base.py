"""Shared base class for all lit_snn DataModules: the arguments every dataset takes, the loaders
and the split contract."""

from __future__ import annotations

import os
from collections.abc import Callable

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from ..errors import ConfigError
from .splits import seeded_split

Splits = tuple[Dataset, Dataset, Dataset]  # (train, val, test)


def as_hw(size: int | tuple[int, int]) -> tuple[int, int]:
    """An image size as ``(H, W)`` ints: ``8`` -> ``(8, 8)``."""
    if isinstance(size, int):
        return (size, size)
    return (int(size[0]), int(size[1]))


DEFAULT_ROOT = "data"  # a DataModule whose root is left at this default may look in system folders too
# a sane bound on T: published SNNs use T <= a few hundred; beyond this a typo (40000 for 4) would
# try to allocate T copies of every activation
MAX_TIME_STEPS = 10_000


def check_time_steps(time_steps: int) -> None:
    """``ValueError`` unless ``1 <= time_steps <= MAX_TIME_STEPS`` (the DataModules' and LitSNN's T)."""
    if time_steps < 1:
        raise ConfigError(f"time_steps must be >= 1, got {time_steps}")
    if time_steps > MAX_TIME_STEPS:
        raise ConfigError(f"time_steps must be <= {MAX_TIME_STEPS} (lit_snn's bound on T), got {time_steps}")


def _check_limit(name: str, value: int | None, least: int) -> None:
    if value is not None and value < least:
        if value == 0:
            raise ConfigError(f"{name}=0 leaves nothing to train on; valid: None (all) or >= {least}")
        raise ConfigError(f"{name} must be None (all) or >= {least}, got {value}")

class EpochShuffle(Sampler[int]):
    """A permutation per epoch drawn from ``seed + epoch``, so a fit resumed at epoch e sees the
    order an uninterrupted one would (Lightning calls ``set_epoch`` on the train sampler before
    every epoch). Written here because torch's ``RandomSampler`` has no epoch and continues one
    generator stream, which a resumed fit restarts; ``DistributedSampler`` has one but would then
    be kept as it is (one replica) under DDP, where Lightning wraps any other sampler per rank."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        return iter(torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + self.epoch)).tolist())

    def __len__(self) -> int:
        return self.size


class SNNDataModule(L.LightningDataModule):
    """Base of every lit_snn DataModule (static and DVS).

    Each argument the datasets share is declared here, once. A subclass declares only the
    arguments it adds or whose default it changes and forwards the rest with ``**kwargs``;
    jsonargparse follows the forwarding, so ``lit-snn train --print_config`` lists them all.

    A subclass sets ``name``, ``num_classes``, ``in_channels``, ``is_event``, ``image_size``
    (``(H, W)`` of its batches) and, for files under ``<root>/<folder>``, ``folder``; and it
    implements :meth:`load_splits`, which ``setup()`` calls once before applying ``limit_*``.

    Args:
        root: folder holding the dataset (each DataModule documents its layout below it).
        batch_size: samples per batch, for all three loaders.
        num_workers: DataLoader worker processes (0: load in the main process).
        time_steps: T; frames DVS data (static data is repeated over T by the model).
        seed: seeds the splits, the training shuffle and the augmentation.
        val_fraction: share of the training data held out for validation, in [0, 1).
        limit_train: use only the first n training samples (None: all).
        limit_val: use only the first n validation samples (None: all).
        limit_test: use only the first n test samples (None: all).
        pin_memory: the DataLoaders' ``pin_memory``.
    """

    name: str = "base"
    num_classes: int = 0
    in_channels: int = 0
    is_event: bool = False
    image_size: tuple[int, int] = (0, 0)
    folder: str = ""

    def __init__(
        self,
        root: str = DEFAULT_ROOT,
        batch_size: int = 64,
        num_workers: int = 0,
        time_steps: int = 4,
        seed: int = 0,
        val_fraction: float = 0.1,
        limit_train: int | None = None,
        limit_val: int | None = None,
        limit_test: int | None = None,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        check_time_steps(time_steps)
        if not 0.0 <= val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
        _check_limit("limit_train", limit_train, 1)
        _check_limit("limit_val", limit_val, 0)
        _check_limit("limit_test", limit_test, 0)
        self.root = str(root)
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.time_steps = int(time_steps)
        self.seed = int(seed)
        self.val_fraction = float(val_fraction)
        self.limit_train = limit_train
        self.limit_val = limit_val
        self.limit_test = limit_test
        self.pin_memory = pin_memory
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None
        self.split_indices: dict[str, np.ndarray] = {}

    @property
    def data_dir(self) -> str:
        """The folder the dataset is read from."""
        return os.path.join(self.root, self.folder)

    # ------------------------------------------------------------------ splits
    def setup(self, stage: str | None = None) -> None:
        """Build the three splits on the first call (later calls keep them), then apply ``limit_*``;
        ``ValueError`` for a fit whose training split is empty (nothing to train on)."""
        if self.train_set is None:
            self.train_set, self.val_set, self.test_set = self.load_splits()
            self._apply_limits()
        if stage in (None, "fit") and len(self.train_set) == 0:  # type: ignore[arg-type]
            raise ConfigError(f"{type(self).__name__} at {self.data_dir!r}: the training split has 0 samples, "
                             "nothing to train on (check the dataset's files, val_fraction and limit_train)")

    def check_data(self) -> None:
        """Raise ``DatasetNotFoundError`` when files ``setup()`` needs are missing, without reading them
        (a study checks every trial's data before the first trial). Embedded data: nothing to check."""

    def load_splits(self) -> Splits:
        """The ``(train, val, test)`` datasets; DatasetNotFoundError when the files are missing."""
        raise TypeError(f"{type(self).__name__} must define load_splits() or setup()")

    def split_official(self, train_labels, subset: Callable[[np.ndarray, bool], Dataset], test_set: Dataset) -> Splits:
        """Splits of a dataset published with a test set.

        val = stratified seeded ``val_fraction`` of train; with ``val_fraction=0`` the whole
        train set is used and validation runs on the test set (the published recipes report
        test accuracy). ``subset(indices, is_train)`` builds a split from train indices.
        """
        tr, va = seeded_split(len(train_labels), self.val_fraction, self.seed, np.asarray(train_labels))
        self.split_indices = {"train": tr, "val": va}
        return subset(tr, True), (subset(va, False) if len(va) else test_set), test_set

    @staticmethod
    def _limit(ds: Dataset, n: int | None) -> Dataset:
        """First ``n`` items of ``ds`` (deterministic subset for fast runs)."""
        if n is None or n >= len(ds):  # type: ignore[arg-type]
            return ds
        return Subset(ds, list(range(int(n))))

    def _apply_limits(self) -> None:
        if self.train_set is not None:
            self.train_set = self._limit(self.train_set, self.limit_train)
        if self.val_set is not None:
            self.val_set = self._limit(self.val_set, self.limit_val)
        if self.test_set is not None:
            self.test_set = self._limit(self.test_set, self.limit_test)

    # ------------------------------------------------------------------ loaders
    def _loader(self, ds: Dataset | None, shuffle: bool, stage: str) -> DataLoader:
        if ds is None:
            raise RuntimeError(f"{type(self).__name__}: call setup() before {stage}_dataloader()")
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            sampler=EpochShuffle(len(ds), self.seed) if shuffle else None,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            generator=torch.Generator().manual_seed(self.seed),  # workers' seeds, not from the global RNG
            persistent_workers=self.num_workers > 0,
            drop_last=False,
            collate_fn=self.collate_fn(stage),
        )

    def collate_fn(self, stage: str):
        """collate_fn for the ``stage`` loader ('train' | 'val' | 'test'); None = default."""
        return

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, True, "train")

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, False, "val")

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, False, "test")
