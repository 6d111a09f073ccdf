"""The IPv6 loopback proxy: published TCP ports reached on [::1].

IPv4 reaches a container from 127.0.0.1 in the kernel (DNAT in OUTPUT with
`route_localnet` and masquerade). IPv6 has no `route_localnet`: the kernel never sends a
packet from ::1 out of a bridge, so a DNAT'ed connection from [::1] goes nowhere (Docker
documents the same limit without its userland proxy). The firewall therefore leaves
[::1] alone (`-d ::1/128 -j RETURN`), the connection reaches the socket that holds the
host port in the daemon (bound to [::] or [::1]), and this proxy relays it to the
container's IPv6 address. Every other address is still served by DNAT alone.
"""

from __future__ import annotations

import asyncio
import logging
import socket

log = logging.getLogger("berth.network.proxy")

CHUNK = 65536


class LoopbackProxy:
    """Relays the connections accepted on reserved listening sockets to their targets."""

    def __init__(self) -> None:
        self._servers: list[asyncio.AbstractServer] = []
        self._writers: set[asyncio.StreamWriter] = set()

    async def serve(self, sock: socket.socket, target: tuple[str, int]) -> None:
        """Accept on `sock` (bound, not yet listening) and relay each connection to `target`.
        The server owns the socket from now on: `close()` closes it."""
        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._relay(reader, writer, target)
        self._servers.append(await asyncio.start_server(accepted, sock=sock))

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
