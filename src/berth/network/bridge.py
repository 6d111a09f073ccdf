"""The bridge driver's kernel side, through pyroute2 (netlink): bridges, veth pairs, network
namespaces bind-mounted under the daemon's netns directory, addresses and routes.

Only the daemon imports this module (pyroute2 costs ~180 ms to import; the CLI must not
pay it). Every function is synchronous; the engine runs them in threads.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import select
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from berth import kernel
from berth.errors import BerthError

T = TypeVar("T")
DEFAULT_MTU = 1500
IFA_F_NODAD = 0x02   # linux/if_addr.h: no duplicate address detection, usable at once
SCOPE_UNIVERSE = 0   # a global address (not link-local, scope 253)


def _sysctl(path: str, value: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        Path(path).write_text(value)


def enable_ip_forward() -> None:
    _sysctl("/proc/sys/net/ipv4/ip_forward", "1")


def enable_ipv6_forward() -> None:
    """Routing between an IPv6 bridge and the host's uplink. This turns the host into an
    IPv6 router on every interface (router mode ignores router advertisements unless
    accept_ra=2), so it is only done once an IPv6 network exists, as Docker does."""
    _sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1")


def link_index(ipr: IPRoute, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def link_exists(name: str) -> bool:
    with IPRoute() as ipr:
        return link_index(ipr, name) is not None


def ensure_bridge(name: str, gateway: str, prefixlen: int, mtu: int = DEFAULT_MTU,
                  gateway6: str = "", prefixlen6: int = 0) -> None:
    """Create (or adopt) the bridge, give it exactly the gateway addresses given (IPv4
    and/or IPv6; "" for a family the network does not have, e.g. no IPv4 on an IPv6-only
    network: then the bridge holds none of that family; its link-local address is left
    alone), bring it up."""
    with IPRoute() as ipr:
        idx = link_index(ipr, name)
        if idx is None:
            try:
                ipr.link("add", ifname=name, kind="bridge")
            except NetlinkError as exc:
                raise BerthError(f"cannot create bridge {name}: {exc}") from None
            idx = link_index(ipr, name)
            assert idx is not None
        if gateway6:
            _sysctl(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "0")
        _set_addresses(ipr, idx, socket.AF_INET, {(gateway, prefixlen)} if gateway else set())
        _set_addresses(ipr, idx, socket.AF_INET6, {(gateway6, prefixlen6)} if gateway6 else set())
        ipr.link("set", index=idx, mtu=mtu, state="up")
    # published ports reached from 127.0.0.1 are DNAT'ed out of this bridge
    _sysctl(f"/proc/sys/net/ipv4/conf/{name}/route_localnet", "1")


def _set_addresses(ipr: IPRoute, idx: int, family: int, want: set[tuple[str, int]]) -> None:
    """Make the link's global addresses of `family` exactly `want` ((address, prefixlen));
    IPv6 ones skip duplicate address detection (the gateway must answer at once)."""
    have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=idx, family=family)
            if a["scope"] == SCOPE_UNIVERSE}
    for addr, plen in have - want:
        ipr.addr("del", index=idx, address=addr, prefixlen=plen)
    for addr, plen in want - have:
        _add_address(ipr, idx, addr, plen)


def _add_address(ipr: IPRoute, idx: int, address: str, prefixlen: int) -> None:
    if ":" in address:
        ipr.addr("add", index=idx, address=address, prefixlen=prefixlen, flags=IFA_F_NODAD)
    else:
        ipr.addr("add", index=idx, address=address, prefixlen=prefixlen)


def delete_link(name: str) -> None:
    """Delete a link; returns once it is gone from the host's view.

    The kernel unlists a deleted device at once, then, inside the same netlink request,
    waits for an RCU barrier before freeing it: ~20 ms here with nothing left to see. So
    a thread makes the request and we return at the RTM_DELLINK notification for the
    link (the request ending first, with an error or not, also returns)."""
    ipr = IPRoute()
    try:
        idx = link_index(ipr, name)
    except BaseException:
        ipr.close()
        raise
    if idx is None:
        ipr.close()
        return
    watch = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
    ended_r, ended_w = os.pipe2(os.O_CLOEXEC)

    def delete() -> None:
        try:
            with contextlib.suppress(NetlinkError):
                ipr.link("del", index=idx)
        finally:
            ipr.close()
            with contextlib.suppress(OSError):   # the waiter may be gone (it closed its end)
                os.write(ended_w, b"x")
            os.close(ended_w)

    try:
        watch.bind((0, _RTMGRP_LINK))   # before the request: its notification cannot be missed
        threading.Thread(target=delete, name="berth-linkdel").start()
    except BaseException:
        ipr.close()
        os.close(ended_w)
        os.close(ended_r)
        watch.close()
        raise
    try:
        while True:
            ready, _, _ = select.select([watch, ended_r], [], [])
            if ended_r in ready:
                return
            try:
                data = watch.recv(65536)
            except OSError:   # ENOBUFS: notifications were lost; wait for the request
                os.read(ended_r, 1)
                return
            if idx in _deleted_links(data):
                return
    finally:
        watch.close()
        os.close(ended_r)


_RTMGRP_LINK = 1


def _deleted_links(data: bytes) -> set[int]:
    """Indexes of the links an rtnetlink multicast batch reports deleted (AF_UNSPEC
    messages only: a bridge also reports a port leaving it as an AF_BRIDGE RTM_DELLINK);
    pyroute2's rtnetlink marshal parses the batch."""
    return {msg["index"] for msg in MarshalRtnl().parse(data)
            if msg.get("event") == "RTM_DELLINK" and msg["family"] == socket.AF_UNSPEC}


def create_netns(path: str) -> None:
    """A new network namespace kept alive by a bind mount on `path`.

    A throw-away thread unshares its own network namespace (allowed for one thread of a
    multi-threaded process, unlike a mount namespace) and bind-mounts it on `path`: no
    fork, and ~0.6 ms where util-linux `unshare --net=PATH` took ~2.5 ms. It is the
    same mount `unshare` makes, so the netns directory needs no shared self bind mount."""
    if os.path.exists(path):
        raise BerthError(f"network namespace {path} already exists")
    with open(path, "x"):
        pass

    def make() -> None:
        kernel.unshare(kernel.CLONE_NEWNET)
        kernel.mount(f"/proc/self/task/{threading.get_native_id()}/ns/net", path, None, kernel.MS_BIND)
    try:
        _in_thread(make)
    except OSError as exc:
        remove_netns(path)
        raise BerthError(f"cannot create network namespace {path}: {exc}") from None
    except BaseException:
        remove_netns(path)
        raise


def netns_alive(path: str) -> bool:
    """True when `path` is a bind-mounted network namespace."""
    try:
        return os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev
    except OSError:
        return False


def remove_netns(path: str) -> None:
    with contextlib.suppress(OSError):
        kernel.umount(path, kernel.MNT_DETACH)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def release_netns_dir(path: str) -> None:
    """Undo the shared self bind mount pyroute2 (like iproute2) puts on the netns dir."""
    with open("/proc/self/mountinfo") as f:
        mounted = any(line.split()[4] == path for line in f)
    if mounted:
        with contextlib.suppress(OSError):
            kernel.umount(path, kernel.MNT_DETACH)


def attach(netns_path: str, bridge: str, host_if: str, ifname: str, address: str, prefixlen: int,
           gateway: str | None, mac: str, mtu: int = DEFAULT_MTU, address6: str = "",
           prefixlen6: int = 0, gateway6: str | None = None,
           link_local: list[tuple[str, int]] = (), sysctls: list[str] = ()) -> bool:
    """A veth pair: `host_if` on `bridge`, the peer made directly inside the namespace as
    `ifname` with `mac` and, when given, the IPv4 `address` ("" on an IPv6-only network)
    with a default route via `gateway` (unless None), the IPv6 `address6` (no duplicate
    address detection: usable when the container starts) with an IPv6 default route via
    `gateway6`, and the `link_local` (address, prefix length) pairs (--link-local-ip); the
    namespace's loopback is brought up too. Netlink inside the namespace goes through a
    thread that joined it (much cheaper than pyroute2's forked helper).

    The endpoint's `sysctls` (`net.X.Y.IFNAME.Z=V`) are set once the addresses are on, as
    libnetwork does; one of them (disable_ipv6) may take the IPv6 address away: then there
    is no IPv6 route either, and False is returned (libnetwork releases the address)."""
    with IPRoute() as ipr:
        br = link_index(ipr, bridge)
        if br is None:
            raise BerthError(f"bridge {bridge} does not exist")
        fd = os.open(netns_path, os.O_RDONLY)
        try:
            ipr.link("add", ifname=host_if, kind="veth", mtu=mtu,
                     peer={"ifname": ifname, "net_ns_fd": fd, "address": mac, "mtu": mtu})
        except NetlinkError as exc:
            raise BerthError(f"cannot create veth {host_if}: {exc}") from None
        finally:
            os.close(fd)
        try:
            hidx = link_index(ipr, host_if)
            ipr.link("set", index=hidx, master=br, state="up")
            _sysctl(f"/sys/class/net/{host_if}/brport/hairpin_mode", "1")

            def configure() -> bool:
                with IPRoute() as ns:
                    lo = link_index(ns, "lo")
                    if lo is not None:
                        ns.link("set", index=lo, state="up")
                    idx = link_index(ns, ifname)
                    if address:
                        _add_address(ns, idx, address, prefixlen)
                    if address6:
                        _add_address(ns, idx, address6, prefixlen6)
                    for extra, plen in link_local:
                        try:
                            _add_address(ns, idx, extra, plen)
                        except NetlinkError as exc:   # e.g. an IPv6 one where IPv6 is off
                            raise BerthError(f"error setting interface {ifname} link local IPs to "
                                             f"{extra}/{plen}: {exc.args[-1] if exc.args else exc}") from None
                    try:
                        set_interface_sysctls(ifname, sysctls)
                    except BerthError as exc:
                        raise BerthError(f"failed to add interface {host_if} to sandbox: {exc}") from None
                    kept6 = bool(address6) and (not sysctls or _has_address(ns, idx, address6))
                    ns.link("set", index=idx, state="up")
                    if address and gateway:
                        ns.route("add", dst="0.0.0.0/0", gateway=gateway)
                    if kept6 and gateway6:
                        ns.route("add", dst="::/0", gateway=gateway6, family=socket.AF_INET6)
                    return kept6 or not address6
            return in_netns(netns_path, configure)
        except BaseException:
            with contextlib.suppress(NetlinkError):
                ipr.link("del", ifname=host_if)
            raise


def _has_address(ipr: IPRoute, idx: int, address: str) -> bool:
    return any(a.get_attr("IFA_ADDRESS") == address for a in ipr.get_addr(index=idx, family=socket.AF_INET6))


def _go_error(op: str, path: str, exc: OSError) -> str:
    """An OSError as Go's *PathError words it (`write PATH: invalid argument`)."""
    return f"{op} {path}: {os.strerror(exc.errno).lower() if exc.errno else exc}"


def set_interface_sysctls(ifname: str, sysctls: list[str]) -> None:
    """libnetwork's setSysctls, in the calling thread's network namespace (/proc/sys/net is
    the namespace of the thread that opens it): `net.X.Y.IFNAME.Z=V` is written to
    /proc/sys/net/X/Y/<ifname>/Z, unless it holds V already (/proc/sys/net may be
    read-only). Errors are libnetwork's; a path outside /proc/sys/net is no sysctl file."""
    for sysctl in sysctls:
        key, eq, value = sysctl.partition("=")
        if not eq:
            raise BerthError(f"expected sysctl '{sysctl}' to have format name=value")
        parts = key.split(".")
        if len(parts) != 5:
            raise BerthError(f"expected sysctl '{sysctl}' to have format net.X.Y.IFNAME.Z")
        # joined as Go's filepath.Join: an absolute part does not restart the path
        path = posixpath.normpath("/".join(["/proc/sys", *parts[:3], ifname, parts[4]]))
        if not path.startswith("/proc/sys/net/") or not os.path.isfile(path):
            raise BerthError(f"{path} is not a sysctl file")
        try:
            with open(path) as f:
                current = f.read().strip()
        except OSError as exc:
            raise BerthError(f"unable to read '{path}': {_go_error('read', path, exc)}") from None
        if current == value:
            continue
        op = "open"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
            try:
                op = "write"
                os.write(fd, value.encode())
            finally:
                os.close(fd)
        except OSError as exc:
            raise BerthError(f"unable to write to '{path}': {_go_error(op, path, exc)}") from None


def detach(host_if: str) -> None:
    """Delete the veth pair (both ends go)."""
    delete_link(host_if)


def in_netns(path: str, fn: Callable[[], T]) -> T:
    """Run `fn` in a throw-away thread that has joined the network namespace at `path`
    (sockets it creates stay in that namespace)."""
    def run() -> T:
        target = os.open(path, os.O_RDONLY)
        try:
            kernel.setns(target, kernel.CLONE_NEWNET)
        finally:
            os.close(target)
        return fn()
    return _in_thread(run)


def _in_thread(fn: Callable[[], T]) -> T:
    """Run `fn` in a new thread and return its result (or raise its exception): for
    namespace changes that must not stick to the calling thread."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc

    t = threading.Thread(target=run, name="berth-netns")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def bind_in_netns(path: str, address: tuple[str, int], kind: int) -> socket.socket:
    def make() -> socket.socket:
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(address)
            if kind == socket.SOCK_STREAM:
                s.listen(64)
            s.setblocking(False)
        except OSError:
            s.close()
            raise
        return s
    try:
        return in_netns(path, make)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise BerthError(f"cannot start the embedded DNS in {path}: {exc}") from None
        raise
