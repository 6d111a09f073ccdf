"""Published ports: `-p` spec parsing (pure), Engine API PortBindings expansion (pure) and
host-port reservation (a socket bound in the daemon holds each published host port, so a
port already taken is refused before the container starts).

A container with an IPv6 address publishes a port given without a host address on both
families, as Docker does: `0.0.0.0:P` and `[::]:P`, the same P (two mappings, the second
with host ip "::"); one with no IPv4 address (IPv6-only networks) on `[::]:P` only, as
dockerd 28 (`only_ipv6`). An explicit host address publishes on that address's family only.
"""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import socket
from dataclasses import dataclass

from berth.errors import BerthError, InvalidParameter

PROTOCOLS = ("tcp", "udp", "sctp")
# host addresses of an IPv6 published port that [::1] reaches (the unspecified one and ::1)
_LOOPBACK_REACHABLE = (ipaddress.IPv6Address("::"), ipaddress.IPv6Address("::1"))


@dataclass(frozen=True)
class PortMapping:
    """One container port published on one host port (host_port 0 = not yet chosen)."""

    proto: str
    container_port: int
    host_ip: str = ""          # "" = every address
    host_port: int = 0
    host_port_end: int = 0     # a host-port range to choose from (0 = only host_port)

    @property
    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"

    @property
    def bind_ip(self) -> str:
        return self.host_ip or "0.0.0.0"

    @property
    def ipv6(self) -> bool:
        return ":" in self.host_ip

    @property
    def proxied(self) -> bool:
        """A port published on [::] or [::1]: [::1] reaches it only through the daemon's
        loopback proxy (berth.network.proxy), so its socket is served (a TCP one listens)."""
        return self.ipv6 and ipaddress.ip_address(self.host_ip) in _LOOPBACK_REACHABLE


def _port(text: str, what: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise InvalidParameter(f"invalid {what} {text!r}: must be a number between 1 and 65535")
    return int(text)


def _range(text: str, what: str) -> tuple[int, int]:
    if "-" in text:
        lo, _, hi = text.partition("-")
        a, b = _port(lo, what), _port(hi, what)
        if b < a:
            raise InvalidParameter(f"invalid {what} range {text!r}: end is before start")
        return a, b
    p = _port(text, what)
    return p, p


def _split_spec(text: str, spec: str) -> tuple[str, str, str]:
    """(ip, host part, container part) of `[ip:][host:]container`."""
    ip = ""
    if text.startswith("["):
        end = text.find("]:")
        if end < 0:
            raise InvalidParameter(f"invalid port spec {spec!r}: unterminated IPv6 address")
        ip, text = text[1:end], text[end + 2:]
        parts = text.split(":")
        if len(parts) != 2:
            raise InvalidParameter(f"invalid port spec {spec!r}")
        return ip, parts[0], parts[1]
    parts = text.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    raise InvalidParameter(f"invalid port spec {spec!r}: expected [ip:][hostPort:]containerPort[/proto]")


def parse_publish(spec: str) -> list[PortMapping]:
    """`-p [ip:][hostPort[-end]:]containerPort[-end][/proto]` into one mapping per port."""
    text, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in PROTOCOLS:
        raise InvalidParameter(f"invalid proto {proto!r} in port spec {spec!r}")
    ip, host, ctr = _split_spec(text, spec)
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise InvalidParameter(f"invalid IP address {ip!r} in port spec {spec!r}") from None
    if not ctr:
        raise InvalidParameter(f"invalid port spec {spec!r}: no container port")
    c_lo, c_hi = _range(ctr, "containerPort")
    if not host:
        return [PortMapping(proto, p, ip) for p in range(c_lo, c_hi + 1)]
    h_lo, h_hi = _range(host, "hostPort")
    n = c_hi - c_lo + 1
    if n == 1:  # one container port, maybe a range of host ports to choose from
        return [PortMapping(proto, c_lo, ip, h_lo, h_hi if h_hi != h_lo else 0)]
    if h_hi - h_lo + 1 != n:
        raise InvalidParameter(f"invalid port spec {spec!r}: port ranges don't match in length")
    return [PortMapping(proto, c_lo + i, ip, h_lo + i) for i in range(n)]


def to_port_bindings(specs: list[str]) -> tuple[dict[str, list[dict[str, str]]], dict[str, dict]]:
    """`-p` specs into the Engine API's (HostConfig.PortBindings, Config.ExposedPorts)."""
    bindings: dict[str, list[dict[str, str]]] = {}
    exposed: dict[str, dict] = {}
    for spec in specs:
        for m in parse_publish(spec):
            hp = ""
            if m.host_port:
                hp = str(m.host_port) if not m.host_port_end else f"{m.host_port}-{m.host_port_end}"
            bindings.setdefault(m.key, []).append({"HostIp": m.host_ip, "HostPort": hp})
            exposed[m.key] = {}
    return bindings, exposed


def parse_port_key(key: str) -> tuple[int, str]:
    port, _, proto = key.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in PROTOCOLS:
        raise InvalidParameter(f"invalid proto {proto!r} in port {key!r}")
    return _port(port, "containerPort"), proto


def expand_bindings(port_bindings: dict | None, exposed: dict | list | None = None,
                    publish_all: bool = False) -> list[PortMapping]:
    """HostConfig.PortBindings (plus, with -P, every exposed port) into mappings."""
    out: list[PortMapping] = []
    seen: set[str] = set()
    for key, binds in (port_bindings or {}).items():
        cport, proto = parse_port_key(key)
        seen.add(f"{cport}/{proto}")
        for b in binds or [{}]:
            b = b or {}
            hp = str(b.get("HostPort") or "")
            ip = str(b.get("HostIp") or "")
            if ip:
                try:
                    ipaddress.ip_address(ip)
                except ValueError:
                    raise InvalidParameter(f"invalid host IP {ip!r} for port {key}") from None
            if hp:
                lo, hi = _range(hp, "hostPort")
                out.append(PortMapping(proto, cport, ip, lo, hi if hi != lo else 0))
            else:
                out.append(PortMapping(proto, cport, ip))
    if publish_all:
        for key in exposed or {}:
            cport, proto = parse_port_key(key)
            if f"{cport}/{proto}" not in seen:
                out.append(PortMapping(proto, cport))
    return out


def _family(ip: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def _display(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def _allocated(ip: str, port: int) -> BerthError:
    return BerthError(f"driver failed programming external connectivity: Bind for "
                      f"{_display(ip)}:{port} failed: port is already allocated")


def check_publishable(mappings: list[PortMapping], ipv6: bool, ipv4: bool = True) -> None:
    """Refuse an explicit host address of a family the container has no address of (dockerd
    would drop such a mapping without a word, leaving the port unpublished)."""
    for m in mappings:
        if m.ipv6 and not ipv6:
            raise InvalidParameter(
                f"cannot publish port {m.key} on [{m.host_ip}]: the container has no IPv6 address "
                "(connect it to a network created with --ipv6)")
        if m.host_ip and not m.ipv6 and not ipv4:
            raise InvalidParameter(
                f"cannot publish port {m.key} on {m.host_ip}: the container has no IPv4 address "
                "(its networks were created with --ipv4=false)")


def only_ipv6(mappings: list[PortMapping]) -> list[PortMapping]:
    """The mappings of a container without an IPv4 address: those given without a host
    address go to [::] (dockerd 28 makes no 0.0.0.0 binding without a container IPv4
    address); [::1] then reaches them through the loopback proxy, as any [::] port."""
    return [m if m.host_ip else dataclasses.replace(m, host_ip="::") for m in mappings]


# an ephemeral port the kernel picked for IPv4 may be taken in IPv6: pick again, this often
EPHEMERAL_ATTEMPTS = 20


class _InUse(Exception):
    def __init__(self, ip: str, port: int) -> None:
        super().__init__(ip, port)
        self.ip = ip
        self.port = port


class PortReservations:
    """Holds one bound socket per published host port and address family so no one else
    can take it."""

    def __init__(self) -> None:
        self._held: dict[str, list[tuple[PortMapping, socket.socket]]] = {}

    def reserve(self, owner: str, mappings: list[PortMapping], dual_stack: bool = False) -> list[PortMapping]:
        """Bind every mapping's host port (choosing ephemeral ones); all or nothing. With
        `dual_stack` a mapping without a host address is held in IPv6 too ([::], same port)
        and comes back as two mappings."""
        got: list[tuple[PortMapping, socket.socket]] = []
        try:
            for m in mappings:
                got.extend(self._bind(m, dual_stack and not m.host_ip))
        except BaseException:
            for _, s in got:
                s.close()
            raise
        self._held.setdefault(owner, []).extend(got)
        return [m for m, _ in got]

    def _bind(self, m: PortMapping, twin6: bool) -> list[tuple[PortMapping, socket.socket]]:
        """The sockets holding `m`'s host port: its own address, and [::] too with `twin6`."""
        ips = [m.bind_ip, "::"] if twin6 else [m.bind_ip]
        if m.host_port_end:
            candidates = list(range(m.host_port, m.host_port_end + 1))
        else:
            candidates = [m.host_port] * (EPHEMERAL_ATTEMPTS if twin6 and not m.host_port else 1)
        last: BerthError | None = None
        for want in candidates:
            held: list[tuple[PortMapping, socket.socket]] = []
            port = want
            try:
                for ip in ips:
                    got = PortMapping(m.proto, m.container_port, m.host_ip if ip == m.bind_ip else ip, port)
                    sock = self._bind_one(got)
                    port = sock.getsockname()[1]
                    held.append((dataclasses.replace(got, host_port=port), sock))
            except _InUse as exc:
                for _, s in held:
                    s.close()
                last = _allocated(exc.ip, exc.port)
                continue
            except BaseException:
                for _, s in held:
                    s.close()
                raise
            return held
        assert last is not None
        raise last

    @staticmethod
    def _bind_one(m: PortMapping) -> socket.socket:
        """A socket bound to the mapping's host address and port (listening at once when the
        loopback proxy will serve it: SO_REUSEADDR then, so the port can be taken again
        while the proxy's closed connections linger in TIME_WAIT)."""
        ip, port = m.bind_ip, m.host_port
        stype = socket.SOCK_DGRAM if m.proto == "udp" else socket.SOCK_STREAM
        s = socket.socket(_family(ip), stype)
        try:
            if m.ipv6:   # [::] must not take the IPv4 port too (held by its own socket)
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if m.proxied and m.proto == "tcp":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((ip, port))
            if m.proxied and m.proto == "tcp":
                s.listen(128)
        except OSError as exc:
            s.close()
            if exc.errno == errno.EADDRINUSE:
                raise _InUse(ip, port) from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise InvalidParameter(f"cannot publish on {_display(ip)}:{port}: the address is "
                                       "not one of this host's") from None
            raise BerthError(f"Bind for {_display(ip)}:{port} failed: {exc.strerror}") from None
        return s

    def held(self, owner: str) -> list[tuple[PortMapping, socket.socket]]:
        """(mapping, socket) of each host port `owner` holds (the loopback proxy serves some)."""
        return list(self._held.get(owner, []))

    def release(self, owner: str) -> None:
        for _, s in self._held.pop(owner, []):
            s.close()

    def owners(self) -> list[str]:
        return list(self._held)

    def close(self) -> None:
        for owner in list(self._held):
            self.release(owner)


def settings_ports(mappings: list[PortMapping], exposed: dict | list | None = None) -> dict:
    """NetworkSettings.Ports: published ports with their host side, exposed ones as null."""
    ports: dict[str, list[dict[str, str]] | None] = {}
    for key in exposed or {}:
        cport, proto = parse_port_key(key)
        ports.setdefault(f"{cport}/{proto}", None)
    for m in mappings:
        entry = ports.get(m.key) or []
        entry.append({"HostIp": m.bind_ip, "HostPort": str(m.host_port)})
        ports[m.key] = entry
    return ports
