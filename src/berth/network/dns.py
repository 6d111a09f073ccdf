"""The embedded DNS server of user networks (dnslib for the wire format).

Each container on a user network gets a resolver listening on 127.0.0.11:53 (UDP and TCP)
inside its own network namespace (the sockets are made there by a thread that joined the
namespace, then served by the daemon's event loop), as Docker's embedded DNS does. Names of
the containers on the same networks (name, aliases, short id, hostname) are answered
locally (A with their IPv4 addresses, AAAA with their IPv6 ones on IPv6 networks; a name
known without an address of the asked family gets an empty answer, not a forward); anything else is forwarded to the upstream servers (--dns, or the host's
nameservers, reached from the daemon's own namespace so a loopback one works), except on
internal networks, which have no way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable
from typing import Protocol

from dnslib import AAAA, PTR, QTYPE, RCODE, RR, A, DNSRecord

log = logging.getLogger("berth.network.dns")

TTL = 600
UPSTREAM_TIMEOUT = 3.0

Lookup = Callable[[str], "list[str] | None"]
ReverseLookup = Callable[[str], "str | None"]


REVERSE_ZONES = (".in-addr.arpa", ".ip6.arpa")


def _reverse_target(name: str) -> str | None:
    """The address a reverse name asks about (`4.3.2.1.in-addr.arpa` -> 1.2.3.4, 32 nibbles
    of `ip6.arpa` -> the IPv6 address), None for a partial or malformed one."""
    if name.endswith(".in-addr.arpa"):
        parts = name[: -len(".in-addr.arpa")].split(".")
        return ".".join(reversed(parts)) if len(parts) == 4 else None
    nibbles = name[: -len(".ip6.arpa")].split(".")
    if len(nibbles) != 32 or any(len(n) != 1 or n not in "0123456789abcdef" for n in nibbles):
        return None
    digits = "".join(reversed(nibbles))
    return str(ipaddress.IPv6Address(int(digits, 16)))


class Resolver:
    """Answers one container's queries: `lookup(name)` gives the addresses of a local name
    (None if unknown), `reverse(ip)` a local name for an address, `upstreams()` where to
    forward the rest (empty = never forward)."""

    def __init__(self, lookup: Lookup, reverse: ReverseLookup,
                 upstreams: Callable[[], list[str]]) -> None:
        self.lookup = lookup
        self.reverse = reverse
        self.upstreams = upstreams

    def local_answer(self, request: DNSRecord) -> DNSRecord | None:
        """The reply for a local name, or None when the query must be forwarded."""
        q = request.q
        name = str(q.qname).rstrip(".").lower()
        if q.qtype == QTYPE.PTR and name.endswith(REVERSE_ZONES):
            target = _reverse_target(name)
            target = self.reverse(target) if target else None
            if not target:
                return None
            reply = request.reply()
            reply.add_answer(RR(q.qname, QTYPE.PTR, rdata=PTR(target + "."), ttl=TTL))
            return reply
        addrs = self.lookup(name)
        if addrs is None:
            return None
        reply = request.reply()
        for ip in addrs:
            qtype, rdata = (QTYPE.AAAA, AAAA(ip)) if ":" in ip else (QTYPE.A, A(ip))
            if q.qtype in (qtype, QTYPE.ANY):
                reply.add_answer(RR(q.qname, qtype, rdata=rdata, ttl=TTL))
        return reply

    async def resolve(self, data: bytes, tcp: bool = False) -> bytes | None:
        try:
            request = DNSRecord.parse(data)
        except Exception:  # noqa: BLE001 - garbage in, nothing out
            return None
        local = self.local_answer(request)
        if local is not None:
            return local.pack()
        servers = self.upstreams()
        if not servers:
            reply = request.reply()
            reply.header.rcode = RCODE.REFUSED
            return reply.pack()
        for server in servers:
            try:
                if tcp:
                    return await _forward_tcp(data, server)
                return await _forward_udp(data, server)
            except (TimeoutError, OSError) as exc:
                log.debug("upstream %s failed: %s", server, exc)
        reply = request.reply()
        reply.header.rcode = RCODE.SERVFAIL
        return reply.pack()


class _UpstreamProtocol(asyncio.DatagramProtocol):
    def __init__(self, fut: asyncio.Future[bytes], qid: bytes) -> None:
        self.fut = fut
        self.qid = qid

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        if data[:2] == self.qid and not self.fut.done():
            self.fut.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.fut.done():
            self.fut.set_exception(exc)


async def _forward_udp(data: bytes, server: str) -> bytes:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[bytes] = loop.create_future()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _UpstreamProtocol(fut, data[:2]), remote_addr=(server, 53))
    try:
        transport.sendto(data)
        return await asyncio.wait_for(fut, UPSTREAM_TIMEOUT)
    finally:
        transport.close()


async def _forward_tcp(data: bytes, server: str) -> bytes:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(server, 53), UPSTREAM_TIMEOUT)
    try:
        writer.write(struct.pack("!H", len(data)) + data)
        await writer.drain()
        n = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), UPSTREAM_TIMEOUT))[0]
        return await asyncio.wait_for(reader.readexactly(n), UPSTREAM_TIMEOUT)
    finally:
        writer.close()


class _ServerProtocol(asyncio.DatagramProtocol):
    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        task = asyncio.ensure_future(self._answer(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _answer(self, data: bytes, addr: tuple) -> None:
        reply = await self.resolver.resolve(data)
        if reply and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)


class DNSServer:
    """One resolver serving a UDP and a TCP socket (already bound, e.g. inside a netns)."""

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.AbstractServer | None = None

    async def start(self, udp_sock: socket.socket, tcp_sock: socket.socket | None) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _ServerProtocol(self.resolver),
                                                           sock=udp_sock)
        self._udp = transport
        if tcp_sock is not None:
            self._tcp = await asyncio.start_server(self._serve_tcp, sock=tcp_sock)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), 30)
                data = await reader.readexactly(struct.unpack("!H", head)[0])
                reply = await self.resolver.resolve(data, tcp=True)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            self._tcp = None


class _Closable(Protocol):
    def close(self) -> None: ...


def close_quietly(server: _Closable | None) -> None:
    """Close a DNS server (or anything else the daemon serves, e.g. a loopback proxy),
    never raising: used on teardown paths."""
    if server is not None:
        with contextlib.suppress(Exception):
            server.close()
