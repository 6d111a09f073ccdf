"""The Engine API's IPAM.Config for a dual-stack network: one IPv4 and one IPv6 entry."""

from __future__ import annotations

import pytest

from berth.api.networks import ipam_by_version
from berth.errors import InvalidParameter


def test_ipam_config_entries_are_split_by_version() -> None:
    got = ipam_by_version([{"Subnet": "fd00:1::/64", "Gateway": "fd00:1::1"}, {"Subnet": "10.1.0.0/24"}])
    assert got == {6: {"Subnet": "fd00:1::/64", "Gateway": "fd00:1::1"}, 4: {"Subnet": "10.1.0.0/24"}}
    assert ipam_by_version([{"Gateway": "fd00::1"}]) == {6: {"Gateway": "fd00::1"}}
    with pytest.raises(InvalidParameter, match="one IPv6 subnet"):
        ipam_by_version([{"Subnet": "fd00:1::/64"}, {"Subnet": "fd00:2::/64"}])
