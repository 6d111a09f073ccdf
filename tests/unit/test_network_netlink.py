"""berth.network.netlink's pure parts: attributes, and link-deletion notifications."""

from __future__ import annotations

import socket
import struct

from berth.network import netlink


def _msg(kind: int, family: int, index: int) -> bytes:
    body = struct.pack("=BxHiII", family, 1, index, 0, 0) + netlink._attr(netlink.IFLA_IFNAME, b"eth0\0")
    return struct.pack("=IHHII", 16 + len(body), kind, 0, 0, 0) + body


def test_attributes_are_padded_to_four_bytes() -> None:
    a = netlink._attr(netlink.IFLA_IFNAME, b"veth\0")
    assert struct.unpack_from("=HH", a) == (9, netlink.IFLA_IFNAME)
    assert len(a) == 12 and a.endswith(b"\0\0\0")


def test_deleted_links_reads_every_message_of_a_datagram() -> None:
    data = _msg(netlink.RTM_NEWLINK, socket.AF_UNSPEC, 3) + _msg(netlink.RTM_DELLINK, socket.AF_UNSPEC, 7) \
        + _msg(netlink.RTM_DELLINK, socket.AF_UNSPEC, 9)
    assert netlink.deleted_links(data) == {7, 9}


def test_a_bridge_port_leaving_is_not_a_deleted_link() -> None:
    assert netlink.deleted_links(_msg(netlink.RTM_DELLINK, socket.AF_BRIDGE, 7)) == set()


def test_truncated_datagrams_are_ignored() -> None:
    data = _msg(netlink.RTM_DELLINK, socket.AF_UNSPEC, 7)
    assert netlink.deleted_links(data[:20]) == set()
    assert netlink.deleted_links(struct.pack("=IHHII", 0, netlink.RTM_DELLINK, 0, 0, 0)) == set()
