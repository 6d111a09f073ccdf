"""A minimal rtnetlink client for a container's plumbing: a veth pair made in one request
(host end up on its bridge, peer in the container's namespace), an address, a default
route, a link up or deleted, and the parsing of link-deletion notifications.

pyroute2 (kept for bridges) runs an asyncio loop per request in 0.9: ~1 ms of CPU each,
spent while the shim creates the container beside it. These requests are a few struct
packs. Every request asks for an ack; a kernel error is raised as OSError.
"""

from __future__ import annotations

import os
import socket
import struct

NLMSG_ERROR = 2
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_NEWADDR = 20
RTM_NEWROUTE = 24
RTMGRP_LINK = 0x1

IFF_UP = 0x1
IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_MASTER = 10
IFLA_LINKINFO = 18
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1
IFA_ADDRESS = 1
IFA_LOCAL = 2
RTA_GATEWAY = 5
RT_TABLE_MAIN = 254
RTPROT_STATIC = 4          # what pyroute2 (and `ip route add`) record
RTN_UNICAST = 1

_HDR = struct.Struct("=IHHII")      # nlmsghdr: len, type, flags, seq, pid
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBi")   # ifaddrmsg: family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags


def _attr(kind: int, payload: bytes) -> bytes:
    size = 4 + len(payload)
    return struct.pack("=HH", size, kind) + payload + b"\0" * (-size % 4)


def _name(name: str) -> bytes:
    return name.encode() + b"\0"


def _ifinfo(index: int = 0, up: bool = False) -> bytes:
    flag = IFF_UP if up else 0
    return _IFINFO.pack(socket.AF_UNSPEC, 0, index, flag, flag)


def _messages(data: bytes) -> list[tuple[int, int, int]]:
    """(type, seq, offset of the payload) of each message of a netlink datagram."""
    out = []
    off = 0
    while off + _HDR.size <= len(data):
        length, kind, _, seq, _ = _HDR.unpack_from(data, off)
        if length < _HDR.size:
            break
        out.append((kind, seq, off + _HDR.size))
        off += (length + 3) & ~3
    return out


def deleted_links(data: bytes) -> set[int]:
    """Indexes of the links an rtnetlink multicast datagram reports deleted (AF_UNSPEC
    messages only: a bridge also reports a port leaving it as an AF_BRIDGE RTM_DELLINK)."""
    out = set()
    for kind, _, off in _messages(data):
        if kind == RTM_DELLINK and off + _IFINFO.size <= len(data):
            family, _, index, _, _ = _IFINFO.unpack_from(data, off)
            if family == socket.AF_UNSPEC:
                out.add(index)
    return out


def link_watch() -> socket.socket:
    """A socket receiving the link notifications of the calling thread's namespace."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
    try:
        s.bind((0, RTMGRP_LINK))
    except BaseException:
        s.close()
        raise
    return s


class Rtnl:
    """One rtnetlink socket, in the network namespace of the thread that made it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  socket.NETLINK_ROUTE)
        self.seq = 0
        try:
            self.sock.connect((0, 0))   # the kernel
        except BaseException:
            self.sock.close()
            raise

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def request(self, kind: int, body: bytes, flags: int = 0) -> None:
        self.seq += 1
        self.sock.send(_HDR.pack(_HDR.size + len(body), kind, NLM_F_REQUEST | NLM_F_ACK | flags, self.seq, 0)
                       + body)
        while True:
            data = self.sock.recv(65536)
            for mtype, seq, off in _messages(data):
                if mtype == NLMSG_ERROR and seq == self.seq:
                    err = -struct.unpack_from("=i", data, off)[0]
                    if err:
                        raise OSError(err, os.strerror(err))
                    return

    def add_veth(self, name: str, master: int, mtu: int, peer: str, peer_netns_fd: int, peer_mac: str) -> None:
        """`name` up on bridge `master`; its peer `peer` in the namespace of `peer_netns_fd`
        (down: the kernel cannot open a veth end before the pair is complete)."""
        mac = bytes.fromhex(peer_mac.replace(":", ""))
        peer_info = _ifinfo() + _attr(IFLA_IFNAME, _name(peer)) + \
            _attr(IFLA_NET_NS_FD, struct.pack("=I", peer_netns_fd)) + _attr(IFLA_ADDRESS, mac) + \
            _attr(IFLA_MTU, struct.pack("=I", mtu))
        linkinfo = _attr(IFLA_INFO_KIND, _name("veth")) + \
            _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer_info))
        body = _ifinfo(up=True) + _attr(IFLA_IFNAME, _name(name)) + _attr(IFLA_MTU, struct.pack("=I", mtu)) + \
            _attr(IFLA_MASTER, struct.pack("=I", master)) + _attr(IFLA_LINKINFO, linkinfo)
        self.request(RTM_NEWLINK, body, NLM_F_CREATE | NLM_F_EXCL)

    def set_up(self, index: int) -> None:
        self.request(RTM_NEWLINK, _ifinfo(index, up=True))

    def add_address(self, index: int, address: str, prefixlen: int) -> None:
        addr = socket.inet_aton(address)
        body = _IFADDR.pack(socket.AF_INET, prefixlen, 0, 0, index) + _attr(IFA_LOCAL, addr) + \
            _attr(IFA_ADDRESS, addr)
        self.request(RTM_NEWADDR, body, NLM_F_CREATE | NLM_F_EXCL)

    def add_default_route(self, gateway: str) -> None:
        body = _RTMSG.pack(socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, 0, RTN_UNICAST, 0) + \
            _attr(RTA_GATEWAY, socket.inet_aton(gateway))
        self.request(RTM_NEWROUTE, body, NLM_F_CREATE | NLM_F_EXCL)

    def delete_link(self, index: int) -> None:
        self.request(RTM_DELLINK, _ifinfo(index))
