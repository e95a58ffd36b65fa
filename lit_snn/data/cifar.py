"""CIFAR-10 / CIFAR-100 read from torchvision's on-disk format by our own code (no torchvision).

Layout (as extracted from the official python archives):

* CIFAR-10:  ``<root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``
* CIFAR-100: ``<root>/cifar-100-python/{train, test, meta}``

Each batch is a pickled dict with ``data`` (uint8 ``[N, 3072]``, channel-major 32x32) and
``labels`` (CIFAR-10) / ``fine_labels`` (CIFAR-100). There is no md5 check: files are
validated structurally instead, and the pickles are read with a restricted unpickler that
only rebuilds numpy arrays (no arbitrary code from a tampered file).
"""

from __future__ import annotations

import os
import pickle

import numpy as np
import torch

from .base import Splits
from .errors import CorruptDataError, DatasetNotFoundError
from .static import StaticDataModule

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"unexpected global {module}.{name} in a CIFAR pickle")
        return super().find_class(module, name)


def read_cifar_pickle(path: str) -> dict:
    """Load one CIFAR pickle (py2 or py3) as a dict with str keys; CorruptDataError if unreadable."""
    try:
        with open(path, "rb") as f:
            obj = _NumpyOnlyUnpickler(f, encoding="latin1").load()
    except Exception as e:  # noqa: BLE001 - truncated, garbage, forbidden globals, ...
        raise CorruptDataError(path, f"cannot unpickle ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict):
        raise CorruptDataError(path, f"expected a pickled dict, got {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def read_cifar_batch(path: str, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> (uint8 images ``[N, 3, 32, 32]``, int64 labels ``[N]``), validated."""
    d = read_cifar_pickle(path)
    for key in ("data", label_key):
        if key not in d:
            raise CorruptDataError(path, f"missing key '{key}' (keys: {sorted(d)})")
    data = np.asarray(d["data"])
    labels = np.asarray(d[label_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise CorruptDataError(path, f"'data' must be uint8 [N, 3072], got {data.dtype} {list(data.shape)}")
    if labels.ndim != 1 or len(labels) != len(data):
        raise CorruptDataError(path, f"{len(data)} images but '{label_key}' has shape {list(labels.shape)}")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise CorruptDataError(path, f"labels outside [0, {num_classes}): {labels.min()}..{labels.max()}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


class _CIFARBase(StaticDataModule):
    """Shared CIFAR logic: the files of ``folder`` read by :func:`read_cifar_batch`.

    Train batches get random crop (pad 4) + horizontal flip by default; RandAugment, random
    erasing and mixup/cutmix are opt-in (see :class:`~lit_snn.data.static.StaticDataModule`).
    Split: official test set; val = seeded stratified ``val_fraction`` of train (``val_fraction=0``:
    the whole train set, validation on the test set).
    Batches: x float32 ``[B, 3, 32, 32]`` normalised, y int64 ``[B]``.
    """

    in_channels = 3
    image_size = (32, 32)
    train_files: tuple[str, ...] = ()
    test_files: tuple[str, ...] = ()
    meta_file: str = ""
    label_key: str = "labels"
    source_url: str = "https://www.cs.toronto.edu/~kriz/cifar.html"

    def __init__(self, crop_padding: int = 4, hflip: bool = True, **kwargs) -> None:
        super().__init__(crop_padding=crop_padding, hflip=hflip, **kwargs)
        self.class_names: list[str] = []

    def check_data(self) -> None:
        needed = (*self.train_files, *self.test_files)
        missing = [f for f in needed if not os.path.isfile(os.path.join(self.data_dir, f))]
        if missing:
            layout = f"  {self.data_dir}/\n" + "".join(f"    {f}\n" for f in (*needed, self.meta_file))
            raise DatasetNotFoundError(
                self.name,
                self.data_dir,
                layout,
                f"the 'python version' archive from {self.source_url} (extract it into '{self.root}')",
                detail=f"missing {', '.join(missing)}",
            )

    def _read_class_names(self) -> list[str]:
        meta = os.path.join(self.data_dir, self.meta_file)
        if not os.path.isfile(meta):
            return []
        names = read_cifar_pickle(meta).get(self.label_key.replace("labels", "label_names"), [])
        return [n.decode() if isinstance(n, bytes) else str(n) for n in names]

    def read_split(self, split: str) -> tuple[torch.Tensor, np.ndarray]:
        files = self.train_files if split == "train" else self.test_files
        parts = [
            read_cifar_batch(os.path.join(self.data_dir, f), self.label_key, self.num_classes) for f in files
        ]
        x = np.concatenate([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts])
        return torch.from_numpy(np.ascontiguousarray(x)), y

    def load_splits(self) -> Splits:
        self.check_data()
        self.class_names = self._read_class_names()
        return super().load_splits()


class CIFAR10DataModule(_CIFARBase):
    """CIFAR-10 from ``<root>/cifar-10-batches-py/`` (torchvision's extracted layout)."""

    name = "cifar10"
    num_classes = 10
    folder = "cifar-10-batches-py"
    train_files = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_files = ("test_batch",)
    meta_file = "batches.meta"
    label_key = "labels"
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)


class CIFAR100DataModule(_CIFARBase):
    """CIFAR-100 (fine labels) from ``<root>/cifar-100-python/{train, test, meta}``."""

    name = "cifar100"
    num_classes = 100
    folder = "cifar-100-python"
    train_files = ("train",)
    test_files = ("test",)
    meta_file = "meta"
    label_key = "fine_labels"
    mean = (0.5071, 0.4865, 0.4409)
    std = (0.2673, 0.2564, 0.2762)
