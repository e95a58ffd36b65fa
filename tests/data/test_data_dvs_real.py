"""CIFAR10-DVS (AEDAT4) and DVS128 Gesture (.npy) through tonic's readers, on exact-format fixtures."""

from __future__ import annotations

import os

import aedat
import datafixtures as F
import numpy as np
import pytest
import tonic
import torch
from tonic.io import read_aedat4

from lit_snn.data import CIFAR10DVSDataModule, DVSGestureDataModule, create_datamodule
from lit_snn.data.errors import CorruptDataError, DatasetNotFoundError
from lit_snn.data.framing import RESIZE_RULE


def test_aedat4_fixture_parses_with_the_real_readers(tmp_path):
    rng = np.random.default_rng(3)
    t, x, y, on = F.random_events(rng, 150)  # 3 packets of 64, 64, 22 events
    path = str(tmp_path / "a.aedat4")
    F.write_aedat4(path, t, x, y, on)
    assert (tmp_path / "a.aedat4").read_bytes()[:14] == b"#!AER-DAT4.0\r\n"
    dec = aedat.Decoder(path)
    assert dec.id_to_stream() == {0: {"type": "events", "width": 128, "height": 128}}
    packets = list(aedat.Decoder(path))
    assert [len(p["events"]) for p in packets] == [64, 64, 22]
    ev = read_aedat4(path)  # tonic's reader
    assert np.array_equal(ev["t"], t) and np.array_equal(ev["x"], x)
    assert np.array_equal(ev["y"], y) and np.array_equal(ev["on"], on)


def test_tonic_alone_would_download_but_we_never_do(fixture_root, no_network, tmp_path):
    # tonic's own existence check rejects the (zip-less, < 1000 files) folder -> it would download
    tonic_ds = tonic.datasets.CIFAR10DVS.__new__(tonic.datasets.CIFAR10DVS)
    tonic.dataset.Dataset.__init__(tonic_ds, str(fixture_root))
    assert not tonic_ds._check_exists()
    dm = CIFAR10DVSDataModule(root=str(fixture_root), cache_dir=str(tmp_path))
    dm.setup()
    dm.train_set[0]
    assert no_network == []


def test_cifar10_dvs_batches_labels_and_split(fixture_root, tmp_path):
    dm = create_datamodule(
        "cifar10_dvs",
        root=str(fixture_root),
        cache_dir=str(tmp_path),
        batch_size=4,
        time_steps=5,
        image_size=128,
    )
    dm.setup()
    # 3 files per class -> first 1 per class (natural order) is test, 1 of the 20 others is val
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (18, 2, 10)
    src = dm.event_sources["all"]
    test_files = [os.path.basename(src.files[i]) for i in dm.split_indices["test"]]
    assert all(f.endswith("_0.aedat4") for f in test_files)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 5, 2, 128, 128) and x.dtype == torch.float32 and y.dtype == torch.int64
    xt, yt = (torch.cat(v) for v in zip(*dm.test_dataloader()))
    for frames, label, i in zip(xt, yt, dm.split_indices["test"]):
        cols = frames.sum(dim=(0, 1, 2)).nonzero().flatten()  # fixture: x in [12k, 12k + 4)
        assert cols.min() >= 12 * label and cols.max() < 12 * label + 4
        events, src_label = src[i]
        assert src_label == label and len(events) == 200
        t = events["t"].astype(np.int64)
        window = (t[-1] - t[0]) // 5  # framing rule: the tail after T whole windows is dropped
        assert frames.sum() == np.sum(t < t[0] + 5 * window) < 200


def test_cifar10_dvs_default_48x48_and_cache_paths(fixture_root, tmp_path):
    dm = CIFAR10DVSDataModule(root=str(fixture_root), cache_dir=str(tmp_path), time_steps=4, batch_size=3)
    dm.setup()
    assert dm.image_size == (48, 48)
    x, _ = next(iter(dm.test_dataloader()))
    assert x.shape == (3, 4, 2, 48, 48)
    full = CIFAR10DVSDataModule(root=str(fixture_root), cache=False, time_steps=4, image_size=128)
    full.setup()
    x128 = torch.stack([full.test_set[i][0] for i in range(3)])
    assert torch.allclose(x.sum(dim=(1, 2, 3, 4)), x128.sum(dim=(1, 2, 3, 4)), atol=1e-3)  # counts kept
    p4 = dm.cache_paths["all"]
    assert p4.startswith(str(tmp_path / "cifar10_dvs")) and "T4" in p4 and "img48x48" in p4
    assert any(f.endswith(".hdf5") for f in os.listdir(p4))
    dm8 = CIFAR10DVSDataModule(root=str(fixture_root), cache_dir=str(tmp_path), time_steps=8)
    dm8.setup()
    assert dm8.cache_paths["all"] != p4
    assert dm8.test_set[0][0].shape == (8, 2, 48, 48)


def test_cifar10_dvs_corrupt_files_name_the_file(tmp_path):
    F.write_cifar10dvs(tmp_path, per_class=2, n_events=50)
    bad = tmp_path / "CIFAR10DVS" / "bird" / "cifar10_bird_0.aedat4"
    blob = bad.read_bytes()
    bad.write_bytes(blob[: len(blob) - 100])  # truncated inside a packet
    garbage = tmp_path / "CIFAR10DVS" / "cat" / "cifar10_cat_0.aedat4"
    garbage.write_bytes(b"\x00garbage" * 20)
    dm = CIFAR10DVSDataModule(root=str(tmp_path), val_fraction=0)
    dm.setup()
    files = dm.event_sources["all"].files
    for path in (bad, garbage):
        i = files.index(str(path))
        with pytest.raises(CorruptDataError, match=path.name):
            dm.test_set.dataset[i]  # framed + cached path surfaces the reader error


def test_cifar10_dvs_missing_class_folder(tmp_path):
    F.write_cifar10dvs(tmp_path, per_class=1, n_events=10)
    for f in (tmp_path / "CIFAR10DVS" / "frog").iterdir():
        f.unlink()
    with pytest.raises(DatasetNotFoundError, match="frog") as e:
        CIFAR10DVSDataModule(root=str(tmp_path)).setup()
    assert str(tmp_path / "CIFAR10DVS") in str(e.value)


def test_dvs_gesture_batches_labels_and_downsampling(fixture_root, tmp_path):
    dm = create_datamodule(
        "dvs_gesture", root=str(fixture_root), cache_dir=str(tmp_path), batch_size=6, time_steps=3
    )
    dm.setup()
    assert dm.image_size == (128, 128) and dm.num_classes == 11
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (20, 2, 11)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (6, 3, 2, 128, 128) and x.dtype == torch.float32 and y.dtype == torch.int64
    xt, yt = zip(*dm.test_dataloader())
    xt, yt = torch.cat(xt), torch.cat(yt)
    assert sorted(yt.tolist()) == list(range(11))
    for frames, label in zip(xt, yt):
        cols = frames.sum(dim=(0, 1, 2)).nonzero().flatten()  # fixture: x in [10k, 10k + 4)
        assert cols.min() >= 10 * label and cols.max() < 10 * label + 4
    small = DVSGestureDataModule(root=str(fixture_root), cache_dir=str(tmp_path), image_size=32, time_steps=3)
    small.setup()
    f32 = small.test_set[0][0]
    assert f32.shape == (3, 2, 32, 32) and torch.isclose(f32.sum(), xt[0].sum())
    assert small.cache_paths["test"] != dm.cache_paths["test"]
    assert "img32x32" in small.cache_paths["test"] and RESIZE_RULE in small.cache_paths["test"]


def test_dvs_gesture_corrupt_npy_and_bad_layout(tmp_path):
    F.write_dvsgesture(tmp_path, users_train=(1,), users_test=(2,), labels=range(3), n_events=20)
    user = tmp_path / "DVSGesture" / "ibmGestureTrain" / "user01_fluorescent"
    (user / "1.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    np.save(user / "2.npy", np.zeros((5, 3)))
    dm = DVSGestureDataModule(root=str(tmp_path), val_fraction=0, cache=False)
    dm.setup()
    src = dm.event_sources["train"]
    with pytest.raises(CorruptDataError, match="1.npy"):
        src[src.files.index(str(user / "1.npy"))]
    with pytest.raises(CorruptDataError, match=r"2\.npy.*\[N, 4\]"):
        src[src.files.index(str(user / "2.npy"))]
    (tmp_path / "DVSGesture" / "ibmGestureTest" / "stray").mkdir()
    with pytest.raises(CorruptDataError, match="stray"):
        DVSGestureDataModule(root=str(tmp_path)).setup()


def test_dvs_gesture_missing_test_folder(tmp_path):
    F.write_dvsgesture(tmp_path, users_train=(1,), users_test=(), labels=range(2), n_events=5)
    with pytest.raises(DatasetNotFoundError, match="ibmGestureTest"):
        DVSGestureDataModule(root=str(tmp_path)).setup()
