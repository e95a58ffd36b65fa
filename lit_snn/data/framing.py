"""Events -> frames (through tonic.transforms.ToFrame) and the on-disk frame cache.

Framing rule (one rule for every DVS dataset, named by :data:`FRAMING_RULE` in the cache path):
``tonic.transforms.ToFrame(sensor_size, n_time_bins=T)`` on the events at full sensor
resolution. tonic cuts T equal windows of ``floor((t_last - t_first) / T)`` microseconds
starting at the first event; events at ``t >= t_first + T * window`` (always including the
very last event, at most T-1 us of recording) are DROPPED, not merged into the last frame
(unlike SpikingJelly's ``split_by='number'``). Frames hold per-pixel event counts.

Resizing (when ``image_size`` differs from the sensor): exact area resampling of the count
frames (:func:`area_matrix`): each sensor pixel's count is shared among the output pixels it
overlaps, in proportion to the overlap, so each output pixel holds the (fractional) event
count of the sensor area it covers and every frame keeps its total count for any ratio
(e.g. 128 -> 48). Integer factors reduce to plain sum pooling.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from tonic.transforms import ToFrame

FRAMING_RULE = "tonic-ToFrame-n_time_bins-droptail"
RESIZE_RULE = "area-exact"


class EventFramer:
    """Callable: structured events (x, y, t, p) -> float32 frames ``[T, 2, H, W]``.

    sensor_size: tonic order ``(W, H, P)``; image_size: output ``(H, W)``.
    Unsorted timestamps are sorted (stable) first, empty streams give all-zero frames.
    """

    def __init__(self, sensor_size: tuple[int, int, int], time_steps: int, image_size: tuple[int, int]):
        self.sensor_size = tuple(int(v) for v in sensor_size)
        self.time_steps = int(time_steps)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.to_frame = ToFrame(sensor_size=self.sensor_size, n_time_bins=self.time_steps)

    def __call__(self, events: np.ndarray) -> np.ndarray:
        w, h, p = self.sensor_size
        if len(events) == 0:
            frames = np.zeros((self.time_steps, p, h, w), dtype=np.float32)
        else:
            t = events["t"]
            if np.any(t[1:] < t[:-1]):
                events = events[np.argsort(t, kind="stable")]
            frames = self.to_frame(events).astype(np.float32)  # [T, P, H, W]
        if (h, w) != self.image_size:
            rh, rw = self._resize_matrices()
            frames = np.einsum("oh,tphw,qw->tpoq", rh, frames, rw, optimize=True)
        return np.ascontiguousarray(frames, dtype=np.float32)

    def _resize_matrices(self) -> tuple[np.ndarray, np.ndarray]:
        w, h, _ = self.sensor_size
        return area_matrix(h, self.image_size[0]), area_matrix(w, self.image_size[1])

    def key(self) -> str:
        """Cache-path fragment with every parameter that changes the frames."""
        w, h, p = self.sensor_size
        return (
            f"T{self.time_steps}_sensor{w}x{h}x{p}_img{self.image_size[0]}x{self.image_size[1]}"
            f"_{FRAMING_RULE}_{RESIZE_RULE}"
        )


def area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``[n_out, n_in]`` area-resampling weights: entry (o, i) is the fraction of input pixel
    ``[i, i+1)`` that falls into output pixel ``[o, o+1) * n_in / n_out``. Columns sum to 1,
    so resampled count frames keep their total exactly, for any size ratio."""
    scale = n_in / n_out
    lo = np.arange(n_out)[:, None] * scale
    i = np.arange(n_in)[None, :]
    return np.clip(np.minimum(i + 1, lo + scale) - np.maximum(i, lo), 0, None).astype(np.float32)


def short_hash(items: Any) -> str:
    """8-hex-digit stable hash of a list of strings / a string (e.g. the sorted file list)."""
    if not isinstance(items, str):
        items = "\n".join(map(str, items))
    return hashlib.sha1(items.encode()).hexdigest()[:8]


class FramedDataset(torch.utils.data.Dataset):
    """``(events, label)`` source + framer -> ``(frames float32 [T, 2, H, W], label)``.

    ``source[i]`` must return ``(events, label)``; framing happens here so that the
    DiskCachedDataset in front of it stores frames.
    """

    def __init__(self, source, framer: Callable[[np.ndarray], np.ndarray]) -> None:
        self.source = source
        self.framer = framer

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int):
        events, label = self.source[i]
        return self.framer(events), int(label)


class _ToTensors:
    """Post-cache transform pair: frames -> float32 tensor, label -> int."""

    @staticmethod
    def data(frames) -> torch.Tensor:
        return torch.as_tensor(np.asarray(frames, dtype=np.float32))

    @staticmethod
    def target(label) -> int:
        return int(np.asarray(label))


def cached(dataset, cache_path: str | None):
    """Wrap a FramedDataset in ``tonic.DiskCachedDataset`` (one hdf5 file per sample).

    ``cache_path=None`` disables caching. Items come back as (float32 tensor, int).
    """
    if cache_path is None:
        return _Tensorize(dataset)
    from tonic import DiskCachedDataset

    os.makedirs(cache_path, exist_ok=True)
    return DiskCachedDataset(
        dataset, cache_path=cache_path, transform=_ToTensors.data, target_transform=_ToTensors.target
    )


class _Tensorize(torch.utils.data.Dataset):
    def __init__(self, ds) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        x, y = self.ds[i]
        return _ToTensors.data(x), _ToTensors.target(y)


def cache_is_complete(cache_path: str | None, n: int) -> bool:
    """True when ``cache_path`` holds a cached file for each of the n samples."""
    if cache_path is None or not os.path.isdir(cache_path):
        return False
    return all(os.path.isfile(os.path.join(cache_path, f"{i}_0.hdf5")) for i in range(n))
