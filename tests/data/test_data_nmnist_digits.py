"""Emulated neuromorphic digits: the DVS emulator and the nmnist_digits DataModule."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from lit_snn.data import NMNISTDigitsDataModule, create_datamodule
from lit_snn.data.digits import load_digits_arrays
from lit_snn.data.dvs_emulator import EVENT_DTYPE, EmulatorConfig, emulate_dvs
from lit_snn.data.framing import EventFramer


@pytest.fixture(scope="module")
def some_digits():
    images, labels = load_digits_arrays()
    return images[:40], labels[:40]


def _split(events, offsets):
    return [events[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]


def test_events_deterministic_sorted_both_polarities(some_digits):
    images, _ = some_digits
    ev1, off1 = emulate_dvs(images, seed=0)
    ev2, off2 = emulate_dvs(images, seed=0)
    assert ev1.dtype == EVENT_DTYPE and set(ev1.dtype.names) == {"x", "y", "t", "p"}
    assert np.array_equal(ev1, ev2) and np.array_equal(off1, off2)
    ev3, _ = emulate_dvs(images, seed=1)
    assert not np.array_equal(ev1, ev3)
    cfg = EmulatorConfig()
    for e in _split(ev1, off1):
        assert len(e) > 500
        assert np.all(np.diff(e["t"]) >= 0)
        assert 0 <= e["t"].min() and e["t"].max() < cfg.duration_us
        assert e["x"].min() >= 0 and e["x"].max() < cfg.sensor and e["y"].max() < cfg.sensor
        on = e["p"].mean()
        assert 0.3 < on < 0.7  # both polarities, balanced by the closed saccade loop


def test_events_follow_the_image(some_digits):
    images, _ = some_digits
    blank = np.zeros_like(images[:3])
    ev, off = emulate_dvs(blank, seed=0, cfg=EmulatorConfig(noise_hz=0.0))
    assert len(ev) == 0  # nothing moves -> no events
    ev, off = emulate_dvs(images[:3], seed=0, cfg=EmulatorConfig(noise_hz=0.0))
    first = _split(ev, off)[0]
    # events sit where the (moving) ink is: within the digit's footprint on the sensor
    assert first["x"].min() >= 1 and first["x"].max() <= 30
    # a higher threshold gives fewer events
    ev_hi, _ = emulate_dvs(images[:3], seed=0, cfg=EmulatorConfig(noise_hz=0.0, threshold=0.5))
    assert len(ev_hi) < 0.7 * len(ev)


def test_framing_rule_drops_only_the_tail(some_digits):
    images, _ = some_digits
    ev, off = emulate_dvs(images[:5], seed=0)
    framer = EventFramer((32, 32, 2), time_steps=3, image_size=(32, 32))
    for e in _split(ev, off):
        frames = framer(e)
        assert frames.shape == (3, 2, 32, 32) and frames.dtype == np.float32
        window = (e["t"][-1] - e["t"][0]) // 3
        keep = e["t"] < e["t"][0] + 3 * window
        assert frames.sum() == keep.sum() and keep.sum() < len(e)  # last event(s) dropped
        assert frames[:, 1].sum() == e["p"][keep].sum()  # channel 1 = ON events
        # window k holds exactly the events with t in [t0 + k*w, t0 + (k+1)*w)
        k = (e["t"][keep] - e["t"][0]) // window
        assert np.array_equal(frames.sum(axis=(1, 2, 3)), np.bincount(k, minlength=3))
    # area-sum resize keeps the counts for an integer factor
    small = EventFramer((32, 32, 2), time_steps=3, image_size=(16, 16))(e)
    assert small.shape == (3, 2, 16, 16) and np.isclose(small.sum(), frames.sum())
    empty = framer(np.zeros(0, dtype=EVENT_DTYPE))
    assert empty.shape == (3, 2, 32, 32) and empty.sum() == 0


def test_datamodule_batches_and_cache(tmp_path):
    dm = create_datamodule("nmnist_digits", root=str(tmp_path), batch_size=16, time_steps=4)
    dm.setup()
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 4, 2, 32, 32) and x.dtype == torch.float32
    assert y.shape == (16,) and y.dtype == torch.int64
    assert (x >= 0).all() and x.sum() > 0
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (1294, 144, 359)
    path = dm.cache_paths["all"]
    assert path.startswith(str(tmp_path / ".cache" / "nmnist_digits"))
    assert "T4" in path and "droptail" in path and "img32x32" in path
    assert len([f for f in os.listdir(path) if f.endswith(".hdf5")]) >= 16  # framed samples cached
    # same labels as the static digits split (same seed, same rule)
    from lit_snn.data import DigitsDataModule

    s = DigitsDataModule()
    s.setup()
    for k in ("train", "val", "test"):
        assert np.array_equal(dm.split_indices[k], s.split_indices[k])

    dm8 = NMNISTDigitsDataModule(root=str(tmp_path), time_steps=8, image_size=16, batch_size=4)
    dm8.setup()
    x8, _ = next(iter(dm8.test_dataloader()))
    assert x8.shape == (4, 8, 2, 16, 16)
    assert dm8.cache_paths["all"] != path  # T / size are part of the cache path
    # the cached file and a fresh framing agree
    xa, ya = dm8.test_set[0]
    fresh = NMNISTDigitsDataModule(root=str(tmp_path), time_steps=8, image_size=16, cache=False)
    fresh.setup()
    xb, yb = fresh.test_set[0]
    assert torch.equal(xa, xb) and ya == yb
    assert fresh.cache is False and "all" not in fresh.cache_paths


def test_changing_emulator_changes_cache_key(tmp_path):
    a = NMNISTDigitsDataModule(root=str(tmp_path))
    b = NMNISTDigitsDataModule(root=str(tmp_path), threshold=0.3)
    c = NMNISTDigitsDataModule(root=str(tmp_path), emulator_seed=1)
    assert len({a.source_key, b.source_key, c.source_key}) == 3
