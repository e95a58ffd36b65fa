"""DataModules: static (digits, MNIST, Fashion-MNIST, CIFAR-10/100, Tiny-ImageNet, ImageNet) and DVS
(emulated neuromorphic digits, CIFAR10-DVS, DVS128 Gesture).

Batches: static -> x float32 ``[B, C, H, W]`` (normalised), y int64 ``[B]``;
DVS -> x float32 ``[B, T, 2, H, W]`` (event-count frames), y int64 ``[B]``.
Use :func:`create_datamodule` to build one by name. Your own static dataset: subclass
:class:`StaticDataModule` (see its docstring); :class:`TensorImageDataset` and
:func:`seeded_split` are the pieces for a ``load_splits()`` of one's own.
"""

from __future__ import annotations

from ..errors import ConfigError
from .base import SNNDataModule
from .cifar import CIFAR10DataModule, CIFAR100DataModule
from .digits import DigitsDataModule
from .dvs import DVSDataModule
from .dvs_real import CIFAR10DVSDataModule, DVSGestureDataModule
from .errors import CorruptDataError, DatasetNotFoundError
from .folders import ImageNetDataModule, TinyImageNetDataModule
from .mnist import FashionMNISTDataModule, MNISTDataModule
from .nmnist_digits import NMNISTDigitsDataModule
from .splits import seeded_split
from .static import StaticDataModule, TensorImageDataset

DATAMODULES: dict[str, type] = {
    "digits": DigitsDataModule,
    "mnist": MNISTDataModule,
    "fashion_mnist": FashionMNISTDataModule,
    "cifar10": CIFAR10DataModule,
    "cifar100": CIFAR100DataModule,
    "tiny_imagenet": TinyImageNetDataModule,
    "imagenet": ImageNetDataModule,
    "nmnist_digits": NMNISTDigitsDataModule,
    "cifar10_dvs": CIFAR10DVSDataModule,
    "dvs_gesture": DVSGestureDataModule,
}


def create_datamodule(name: str, **kwargs) -> SNNDataModule:
    """Instantiate the DataModule registered under ``name`` with ``kwargs``.

    Raises ``ValueError`` listing the valid names when ``name`` is unknown.
    """
    key = name.lower().replace("-", "_")
    if key not in DATAMODULES:
        raise ConfigError(f"unknown dataset '{name}'; valid names: {', '.join(sorted(DATAMODULES))}")
    return DATAMODULES[key](**kwargs)


__all__ = [
    "DATAMODULES",
    "CIFAR10DVSDataModule",
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "CorruptDataError",
    "DVSDataModule",
    "DVSGestureDataModule",
    "DatasetNotFoundError",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "ImageNetDataModule",
    "MNISTDataModule",
    "NMNISTDigitsDataModule",
    "SNNDataModule",
    "StaticDataModule",
    "TensorImageDataset",
    "TinyImageNetDataModule",
    "create_datamodule",
    "seeded_split",
]
