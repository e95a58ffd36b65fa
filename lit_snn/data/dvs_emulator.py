"""Emulated neuromorphic digits: a simulated DVS sensor watching sklearn's 8x8 digits move.

Each 8x8 digit is magnified 3x (bilinear) to 24x24 and placed on a 32x32 sensor. The sensor
follows three straight saccades forming a triangle (like N-MNIST's recording rig): vertex
offsets (0,0) -> (3,3) -> (6,0) -> (0,0) pixels, 100 ms each, simulated in ``steps_per_saccade``
small steps. At every step each pixel's log intensity ``log(I + eps)`` is compared with the
value stored at its last event (per-pixel reference memory, as in a real DVS): every full
contrast threshold crossed emits one ON (p=1) or OFF (p=0) event and moves the reference by
one threshold. Events of one step get evenly spread timestamps inside the step.

Seeded randomness (per sample, deterministic for a given ``seed``): sub-pixel jitter of the
start position (one of a 3x3 grid of offsets), per-pixel threshold mismatch and sparse background-activity noise events.

Output: tonic's event structure (``tonic.io.events_struct``: x, y int16, t int64 in
microseconds, p bool), sorted by t; sensor_size ``(W, H, 2)`` = ``(32, 32, 2)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import pairwise

import numpy as np
import torch
from tonic.io import events_struct

EVENT_DTYPE = events_struct  # [("x", i2), ("y", i2), ("t", i8), ("p", bool)]


@dataclass(frozen=True)
class EmulatorConfig:
    """Parameters of the emulated sensor (all of them enter the cache key)."""

    sensor: int = 32  # square sensor side (pixels)
    magnify: int = 3  # 8x8 digit -> 24x24
    saccade_px: float = 3.0  # triangle side scale (vertices (0,0), (s,s), (2s,0))
    saccade_ms: float = 100.0  # duration of one saccade
    steps_per_saccade: int = 20  # simulation steps per saccade
    threshold: float = 0.25  # contrast threshold (log units)
    threshold_sigma: float = 0.02  # per-pixel threshold mismatch (std, log units)
    eps: float = 0.1  # log(I + eps): dark background stays finite
    noise_hz: float = 0.2  # background activity per pixel
    jitter_px: float = 0.5  # start position jitter: one of {-j, 0, +j}^2 per sample

    def key(self) -> str:
        """Short stable string for cache paths."""
        return "_".join(f"{k}{v:g}" if isinstance(v, float) else f"{k}{v}" for k, v in asdict(self).items())

    @property
    def sensor_size(self) -> tuple[int, int, int]:
        return (self.sensor, self.sensor, 2)

    @property
    def duration_us(self) -> int:
        return round(3 * self.saccade_ms * 1000)


def _path(cfg: EmulatorConfig) -> np.ndarray:
    """Sensor-relative digit offsets (x, y) at steps 0..3*S, shape ``[3*S + 1, 2]``."""
    s = cfg.saccade_px
    verts = np.array([[0, 0], [s, s], [2 * s, 0], [0, 0]], dtype=np.float64)
    pts = [verts[0:1]]
    for a, b in pairwise(verts):
        f = np.arange(1, cfg.steps_per_saccade + 1)[:, None] / cfg.steps_per_saccade
        pts.append(a + f * (b - a))
    return np.concatenate(pts)


def emulate_dvs(
    images: np.ndarray, seed: int = 0, cfg: EmulatorConfig = EmulatorConfig()
) -> tuple[np.ndarray, np.ndarray]:
    """Turn grey images into DVS event streams.

    images: float ``[N, h, w]`` in [0, 1] (bright = ink). Returns ``(events, offsets)``:
    one structured array of ``EVENT_DTYPE`` holding all samples back to back and int64
    ``offsets [N + 1]``; sample i is ``events[offsets[i]:offsets[i + 1]]``, sorted by t
    (ties: by y, then x). Deterministic given ``seed``.
    """
    # many tiny tensor ops: intra-op threading only adds synchronisation cost (badly so on a
    # busy CPU), so run single-threaded and restore the caller's setting afterwards
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _emulate(images, seed, cfg)
    finally:
        torch.set_num_threads(prev)


def _emulate(images: np.ndarray, seed: int, cfg: EmulatorConfig) -> tuple[np.ndarray, np.ndarray]:
    n, h, w = images.shape
    side = cfg.sensor
    dig_h, dig_w = h * cfg.magnify, w * cfg.magnify
    rng = np.random.default_rng(seed)
    path = _path(cfg)  # [S+1, 2]
    # centre the triangle's bounding box on the sensor
    span = path.max(0) - path.min(0)
    base = np.array([(side - dig_w - span[0]) / 2, (side - dig_h - span[1]) / 2])
    # per-sample start jitter from a 3x3 grid {-j, 0, +j}^2 (groups share rendering weights)
    levels = np.array([-cfg.jitter_px, 0.0, cfg.jitter_px])
    group = rng.integers(0, 9, size=n)
    group_off = np.stack([levels[np.arange(9) % 3], levels[np.arange(9) // 3]], axis=1)  # [9, 2]
    # work in group order (contiguous slices share weights); map back with `perm` at the end
    perm = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[perm], np.arange(10))
    thr = np.clip(rng.normal(cfg.threshold, cfg.threshold_sigma, size=(n, side, side)), 0.05, None)
    thr_t = torch.from_numpy(thr[perm]).float()

    img = torch.from_numpy(images[perm].astype(np.float32))  # [N, h, w]
    pix = torch.arange(side, dtype=torch.float32) + 0.5  # sensor pixel centres

    def weights(off: float, size: int) -> torch.Tensor:
        # bilinear weights [side, size] of the magnified image (zero outside); separable
        c = (pix - off) / cfg.magnify - 0.5  # source coordinate per sensor pixel
        return (1 - (c[:, None] - torch.arange(size, dtype=torch.float32)).abs()).clamp_(min=0)

    def render(offset: np.ndarray) -> torch.Tensor:  # sensor offset (x, y) -> log I [N, side, side]
        out = torch.empty(n, side, side)
        for g in range(9):
            a, b = bounds[g], bounds[g + 1]
            if a == b:
                continue
            ox, oy = offset + group_off[g]
            # two plain GEMMs: [m*h, w] @ [w, side], then [side, h] @ [h, m*side]
            tmp = (img[a:b].reshape(-1, w) @ weights(ox, w).T).view(b - a, h, side)
            res = weights(oy, h) @ tmp.transpose(0, 1).reshape(h, -1)  # [side, m*side]
            out[a:b] = res.view(side, b - a, side).transpose(0, 1)
        return out.clamp_(0, 1).add_(cfg.eps).log_()

    steps = len(path) - 1
    dt = cfg.duration_us / steps
    ref = render(base + path[0])  # per-pixel reference (log intensity at last event)
    # every event is packed into one sortable int64 key: sample | t | pixel (row-major)
    pix_bits = int(side * side - 1).bit_length()
    t_bits = int(cfg.duration_us).bit_length()
    keys, pols = [], []

    def pack(s_, y_, x_, t_) -> np.ndarray:
        return (s_.astype(np.int64) << (t_bits + pix_bits)) | (t_ << pix_bits) | (y_ * side + x_)

    for k in range(1, steps + 1):
        q = render(base + path[k]).sub_(ref).div_(thr_t).trunc_()  # signed crossings
        ref.addcmul_(q, thr_t)
        nz = torch.nonzero(q)
        if len(nz) == 0:
            continue
        qv = q[nz[:, 0], nz[:, 1], nz[:, 2]].long().numpy()
        cnt = np.abs(qv)
        nz = nz.numpy()
        rep = np.repeat(np.arange(len(nz)), cnt)
        # j-th of c events at this pixel -> t = (k-1)dt + dt*(j+1)/(c+1)
        j = np.arange(len(rep)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        t = np.round((k - 1) * dt + dt * (j + 1) / (cnt[rep] + 1)).astype(np.int64)
        keys.append(pack(perm[nz[rep, 0]], nz[rep, 1].astype(np.int64), nz[rep, 2].astype(np.int64), t))
        pols.append(qv[rep] > 0)

    # background-activity noise: Poisson count per sample, uniform position / time / polarity
    lam = cfg.noise_hz * side * side * cfg.duration_us * 1e-6
    n_noise = rng.poisson(lam, size=n)
    tot = int(n_noise.sum())
    keys.append(
        pack(
            np.repeat(np.arange(n), n_noise),
            rng.integers(0, side, tot),
            rng.integers(0, side, tot),
            rng.integers(0, cfg.duration_us, tot).astype(np.int64),
        )
    )
    pols.append(rng.random(tot) < 0.5)

    key = np.concatenate(keys)
    order = np.argsort(key, kind="stable")  # by sample, then time, then row, then column
    key = key[order]
    pix = key & ((1 << pix_bits) - 1)
    events = np.empty(len(key), dtype=EVENT_DTYPE)
    events["x"], events["y"] = pix % side, pix // side
    events["t"] = (key >> pix_bits) & ((1 << t_bits) - 1)
    events["p"] = np.concatenate(pols)[order]
    offsets = np.searchsorted(key >> (t_bits + pix_bits), np.arange(n + 1))
    return events, offsets
