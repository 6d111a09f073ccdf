"""The IPv6 loopback proxy: published TCP and UDP ports reached on [::1].

IPv4 reaches a container from 127.0.0.1 in the kernel (DNAT in OUTPUT with
`route_localnet` and masquerade). IPv6 has no `route_localnet`: the kernel never sends a
packet from ::1 out of a bridge, so a DNAT'ed connection from [::1] goes nowhere (Docker
documents the same limit without its userland proxy). The firewall therefore leaves
[::1] alone (`-d ::1/128 -j RETURN`), the connection reaches the socket that holds the
host port in the daemon (bound to [::] or [::1]), and this proxy relays it to the
container's IPv6 address. Every other address is still served by DNAT alone.

UDP has no connections: each client address gets its own socket towards the container (so
replies find their way back), dropped after `UDP_IDLE` seconds without traffic, as
docker-proxy's UDP conntrack does.
"""

from __future__ import annotations

import asyncio
import logging
import socket

log = logging.getLogger("berth.network.proxy")

CHUNK = 65536
UDP_IDLE = 90.0   # seconds a UDP client's flow is kept without traffic (docker-proxy's timeout)


class LoopbackProxy:
    """Relays the connections accepted on reserved listening sockets to their targets."""

    def __init__(self) -> None:
        self._servers: list[asyncio.AbstractServer] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self._udp: list[_UdpRelay] = []

    async def serve(self, sock: socket.socket, target: tuple[str, int]) -> None:
        """Accept on `sock` (bound, not yet listening) and relay each connection to `target`.
        The server owns the socket from now on: `close()` closes it."""
        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._relay(reader, writer, target)
        self._servers.append(await asyncio.start_server(accepted, sock=sock))

    async def serve_udp(self, sock: socket.socket, target: tuple[str, int]) -> None:
        """Relay the datagrams arriving on `sock` (bound) to `target` and its replies back to
        each sender. The relay owns the socket from now on: `close()` closes it."""
        relay = _UdpRelay(target)
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: relay, sock=sock)
        self._udp.append(relay)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     target: tuple[str, int]) -> None:
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError as exc:
            log.debug("proxy to [%s]:%d: %s", target[0], target[1], exc)
            self._writers.discard(writer)
            writer.close()
            return
        self._writers.add(up_writer)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.close()

    def close(self) -> None:
        """Stop accepting (closing the listening sockets) and drop open connections."""
        for server in self._servers:
            server.close()
        self._servers.clear()
        for relay in self._udp:
            relay.close()
        self._udp.clear()
        for w in list(self._writers):
            w.close()
        self._writers.clear()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then half-close the other side (so each direction ends on
    its own, as TCP allows)."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


class _UdpFlow(asyncio.DatagramProtocol):
    """One client's socket towards the container: what comes back goes to that client."""

    def __init__(self, relay: _UdpRelay, client: tuple) -> None:
        self.relay = relay
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None
        self.last = 0.0
        self.waiting: list[bytes] = []   # datagrams that came before the socket was ready

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        for data in self.waiting:
            self.transport.sendto(data)
        self.waiting.clear()

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.last = asyncio.get_running_loop().time()
        self.relay.reply(data, self.client)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp proxy to [%s]:%d: %s", *self.relay.target, exc)


class _UdpRelay(asyncio.DatagramProtocol):
    """The datagrams of a published UDP port's [::1] side, relayed per client."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.transport: asyncio.DatagramTransport | None = None
        self.flows: dict[tuple, _UdpFlow] = {}
        self._sweeper: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        loop = asyncio.get_running_loop()
        flow = self.flows.get(addr)
        if flow is None:
            flow = self.flows[addr] = _UdpFlow(self, addr)
            flow.waiting.append(data)
            loop.create_task(self._open(flow))
            if self._sweeper is None:
                self._sweeper = loop.call_later(UDP_IDLE, self._sweep)
        elif flow.transport is None:
            flow.waiting.append(data)
        else:
            flow.transport.sendto(data)
        flow.last = loop.time()

    async def _open(self, flow: _UdpFlow) -> None:
        try:
            await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: flow, remote_addr=self.target, family=socket.AF_INET6)
        except OSError as exc:
            log.debug("udp proxy to [%s]:%d: %s", *self.target, exc)
            self.flows.pop(flow.client, None)

    def reply(self, data: bytes, client: tuple) -> None:
        if self.transport is not None:
            self.transport.sendto(data, client)

    def _sweep(self) -> None:
        """Drop the flows idle for UDP_IDLE seconds; look again while any is left."""
        now = asyncio.get_running_loop().time()
        for client, flow in list(self.flows.items()):
            if now - flow.last >= UDP_IDLE and flow.transport is not None:
                flow.transport.close()
                del self.flows[client]
        self._sweeper = asyncio.get_running_loop().call_later(UDP_IDLE, self._sweep) if self.flows else None

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for flow in self.flows.values():
            if flow.transport is not None:
                flow.transport.close()
        self.flows.clear()
        if self.transport is not None:
            self.transport.close()
