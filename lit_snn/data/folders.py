"""Image-folder datasets read with PIL: Tiny-ImageNet-200 and ImageNet (ILSVRC-2012).

Layouts:

* Tiny-ImageNet: ``<root>/tiny-imagenet-200/`` with ``wnids.txt`` (200 ids),
  ``train/<wnid>/images/*.JPEG`` (64x64) and ``val/images/*.JPEG`` labelled by
  ``val/val_annotations.txt`` (tab-separated: file, wnid, box...). The official val set is
  our test set (the test set is unlabelled); val = seeded stratified split of train.
* ImageNet: ``<root>/<subdir>/train/<wnid>/*.JPEG`` and ``<root>/<subdir>/val/<wnid>/*.JPEG``
  (val already sorted into class folders). ``subdir`` defaults to ``"imagenet"``, so with
  ``root="data"`` the folders are ``data/imagenet/train`` and ``data/imagenet/val``; pass
  ``subdir=""`` when ``root`` is the ImageNet folder itself. val is our test set.

Classes are indexed in sorted wnid order.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .base import Splits, as_hw
from .errors import CorruptDataError, DatasetNotFoundError
from .static import StaticDataModule

IMAGE_EXTS = (".jpeg", ".jpg", ".png")


def _images_in(folder: str) -> list[str]:
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTS))


class ImageFileDataset(Dataset):
    """Image files + labels -> ``(uint8 [3, H, W], label)`` at ``image_size`` (H, W).

    ``train=True``: random-resized crop (scale ``min_scale``..1, aspect 3/4..4/3) to
    image_size when ``random_resized_crop``, else a plain resize. ``train=False``: resize the
    shorter side to ``image_size / center_crop_ratio`` then center crop (plain resize when the
    image already has the target size). Unreadable files raise CorruptDataError naming them.
    """

    def __init__(
        self,
        files: list[str],
        labels: np.ndarray,
        image_size: tuple[int, int],
        train: bool = False,
        random_resized_crop: bool = False,
        min_scale: float = 0.08,
        center_crop_ratio: float = 0.875,
    ) -> None:
        self.files = list(files)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.image_size = image_size
        self.train = train
        self.random_resized_crop = random_resized_crop
        self.min_scale = min_scale
        self.center_crop_ratio = center_crop_ratio

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, path: str) -> Image.Image:
        try:
            with Image.open(path) as im:
                return im.convert("RGB")
        except Exception as e:  # noqa: BLE001 - any decoder failure means a bad file
            raise CorruptDataError(path, f"cannot decode image ({type(e).__name__}: {e})") from None

    def _random_box(self, w: int, h: int) -> tuple[int, int, int, int]:
        area = w * h
        for _ in range(10):
            target = area * float(torch.empty(1).uniform_(self.min_scale, 1.0))
            logr = torch.empty(1).uniform_(np.log(3 / 4), np.log(4 / 3))
            ratio = float(torch.exp(logr))
            cw, ch = round((target * ratio) ** 0.5), round((target / ratio) ** 0.5)
            if 0 < cw <= w and 0 < ch <= h:
                x0 = int(torch.randint(0, w - cw + 1, (1,)))
                y0 = int(torch.randint(0, h - ch + 1, (1,)))
                return x0, y0, x0 + cw, y0 + ch
        s = min(w, h)  # fallback: central square
        return (w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s

    def __getitem__(self, i: int):
        im = self._load(self.files[i])
        th, tw = self.image_size
        if im.size == (tw, th):
            pass
        elif self.train and self.random_resized_crop:
            im = im.resize((tw, th), Image.BILINEAR, box=self._random_box(*im.size))
        elif self.train:
            im = im.resize((tw, th), Image.BILINEAR)
        else:
            w, h = im.size
            scale = max(th, tw) / self.center_crop_ratio / min(w, h)
            nw, nh = max(tw, round(w * scale)), max(th, round(h * scale))
            im = im.resize((nw, nh), Image.BILINEAR)
            x0, y0 = (nw - tw) // 2, (nh - th) // 2
            im = im.crop((x0, y0, x0 + tw, y0 + th))
        x = torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1)  # [3, H, W]
        return x, int(self.labels[i])


class _FolderBase(StaticDataModule):
    """Shared logic of the image-folder datasets: files + labels -> :class:`ImageFileDataset` splits.

    Split: the official val set is the test set; val = seeded stratified ``val_fraction`` of train.
    """

    in_channels = 3
    random_resized_crop = False

    def __init__(self, hflip: bool = True, **kwargs) -> None:
        super().__init__(hflip=hflip, **kwargs)

    def _file_splits(self, train_files, train_labels, test_files, test_labels) -> Splits:
        train_labels = np.asarray(train_labels, dtype=np.int64)
        subset = lambda idx, is_train: ImageFileDataset(
            [train_files[i] for i in idx],
            train_labels[idx],
            self.image_size,
            train=is_train,
            random_resized_crop=self.random_resized_crop,
        )
        test = ImageFileDataset(test_files, np.asarray(test_labels), self.image_size)
        return self.split_official(train_labels, subset, test)


class TinyImageNetDataModule(_FolderBase):
    """Tiny-ImageNet-200 from ``<root>/tiny-imagenet-200/`` (see module docstring).

    Default train augmentation: pad-4 random crop + horizontal flip at 64x64
    (``auto_augment='trivialaugment'`` for the recipe). Batches: x float32 ``[B, 3, 64, 64]``.

    Args:
        image_size: batch images' size (the files are 64x64; others are resized).
    """

    name = "tiny_imagenet"
    num_classes = 200
    mean = (0.4802, 0.4481, 0.3975)
    std = (0.2770, 0.2691, 0.2821)
    folder = "tiny-imagenet-200"

    def __init__(self, image_size: int | tuple[int, int] = 64, crop_padding: int = 4, **kwargs) -> None:
        super().__init__(crop_padding=crop_padding, **kwargs)
        self.image_size = as_hw(image_size)

    def _not_found(self, detail: str) -> DatasetNotFoundError:
        layout = (
            f"  {self.data_dir}/wnids.txt                 (200 wnids, one per line)\n"
            f"  {self.data_dir}/train/<wnid>/images/*.JPEG\n"
            f"  {self.data_dir}/val/images/*.JPEG\n"
            f"  {self.data_dir}/val/val_annotations.txt   (file<TAB>wnid<TAB>box...)"
        )
        return DatasetNotFoundError(
            self.name,
            self.data_dir,
            layout,
            "tiny-imagenet-200.zip from the Stanford CS231n site (http://cs231n.stanford.edu/"
            f"tiny-imagenet-200.zip) or a mirror; unzip it into '{self.root}'",
            detail=detail,
        )

    def check_data(self) -> None:
        d = self.data_dir
        for p in (os.path.join(d, "wnids.txt"), os.path.join(d, "train"), os.path.join(d, "val", "images"),
                  os.path.join(d, "val", "val_annotations.txt")):
            if not os.path.exists(p):
                raise self._not_found(f"missing {p}")

    def load_splits(self) -> Splits:
        self.check_data()
        d = self.data_dir
        wnids_path = os.path.join(d, "wnids.txt")
        ann_path = os.path.join(d, "val", "val_annotations.txt")
        with open(wnids_path) as f:
            wnids = sorted({ln.strip() for ln in f if ln.strip()})
        if len(wnids) != self.num_classes:
            raise CorruptDataError(wnids_path, f"expected {self.num_classes} wnids, found {len(wnids)}")
        index = {w: i for i, w in enumerate(wnids)}
        train_files, train_labels = [], []
        for w in wnids:
            folder = os.path.join(d, "train", w, "images")
            if not os.path.isdir(folder):
                raise self._not_found(f"missing train folder {folder}")
            files = _images_in(folder)
            train_files += files
            train_labels += [index[w]] * len(files)
        test_files, test_labels = [], []
        with open(ann_path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                parts = line.rstrip("\n").split("\t")
                if len(parts) < 2 or parts[1] not in index:
                    raise CorruptDataError(
                        ann_path, f"line {n}: expected 'file<TAB>wnid<TAB>...', got {line!r}"
                    )
                path = os.path.join(d, "val", "images", parts[0])
                if not os.path.isfile(path):
                    raise self._not_found(f"val image listed in val_annotations.txt missing: {path}")
                test_files.append(path)
                test_labels.append(index[parts[1]])
        self.class_names = wnids
        return self._file_splits(train_files, train_labels, test_files, test_labels)


class ImageNetDataModule(_FolderBase):
    """ImageNet (ILSVRC-2012) class folders at ``<root>/<subdir>/{train,val}/<wnid>/*.JPEG``.

    ``subdir`` defaults to ``"imagenet"``; ``subdir=""`` means ``root`` is the ImageNet folder.
    Train: random-resized crop to ``image_size`` (default 224) + flip; val/test: resize
    shorter side to image_size/0.875 + center crop. ``num_classes`` = number of train class
    folders (1000 for the full set; read at construction when the folder exists).

    Args:
        image_size: batch images' size (train: random-resized crop to it; val/test: resize + center crop).
        subdir: the ImageNet folder below ``root`` (``""``: ``root`` itself).
    """

    name = "imagenet"
    mean = (0.485, 0.456, 0.406)
    std = (0.229, 0.224, 0.225)
    random_resized_crop = True

    def __init__(self, image_size: int | tuple[int, int] = 224, subdir: str = "imagenet", **kwargs) -> None:
        super().__init__(**kwargs)
        self.image_size = as_hw(image_size)
        self.subdir = subdir
        train = os.path.join(self.data_dir, "train")
        self.num_classes = len(self._classes(train)) if os.path.isdir(train) else 1000

    @property
    def data_dir(self) -> str:
        return os.path.join(self.root, self.subdir) if self.subdir else self.root

    @staticmethod
    def _classes(folder: str) -> list[str]:
        return sorted(e.name for e in os.scandir(folder) if e.is_dir())

    def check_data(self) -> None:
        for split in ("train", "val"):
            self._split_classes(split)

    def _split_classes(self, split: str) -> list[str]:
        """The class folders of ``split`` (``DatasetNotFoundError`` when there are none)."""
        folder = os.path.join(self.data_dir, split)
        found = self._classes(folder) if os.path.isdir(folder) else []
        if not found:
            raise DatasetNotFoundError(
                self.name,
                folder,
                f"  {self.data_dir}/train/<wnid>/*.JPEG\n  {self.data_dir}/val/<wnid>/*.JPEG\n"
                "  (val images sorted into wnid folders, e.g. with the common valprep.sh script)",
                "ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from https://image-net.org "
                "(registration required); extract into class folders as above",
                detail="no class folders" if os.path.isdir(folder) else "folder missing",
            )
        return found

    def load_splits(self) -> Splits:
        split_files: dict[str, tuple[list[str], list[int]]] = {}
        classes: list[str] | None = None
        for split in ("train", "val"):
            folder = os.path.join(self.data_dir, split)
            found = self._split_classes(split)
            if classes is None:
                classes = found
            elif set(found) - set(classes):
                raise CorruptDataError(
                    folder, f"val classes not in train: {sorted(set(found) - set(classes))[:5]}"
                )
            index = {w: i for i, w in enumerate(classes)}
            files, labels = [], []
            for w in found:
                fs = _images_in(os.path.join(folder, w))
                files += fs
                labels += [index[w]] * len(fs)
            split_files[split] = (files, labels)
        self.num_classes = len(classes)
        self.class_names = classes
        return self._file_splits(*split_files["train"], *split_files["val"])
