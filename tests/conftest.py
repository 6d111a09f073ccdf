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


_FORWARDING6 = "/proc/sys/net/ipv6/conf/all/forwarding"


@pytest.fixture(scope="session", autouse=True)
def host_ipv6_forwarding() -> Iterator[None]:
    """The test daemons' IPv6 networks turn IPv6 forwarding on, as berthd (and dockerd) do
    and leave it: the run puts back what the host had."""
    try:
        with open(_FORWARDING6) as f:
            before = f.read().strip()
    except OSError:
        yield
        return
    yield
    try:
        with open(_FORWARDING6, "w") as f:
            f.write(before)
    except OSError:
        pass


@pytest.fixture(scope="session")
def run_names() -> Iterator[RunNames]:
    names = new_run_names()
    names.root.mkdir(parents=True, exist_ok=True)
    yield names
    shutil.rmtree(names.root, ignore_errors=True)


@pytest.fixture(scope="session")
def busybox_tar(run_names: RunNames) -> str:
    return str(busybox_rootfs_tar(run_names.root / "busybox-rootfs.tar"))
