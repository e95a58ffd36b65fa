"""Fixtures for the data tests: no network, tiny datasets in their exact on-disk formats."""

from __future__ import annotations

import socket

import datafixtures as F
import pytest


class NetworkUsed(AssertionError):
    pass


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open a connection or to start a tonic download fails the test."""
    calls: list = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise NetworkUsed(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    import tonic.dataset
    import tonic.download_utils

    monkeypatch.setattr(tonic.download_utils, "download_url", refuse)
    monkeypatch.setattr(tonic.dataset, "download_and_extract_archive", refuse)
    return calls


@pytest.fixture(scope="session")
def fixture_root(tmp_path_factory):
    """One folder holding every real-dataset fixture (read-only for tests; caches go elsewhere)."""
    root = tmp_path_factory.mktemp("datasets")
    F.write_cifar10(root)
    F.write_cifar100(root)
    F.write_tiny_imagenet(root)
    F.write_imagenet(root / "imagenet")
    F.write_cifar10dvs(root)
    F.write_dvsgesture(root)
    return root
