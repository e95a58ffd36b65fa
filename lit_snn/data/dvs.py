"""DVS DataModule base and the embedded default: emulated neuromorphic digits (nmnist_digits)."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import numpy as np
from torch.utils.data import Dataset, Subset

from .base import SNNDataModule
from .dvs_emulator import EmulatorConfig, emulate_dvs
from .framing import (
    FRAMING_RULE_TEXT,
    RESIZE_RULE,
    EventFramer,
    FramedDataset,
    cache_is_complete,
    cached,
    short_hash,
)
from .static import load_digits_arrays, seeded_split


class DVSDataModule(SNNDataModule):
    """Base for event-camera datasets.

    Events are framed with :class:`~lit_snn.data.framing.EventFramer` (tonic ToFrame,
    n_time_bins = ``time_steps``, see its module docstring for the exact rule), resized to
    ``image_size`` and cached on disk with ``tonic.DiskCachedDataset`` under
    ``cache_dir`` (default ``<root>/.cache``)/``<name>``/``<framing key>``/``<split>``; the
    framing key holds T, sensor and image size, the framing and resize rules and a hash of
    the source (file list / emulator parameters), so a changed transform never reads stale
    frames. ``cache=False`` disables the disk cache; ``memory_cache=True`` additionally keeps
    framed samples in RAM (per process).

    Batches: x float32 ``[B, T, 2, H, W]`` (event counts), y int64 ``[B]``.
    """

    is_event = True
    in_channels = 2
    sensor_size: tuple[int, int, int] = (128, 128, 2)  # tonic order (W, H, P)

    def __init__(
        self,
        root: str = "data",
        batch_size: int = 64,
        num_workers: int = 0,
        time_steps: int = 4,
        seed: int = 0,
        val_fraction: float = 0.1,
        image_size: int | tuple[int, int] | None = None,
        limit_train: int | None = None,
        limit_val: int | None = None,
        limit_test: int | None = None,
        cache: bool = True,
        cache_dir: str | None = None,
        memory_cache: bool = False,
        pin_memory: bool = False,
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
            pin_memory=pin_memory,
        )
        self.image_size = image_size if image_size is not None else (self.sensor_size[1], self.sensor_size[0])
        self.cache = bool(cache)
        self.cache_dir = cache_dir
        self.memory_cache = bool(memory_cache)
        self.framer = EventFramer(self.sensor_size, self.time_steps, self.image_size)
        self.cache_paths: dict[str, str] = {}
        self.event_sources: dict[str, Dataset] = {}  # raw (events, label) sources, set in setup()
        self.split_rule = ""

    @property
    def cache_root(self) -> str:
        return self.cache_dir if self.cache_dir is not None else os.path.join(self.root, ".cache")

    def _cache_path(self, split: str, source_key: str) -> str | None:
        """``<cache_root>/<name>/<framer key>_src<hash>/<split>`` or None when caching is off."""
        if not self.cache:
            return None
        path = os.path.join(self.cache_root, self.name, f"{self.framer.key()}_src{source_key}", split)
        self.cache_paths[split] = path
        return path

    def _framed(self, source, split: str, source_key: str) -> Dataset:
        """source ``(events, label)`` -> framed, disk-cached (and optionally RAM-cached) dataset."""
        ds = cached(FramedDataset(source, self.framer), self._cache_path(split, source_key))
        if self.memory_cache:
            from tonic import MemoryCachedDataset

            ds = MemoryCachedDataset(ds)
        return ds

    def _describe_extra(self) -> dict[str, Any]:
        w, h, p = self.sensor_size
        d: dict[str, Any] = {
            "sensor_size": f"{w}x{h}x{p}",
            "framing_rule": FRAMING_RULE_TEXT,
            "resize_rule": RESIZE_RULE if (h, w) != tuple(self.image_size) else "none",
            "frame_key": self.framer.key(),
            "split_rule": self.split_rule,
            "cache": int(self.cache),
        }
        for split, path in sorted(self.cache_paths.items()):
            d[f"cache_path_{split}"] = path
        return d


# ----------------------------------------------------------------------------- nmnist_digits

_EVENT_MEMO: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def digits_events(seed: int = 0, cfg: EmulatorConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Emulated events of all 1797 sklearn digits (memoised per process): ``(events, offsets)``."""
    cfg = cfg if cfg is not None else EmulatorConfig()
    key = (seed, cfg)
    if key not in _EVENT_MEMO:
        images, _ = load_digits_arrays()
        _EVENT_MEMO[key] = emulate_dvs(images, seed=seed, cfg=cfg)
    return _EVENT_MEMO[key]


class EmulatedDigitsEvents(Dataset):
    """``(events, label)`` for each sklearn digit; events generated lazily on first access."""

    def __init__(self, seed: int = 0, cfg: EmulatorConfig | None = None) -> None:
        self.seed, self.cfg = seed, cfg if cfg is not None else EmulatorConfig()
        self.labels = load_digits_arrays()[1]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        events, offsets = digits_events(self.seed, self.cfg)
        return events[offsets[i] : offsets[i + 1]], int(self.labels[i])


class NMNISTDigitsDataModule(DVSDataModule):
    """Neuromorphic digits emulated from sklearn's 8x8 digits (offline, a few seconds to build).

    A simulated 32x32 DVS watches each digit (magnified to 24x24) during three 100 ms
    saccades (triangle, N-MNIST style) and emits ON/OFF events at log-intensity changes
    (see :mod:`lit_snn.data.dvs_emulator`). Events go through the real DVS path: tonic
    ``ToFrame(n_time_bins=T)`` and ``tonic.DiskCachedDataset``. ``image_size`` < 32
    downsamples the frames (exact area resampling). Split as for ``digits``: stratified seeded test
    ``test_fraction`` (20%), then stratified ``val_fraction`` of the rest.
    ``emulator_seed`` fixes the recording noise independently of the split ``seed``.

    Batches: x float32 ``[B, T, 2, H, W]``, y int64 ``[B]``.
    """

    name = "nmnist_digits"
    num_classes = 10
    sensor_size = (32, 32, 2)

    def __init__(
        self,
        root: str = "data",
        batch_size: int = 64,
        num_workers: int = 0,
        time_steps: int = 4,
        seed: int = 0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        image_size: int | tuple[int, int] | None = None,
        emulator_seed: int = 0,
        threshold: float = 0.25,
        limit_train: int | None = None,
        limit_val: int | None = None,
        limit_test: int | None = None,
        cache: bool = True,
        cache_dir: str | None = None,
        memory_cache: bool = True,
    ) -> None:
        super().__init__(
            root=root,
            batch_size=batch_size,
            num_workers=num_workers,
            time_steps=time_steps,
            seed=seed,
            val_fraction=val_fraction,
            image_size=image_size,
            limit_train=limit_train,
            limit_val=limit_val,
            limit_test=limit_test,
            cache=cache,
            cache_dir=cache_dir,
            memory_cache=memory_cache,
        )
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        self.test_fraction = float(test_fraction)
        self.emulator_seed = int(emulator_seed)
        self.emulator = replace(EmulatorConfig(), threshold=float(threshold))

    @property
    def source_key(self) -> str:
        return short_hash(f"emulator_seed{self.emulator_seed}_{self.emulator.key()}")

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        source = EmulatedDigitsEvents(self.emulator_seed, self.emulator)
        self.event_sources = {"all": source}
        labels = source.labels
        full = self._framed(source, "all", self.source_key)
        if not cache_is_complete(self.cache_paths.get("all"), len(source)):
            digits_events(self.emulator_seed, self.emulator)  # build once here, not per worker
        rest, test = seeded_split(len(labels), self.test_fraction, self.seed, labels)
        tr, va = seeded_split(len(rest), self.val_fraction, self.seed + 1, labels[rest])
        self.split_indices = {"train": rest[tr], "val": rest[va], "test": test}
        self.train_set = Subset(full, rest[tr].tolist())
        self.val_set = Subset(full, rest[va].tolist())
        self.test_set = Subset(full, test.tolist())
        self.split_rule = (
            f"stratified seeded: test {self.test_fraction:g} of all, then val "
            f"{self.val_fraction:g} of the rest (numpy default_rng(seed), val seed+1)"
        )
        self._apply_limits()

    def _describe_extra(self) -> dict[str, Any]:
        d = super()._describe_extra()
        d["source"] = "sklearn digits -> emulated DVS (lit_snn.data.dvs_emulator)"
        d["emulator_seed"] = self.emulator_seed
        d["emulator"] = self.emulator.key()
        return d
