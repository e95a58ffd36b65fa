"""DVS DataModule base: events framed to ``[T, 2, H, W]`` count frames and cached on disk."""

from __future__ import annotations

import os

from torch.utils.data import Dataset

from .base import SNNDataModule, as_hw
from .framing import EventFramer, FramedDataset, cached


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

    Args:
        image_size: frame size; below the sensor's it downsamples by exact area resampling
            (None: the sensor's size).
        cache: keep framed samples on disk.
        cache_dir: the disk cache's folder (None: ``<root>/.cache``).
        memory_cache: also keep framed samples in RAM (per process).
    """

    is_event = True
    in_channels = 2
    sensor_size: tuple[int, int, int] = (128, 128, 2)  # tonic order (W, H, P)

    def __init__(
        self,
        image_size: int | tuple[int, int] | None = None,
        cache: bool = True,
        cache_dir: str | None = None,
        memory_cache: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.image_size = as_hw(image_size) if image_size is not None else (self.sensor_size[1], self.sensor_size[0])
        self.cache = bool(cache)
        self.cache_dir = cache_dir
        self.memory_cache = bool(memory_cache)
        self.framer = EventFramer(self.sensor_size, self.time_steps, self.image_size)
        self.cache_paths: dict[str, str] = {}
        self.event_sources: dict[str, Dataset] = {}  # raw (events, label) sources, set in setup()

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
