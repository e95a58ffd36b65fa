"""Batch-level augmentation for static images, applied inside the DataLoader's collate_fn.

Everything runs on CPU in the loader workers on whole batches, so batches that leave a
DataLoader are always final (augmented + normalised), with or without a Trainer.

* random crop (zero padding) + horizontal flip: own small torch implementation;
* RandAugment (2 ops, magnitude ``randaugment_magnitude`` of 30) / TrivialAugment:
  ``kornia.augmentation.auto`` (optional dependency, imported only when asked for), on [0, 1]
  images before normalisation;
* random erasing: ``kornia.augmentation.RandomErasing`` with probability ``random_erasing``
  per sample (torchvision's default box: area 2-33 %, aspect 0.3-3.3, value 0), after
  normalisation, as torchvision's ``RandomErasing`` after ``Normalize``;
* mixup / cutmix: own implementation; when enabled, training targets become soft labels,
  float32 ``[B, num_classes]`` (``F.cross_entropy`` accepts both forms; take ``argmax``
  for accuracy). Validation/test loaders never mix.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

AUTO_AUGMENTS = ("none", "randaugment", "trivialaugment")


def random_crop_flip(x: torch.Tensor, padding: int, flip: bool, gen: torch.Generator) -> torch.Tensor:
    """Per-sample random crop after zero padding, and random horizontal flip.

    x: float ``[B, C, H, W]`` -> same shape.
    """
    b, _, h, w = x.shape
    if padding > 0:
        xp = F.pad(x, (padding, padding, padding, padding))
        oy = torch.randint(0, 2 * padding + 1, (b,), generator=gen)
        ox = torch.randint(0, 2 * padding + 1, (b,), generator=gen)
        # gather crops with index arithmetic: rows [B, H], cols [B, W]
        rows = oy[:, None] + torch.arange(h)[None, :]
        cols = ox[:, None] + torch.arange(w)[None, :]
        bi = torch.arange(b)[:, None, None]
        x = xp.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if flip:
        m = torch.rand(b, generator=gen) < 0.5
        x = torch.where(m[:, None, None, None], x.flip(-1), x)
    return x.contiguous()


def _mix_lambda(alpha: float, gen: torch.Generator) -> float:
    # Beta(alpha, alpha) from two Gammas, drawn from our generator for reproducibility
    a = torch._standard_gamma(torch.full((2,), float(alpha)), generator=gen)
    return float(a[0] / (a[0] + a[1]))


def mixup_cutmix(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    mixup_alpha: float,
    cutmix_alpha: float,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix the batch with its flipped self: mixup or cutmix (50/50 when both enabled).

    x ``[B, C, H, W]``, y int64 ``[B]`` -> x ``[B, C, H, W]``, soft y float32 ``[B, K]``.
    """
    y1 = F.one_hot(y, num_classes).float()
    use_cut = cutmix_alpha > 0 and (mixup_alpha <= 0 or torch.rand(1, generator=gen).item() < 0.5)
    x2, y2 = x.flip(0), y1.flip(0)
    if use_cut:
        lam = _mix_lambda(cutmix_alpha, gen)
        h, w = x.shape[-2:]
        ch, cw = int(h * (1 - lam) ** 0.5), int(w * (1 - lam) ** 0.5)
        cy = int(torch.randint(0, h, (1,), generator=gen))
        cx = int(torch.randint(0, w, (1,), generator=gen))
        y0, y1b = max(cy - ch // 2, 0), min(cy + ch // 2, h)
        x0, x1b = max(cx - cw // 2, 0), min(cx + cw // 2, w)
        x = x.clone()
        x[..., y0:y1b, x0:x1b] = x2[..., y0:y1b, x0:x1b]
        lam = 1.0 - (y1b - y0) * (x1b - x0) / float(h * w)  # exact area actually pasted
    else:
        lam = _mix_lambda(mixup_alpha, gen)
        x = lam * x + (1 - lam) * x2
    return x, lam * y1 + (1 - lam) * y2


def _build_auto(kind: str, magnitude: int = 10):
    if kind == "none":
        return None
    try:
        from kornia.augmentation import auto
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"auto_augment='{kind}' needs the optional package 'kornia' (pip install kornia)"
        ) from e
    if kind == "randaugment":
        return auto.RandAugment(n=2, m=magnitude)
    if kind == "trivialaugment":
        return auto.TrivialAugment()
    raise ValueError(f"auto_augment must be one of {AUTO_AUGMENTS}, got '{kind}'")


@dataclass
class AugmentConfig:
    """What to apply to training batches (all off by default)."""

    crop_padding: int = 0
    hflip: bool = False
    auto_augment: str = "none"
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    randaugment_magnitude: int = 10  # kornia's m, 1..29 of 30 (torchvision's magnitude of 31 bins)
    random_erasing: float = 0.0  # probability per sample

    def __post_init__(self) -> None:
        self.auto_augment = self.auto_augment.lower()
        if self.auto_augment not in AUTO_AUGMENTS:
            raise ValueError(f"auto_augment must be one of {AUTO_AUGMENTS}, got '{self.auto_augment}'")
        if not 0 < self.randaugment_magnitude < 30:
            raise ValueError(f"randaugment_magnitude must be in 1..29, got {self.randaugment_magnitude}")
        if not 0.0 <= self.random_erasing <= 1.0:
            raise ValueError(f"random_erasing must be a probability in [0, 1], got {self.random_erasing}")

    @property
    def mixes(self) -> bool:
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0

    def describe(self) -> str:
        text = (
            f"crop_pad={self.crop_padding},hflip={int(self.hflip)},auto={self.auto_augment},"
            f"mixup={self.mixup_alpha},cutmix={self.cutmix_alpha}"
        )
        if self.auto_augment == "randaugment":
            text += f",ra_m={self.randaugment_magnitude}"
        if self.random_erasing > 0:
            text += f",erase={self.random_erasing}"
        return text


class BatchCollate:
    """collate_fn: stack ``(uint8/float image [C,H,W], label)`` pairs, augment, normalise.

    Output: x float32 ``[B, C, H, W]`` normalised with ``mean``/``std``; y int64 ``[B]``
    (float32 ``[B, K]`` soft labels when mixing is on for this loader).
    Images in ``uint8`` are scaled to [0, 1] first.
    """

    def __init__(
        self,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        num_classes: int,
        augment: AugmentConfig | None = None,
        seed: int = 0,
    ) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32)[None, :, None, None]
        self.std = torch.tensor(std, dtype=torch.float32)[None, :, None, None]
        self.num_classes = num_classes
        self.augment = augment
        self.seed = seed
        self._gen: torch.Generator | None = None
        self._auto = None
        self._erase = None

    def _generator(self) -> torch.Generator:
        if self._gen is None:  # one stream per process, created on first use
            info = torch.utils.data.get_worker_info()
            # workers: DataLoader's per-worker seed (drawn from the loader's seeded generator);
            # main process: the DataModule seed
            s = info.seed if info is not None else self.seed * 1000 + 1
            self._gen = torch.Generator().manual_seed(int(s) % (2**63))
            if self.augment is not None:
                self._auto = _build_auto(self.augment.auto_augment, self.augment.randaugment_magnitude)
                if self.augment.random_erasing > 0:
                    from kornia.augmentation import RandomErasing

                    self._erase = RandomErasing(p=self.augment.random_erasing)
        return self._gen

    def __call__(self, items):
        xs, ys = zip(*items)
        x = torch.stack([torch.as_tensor(v) for v in xs])
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        x = x.float()
        y = torch.as_tensor(ys, dtype=torch.int64)
        a = self.augment
        if a is not None:
            gen = self._generator()
            if a.crop_padding > 0 or a.hflip:
                x = random_crop_flip(x, a.crop_padding, a.hflip, gen)
            if self._auto is not None:
                # kornia draws from torch's global RNG; seed it from our stream for reproducibility
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
                    x = self._auto(x).clamp_(0.0, 1.0)
        x = (x - self.mean) / self.std
        if self._erase is not None and a is not None:
            with torch.random.fork_rng(devices=[]):  # as above: kornia uses the global RNG
                torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
                x = self._erase(x)
        if a is not None and a.mixes:
            x, y = mixup_cutmix(x, y, self.num_classes, a.mixup_alpha, a.cutmix_alpha, gen)
        return x.contiguous(), y
