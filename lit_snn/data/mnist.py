"""MNIST / Fashion-MNIST read from their IDX files by our own code (no torchvision).

Looked up, in order, in

* ``<root>/MNIST/raw/`` resp. ``<root>/FashionMNIST/raw/`` (torchvision's layout), then
* for Fashion-MNIST, ``/usr/share/datasets/fashion-mnist/``, where Debian's
  ``dataset-fashion-mnist`` package installs them (``apt-get install dataset-fashion-mnist``);
  only when ``root`` is left at its default: an explicit root without the files is an error,
  never a silent switch to another copy,

each of ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``, gzipped (``.gz``, as published) or not. The first folder holding all
four is used. Files are validated at ``setup()`` (see :mod:`lit_snn.data.idx`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from .base import DEFAULT_ROOT, Splits
from .errors import CorruptDataError, DatasetNotFoundError
from .idx import read_idx_images, read_idx_labels
from .static import StaticDataModule

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


class MNISTDataModule(StaticDataModule):
    """MNIST from ``<root>/MNIST/raw/`` (torchvision's layout), gzipped or plain IDX files.

    Also the base of any dataset published as MNIST's four IDX files: a subclass declares only
    its ``name``, ``folder``, ``mean``/``std``, ``class_names`` and where else the files may be
    installed (see :class:`FashionMNISTDataModule`).

    Split: official test set; val = seeded stratified ``val_fraction`` of train (``val_fraction=0``:
    the whole train set, validation on the test set). No augmentation by default
    (:class:`~lit_snn.data.static.StaticDataModule`'s options are opt-in).
    Batches: x float32 ``[B, 1, 28, 28]`` normalised, y int64 ``[B]``.

    Args:
        system_dirs: folders searched after ``<root>/<folder>/raw`` (default: the class's
            ``default_system_dirs``, e.g. Debian's install path for Fashion-MNIST, when ``root``
            is left at its default, else none; ``[]`` searches ``root`` only).
    """

    name = "mnist"
    num_classes = 10
    in_channels = 1
    image_size = (28, 28)
    folder = "MNIST"
    default_system_dirs: tuple[str, ...] = ()
    debian_package: str = ""  # installs the files in default_system_dirs
    source_url = "https://yann.lecun.com/exdb/mnist/ (or torchvision's mirrors)"
    mean = (0.1307,)
    std = (0.3081,)
    class_names: tuple[str, ...] = tuple(str(i) for i in range(10))

    def __init__(self, system_dirs: Sequence[str] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if system_dirs is None:  # an explicit root is where the user put the data: no fallback elsewhere
            system_dirs = self.default_system_dirs if self.root == DEFAULT_ROOT else ()
        self.system_dirs = tuple(system_dirs)
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
                       f"{', '.join(self.default_system_dirs)}, found when no `root` is given)")
        raise DatasetNotFoundError(
            self.name, first, layout, source,
            detail=f"missing {', '.join(missing)}" + (
                f"; also not in {', '.join(self.system_dirs)}" if self.system_dirs else ""),
        )

    def read_split(self, split: str) -> tuple[torch.Tensor, np.ndarray]:
        ip, lp = self.files[f"{split}_images"], self.files[f"{split}_labels"]
        x = read_idx_images(ip, self.image_size)
        y = read_idx_labels(lp, self.num_classes)
        if len(x) != len(y):
            raise CorruptDataError(ip, f"{len(x)} images but {os.path.basename(lp)} has {len(y)} labels")
        return torch.from_numpy(x.copy())[:, None], y  # [N, 1, H, W] uint8 (writable copy)

    def check_data(self) -> None:
        self.files = self._locate()

    def load_splits(self) -> Splits:
        self.files = self._locate()
        return super().load_splits()


class FashionMNISTDataModule(MNISTDataModule):
    """Fashion-MNIST from ``<root>/FashionMNIST/raw/`` or Debian's ``dataset-fashion-mnist``
    (``/usr/share/datasets/fashion-mnist/``): MNIST's format, other images and classes."""

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
