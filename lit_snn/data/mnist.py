"""MNIST / Fashion-MNIST read from their IDX files by our own code (no torchvision).

Looked up, in order, in

* ``<root>/MNIST/raw/`` resp. ``<root>/FashionMNIST/raw/`` (torchvision's layout), then
* for Fashion-MNIST, ``/usr/share/datasets/fashion-mnist/``, where Debian's
  ``dataset-fashion-mnist`` package installs them (``apt-get install dataset-fashion-mnist``),

each of ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``, gzipped (``.gz``, as published) or not. The first folder holding all
four is used. Files are validated at ``setup()`` (see :mod:`lit_snn.data.idx`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .errors import CorruptDataError, DatasetNotFoundError
from .idx import read_idx_images, read_idx_labels
from .static import StaticDataModule, TensorImageDataset, seeded_split

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


def find_idx_file(folder: str, base: str) -> str | None:
    """``folder/base.gz`` or ``folder/base`` (the first that exists), else None."""
    for name in (base + ".gz", base):
        p = os.path.join(folder, name)
        if os.path.isfile(p):
            return p
    return None


class _IDXDataModule(StaticDataModule):
    """Shared MNIST-format logic: 28x28 grey images, 10 classes, 60k train / 10k test.

    Split: official test set; val = seeded stratified ``val_fraction`` of train (``val_fraction=0``:
    the whole train set, validation on the test set). No augmentation by default
    (``crop_padding``/``hflip`` and the rest of :class:`StaticDataModule`'s options are opt-in).
    ``system_dirs``: extra folders searched after ``<root>/<folder>/raw`` (default: the class's,
    e.g. Debian's install path for Fashion-MNIST; ``[]`` searches ``root`` only).

    Batches: x float32 ``[B, 1, 28, 28]`` normalised, y int64 ``[B]``.
    """

    num_classes = 10
    in_channels = 1
    folder: str = ""
    default_system_dirs: tuple[str, ...] = ()
    debian_package: str = ""
    source_url: str = ""
    class_names: tuple[str, ...] = ()

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
        system_dirs: Sequence[str] | None = None,
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
            randaugment_magnitude=randaugment_magnitude,
            random_erasing=random_erasing,
            pin_memory=pin_memory,
        )
        self.image_size = (28, 28)
        self.system_dirs = tuple(self.default_system_dirs if system_dirs is None else system_dirs)
        self.files: dict[str, str] = {}

    @property
    def search_dirs(self) -> tuple[str, ...]:
        return (os.path.join(self.root, self.folder, "raw"), *self.system_dirs)

    @property
    def data_dir(self) -> str:
        """The folder the files are read from (after ``setup()``; before: the first searched)."""
        return os.path.dirname(self.files["train_images"]) if self.files else self.search_dirs[0]

    def _locate(self) -> dict[str, str]:
        for d in self.search_dirs:
            found = {k: find_idx_file(d, base) for k, base in IDX_FILES.items()}
            if all(found.values()):
                return found  # type: ignore[return-value]
        first = self.search_dirs[0]
        have = {k: find_idx_file(first, base) for k, base in IDX_FILES.items()}
        missing = [IDX_FILES[k] + "[.gz]" for k, p in have.items() if p is None]
        layout = "".join(
            f"  {d}/\n" + "".join(f"    {b}.gz  (or {b})\n" for b in IDX_FILES.values())
            for d in self.search_dirs
        )
        source = f"the four IDX files from {self.source_url}"
        if self.debian_package:
            source += (f", or on Debian/Ubuntu `apt-get install {self.debian_package}` (installs them in "
                       f"{DEBIAN_FASHION_MNIST_DIR}, found without any `root`)")
        raise DatasetNotFoundError(
            self.name, first, layout, source,
            detail=f"missing {', '.join(missing)}" + (
                f"; also not in {', '.join(self.system_dirs)}" if self.system_dirs else ""),
        )

    def _read(self, split: str) -> tuple[torch.Tensor, np.ndarray]:
        ip, lp = self.files[f"{split}_images"], self.files[f"{split}_labels"]
        x = read_idx_images(ip)
        y = read_idx_labels(lp, self.num_classes)
        if len(x) != len(y):
            raise CorruptDataError(ip, f"{len(x)} images but {os.path.basename(lp)} has {len(y)} labels")
        return torch.from_numpy(x.copy())[:, None], y  # [N, 1, 28, 28] uint8 (writable copy)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        self.files = self._locate()
        x_tr, y_tr = self._read("train")
        x_te, y_te = self._read("test")
        tr, va = seeded_split(len(y_tr), self.val_fraction, self.seed, y_tr)
        self.train_set = TensorImageDataset(x_tr[tr], y_tr[tr])
        self.test_set = TensorImageDataset(x_te, y_te)
        self.val_set = TensorImageDataset(x_tr[va], y_tr[va]) if len(va) else self.test_set
        self._apply_limits()

    def _describe_extra(self) -> dict[str, Any]:
        d = super()._describe_extra()
        d["data_dir"] = self.data_dir
        d["split_rule"] = (
            f"official test set; val = stratified seeded {self.val_fraction:g} of train "
            "(numpy default_rng(seed))"
            if self.val_fraction > 0
            else "official test set; full train; val = test set"
        )
        return d


class MNISTDataModule(_IDXDataModule):
    """MNIST from ``<root>/MNIST/raw/`` (torchvision's layout), gzipped or plain IDX files."""

    name = "mnist"
    folder = "MNIST"
    source_url = "https://yann.lecun.com/exdb/mnist/ (or torchvision's mirrors)"
    mean = (0.1307,)
    std = (0.3081,)
    class_names = tuple(str(i) for i in range(10))


class FashionMNISTDataModule(_IDXDataModule):
    """Fashion-MNIST from ``<root>/FashionMNIST/raw/`` or Debian's ``dataset-fashion-mnist``
    (``/usr/share/datasets/fashion-mnist/``)."""

    name = "fashion_mnist"
    folder = "FashionMNIST"
    default_system_dirs = (DEBIAN_FASHION_MNIST_DIR,)
    debian_package = "dataset-fashion-mnist"
    source_url = "https://github.com/zalandoresearch/fashion-mnist"
    # statistics of the 60k train images scaled to [0, 1]
    mean = (0.2860,)
    std = (0.3530,)
    class_names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
