"""The embedded default: sklearn digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lit_snn.data import DigitsDataModule, create_datamodule
from lit_snn.data.augment import mixup_cutmix, random_crop_flip
from lit_snn.data.static import seeded_split


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
    assert a.describe()["n_test"] == sizes[2]


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
    plain = DigitsDataModule()
    assert plain.augment.describe() == "crop_pad=0,hflip=0,auto=none,mixup=0.0,cutmix=0.0"


def test_crop_flip_and_cutmix_functions():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4) + 1
    y = random_crop_flip(x, padding=0, flip=True, gen=g)
    for i in range(2):  # each sample either unchanged or mirrored
        assert torch.equal(y[i], x[i]) or torch.equal(y[i], x[i].flip(-1))
    y = random_crop_flip(x, padding=1, flip=False, gen=torch.Generator().manual_seed(1))
    assert y.shape == x.shape
    for i in range(2):  # a crop of the zero-padded image: values come from x or are 0
        vals = set(y[i].flatten().tolist())
        assert vals <= set(x[i].flatten().tolist()) | {0.0}
    labels = torch.tensor([0, 1])
    xm, ym = mixup_cutmix(x, labels, 3, 0.0, 1.0, torch.Generator().manual_seed(2))
    lam = ym[0, 0].item()  # share of sample 0 kept in mixed sample 0
    kept = (xm[0] == x[0]).float().mean().item()
    assert abs(kept - lam) < 1e-6 and torch.allclose(ym.sum(1), torch.ones(2))


def test_randaugment_and_trivialaugment_batches():
    pytest.importorskip("kornia")
    for kind in ("randaugment", "trivialaugment"):
        dm = DigitsDataModule(auto_augment=kind, image_size=16, batch_size=32)
        dm.setup()
        x, y = next(iter(dm.train_dataloader()))
        assert x.shape == (32, 1, 16, 16) and torch.isfinite(x).all() and y.dtype == torch.int64
    with pytest.raises(ValueError):
        DigitsDataModule(auto_augment="autoaugment")
