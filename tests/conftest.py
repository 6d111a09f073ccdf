"""Session-wide fixtures: the run's unique names and a busybox rootfs tar.

Area fixtures (a running berthd, a registry, a dockerd peer) live in tests/fixtures/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from support import RunNames, busybox_rootfs_tar, new_run_names

pytest_plugins = ["fixtures.daemon", "fixtures.dockerd", "fixtures.registry"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="needs root (namespaces, mounts, cgroups)")
        for item in items:
            if "root" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def run_names() -> Iterator[RunNames]:
    names = new_run_names()
    names.root.mkdir(parents=True, exist_ok=True)
    yield names
    shutil.rmtree(names.root, ignore_errors=True)


@pytest.fixture(scope="session")
def busybox_tar(run_names: RunNames) -> str:
    return str(busybox_rootfs_tar(run_names.root / "busybox-rootfs.tar"))
