"""Namespaces: which to create, which to join by path, and bringing up loopback in a new
network namespace."""

from __future__ import annotations

import os
import struct

from berth import kernel
from berth.runtime.errors import RuntimeFailure

# join order: user first (it grants rights over the others), mount last (paths change after)
JOIN_ORDER = ["user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount"]
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
AF_INET = 2
SOCK_DGRAM = 2


def plan(namespaces) -> tuple[int, list[tuple[str, str]]]:
    """(unshare flags for new namespaces, [(type, path)] to join in order)."""
    flags = 0
    join: list[tuple[str, str]] = []
    seen = set()
    for ns in namespaces or []:
        if ns.type not in kernel.NAMESPACE_FLAGS:
            raise RuntimeFailure(f"unknown namespace type {ns.type!r}")
        if ns.type in seen:
            raise RuntimeFailure(f"namespace {ns.type!r} is listed twice")
        seen.add(ns.type)
        if ns.path:
            join.append((ns.type, ns.path))
        else:
            flags |= kernel.NAMESPACE_FLAGS[ns.type]
    join.sort(key=lambda item: JOIN_ORDER.index(item[0]))
    return flags, join


def open_paths(join: list[tuple[str, str]]) -> list[tuple[str, int]]:
    out = []
    try:
        for kind, path in join:
            try:
                out.append((kind, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
            except OSError as exc:
                raise RuntimeFailure(f"cannot open {kind} namespace {path}: {exc.strerror}") from None
    except BaseException:
        for _, fd in out:
            os.close(fd)
        raise
    return out


def join(fds: list[tuple[str, int]]) -> None:
    for kind, fd in fds:
        try:
            kernel.setns(fd, kernel.NAMESPACE_FLAGS[kind])
        except OSError as exc:
            raise RuntimeFailure(f"cannot join {kind} namespace: {exc.strerror}") from None
        finally:
            os.close(fd)


def loopback_up() -> None:
    # through kernel's ctypes calls: importing even the C module behind `socket` costs
    # ~0.5 ms in the init, on the path to the container's exec
    ifreq = struct.Struct("16sh22x")  # struct ifreq: name, then ifr_flags in the union
    fd = kernel.socket(AF_INET, SOCK_DGRAM)
    try:
        flags = ifreq.unpack(kernel.ioctl(fd, SIOCGIFFLAGS, ifreq.pack(b"lo", 0)))[1]
        kernel.ioctl(fd, SIOCSIFFLAGS, ifreq.pack(b"lo", flags | IFF_UP))
    finally:
        os.close(fd)
