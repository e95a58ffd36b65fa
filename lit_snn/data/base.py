"""Shared base class for all lit_snn DataModules."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Subset


class SNNDataModule(L.LightningDataModule):
    """Common constructor arguments, loaders and metadata for static and DVS DataModules.

    Subclasses set ``name``, ``num_classes``, ``in_channels``, ``is_event`` and
    ``image_size`` and implement :meth:`setup` (filling ``train_set``/``val_set``/``test_set``).
    """

    name: str = "base"
    num_classes: int = 0
    in_channels: int = 0
    is_event: bool = False

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
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if time_steps < 1:
            raise ValueError(f"time_steps must be >= 1, got {time_steps}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
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

    # ------------------------------------------------------------------ helpers
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

    def _loader(self, ds: Dataset | None, shuffle: bool, stage: str) -> DataLoader:
        if ds is None:
            raise RuntimeError(f"{type(self).__name__}: call setup() before {stage}_dataloader()")
        gen = torch.Generator().manual_seed(self.seed) if shuffle else None
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            generator=gen,
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

    # ------------------------------------------------------------------ metadata
    def _split_sizes(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k in ("train", "val", "test"):
            ds = getattr(self, f"{k}_set")
            out[f"n_{k}"] = len(ds) if ds is not None else -1  # -1 = setup() not run yet
        return out

    def describe(self) -> dict[str, Any]:
        """Flat dict (strings/numbers) of everything needed to reproduce the data side of a run."""
        h, w = self.image_size
        d: dict[str, Any] = {
            "dataset": self.name,
            "root": self.root,
            "is_event": int(self.is_event),
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "image_height": h,
            "image_width": w,
            "time_steps": self.time_steps,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "val_fraction": self.val_fraction,
            "limit_train": -1 if self.limit_train is None else self.limit_train,
            "limit_val": -1 if self.limit_val is None else self.limit_val,
            "limit_test": -1 if self.limit_test is None else self.limit_test,
        }
        d.update(self._split_sizes())
        d.update(self._describe_extra())
        return d

    def _describe_extra(self) -> dict[str, Any]:
        return {}

    @property
    def image_size(self) -> tuple[int, int]:  # overridden by subclasses
        return self._image_size

    @image_size.setter
    def image_size(self, value) -> None:
        if isinstance(value, int):
            value = (value, value)
        self._image_size = (int(value[0]), int(value[1]))
