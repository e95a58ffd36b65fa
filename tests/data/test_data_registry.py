"""Registry and interface contract shared by every DataModule."""

from __future__ import annotations

import lightning as L
import pytest

from lit_snn.data import DATAMODULES, create_datamodule
from lit_snn.data.errors import DatasetNotFoundError

EXPECTED = {
    "digits": (10, 1, False),
    "mnist": (10, 1, False),
    "fashion_mnist": (10, 1, False),
    "cifar10": (10, 3, False),
    "cifar100": (100, 3, False),
    "tiny_imagenet": (200, 3, False),
    "imagenet": (1000, 3, False),
    "nmnist_digits": (10, 2, True),
    "cifar10_dvs": (10, 2, True),
    "dvs_gesture": (11, 2, True),
}


def test_registry_names_are_exactly_the_contract():
    assert set(DATAMODULES) == set(EXPECTED)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as e:
        create_datamodule("kmnist")
    for name in EXPECTED:
        assert name in str(e.value)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_common_constructor_and_metadata(name, tmp_path):
    dm = create_datamodule(name, root=str(tmp_path), batch_size=7, num_workers=0, time_steps=5, seed=3)
    assert isinstance(dm, L.LightningDataModule)
    n_cls, ch, ev = EXPECTED[name]
    assert (dm.num_classes, dm.in_channels, dm.is_event) == (n_cls, ch, ev)
    h, w = dm.image_size
    assert isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0
    assert dm.batch_size == 7 and dm.time_steps == 5 and dm.seed == 3
    assert dm.name == name and dm.root == str(tmp_path)


@pytest.mark.parametrize(
    "name", ["mnist", "fashion_mnist", "cifar10", "cifar100", "tiny_imagenet", "imagenet", "cifar10_dvs",
             "dvs_gesture"]
)
def test_missing_real_dataset_raises_clear_error_without_download(name, tmp_path, no_network):
    extra = {"system_dirs": []} if name == "fashion_mnist" else {}  # not Debian's installed copy
    dm = create_datamodule(name, root=str(tmp_path), **extra)
    with pytest.raises(DatasetNotFoundError) as e:
        dm.setup()
    msg = str(e.value)
    assert str(tmp_path) in msg and "Expected layout" in msg and "Where to get it" in msg
    assert isinstance(e.value, FileNotFoundError)
    assert no_network == []
    assert list(tmp_path.iterdir()) == []  # nothing created / downloaded


def test_name_is_normalised():
    assert type(create_datamodule("NMNIST-digits")).__name__ == "NMNISTDigitsDataModule"
