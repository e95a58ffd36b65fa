"""The embedded DVS default: neuromorphic digits emulated from sklearn's digits (nmnist_digits)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from torch.utils.data import Dataset, Subset

from .base import Splits
from .digits import load_digits_arrays
from .dvs import DVSDataModule
from .dvs_emulator import EmulatorConfig, emulate_dvs
from .framing import cache_is_complete, short_hash
from .splits import checked_test_fraction, holdout_split

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

    Args:
        test_fraction: share of all samples in the test set, in (0, 1).
        emulator_seed: seed of the emulated recording (jitter, threshold mismatch, noise).
        threshold: the emulated sensor's contrast threshold (log units).
    """

    name = "nmnist_digits"
    num_classes = 10
    sensor_size = (32, 32, 2)

    def __init__(
        self,
        test_fraction: float = 0.2,
        emulator_seed: int = 0,
        threshold: float = 0.25,
        memory_cache: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(memory_cache=memory_cache, **kwargs)
        self.test_fraction = checked_test_fraction(test_fraction)
        self.emulator_seed = int(emulator_seed)
        self.emulator = replace(EmulatorConfig(), threshold=float(threshold))

    @property
    def source_key(self) -> str:
        return short_hash(f"emulator_seed{self.emulator_seed}_{self.emulator.key()}")

    def load_splits(self) -> Splits:
        source = EmulatedDigitsEvents(self.emulator_seed, self.emulator)
        self.event_sources = {"all": source}
        full = self._framed(source, "all", self.source_key)
        if not cache_is_complete(self.cache_paths.get("all"), len(source)):
            digits_events(self.emulator_seed, self.emulator)  # build once here, not per worker
        self.split_indices = holdout_split(source.labels, self.test_fraction, self.val_fraction, self.seed)
        return tuple(Subset(full, self.split_indices[k].tolist()) for k in ("train", "val", "test"))
