"""MNIST / Fashion-MNIST: the IDX reader and the DataModules on tiny fixtures in the exact format,
one short training on the real Fashion-MNIST files (Debian's dataset-fashion-mnist) when installed,
and the README's recipe for one's own DataModule."""

from __future__ import annotations

import copy
import gzip
import os
from pathlib import Path

import datafixtures as F
import numpy as np
import pytest
import torch
import yaml

from lit_snn.data import FashionMNISTDataModule, MNISTDataModule, StaticDataModule, create_datamodule
from lit_snn.data.errors import CorruptDataError, DatasetNotFoundError
from lit_snn.data.idx import IMAGES_MAGIC, LABELS_MAGIC, encode_idx, parse_idx, read_idx
from lit_snn.data.mnist import DEBIAN_FASHION_MNIST_DIR
from lit_snn.train import run_training

ROOT = Path(__file__).resolve().parents[2]


def _all(loader):
    xs, ys = zip(*loader)
    return torch.cat(xs), torch.cat(ys)


# ----------------------------------------------------------------------------- IDX reader


@pytest.mark.parametrize("gz", [True, False])
def test_idx_reader_decodes_images_and_labels(tmp_path, gz):
    x, y = F.mnist_arrays(7, seed=3)
    px = F.write_idx(tmp_path / "img-idx3-ubyte", x, gz=gz)
    py = F.write_idx(tmp_path / "lab-idx1-ubyte", y, gz=gz)
    assert px.endswith(".gz") == gz
    got = read_idx(px, IMAGES_MAGIC)
    assert got.dtype == np.uint8 and got.shape == (7, 28, 28) and np.array_equal(got, x)
    assert np.array_equal(read_idx(py, LABELS_MAGIC), y)
    # the header is big-endian: 0x00000803, then 7, 28, 28
    assert F.idx_bytes(x)[:16] == bytes.fromhex("00000803" "00000007" "0000001c" "0000001c")
    # our writer (encode_idx) is the inverse of the reader, multi-byte big-endian types too
    for a in (x, np.arange(-3, 3, dtype=np.int16).reshape(2, 3), np.linspace(0, 1, 5, dtype=np.float32)):
        assert np.array_equal(parse_idx(encode_idx(a)), a)
    assert encode_idx(x) == F.idx_bytes(x)


def test_idx_reader_truncated_and_wrong_magic(tmp_path):
    x, y = F.mnist_arrays(5)
    blob = F.idx_bytes(x)
    plain = tmp_path / "images-idx3-ubyte"
    plain.write_bytes(blob[:-1])  # one data byte short
    with pytest.raises(CorruptDataError, match=r"images-idx3-ubyte.*truncated.*\[5, 28, 28\] need 3920 data bytes, "
                                               r"file has 3919"):
        read_idx(str(plain), IMAGES_MAGIC)
    plain.write_bytes(blob + b"\0")  # a padded file is not silently accepted either
    with pytest.raises(CorruptDataError, match="trailing bytes"):
        read_idx(str(plain), IMAGES_MAGIC)
    plain.write_bytes(blob[:10])  # inside the header
    with pytest.raises(CorruptDataError, match="truncated header"):
        read_idx(str(plain), IMAGES_MAGIC)
    gz = tmp_path / "images-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(blob)[:-20])  # a cut download: the gzip stream ends early
    with pytest.raises(CorruptDataError, match=r"images-idx3-ubyte\.gz.*cannot decompress gzip"):
        read_idx(str(gz), IMAGES_MAGIC)
    labels = tmp_path / "labels-idx1-ubyte"
    labels.write_bytes(F.idx_bytes(y))
    with pytest.raises(CorruptDataError, match="wrong IDX magic number 0x00000801, expected 0x00000803"):
        read_idx(str(labels), IMAGES_MAGIC)  # a labels file where the images should be
    plain.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(CorruptDataError, match="wrong IDX magic number 0x3C68746D"):
        read_idx(str(plain), IMAGES_MAGIC)
    with pytest.raises(CorruptDataError, match="not an IDX file"):
        read_idx(str(plain))


# ----------------------------------------------------------------------------- DataModules


def test_mnist_torchvision_layout_split_and_exact_pixels(tmp_path):
    raw = F.write_mnist(tmp_path / "MNIST" / "raw", n_train=100, n_test=20)
    dm = create_datamodule("mnist", root=str(tmp_path), batch_size=8)
    assert (dm.num_classes, dm.in_channels, dm.image_size) == (10, 1, (28, 28))
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (90, 10, 20)
    assert np.bincount(dm.val_set.labels.numpy(), minlength=10).tolist() == [1] * 10  # stratified
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    xt, yt = _all(dm.test_dataloader())
    x_raw, y_raw = F.mnist_arrays(20, seed=1)
    assert yt.tolist() == y_raw.tolist()
    pixels = (xt * dm.std[0] + dm.mean[0]) * 255
    assert torch.allclose(pixels[:, 0], torch.from_numpy(x_raw).float(), atol=1e-3)
    assert dm.data_dir == raw
    same = MNISTDataModule(root=str(tmp_path))
    same.setup()
    assert torch.equal(same.train_set.labels, dm.train_set.labels)  # seeded split
    full = MNISTDataModule(root=str(tmp_path), val_fraction=0, limit_train=30)
    full.setup()
    assert full.val_set is full.test_set and len(full.train_set) == 30


def test_fashion_mnist_plain_files_and_system_dir(tmp_path):
    system = F.write_mnist(tmp_path / "usr_share", n_train=30, n_test=10, gz=False)  # as a package might ship
    dm = FashionMNISTDataModule(root=str(tmp_path / "nothing"), system_dirs=[system])
    dm.setup()
    assert dm.data_dir == system and len(dm.test_set) == 10 and dm.name == "fashion_mnist"
    assert FashionMNISTDataModule().system_dirs == (DEBIAN_FASHION_MNIST_DIR,)
    # <root>/FashionMNIST/raw wins over the system folder
    F.write_mnist(tmp_path / "FashionMNIST" / "raw", n_train=40, n_test=20)
    dm = create_datamodule("fashion-mnist", root=str(tmp_path), system_dirs=[system], val_fraction=0)
    dm.setup()
    assert dm.data_dir == str(tmp_path / "FashionMNIST" / "raw") and len(dm.train_set) == 40


def test_missing_files_name_both_places_and_the_debian_package(tmp_path, no_network):
    (tmp_path / "FashionMNIST" / "raw").mkdir(parents=True)
    F.write_idx(tmp_path / "FashionMNIST" / "raw" / "train-images-idx3-ubyte", F.mnist_arrays(3)[0])
    dm = FashionMNISTDataModule(root=str(tmp_path), system_dirs=[str(tmp_path / "debian")])
    with pytest.raises(DatasetNotFoundError) as e:
        dm.setup()
    msg = str(e.value)
    assert str(tmp_path / "FashionMNIST" / "raw") in msg and str(tmp_path / "debian") in msg
    assert "apt-get install dataset-fashion-mnist" in msg and DEBIAN_FASHION_MNIST_DIR in msg
    assert "missing train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz]" in msg
    assert "train-images-idx3-ubyte.gz" in msg and "Expected layout" in msg
    with pytest.raises(DatasetNotFoundError, match=r"MNIST/raw") as e:
        MNISTDataModule(root=str(tmp_path / "empty")).setup()
    assert "dataset-fashion-mnist" not in str(e.value)
    assert no_network == [] and not (tmp_path / "empty").exists()  # nothing created or downloaded


def test_corrupt_files_fail_at_setup(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    F.write_mnist(raw, n_train=20, n_test=10)
    p = raw / "t10k-images-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(F.idx_bytes(F.mnist_arrays(10)[0])[:-28]))  # valid gzip, short data
    with pytest.raises(CorruptDataError, match="t10k-images-idx3-ubyte.gz.*truncated"):
        MNISTDataModule(root=str(tmp_path)).setup()
    F.write_idx(raw / "t10k-images-idx3-ubyte", F.mnist_arrays(9)[0])  # 9 images, 10 labels
    with pytest.raises(CorruptDataError, match="9 images but t10k-labels-idx1-ubyte.gz has 10 labels"):
        MNISTDataModule(root=str(tmp_path)).setup()
    F.write_idx(raw / "t10k-images-idx3-ubyte", np.zeros((10, 32, 32), np.uint8))
    with pytest.raises(CorruptDataError, match="32x32, expected 28x28"):
        MNISTDataModule(root=str(tmp_path)).setup()
    F.write_idx(raw / "t10k-images-idx3-ubyte", F.mnist_arrays(10)[0])
    F.write_idx(raw / "t10k-labels-idx1-ubyte", np.full(10, 10, np.uint8))
    with pytest.raises(CorruptDataError, match=r"labels outside \[0, 10\)"):
        MNISTDataModule(root=str(tmp_path)).setup()


# ----------------------------------------------------------------------------- the real files


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(DEBIAN_FASHION_MNIST_DIR),
                    reason="Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
def test_lif_learns_real_fashion_mnist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default root ("data", empty here): Debian's copy is where the files are
    dm = FashionMNISTDataModule()
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (54000, 6000, 10000)
    assert np.bincount(dm.test_set.labels.numpy()).tolist() == [1000] * 10
    cfg = yaml.safe_load((ROOT / "configs" / "fashion_mnist_lif.yaml").read_text())
    cfg["trainer"].update(max_epochs=1, enable_progress_bar=False, enable_model_summary=False, logger=False)
    cfg["data"]["init_args"].update(limit_train=12000, limit_val=1000, limit_test=2000)  # the config's root: "data"
    metrics = run_training(cfg, default_root_dir=str(tmp_path))
    assert metrics["test/acc"] >= 0.75, metrics  # chance 0.10; measured 0.83-0.84 (seeds 0-2), ~18 s


# ----------------------------------------------------------------------------- README recipe


class BlobsDataModule(StaticDataModule):
    """The README's recipe: one's own data as a DataModule that declares only what differs from
    StaticDataModule (here 16x16 noise, class = bright square)."""

    name = "blobs"
    num_classes = 4
    in_channels = 1
    image_size = (16, 16)
    mean, std = (0.5,), (0.3,)

    def __init__(self, n: int = 400, **kwargs) -> None:
        super().__init__(**kwargs)  # root, batch_size, seed, val_fraction, limit_*, augmentation
        self.n = n

    def read_split(self, split: str) -> tuple[torch.Tensor, np.ndarray]:
        rng = np.random.default_rng([self.seed, split == "test"])  # stands in for reading files under self.root
        y = np.arange(self.n) % self.num_classes
        x = rng.integers(0, 96, (self.n, 1, 16, 16), dtype=np.uint8)
        for i, c in enumerate(y):
            x[i, 0, 8 * (c // 2):8 * (c // 2) + 8, 8 * (c % 2):8 * (c % 2) + 8] += 150
        return torch.from_numpy(x), y  # uint8 [N, C, H, W], int labels [N]


def test_readme_recipe_own_datamodule_trains(tmp_path):
    cfg = yaml.safe_load((ROOT / "configs" / "digits_lif.yaml").read_text())
    cfg = copy.deepcopy(cfg)
    cfg["trainer"].update(max_epochs=1, enable_progress_bar=False, enable_model_summary=False, logger=False)
    cfg["data"] = {"class_path": f"{BlobsDataModule.__module__}.BlobsDataModule",
                   "init_args": {"batch_size": 32, "val_fraction": 0.25}}
    metrics = run_training(cfg, default_root_dir=str(tmp_path))
    assert metrics["test/acc"] >= 0.9, metrics  # four easy classes, one epoch
