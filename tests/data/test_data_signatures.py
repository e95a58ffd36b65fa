"""DataModule constructors: each shared argument is declared once, in a base class, and every
DataModule still resolves, through the CLI's parser, to the arguments and defaults it had.

``datamodule_defaults.json`` holds each exported DataModule's resolved defaults as recorded from
the constructors before the shared arguments moved into the base classes.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from jsonargparse import ArgumentParser

import lit_snn.data as data
from lit_snn.data import SNNDataModule

RECORDED = json.loads(Path(__file__).with_name("datamodule_defaults.json").read_text())
# arguments a DataModule lacked (its constructor had drifted from its base's) until each shared
# argument was declared once
GAINED = {
    "DigitsDataModule": {"pin_memory": False, "randaugment_magnitude": 10, "random_erasing": 0.0},
    "NMNISTDigitsDataModule": {"pin_memory": False},
    "TinyImageNetDataModule": {"randaugment_magnitude": 10, "random_erasing": 0.0},
    "ImageNetDataModule": {"randaugment_magnitude": 10, "random_erasing": 0.0},
}
EXPORTED = sorted(
    n for n in data.__all__ if inspect.isclass(getattr(data, n)) and issubclass(getattr(data, n), SNNDataModule)
)


def resolved_defaults(class_name: str) -> dict:
    """``init_args`` of ``data: {class_path: lit_snn.data.<class_name>}`` as ``lit-snn train`` resolves
    them (LightningCLI's ``subclass_mode_data`` is jsonargparse's subclass arguments)."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(SNNDataModule, "data")
    config = parser.parse_object({"data": {"class_path": f"lit_snn.data.{class_name}"}})
    return json.loads(parser.dump(config, format="json", skip_none=False))["data"]["init_args"]


def test_every_exported_datamodule_is_recorded():
    assert set(EXPORTED) == set(RECORDED)


@pytest.mark.parametrize("name", EXPORTED)
def test_resolved_defaults_are_the_recorded_ones(name):
    assert resolved_defaults(name) == {**RECORDED[name], **GAINED.get(name, {})}


@pytest.mark.parametrize("name", [n for n in EXPORTED if n != "SNNDataModule"])
def test_subclass_declares_only_what_differs(name):
    cls = getattr(data, name)
    own = cls.__dict__.get("__init__")
    if own is None:
        return
    inherited: dict = {}
    for base in reversed(cls.__mro__[1:]):
        if issubclass(base, SNNDataModule) and "__init__" in base.__dict__:
            inherited.update({p.name: p.default for p in inspect.signature(base.__init__).parameters.values()
                              if p.default is not p.empty})
    params = inspect.signature(own).parameters.values()
    assert any(p.kind is p.VAR_KEYWORD for p in params), f"{name} must forward the shared arguments with **kwargs"
    for p in params:
        if p.name in inherited:
            assert p.default != inherited[p.name], f"{name} re-declares {p.name} with its base's default"


def test_a_dataset_without_a_reader_says_what_to_define():
    class NoReader(data.StaticDataModule):
        name, num_classes, in_channels, image_size = "no_reader", 2, 1, (4, 4)

    with pytest.raises(TypeError, match=r"NoReader must define read_split\(\) or load_splits\(\)"):
        NoReader().setup()
