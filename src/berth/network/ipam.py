"""IP address management (pure): subnets, gateways, address allocation, collision checks.

Nothing here touches the kernel; the host's routes arrive as text (`/proc/net/route`,
`/proc/net/ipv6_route`) so the logic is unit-testable without root. Allocation state lives
in the database (the caller passes the addresses already taken). IPv4 and IPv6 share the
functions; `version` says which family a parse expects.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Iterable
from pathlib import Path

from berth.errors import Conflict, InvalidParameter

IPv4Net = ipaddress.IPv4Network
IPv4Addr = ipaddress.IPv4Address
IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address

# Docker's default local address pools: 172.17-31.0.0/16, then 192.168.0.0/16 cut into /20s.
DEFAULT_POOLS: tuple[tuple[str, int], ...] = (
    ("172.17.0.0/16", 16), ("172.18.0.0/15", 16), ("172.20.0.0/14", 16), ("172.24.0.0/13", 16),
    ("192.168.0.0/16", 20))
# prefix lengths a subnet may have: room for a gateway and containers, not absurdly large
PREFIX_RANGE = {4: (8, 30), 6: (16, 126)}
ULA_SUBNET_PREFIX = 64


def parse_subnet(text: str, version: int = 4) -> IPNet:
    """A CIDR subnet of the given IP version; the host bits must be zero (`10.1.2.0/24`, not
    `10.1.2.3/24`). IPv6 link-local, multicast and loopback ranges are refused."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise InvalidParameter(f"invalid subnet {text!r}: {exc}") from None
    if net.version != version:
        raise InvalidParameter(f"invalid subnet {text!r}: not an IPv{version} subnet")
    if version == 6 and (net.is_link_local or net.is_multicast or net.is_loopback):
        raise InvalidParameter(f"invalid subnet {text!r}: link-local, multicast and loopback "
                               "ranges cannot be a network's subnet")
    low, high = PREFIX_RANGE[version]
    if net.prefixlen > high:
        raise InvalidParameter(f"invalid subnet {text!r}: prefix /{net.prefixlen} leaves no room "
                               f"for a gateway and containers (use /{high} or larger)")
    if net.prefixlen < low:
        raise InvalidParameter(f"invalid subnet {text!r}: prefix /{net.prefixlen} is too large")
    return net


def parse_address(text: str, what: str = "address", version: int = 4) -> IPAddr:
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        raise InvalidParameter(f"invalid {what} {text!r}") from None
    if addr.version != version:
        raise InvalidParameter(f"invalid {what} {text!r}: not an IPv{version} address")
    return addr


def default_gateway(net: IPNet) -> IPAddr:
    """The first host address, as Docker picks it."""
    return net.network_address + 1


def usable(net: IPNet, addr: IPAddr) -> bool:
    """An address of `net` a gateway or container may have: not the network address (the
    IPv6 subnet-router anycast address) nor, in IPv4, the broadcast address."""
    if addr.version != net.version or addr not in net or addr == net.network_address:
        return False
    return net.version == 6 or addr != net.broadcast_address


def check_gateway(net: IPNet, gateway: IPAddr) -> None:
    if not usable(net, gateway):
        raise InvalidParameter(f"invalid gateway {gateway}: not a usable address of subnet {net}")


def parse_route_table(text: str, exclude_ifaces: Iterable[str] = ()) -> list[IPv4Net]:
    """Destinations of the non-default IPv4 routes in `/proc/net/route` text (routes through
    `exclude_ifaces`, e.g. our own bridges, left out)."""
    skip = set(exclude_ifaces)
    nets: list[IPv4Net] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8 or fields[0] in skip:
            continue
        try:
            dest = int(fields[1], 16)
            mask = int(fields[7], 16)
        except ValueError:
            continue
        if mask == 0:
            continue  # the default route collides with nothing
        # /proc/net/route prints the addresses in host (little-endian) byte order
        dest_b = dest.to_bytes(4, "little")
        mask_b = mask.to_bytes(4, "little")
        prefix = bin(int.from_bytes(mask_b, "big")).count("1")
        nets.append(ipaddress.ip_network((IPv4Addr(dest_b), prefix), strict=False))
    return nets


def parse_ipv6_route_table(text: str, exclude_ifaces: Iterable[str] = ()) -> list[ipaddress.IPv6Network]:
    """Destinations of the IPv6 routes in `/proc/net/ipv6_route` text that a network's subnet
    could collide with: not the default route, link-local or multicast ones, nor routes
    through `exclude_ifaces`."""
    skip = set(exclude_ifaces)
    nets: list[ipaddress.IPv6Network] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 10 or fields[9] in skip:
            continue
        try:
            net = ipaddress.IPv6Network((int(fields[0], 16), int(fields[1], 16)), strict=False)
        except ValueError:
            continue
        if net.prefixlen == 0 or net.is_link_local or net.is_multicast:
            continue
        nets.append(net)
    return nets


def host_routes(exclude_ifaces: Iterable[str] = (), version: int = 4) -> list[IPNet]:
    """The host's routes of one IP version (see the parsers above); none if unreadable."""
    path, parse = ("/proc/net/route", parse_route_table) if version == 4 else \
        ("/proc/net/ipv6_route", parse_ipv6_route_table)
    try:
        return list(parse(Path(path).read_text(), exclude_ifaces))
    except OSError:
        return []


def find_overlap(net: IPNet, used: Iterable[IPNet]) -> IPNet | None:
    for other in used:
        if net.overlaps(other):   # False across IP versions
            return other
    return None


def check_free(net: IPNet, used_by_networks: Iterable[tuple[str, IPNet]],
               routes: Iterable[IPNet]) -> None:
    """Refuse a subnet that overlaps another network of ours or a route of the host."""
    for name, other in used_by_networks:
        if net.overlaps(other):
            raise Conflict(f"Pool overlaps with other one on this address space: {net} overlaps "
                           f"network {name!r} ({other})")
    clash = find_overlap(net, routes)
    if clash is not None:
        raise Conflict(f"Pool overlaps with other one on this address space: {net} overlaps the "
                       f"host route to {clash}")


def candidate_subnets(pools: Iterable[tuple[str, int]] = DEFAULT_POOLS) -> Iterable[IPNet]:
    for base, size in pools:
        yield from ipaddress.ip_network(base).subnets(new_prefix=size)


def choose_subnet(used: Iterable[IPNet],
                  pools: Iterable[tuple[str, int]] = DEFAULT_POOLS) -> IPNet:
    """The first pool subnet overlapping nothing in `used` (networks and host routes)."""
    used = list(used)
    pools = list(pools)
    for cand in candidate_subnets(pools):
        if find_overlap(cand, used) is None:
            return cand
    version = ipaddress.ip_network(pools[0][0]).version if pools else 4
    raise Conflict(f"could not find an available, non-overlapping IPv{version} address pool among "
                   "the defaults to assign to the network")


def new_ula_global_id() -> int:
    """RFC 4193's 40-bit Global ID, random (section 3.2 allows any random source)."""
    return secrets.randbits(40)


def ula_pool(global_id: int) -> tuple[str, int]:
    """The daemon's IPv6 pool: the ULA /48 `fd` + `global_id`, cut into /64s (the 16-bit
    subnet id), as Docker 27 derives one from its engine id."""
    if not 0 <= global_id < 1 << 40:
        raise ValueError(f"a ULA global id has 40 bits: {global_id:#x}")
    base = ipaddress.IPv6Network(((0xFD << 120) | (global_id << 80), 48))
    return str(base), ULA_SUBNET_PREFIX


def allocate(net: IPNet, gateway: IPAddr, taken: Iterable[str | IPAddr],
             preferred: str | None = None) -> IPAddr:
    """The lowest free host address (or `preferred` if it is free)."""
    busy = {ipaddress.ip_address(str(a)) for a in taken}
    busy.add(gateway)
    if preferred:
        want = parse_address(preferred, f"IPv{net.version} address", net.version)
        if not usable(net, want):
            raise InvalidParameter(f"requested address {want} is not in subnet {net}")
        if want in busy:
            raise Conflict(f"Address already in use: {want}")
        return want
    for host in net.hosts():
        if host not in busy:
            return host
    raise Conflict(f"no available IPv{net.version} addresses on this network's address pools: {net}")


def mac_for(addr: IPv4Addr) -> str:
    """Docker's MAC scheme: 02:42 followed by the four address bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in addr.packed)


def random_mac() -> str:
    """A random unicast, locally administered MAC, as dockerd's GenerateRandomMAC: for an
    endpoint without an IPv4 address (on an IPv6-only network) to derive one from."""
    octets = bytearray(secrets.token_bytes(6))
    octets[0] = (octets[0] & 0xFE) | 0x02   # unicast (bit 0 clear), locally administered (bit 1 set)
    return ":".join(f"{b:02x}" for b in octets)
