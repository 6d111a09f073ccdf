"""IP address management (pure): subnets, gateways, address allocation, collision checks.

Nothing here touches the kernel; the host's routes arrive as text (`/proc/net/route`)
so the logic is unit-testable without root. Allocation state lives in the database (the
caller passes the addresses already taken).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from pathlib import Path

from berth.errors import Conflict, InvalidParameter

IPv4Net = ipaddress.IPv4Network
IPv4Addr = ipaddress.IPv4Address

# Docker's default local address pools: 172.17-31.0.0/16, then 192.168.0.0/16 cut into /20s.
DEFAULT_POOLS: tuple[tuple[str, int], ...] = (
    ("172.17.0.0/16", 16), ("172.18.0.0/15", 16), ("172.20.0.0/14", 16), ("172.24.0.0/13", 16),
    ("192.168.0.0/16", 20))


def parse_subnet(text: str) -> IPv4Net:
    """A CIDR subnet; the host bits must be zero (`10.1.2.0/24`, not `10.1.2.3/24`)."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise InvalidParameter(f"invalid subnet {text!r}: {exc}") from None
    if not isinstance(net, IPv4Net):
        raise InvalidParameter(f"invalid subnet {text!r}: only IPv4 subnets are supported")
    if net.prefixlen > 30:
        raise InvalidParameter(f"invalid subnet {text!r}: prefix /{net.prefixlen} leaves no room "
                               "for a gateway and containers (use /30 or larger)")
    if net.prefixlen < 8:
        raise InvalidParameter(f"invalid subnet {text!r}: prefix /{net.prefixlen} is too large")
    return net


def parse_address(text: str, what: str = "address") -> IPv4Addr:
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        raise InvalidParameter(f"invalid {what} {text!r}") from None
    if not isinstance(addr, IPv4Addr):
        raise InvalidParameter(f"invalid {what} {text!r}: only IPv4 is supported")
    return addr


def default_gateway(net: IPv4Net) -> IPv4Addr:
    """The first host address, as Docker picks it."""
    return net.network_address + 1


def check_gateway(net: IPv4Net, gateway: IPv4Addr) -> None:
    if gateway not in net or gateway in (net.network_address, net.broadcast_address):
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


def host_routes(exclude_ifaces: Iterable[str] = (), path: str = "/proc/net/route") -> list[IPv4Net]:
    try:
        return parse_route_table(Path(path).read_text(), exclude_ifaces)
    except OSError:
        return []


def find_overlap(net: IPv4Net, used: Iterable[IPv4Net]) -> IPv4Net | None:
    for other in used:
        if net.overlaps(other):
            return other
    return None


def check_free(net: IPv4Net, used_by_networks: Iterable[tuple[str, IPv4Net]],
               routes: Iterable[IPv4Net]) -> None:
    """Refuse a subnet that overlaps another network of ours or a route of the host."""
    for name, other in used_by_networks:
        if net.overlaps(other):
            raise Conflict(f"Pool overlaps with other one on this address space: {net} overlaps "
                           f"network {name!r} ({other})")
    clash = find_overlap(net, routes)
    if clash is not None:
        raise Conflict(f"Pool overlaps with other one on this address space: {net} overlaps the "
                       f"host route to {clash}")


def candidate_subnets(pools: Iterable[tuple[str, int]] = DEFAULT_POOLS) -> Iterable[IPv4Net]:
    for base, size in pools:
        yield from ipaddress.ip_network(base).subnets(new_prefix=size)  # type: ignore[misc]


def choose_subnet(used: Iterable[IPv4Net],
                  pools: Iterable[tuple[str, int]] = DEFAULT_POOLS) -> IPv4Net:
    """The first pool subnet overlapping nothing in `used` (networks and host routes)."""
    used = list(used)
    for cand in candidate_subnets(pools):
        if find_overlap(cand, used) is None:
            return cand
    raise Conflict("could not find an available, non-overlapping IPv4 address pool among the "
                   "defaults to assign to the network")


def allocate(net: IPv4Net, gateway: IPv4Addr, taken: Iterable[str | IPv4Addr],
             preferred: str | None = None) -> IPv4Addr:
    """The lowest free host address (or `preferred` if it is free)."""
    busy = {IPv4Addr(str(a)) for a in taken}
    busy.add(gateway)
    if preferred:
        want = parse_address(preferred, "IPv4 address")
        if want not in net or want in (net.network_address, net.broadcast_address):
            raise InvalidParameter(f"requested address {want} is not in subnet {net}")
        if want in busy:
            raise Conflict(f"Address already in use: {want}")
        return want
    for host in net.hosts():
        if host not in busy:
            return host
    raise Conflict(f"no available IPv4 addresses on this network's address pools: {net}")


def mac_for(addr: IPv4Addr) -> str:
    """Docker's MAC scheme: 02:42 followed by the four address bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in addr.packed)
