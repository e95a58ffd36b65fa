"""CIFAR-10/100, Tiny-ImageNet and ImageNet on tiny fixtures in their exact on-disk formats."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import datafixtures as F
import numpy as np
import pytest
import torch

from lit_snn.data import create_datamodule
from lit_snn.data.cifar import read_cifar_batch
from lit_snn.data.errors import CorruptDataError, DatasetNotFoundError


def _all(loader):
    xs, ys = zip(*loader)
    return torch.cat(xs), torch.cat(ys)


def test_cifar10_reads_pickles_and_keeps_pixels(fixture_root):
    dm = create_datamodule("cifar10", root=str(fixture_root), batch_size=8, crop_padding=0, hflip=False)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (90, 10, 20)
    assert dm.class_names[0] == "airplane"
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    # test batch: exact pixel decode (channel-major rows) and label order
    with open(os.path.join(fixture_root, "cifar-10-batches-py", "test_batch"), "rb") as f:
        raw = pickle.load(f, encoding="latin1")
    xt, yt = _all(dm.test_dataloader())
    assert yt.tolist() == raw["labels"]
    mean = torch.tensor(dm.mean).view(1, 3, 1, 1)
    std = torch.tensor(dm.std).view(1, 3, 1, 1)
    pixels = (xt * std + mean) * 255
    expect = torch.from_numpy(raw["data"].reshape(-1, 3, 32, 32)).float()
    assert torch.allclose(pixels, expect, atol=1e-3)


def test_cifar10_default_train_augmentation_is_crop_flip(fixture_root):
    dm = create_datamodule("cifar10", root=str(fixture_root), batch_size=200, val_fraction=0)
    dm.setup()
    assert dm.val_set is dm.test_set and len(dm.train_set) == 100
    assert (dm.augment.crop_padding, dm.augment.hflip) == (4, True)
    x_aug, _ = next(iter(dm.train_dataloader()))
    plain = create_datamodule(
        "cifar10", root=str(fixture_root), batch_size=200, val_fraction=0, crop_padding=0, hflip=False
    )
    plain.setup()
    x_plain, _ = next(iter(plain.train_dataloader()))
    assert x_aug.shape == x_plain.shape and not torch.allclose(x_aug, x_plain)


def test_cifar10_mixup_cutmix_soft_targets(fixture_root):
    dm = create_datamodule(
        "cifar10", root=str(fixture_root), batch_size=16, mixup_alpha=0.8, cutmix_alpha=1.0
    )
    dm.setup()
    _, y = next(iter(dm.train_dataloader()))
    assert y.shape == (16, 10) and torch.allclose(y.sum(1), torch.ones(16))
    assert torch.nn.functional.cross_entropy(torch.zeros(16, 10), y).item() == pytest.approx(
        np.log(10), rel=1e-5
    )
    assert next(iter(dm.val_dataloader()))[1].dtype == torch.int64


def test_cifar100_fine_labels(fixture_root):
    dm = create_datamodule("cifar100", root=str(fixture_root), batch_size=50)
    dm.setup()
    assert dm.num_classes == 100 and len(dm.class_names) == 100
    _, yt = _all(dm.test_dataloader())
    assert yt.tolist() == [i % 100 for i in range(100)]  # fine, not coarse labels
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (50, 3, 32, 32) and y.max() < 100


def test_cifar_missing_file_and_corrupt_files(tmp_path):
    d = F.write_cifar10(tmp_path)
    os.remove(os.path.join(d, "data_batch_3"))
    with pytest.raises(DatasetNotFoundError, match="data_batch_3"):
        create_datamodule("cifar10", root=str(tmp_path)).setup()
    F.write_cifar10(tmp_path)
    p = os.path.join(d, "data_batch_2")
    blob = Path(p).read_bytes()
    Path(p).write_bytes(blob[: len(blob) // 2])  # truncated
    with pytest.raises(CorruptDataError, match="data_batch_2"):
        create_datamodule("cifar10", root=str(tmp_path)).setup()
    with open(p, "wb") as f:  # wrong structure
        pickle.dump({"data": np.zeros((4, 100), np.uint8), "labels": [0] * 4}, f)
    with pytest.raises(CorruptDataError, match=r"uint8 \[N, 3072\]"):
        create_datamodule("cifar10", root=str(tmp_path)).setup()
    with open(p, "wb") as f:  # a pickle that would run code is refused, not executed
        pickle.dump({"data": shutil.rmtree, "labels": []}, f)
    with pytest.raises(CorruptDataError, match="unexpected global"):
        read_cifar_batch(p, "labels", 10)


def test_cifar_bytes_keys_like_python2_pickles(tmp_path):
    p = tmp_path / "batch"
    with open(p, "wb") as f:
        pickle.dump({b"data": np.ones((2, 3072), np.uint8), b"labels": [1, 2]}, f, protocol=2)
    x, y = read_cifar_batch(str(p), "labels", 10)
    assert x.shape == (2, 3, 32, 32) and y.tolist() == [1, 2]


def test_tiny_imagenet_val_is_test_and_labels_by_sorted_wnid(fixture_root):
    dm = create_datamodule("tiny_imagenet", root=str(fixture_root), batch_size=8)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (360, 40, 20)
    d = fixture_root / "tiny-imagenet-200"
    wnids = sorted((d / "wnids.txt").read_text().split())
    ann = [ln.split("\t") for ln in (d / "val" / "val_annotations.txt").read_text().splitlines()]
    _, yt = _all(dm.test_dataloader())
    assert yt.tolist() == [wnids.index(a[1]) for a in ann]
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 3, 64, 64) and x.dtype == torch.float32
    xi, yi = dm.train_set[0]
    assert xi.dtype == torch.uint8 and xi.shape == (3, 64, 64)
    assert os.path.basename(os.path.dirname(os.path.dirname(dm.train_set.files[0]))) == wnids[yi]


def test_tiny_imagenet_bad_annotation_and_corrupt_jpeg(tmp_path):
    d = F.write_tiny_imagenet(tmp_path, train_per_class=1, val_total=3)
    ann = Path(d, "val", "val_annotations.txt")
    lines = ann.read_text().splitlines()
    dm = create_datamodule("tiny_imagenet", root=str(tmp_path), val_fraction=0)
    dm.setup()
    bad = dm.test_set.files[0]
    Path(bad).write_bytes(b"not a jpeg")
    with pytest.raises(CorruptDataError, match=os.path.basename(bad)):
        dm.test_set[0]
    ann.write_text("\n".join([*lines, "val_x.JPEG\tn99999999\t0\t0\t1\t1"]))
    with pytest.raises(CorruptDataError, match="val_annotations"):
        create_datamodule("tiny_imagenet", root=str(tmp_path)).setup()


def test_imagenet_folders_resize_and_crop(fixture_root, tmp_path):
    dm = create_datamodule("imagenet", root=str(fixture_root), image_size=32, batch_size=4, val_fraction=0)
    assert dm.num_classes == 3  # counted from train/ at construction
    dm.setup()
    assert len(dm.train_set) == 9 and len(dm.test_set) == 6
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 32, 32)
    xt, yt = _all(dm.test_dataloader())
    assert xt.shape == (6, 3, 32, 32) and yt.tolist() == [0, 0, 1, 1, 2, 2]
    assert dm.data_dir == os.path.join(str(fixture_root), "imagenet")
    # subdir="" -> root is the ImageNet folder itself
    dm2 = create_datamodule("imagenet", root=str(fixture_root / "imagenet"), subdir="", image_size=32)
    dm2.setup()
    assert len(dm2.test_set) == 6
    with pytest.raises(DatasetNotFoundError, match="train"):
        create_datamodule("imagenet", root=str(tmp_path)).setup()


def test_cifar10_random_erasing_and_randaugment_magnitude(fixture_root):
    pytest.importorskip("kornia")
    common = dict(root=str(fixture_root), batch_size=100, val_fraction=0, crop_padding=0, hflip=False)
    plain = create_datamodule("cifar10", **common)
    erased = create_datamodule("cifar10", random_erasing=1.0, **common)
    for dm in (plain, erased):
        dm.setup()
    x_plain, y_plain = next(iter(plain.train_dataloader()))
    x_erased, y_erased = next(iter(erased.train_dataloader()))
    assert torch.equal(y_plain, y_erased)  # same shuffle: only the pixels differ
    changed = (x_erased != x_plain).any(1)  # [B, H, W]
    assert changed.flatten(1).any(1).all()  # p = 1: every sample has a box erased
    # erased pixels hold 0 after normalisation (torchvision's RandomErasing after Normalize)
    assert (x_erased.permute(0, 2, 3, 1)[changed] == 0).all()
    # and never in val/test
    assert torch.equal(next(iter(erased.test_dataloader()))[0], next(iter(plain.test_dataloader()))[0])
    ra = create_datamodule("cifar10", auto_augment="randaugment", randaugment_magnitude=9, **common)
    ra.setup()
    assert torch.isfinite(next(iter(ra.train_dataloader()))[0]).all()
    collate = ra.collate_fn("train")
    collate._generator()  # builds the kornia policy
    assert (collate._auto.n, collate._auto.m) == (2, 9)
    with pytest.raises(ValueError, match="randaugment_magnitude must be in 1..29"):
        create_datamodule("cifar10", root=str(fixture_root), randaugment_magnitude=30)
    with pytest.raises(ValueError, match="random_erasing must be a probability"):
        create_datamodule("cifar10", root=str(fixture_root), random_erasing=1.5)
