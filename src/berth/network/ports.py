"""Published ports: `-p` spec parsing (pure), Engine API PortBindings expansion (pure) and
host-port reservation (a socket bound in the daemon holds each published host port, so a
port already taken is refused before the container starts).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from dataclasses import dataclass

from berth.errors import BerthError, InvalidParameter

PROTOCOLS = ("tcp", "udp", "sctp")


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


def _allocated(m: PortMapping, port: int) -> BerthError:
    return BerthError(f"driver failed programming external connectivity: Bind for "
                      f"{m.bind_ip}:{port} failed: port is already allocated")


class PortReservations:
    """Holds one bound socket per published host port so no one else can take it."""

    def __init__(self) -> None:
        self._held: dict[str, list[socket.socket]] = {}

    def reserve(self, owner: str, mappings: list[PortMapping]) -> list[PortMapping]:
        """Bind every mapping's host port (choosing ephemeral ones); all or nothing."""
        got: list[socket.socket] = []
        done: list[PortMapping] = []
        try:
            for m in mappings:
                sock, port = self._bind(m)
                got.append(sock)
                done.append(PortMapping(m.proto, m.container_port, m.host_ip, port))
        except BaseException:
            for s in got:
                s.close()
            raise
        self._held.setdefault(owner, []).extend(got)
        return done

    def _bind(self, m: PortMapping) -> tuple[socket.socket, int]:
        if ":" in m.host_ip:
            raise InvalidParameter(f"cannot publish on {m.host_ip}: IPv6 publishing is not supported")
        stype = socket.SOCK_DGRAM if m.proto == "udp" else socket.SOCK_STREAM
        candidates = [m.host_port] if not m.host_port_end else list(range(m.host_port, m.host_port_end + 1))
        last: BerthError | None = None
        for port in candidates:
            s = socket.socket(_family(m.bind_ip), stype)
            try:
                s.bind((m.bind_ip, port))
            except OSError as exc:
                s.close()
                if exc.errno == errno.EADDRINUSE:
                    last = _allocated(m, port)
                    continue
                if exc.errno == errno.EADDRNOTAVAIL:
                    raise InvalidParameter(f"cannot publish on {m.bind_ip}:{port}: the address is "
                                           "not one of this host's") from None
                raise BerthError(f"Bind for {m.bind_ip}:{port} failed: {exc.strerror}") from None
            return s, s.getsockname()[1]
        assert last is not None
        raise last

    def release(self, owner: str) -> None:
        for s in self._held.pop(owner, []):
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
