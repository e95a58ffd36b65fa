"""The embedded default: sklearn digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lit_snn.data import DigitsDataModule, create_datamodule, seeded_split
from lit_snn.data.augment import AugmentConfig, BatchCollate, mixup_cutmix, random_crop_flip, seeded_global_rng


def _labels(ds):
    return np.asarray(ds.labels)


def test_default_batches_shape_dtype():
    dm = create_datamodule("digits")
    dm.setup()
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        x, y = next(iter(loader))
        assert x.shape == (64, 1, 8, 8) and x.dtype == torch.float32
        assert y.shape == (64,) and y.dtype == torch.int64
        assert 0 <= y.min() and y.max() <= 9
    # normalised: roughly zero mean, unit std over the whole train set
    allx = dm.train_set.images.float()
    z = (allx - dm.mean[0]) / dm.std[0]
    assert abs(z.mean().item()) < 0.05 and abs(z.std().item() - 1) < 0.05


def test_digits_file_reads_as_sklearn_loads_it(monkeypatch):
    """The packaged file, read without importing scikit-learn, and ``load_digits`` (the fallback
    where the file is not found) give the same arrays."""
    from sklearn.datasets import load_digits

    from lit_snn.data import digits

    images, labels = digits.load_digits_arrays()
    d = load_digits()
    assert images.dtype == np.float32 and labels.dtype == np.int64 and images.shape == (1797, 8, 8)
    assert np.array_equal(images, d.images.astype(np.float32) / 16.0) and np.array_equal(labels, d.target)
    monkeypatch.setattr(digits.importlib.util, "find_spec", lambda name: None)
    fallback = digits.load_digits_arrays()
    assert np.array_equal(fallback[0], images) and np.array_equal(fallback[1], labels)


def test_split_sizes_deterministic_disjoint_and_stratified():
    a, b = DigitsDataModule(seed=0), DigitsDataModule(seed=0)
    a.setup()
    b.setup()
    sizes = (len(a.train_set), len(a.val_set), len(a.test_set))
    assert sizes == (len(b.train_set), len(b.val_set), len(b.test_set))
    assert sum(sizes) == 1797
    assert sizes[2] == round(0.2 * 1797) and sizes[1] == round(0.1 * (1797 - sizes[2]))
    for k in ("train", "val", "test"):
        assert np.array_equal(a.split_indices[k], b.split_indices[k])
    idx = np.concatenate([a.split_indices[k] for k in ("train", "val", "test")])
    assert len(np.unique(idx)) == 1797
    counts = np.bincount(_labels(a.test_set), minlength=10)
    assert counts.min() >= 33 and counts.max() <= 39  # ~36 per class
    c = DigitsDataModule(seed=1)
    c.setup()
    assert not np.array_equal(a.split_indices["test"], c.split_indices["test"])


def test_seeded_split_gives_small_sets_a_val_set():
    labels = np.repeat(np.arange(10), 2)  # 2 per class
    tr, va = seeded_split(20, 0.1, 0, labels)
    assert len(va) == 2 and len(tr) == 18 and not set(tr) & set(va)
    _, va2 = seeded_split(20, 0.1, 0, labels)
    assert np.array_equal(va, va2)


def test_upscaling_and_limits():
    dm = DigitsDataModule(image_size=16, batch_size=10, limit_train=25, limit_test=12)
    dm.setup()
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (10, 1, 16, 16) and dm.image_size == (16, 16)
    assert len(dm.train_set) == 25 and len(dm.test_set) == 12
    assert sum(len(b[1]) for b in dm.train_dataloader()) == 25


def test_train_shuffle_is_seeded_and_eval_is_not_shuffled():
    def first_labels(seed):
        dm = DigitsDataModule(seed=seed)
        dm.setup()
        return next(iter(dm.train_dataloader()))[1]

    assert torch.equal(first_labels(0), first_labels(0))
    dm = DigitsDataModule()
    dm.setup()
    y = torch.cat([b[1] for b in dm.test_dataloader()])
    assert torch.equal(y, torch.as_tensor(_labels(dm.test_set)))


def test_augmentation_off_by_default_and_only_on_train():
    dm = DigitsDataModule(batch_size=1797, crop_padding=2, hflip=True, mixup_alpha=0.4)
    dm.setup()
    x_val, y_val = next(iter(dm.val_dataloader()))
    assert y_val.dtype == torch.int64  # never mixed
    ref = (dm.val_set.images.float() - dm.mean[0]) / dm.std[0]
    assert torch.allclose(x_val, ref)
    _, y_tr = next(iter(dm.train_dataloader()))
    assert y_tr.shape == (len(dm.train_set), 10) and y_tr.dtype == torch.float32
    assert torch.allclose(y_tr.sum(1), torch.ones(len(y_tr)))
    assert DigitsDataModule().augment == AugmentConfig()  # all off


def test_collate_with_every_augmentation_off_only_normalises():
    items = [(torch.rand(1, 8, 8), k % 10) for k in range(12)]
    off = BatchCollate((0.3,), (0.4,), 10, AugmentConfig())
    assert off.augment is None  # nothing to draw: no RNG fork per batch
    x, y = off(items)
    assert torch.equal(x, (torch.stack([i for i, _ in items]) - 0.3) / 0.4)
    assert y.tolist() == [k % 10 for k in range(12)]
    for field in (dict(crop_padding=1), dict(hflip=True), dict(auto_augment="trivialaugment"),
                  dict(random_erasing=0.1), dict(mixup_alpha=0.2), dict(cutmix_alpha=1.0)):
        assert AugmentConfig(**field).active, field


def test_crop_flip_functions():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4) + 1
    with seeded_global_rng(torch.Generator().manual_seed(0)):
        y = random_crop_flip(x, padding=0, flip=True)
    for i in range(2):  # each sample either unchanged or mirrored
        assert torch.equal(y[i], x[i]) or torch.equal(y[i], x[i].flip(-1))
    with seeded_global_rng(torch.Generator().manual_seed(1)):
        y = random_crop_flip(x, padding=1, flip=False)
    assert y.shape == x.shape
    for i in range(2):  # a crop of the zero-padded image: values come from x or are 0
        vals = set(y[i].flatten().tolist())
        assert vals <= set(x[i].flatten().tolist()) | {0.0}


def _mixed(mixup_alpha, cutmix_alpha, seed, b=6):
    """A batch whose sample i has class i, mixed: soft label row i = the shares of each sample in it."""
    x = torch.rand(b, 1, 8, 8, generator=torch.Generator().manual_seed(99))
    with seeded_global_rng(torch.Generator().manual_seed(seed)):
        xm, ym = mixup_cutmix(x, torch.arange(b), b, mixup_alpha, cutmix_alpha)
    assert ym.shape == (b, b) and ym.dtype == torch.float32 and torch.allclose(ym.sum(1), torch.ones(b))
    return x, xm, ym


def test_cutmix_soft_labels_are_the_pasted_shares():
    for seed in range(5):
        x, xm, ym = _mixed(0.0, 1.0, seed)
        for i in range(len(x)):
            kept = (xm[i] == x[i]).float().mean().item()  # one box from the partner, the rest own
            assert abs(kept - ym[i, i].item()) < 1e-6
            if kept < 1:  # the pasted pixels are the partner's, the class holding the rest of the label
                others = ym[i].clone()
                others[i] = -1
                pasted = xm[i] != x[i]
                assert torch.equal(xm[i][pasted], x[int(others.argmax())][pasted])


def test_mixup_soft_labels_weigh_the_images():
    for seed in range(5):
        x, xm, ym = _mixed(0.4, 0.0, seed)
        assert torch.allclose(xm, torch.einsum("ik,kchw->ichw", ym, x), atol=1e-6)
    # one lambda ~ Beta(alpha, alpha) per batch: every mixed sample keeps the same share of itself
    own = ym.diagonal()[ym.diagonal() < 1]  # self-paired samples stay whole
    assert torch.allclose(own, own[0].expand_as(own))


def test_mixup_or_cutmix_50_50_and_reproducible():
    kinds = []
    for seed in range(40):
        x, xm, ym = _mixed(0.2, 1.0, seed)
        cut = set(xm.flatten().tolist()) <= set(x.flatten().tolist())  # cutmix only moves pixels
        kinds.append(cut)
        again = _mixed(0.2, 1.0, seed)
        assert torch.equal(again[1], xm) and torch.equal(again[2], ym)
    assert 10 <= sum(kinds) <= 30


def test_train_batches_reproducible_under_a_seed_and_global_rng_untouched():
    kw = dict(batch_size=64, image_size=16, crop_padding=2, hflip=True, auto_augment="randaugment",
              random_erasing=0.5, mixup_alpha=0.2, cutmix_alpha=1.0)

    def first_batch(seed):
        dm = DigitsDataModule(seed=seed, **kw)
        dm.setup()
        return next(iter(dm.train_dataloader()))

    state = torch.get_rng_state()
    (xa, ya), (xb, yb) = first_batch(0), first_batch(0)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    xc, _ = first_batch(1)
    assert not torch.equal(xa, xc)


def test_randaugment_and_trivialaugment_batches():
    pytest.importorskip("kornia")
    for kind in ("randaugment", "trivialaugment"):
        dm = DigitsDataModule(auto_augment=kind, image_size=16, batch_size=32)
        dm.setup()
        x, y = next(iter(dm.train_dataloader()))
        assert x.shape == (32, 1, 16, 16) and torch.isfinite(x).all() and y.dtype == torch.int64
    with pytest.raises(ValueError):
        DigitsDataModule(auto_augment="autoaugment")
