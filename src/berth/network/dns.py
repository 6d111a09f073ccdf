"""The embedded DNS server of user networks (dnslib for the wire format).

Each container on a user network gets a resolver listening on 127.0.0.11:53 (UDP and TCP)
inside its own network namespace (the sockets are made there by a thread that joined the
namespace, then served by the daemon's event loop), as Docker's embedded DNS does. Names of
the containers on the same networks (name, aliases, short id, hostname) are answered
locally; anything else is forwarded to the upstream servers (--dns, or the host's
nameservers, reached from the daemon's own namespace so a loopback one works), except on
internal networks, which have no way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable

from dnslib import PTR, QTYPE, RCODE, RR, A, DNSRecord

log = logging.getLogger("berth.network.dns")

TTL = 600
UPSTREAM_TIMEOUT = 3.0

Lookup = Callable[[str], "list[str] | None"]
ReverseLookup = Callable[[str], "str | None"]


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
        if q.qtype == QTYPE.PTR and name.endswith(".in-addr.arpa"):
            parts = name[: -len(".in-addr.arpa")].split(".")
            if len(parts) == 4:
                target = self.reverse(".".join(reversed(parts)))
                if target:
                    reply = request.reply()
                    reply.add_answer(RR(q.qname, QTYPE.PTR, rdata=PTR(target + "."), ttl=TTL))
                    return reply
            return None
        addrs = self.lookup(name)
        if addrs is None:
            return None
        reply = request.reply()
        if q.qtype in (QTYPE.A, QTYPE.ANY):
            for ip in addrs:
                reply.add_answer(RR(q.qname, QTYPE.A, rdata=A(ip), ttl=TTL))
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


def close_quietly(server: DNSServer | None) -> None:
    if server is not None:
        with contextlib.suppress(Exception):
            server.close()
