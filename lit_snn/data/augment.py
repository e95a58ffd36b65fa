"""Batch-level augmentation for static images, applied inside the DataLoader's collate_fn.

Everything runs on CPU in the loader workers on whole batches, so batches that leave a
DataLoader are final (augmented + normalised), with or without a Trainer. The operations are
``kornia.augmentation``'s (kornia is a required dependency), in this order:

1. ``RandomCrop`` after zero padding by ``crop_padding``, then ``RandomHorizontalFlip``, per sample;
2. ``auto.RandAugment`` (2 ops, magnitude ``randaugment_magnitude`` of 30) or
   ``auto.TrivialAugment``, on [0, 1] images;
3. normalisation with the dataset's mean/std;
4. ``RandomErasing`` with probability ``random_erasing`` per sample (torchvision's default box:
   area 2-33 %, aspect 0.3-3.3, value 0), as torchvision's ``RandomErasing`` after ``Normalize``;
5. ``RandomMixUpV2`` / ``RandomCutMixV2`` (see :func:`mixup_cutmix`): training targets become
   soft labels, float32 ``[B, num_classes]`` (``F.cross_entropy`` accepts both forms; take
   ``argmax`` for accuracy). Validation/test loaders never mix.

kornia draws from torch's global RNG: each batch is augmented inside :func:`seeded_global_rng`,
a fork of it seeded from the collate's own generator, so a seed fixes every augmentation and
the caller's global RNG is left as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.distributions import Beta

from ..errors import ConfigError

AUTO_AUGMENTS = ("none", "randaugment", "trivialaugment")


def _kornia():
    """``kornia.augmentation``, imported on first use: a run without augmentation (the embedded
    default) does not pay its 0.35 s import."""
    import kornia.augmentation

    return kornia.augmentation
_MIX_KEYS = ["input", "class"]  # kornia mixes return (images, [own label, partner label, lambda] rows)


@contextmanager
def seeded_global_rng(gen: torch.Generator) -> Iterator[None]:
    """Run the block on a fork of torch's global CPU RNG seeded from ``gen`` (restored afterwards).

    Seeds the CPU generator only (kornia draws there; the collate runs on the CPU):
    ``torch.manual_seed`` would also queue a lazy seed for every accelerator, and each queued call
    records a formatted Python stack (about 1 ms a batch under a Trainer's deep stack)."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        yield


def random_crop_flip(x: torch.Tensor, padding: int, flip: bool) -> torch.Tensor:
    """Per-sample random crop after zero padding by ``padding``, then random horizontal flip.

    x: float ``[B, C, H, W]`` -> same shape. Draws from torch's global RNG (kornia).
    """
    if padding > 0:
        x = _kornia().RandomCrop(tuple(x.shape[-2:]), padding=padding, fill=0.0)(x)
    if flip:
        x = _kornia().RandomHorizontalFlip(p=0.5)(x)
    return x


def _soft_labels(rows: torch.Tensor, num_classes: int, partner_share: torch.Tensor) -> torch.Tensor:
    """kornia's ``[B, 3]`` (own label, partner label, ...) rows -> float32 ``[B, K]`` targets."""
    own = F.one_hot(rows[:, 0].long(), num_classes).float()
    partner = F.one_hot(rows[:, 1].long(), num_classes).float()
    share = partner_share.float()[:, None]
    return (1 - share) * own + share * partner


def mixup_cutmix(
    x: torch.Tensor, y: torch.Tensor, num_classes: int, mixup_alpha: float, cutmix_alpha: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix the batch with a permutation of itself by cutmix or mixup; draws from torch's global RNG.

    x ``[B, C, H, W]``, y int64 ``[B]`` -> x ``[B, C, H, W]``, soft y float32 ``[B, K]`` whose
    weights are the exact shares of each image. As in the AR-LIF recipe (torchvision's
    ``RandomMixup``/``RandomCutmix``), one lambda ~ Beta(alpha, alpha) serves the whole batch.
    Partners are kornia's random permutation, where torchvision rolls the batch by one: a sample
    that draws itself (about one a batch) stays whole, with its own hard label.
    """
    # Kept by hand: kornia's one-of container (AugmentationSequential(random_apply=1)) refuses
    # class labels for mix children, so a coin decides (50/50 when both alphas are set, as the
    # recipe's RandomChoice).
    use_cutmix = cutmix_alpha > 0 and (mixup_alpha <= 0 or torch.rand(()).item() < 0.5)
    if use_cutmix:
        # same_on_batch: one box per batch; use_correct_lambda: lambda = share of the own image
        cutmix = _kornia().RandomCutMixV2(beta=cutmix_alpha, same_on_batch=True, use_correct_lambda=True,
                                          data_keys=_MIX_KEYS)
        x, rows = cutmix(x, y)
        return x, _soft_labels(rows[0], num_classes, 1 - rows[0][:, 2])
    # Kept by hand: kornia's mixup draws lambda uniformly from `lambda_val`, not from
    # Beta(alpha, alpha); the Beta draw is made here and pinned as the range.
    lam = float(Beta(float(mixup_alpha), float(mixup_alpha)).sample())
    x, rows = _kornia().RandomMixUpV2(lambda_val=(lam, lam), data_keys=_MIX_KEYS)(x, y)
    return x, _soft_labels(rows, num_classes, rows[:, 2])


def _auto_policy(kind: str, magnitude: int):
    if kind == "randaugment":
        return _kornia().auto.RandAugment(n=2, m=magnitude)
    if kind == "trivialaugment":
        return _kornia().auto.TrivialAugment()
    return None


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
            raise ConfigError(f"auto_augment must be one of {AUTO_AUGMENTS}, got '{self.auto_augment}'")
        if not 0 < self.randaugment_magnitude < 30:
            raise ConfigError(f"randaugment_magnitude must be in 1..29, got {self.randaugment_magnitude}")
        if not 0.0 <= self.random_erasing <= 1.0:
            raise ConfigError(f"random_erasing must be a probability in [0, 1], got {self.random_erasing}")

    @property
    def mixes(self) -> bool:
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0

    @property
    def active(self) -> bool:
        """Whether any augmentation is on (else batches are only normalised)."""
        return (self.crop_padding > 0 or self.hflip or self.auto_augment != "none" or self.random_erasing > 0
                or self.mixes)


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
        self.augment = augment if augment is not None and augment.active else None  # all off: only normalise
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
                self._auto = _auto_policy(self.augment.auto_augment, self.augment.randaugment_magnitude)
                if self.augment.random_erasing > 0:
                    self._erase = _kornia().RandomErasing(p=self.augment.random_erasing)
        return self._gen

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def _augmented(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.augment
        x = random_crop_flip(x, a.crop_padding, a.hflip)
        if self._auto is not None:
            x = self._auto(x).clamp_(0.0, 1.0)
        x = self._normalise(x)
        if self._erase is not None:
            x = self._erase(x)
        if a.mixes:
            x, y = mixup_cutmix(x, y, self.num_classes, a.mixup_alpha, a.cutmix_alpha)
        return x, y

    def __call__(self, items):
        xs, ys = zip(*items)
        x = torch.stack([torch.as_tensor(v) for v in xs])
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        y = torch.as_tensor(ys, dtype=torch.int64)
        if self.augment is None:
            return self._normalise(x).contiguous(), y
        with seeded_global_rng(self._generator()):
            x, y = self._augmented(x, y)
        return x.contiguous(), y
