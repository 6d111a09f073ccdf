"""Hijacked connections (`Upgrade: tcp`) and Docker's stream framing for attach/exec.

After the response head is written, the socket is taken away from aiohttp: the client's
bytes (stdin) arrive through `Hijacked.read()` (b"" = the client half-closed, None = it
went away) and output goes straight to the transport. A half-closed client keeps receiving
output, as the docker CLI expects after stdin EOF.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

from berth.api.app import HEADERS

RAW = "application/vnd.docker.raw-stream"
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"


class _Proto(asyncio.Protocol):
    def __init__(self, original: Any) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.original = original
        self.lost = asyncio.Event()
        self._can_write = asyncio.Event()
        self._can_write.set()

    def data_received(self, data: bytes) -> None:
        self.queue.put_nowait(data)

    def eof_received(self) -> bool:
        self.queue.put_nowait(b"")
        return True  # keep the write side open

    def connection_lost(self, exc: Exception | None) -> None:
        self.queue.put_nowait(None)
        self.lost.set()
        self._can_write.set()
        with contextlib.suppress(Exception):
            self.original.connection_lost(exc)

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()


class Hijacked:
    def __init__(self, transport: asyncio.Transport, proto: _Proto) -> None:
        self.transport = transport
        self.proto = proto

    async def read(self) -> bytes | None:
        return await self.proto.queue.get()

    async def write(self, data: bytes) -> bool:
        if self.transport.is_closing():
            return False
        self.transport.write(data)
        await self.proto._can_write.wait()
        return not self.transport.is_closing()

    @property
    def closed(self) -> bool:
        return self.proto.lost.is_set() or self.transport.is_closing()

    def close(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()


def wants_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "tcp" or \
        "upgrade" in request.headers.get("Connection", "").lower()


async def hijack(request: web.Request, tty: bool) -> Hijacked:
    """Write the response head (101 UPGRADED or 200 OK) and take over the socket."""
    transport = request.transport
    proto = request.protocol
    assert transport is not None
    ctype = RAW if tty else MULTIPLEXED
    if wants_upgrade(request):
        head = "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
    else:
        head = "HTTP/1.1 200 OK\r\n"
    head += f"Content-Type: {ctype}\r\n"
    for k, v in HEADERS.items():
        head += f"{k}: {v}\r\n"
    head += "\r\n"
    hp = _Proto(proto)
    tail = getattr(proto, "_message_tail", b"") or b""
    if tail:
        hp.queue.put_nowait(bytes(tail))
    transport.set_protocol(hp)
    transport.write(head.encode())
    return Hijacked(transport, hp)


def finished_response() -> web.Response:
    """What a hijacking handler returns to aiohttp once it has closed the socket."""
    resp = web.Response(status=200)
    resp.force_close()
    return resp


async def pump(conn: Hijacked, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
               stdin: bool) -> None:
    """Relay client stdin -> shim and shim output -> client until the output ends."""

    async def upstream() -> None:
        while True:
            data = await conn.read()
            if data is None:
                writer.close()
                return
            if data == b"":
                if stdin and writer.can_write_eof():
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                return
            if stdin:
                writer.write(data)
                with contextlib.suppress(ConnectionError):
                    await writer.drain()

    up = asyncio.create_task(upstream())
    try:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            if not await conn.write(chunk):
                break
    finally:
        up.cancel()
        with contextlib.suppress(BaseException):
            await up
        writer.close()
