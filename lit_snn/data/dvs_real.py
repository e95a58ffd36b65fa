"""Recorded DVS datasets read through tonic's own dataset classes, never downloading.

tonic's constructors check for the archive plus a minimum file count and otherwise download.
Here every DataModule checks the folder itself first (raising DatasetNotFoundError with the
expected layout and sources), then instantiates a thin subclass of the tonic dataset whose
``_check_exists`` returns True (the folder was verified) and whose ``download`` raises, so
tonic's folder walk and readers (``tonic.io.read_aedat4`` via the ``aedat`` package,
``np.load`` for Gesture) are used unchanged. Unreadable files raise CorruptDataError naming
the file.
"""

from __future__ import annotations

import os
import re

import numpy as np
from tonic import datasets as tonic_datasets
from torch.utils.data import Dataset, Subset

from ..errors import ConfigError
from .base import Splits
from .dvs import DVSDataModule
from .errors import CorruptDataError, DatasetNotFoundError
from .framing import short_hash
from .splits import seeded_split


def natural_key(path: str) -> list:
    """Sort key treating digit runs as numbers: ``x_2`` < ``x_10``."""
    return [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", path)]


def _no_download(name: str, path: str):
    def download(self) -> None:  # replaces tonic's downloader on our subclasses
        raise DatasetNotFoundError(
            name,
            path,
            "(see the DataModule docstring)",
            "manual download only",
            detail="refusing to download",
        )

    return download


# tonic derives the data folder from the class name (save_to/<ClassName>), so the
# subclasses keep tonic's names: CIFAR10DVS and DVSGesture.
class CIFAR10DVS(tonic_datasets.CIFAR10DVS):
    """tonic's CIFAR10DVS over an already verified folder (no archive check, no download)."""

    def _check_exists(self) -> bool:
        return True

    download = _no_download("cifar10_dvs", "CIFAR10DVS")


class DVSGesture(tonic_datasets.DVSGesture):
    """tonic's DVSGesture over an already verified folder (no archive check, no download)."""

    def _check_exists(self) -> bool:
        return True

    download = _no_download("dvs_gesture", "DVSGesture")

    def __getitem__(self, index):
        path = self.data[index]
        shape = np.load(path, mmap_mode="r").shape  # header only: tonic expects [N, 4] (x, y, p, t)
        if len(shape) != 2 or shape[1] != 4:
            raise ConfigError(f"expected an [N, 4] array (x, y, p, t), got shape {list(shape)}")
        return super().__getitem__(index)


class CheckedEvents(Dataset):
    """Wrap a tonic dataset: sorted (path, label) order, reader errors -> CorruptDataError,
    and basic validation of the events (fields, coordinates inside the sensor)."""

    def __init__(self, tonic_ds, sensor_size: tuple[int, int, int]) -> None:
        order = sorted(range(len(tonic_ds.data)), key=lambda i: natural_key(tonic_ds.data[i]))
        tonic_ds.data = [tonic_ds.data[i] for i in order]
        tonic_ds.targets = [tonic_ds.targets[i] for i in order]
        self.ds = tonic_ds
        self.sensor_size = sensor_size

    @property
    def files(self) -> list[str]:
        return self.ds.data

    @property
    def targets(self) -> np.ndarray:
        return np.asarray(self.ds.targets, dtype=np.int64)

    def files_key(self, data_dir: str) -> str:
        """Hash of the file list relative to ``data_dir``: the source's part of the frame-cache path."""
        return short_hash([os.path.relpath(p, data_dir) for p in self.files])

    def __len__(self) -> int:
        return len(self.ds.data)

    def __getitem__(self, i: int):
        path = self.ds.data[i]
        try:
            events, label = self.ds[i]
        except Exception as e:  # noqa: BLE001 - any reader failure means a bad file
            raise CorruptDataError(path, f"tonic reader failed ({type(e).__name__}: {e})") from None
        names = events.dtype.names or ()
        if not {"x", "y", "t", "p"} <= set(names):
            raise CorruptDataError(path, f"events lack x/y/t/p fields (got {names})")
        w, h, _ = self.sensor_size
        if len(events) and (
            events["x"].max() >= w or events["y"].max() >= h or events["x"].min() < 0 or events["y"].min() < 0
        ):
            raise CorruptDataError(path, f"event coordinates outside the {w}x{h} sensor")
        return events, label


class CIFAR10DVSDataModule(DVSDataModule):
    """CIFAR10-DVS (128x128 DVS recordings of CIFAR-10 images), tonic's AEDAT4 copy.

    Layout: ``<root>/CIFAR10DVS/<class>/*.aedat4`` (airplane ... truck; label from the folder).
    Split (no official one): per class, files in natural filename order; the first
    ``test_per_class`` (default 100, TET-style) are the test set; a class with fewer than
    ``10 * test_per_class`` files gives its first ``max(1, round(n_c / 10))`` instead.
    val = stratified seeded ``val_fraction`` of the rest. Frames: full-sensor ToFrame then
    area resampling to ``image_size`` (default 48x48, the AR-LIF/TET recipe).

    Args:
        test_per_class: test files per class (see the split above).
    """

    name = "cifar10_dvs"
    num_classes = 10
    sensor_size = (128, 128, 2)
    folder = "CIFAR10DVS"

    def __init__(self, image_size: int | tuple[int, int] = 48, test_per_class: int = 100, **kwargs) -> None:
        super().__init__(image_size=image_size, **kwargs)
        self.test_per_class = int(test_per_class)

    def check_data(self) -> None:
        missing = []
        for c in CIFAR10DVS.classes:
            d = os.path.join(self.data_dir, c)
            if not os.path.isdir(d) or not any(f.endswith(".aedat4") for f in os.listdir(d)):
                missing.append(c)
        if missing:
            raise DatasetNotFoundError(
                self.name,
                self.data_dir,
                f"  {self.data_dir}/<class>/*.aedat4   for the 10 classes {', '.join(CIFAR10DVS.classes)}\n"
                "  (1000 files per class in the full dataset)",
                "tonic's AEDAT4 copy CIFAR10DVS.zip (https://figshare.com/ndownloader/files/38023437, "
                "md5 ce3a4a0682dc0943703bd8f749a7701c); unzip it and the per-class zips inside so the "
                f"class folders sit in '{self.data_dir}'. The original release (Li et al. 2017, "
                "figshare 'CIFAR10-DVS') ships AEDAT 3.1 files that must be converted to AEDAT 4 first",
                detail=f"no .aedat4 files for class(es) {', '.join(missing)}",
            )

    def test_indices(self, labels: np.ndarray) -> np.ndarray:
        """Indices (into the natural-sorted file list) of the test split, see class docstring."""
        test = []
        for c in np.unique(labels):
            idx = np.flatnonzero(labels == c)  # already in natural filename order
            n = len(idx)
            k = self.test_per_class if n >= 10 * self.test_per_class else max(1, round(n / 10))
            test.append(idx[: min(k, n - 1) if n > 1 else 0])
        return np.sort(np.concatenate(test)) if test else np.arange(0, dtype=np.int64)

    def load_splits(self) -> Splits:
        self.check_data()
        source = CheckedEvents(CIFAR10DVS(save_to=self.root), self.sensor_size)
        self.event_sources = {"all": source}
        labels = source.targets
        full = self._framed(source, "all", source.files_key(self.data_dir))
        test = self.test_indices(labels)
        rest = np.setdiff1d(np.arange(len(labels)), test)
        tr, va = seeded_split(len(rest), self.val_fraction, self.seed, labels[rest])
        self.split_indices = {"train": rest[tr], "val": rest[va], "test": test}
        test_set = Subset(full, test.tolist())
        val_set = Subset(full, rest[va].tolist()) if len(va) else test_set
        return Subset(full, rest[tr].tolist()), val_set, test_set


class DVSGestureDataModule(DVSDataModule):
    """IBM DVS128 Gesture (11 classes), tonic's preprocessed ``.npy`` copy.

    Layout: ``<root>/DVSGesture/ibmGestureTrain/user{NN}_{lighting}/{label}.npy`` and
    ``.../ibmGestureTest/...``; each file an ``[N, 4]`` array (x, y, p, t in ms; tonic converts
    t to us). Official train/test split by user; val = stratified seeded ``val_fraction`` of
    train. Frames at 128x128 by default; ``image_size`` (e.g. 64, 32) downsamples (exact area resampling).
    """

    name = "dvs_gesture"
    num_classes = 11
    sensor_size = (128, 128, 2)
    folder = "DVSGesture"

    def __init__(self, image_size: int | tuple[int, int] = 128, **kwargs) -> None:
        super().__init__(image_size=image_size, **kwargs)

    def check_data(self) -> None:
        for sub in ("ibmGestureTrain", "ibmGestureTest"):
            d = os.path.join(self.data_dir, sub)
            entries = sorted(os.listdir(d)) if os.path.isdir(d) else []
            has_npy = any(
                f.endswith(".npy")
                for e in entries
                if os.path.isdir(os.path.join(d, e))
                for f in os.listdir(os.path.join(d, e))
            )
            if not has_npy:
                raise DatasetNotFoundError(
                    self.name,
                    d,
                    f"  {self.data_dir}/ibmGestureTrain/user{{NN}}_{{lighting}}/{{label}}.npy\n"
                    f"  {self.data_dir}/ibmGestureTest/user{{NN}}_{{lighting}}/{{label}}.npy\n"
                    "  (each [N, 4]: x, y, p, t in ms; labels 0..10)",
                    "tonic's preprocessed copies ibmGestureTrain.tar.gz "
                    "(https://figshare.com/ndownloader/files/38022171) and ibmGestureTest.tar.gz "
                    "(https://figshare.com/ndownloader/files/38020584); extract both into "
                    f"'{self.data_dir}'. The original IBM release (DvsGesture.tar.gz, "
                    "research.ibm.com/dvsgesture) must be cut per gesture into this layout first",
                    detail="folder missing" if not os.path.isdir(d) else "no user*/ *.npy files",
                )
            for e in entries:
                full = os.path.join(d, e)
                if os.path.isdir(full):
                    if not re.fullmatch(r"user\d+_.+", e):
                        raise CorruptDataError(full, "unexpected folder; expected user{NN}_{lighting}")
                    for f in os.listdir(full):
                        if f.endswith(".npy") and not (f[:-4].isdigit() and int(f[:-4]) < self.num_classes):
                            raise CorruptDataError(os.path.join(full, f), "file name must be the label 0..10")

    def load_splits(self) -> Splits:
        self.check_data()
        framed = {}
        for split, train in (("train", True), ("test", False)):
            src = CheckedEvents(DVSGesture(save_to=self.root, train=train), self.sensor_size)
            self.event_sources[split] = src
            framed[split] = self._framed(src, split, src.files_key(self.data_dir))
        subset = lambda idx, _is_train: Subset(framed["train"], idx.tolist())
        return self.split_official(self.event_sources["train"].targets, subset, framed["test"])
