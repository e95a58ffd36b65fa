"""Static-image DataModule base: in-memory images, train-batch augmentation, normalisation."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import ConfigError
from .augment import AugmentConfig, BatchCollate
from .base import SNNDataModule, Splits


class TensorImageDataset(Dataset):
    """In-memory images ``[N, C, H, W]`` (uint8 or float in [0, 1]) with int labels ``[N]``.

    Items are ``(image [C, H, W], label int)``; normalisation happens in the collate_fn.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | np.ndarray) -> None:
        if len(images) != len(labels):
            raise ConfigError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.images[i], int(self.labels[i])


class StaticDataModule(SNNDataModule):
    """Base for static image datasets (direct encoding: the model repeats x over T).

    A dataset published as train and test files declares only what differs: ``name``,
    ``num_classes``, ``in_channels``, ``image_size``, ``mean``/``std`` and :meth:`read_split`,
    how to read its files; the validation split is then the one of
    :meth:`~lit_snn.data.base.SNNDataModule.split_official`. A dataset with another split
    overrides :meth:`load_splits` instead.

    Training batches get the augmentation below (see :mod:`lit_snn.data.augment`); val/test
    are only normalised.

    Args:
        crop_padding: random crop after zero padding by this many pixels (0: no crop).
        hflip: random horizontal flip.
        auto_augment: ``"none"``, ``"randaugment"`` or ``"trivialaugment"``.
        mixup_alpha: mixup with lambda ~ Beta(alpha, alpha) (0: off); targets become soft labels.
        cutmix_alpha: cutmix with lambda ~ Beta(alpha, alpha) (0: off); 50/50 with mixup when both are on.
        randaugment_magnitude: RandAugment's magnitude, 1..29 of 30.
        random_erasing: probability per sample of erasing a random box (after normalisation).
    """

    is_event = False
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)

    def __init__(
        self,
        crop_padding: int = 0,
        hflip: bool = False,
        auto_augment: str = "none",
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        randaugment_magnitude: int = 10,
        random_erasing: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.augment = AugmentConfig(crop_padding, hflip, auto_augment, mixup_alpha, cutmix_alpha,
                                     randaugment_magnitude, random_erasing)

    def collate_fn(self, stage: str):
        aug = self.augment if stage == "train" else None
        return BatchCollate(self.mean, self.std, self.num_classes, aug, seed=self.seed)

    def read_split(self, split: str) -> tuple[torch.Tensor, np.ndarray]:
        """uint8 images ``[N, C, H, W]`` and int64 labels ``[N]`` of ``split`` (``"train"`` | ``"test"``)."""
        raise TypeError(f"{type(self).__name__} must define read_split() or load_splits()")

    def load_splits(self) -> Splits:
        x_train, y_train = self.read_split("train")
        x_test, y_test = self.read_split("test")
        return self.split_official(
            y_train,
            lambda idx, _is_train: TensorImageDataset(x_train[idx], y_train[idx]),
            TensorImageDataset(x_test, y_test),
        )
