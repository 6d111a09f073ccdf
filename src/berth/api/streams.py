"""Hijacked connections (`Upgrade: tcp`) and Docker's stream framing for attach/exec.

After the response head is written, the socket is taken away from aiohttp: the client's
bytes (stdin) arrive through `Hijacked.read()` (b"" = the client half-closed, None = it
went away) and output goes straight to the transport. A half-closed client keeps receiving
output, as the docker CLI expects after stdin EOF.

Also Docker's JSON progress streams (pull, push) and the spooling of an uploaded body
(load, import, build context) to a temp file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from berth.api.app import HEADERS

RAW = "application/vnd.docker.raw-stream"
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
CHUNK = 1 << 20


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


def parse_detach_keys(spec: str | None) -> bytes:
    """The API's `detachKeys` (None: Docker's default) -> the byte sequence, or dockerd's 400."""
    from berth import detachkeys
    from berth.errors import InvalidParameter

    spec = detachkeys.DEFAULT if spec is None else spec
    try:
        return detachkeys.parse(spec)
    except ValueError:
        raise InvalidParameter(f"Invalid detach keys ({spec}) provided") from None


async def pump(conn: Hijacked, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
               stdin: bool, detach_keys: bytes = b"") -> bool:
    """Relay client stdin -> shim and shim output -> client until the output ends (or the
    client typed the detach keys: then True, and the process keeps running)."""
    detached = asyncio.Event()

    async def upstream() -> None:
        held = b""   # a possible start of the detach sequence, not yet forwarded
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
            if not stdin:
                continue
            if detach_keys:
                buf = held + data
                held = b""
                idx = buf.find(detach_keys)
                if idx >= 0:
                    if idx:
                        writer.write(buf[:idx])
                    detached.set()
                    return
                # keep a trailing partial match back
                for n in range(min(len(detach_keys) - 1, len(buf)), 0, -1):
                    if buf.endswith(detach_keys[:n]):
                        held, buf = buf[-n:], buf[:-n]
                        break
                data = buf
            if data:
                writer.write(data)
                with contextlib.suppress(ConnectionError):
                    await writer.drain()

    async def downstream() -> None:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return
            if not await conn.write(chunk):
                return

    up = asyncio.create_task(upstream())
    down = asyncio.create_task(downstream())
    det = asyncio.create_task(detached.wait())
    try:
        await asyncio.wait({down, det}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (up, down, det):
            t.cancel()
        for t in (up, down, det):
            with contextlib.suppress(BaseException):
                await t
        writer.close()
    return detached.is_set()


def json_line(obj: Any) -> bytes:
    """One message of Docker's JSON progress streams."""
    return json.dumps(obj).encode() + b"\r\n"


Progress = Callable[[dict[str, Any]], None]


async def progress_stream(request: web.Request,
                          run: Callable[[Progress], Awaitable[Any]]) -> web.StreamResponse:
    """Docker's JSON progress stream (pull, push): `run(progress)` does the work and reports
    each message through `progress` (from the loop or from another thread). A failure before
    the first message keeps its HTTP status; once a message came the answer is 200 and a
    failure ends the stream with an errorDetail line, as docker does."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def progress(msg: dict[str, Any]) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            queue.put_nowait(msg)
        else:
            loop.call_soon_threadsafe(queue.put_nowait, msg)

    task = asyncio.ensure_future(run(progress))
    task.add_done_callback(lambda _t: queue.put_nowait(None))
    first = await queue.get()
    if first is None:
        task.result()  # raises the error with its status before anything was sent
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    msg = first
    while msg is not None:
        await resp.write(json_line(msg))
        msg = await queue.get()
    try:
        task.result()
    except Exception as exc:  # noqa: BLE001 - reported in the stream, as docker does
        await resp.write(json_line({"errorDetail": {"message": str(exc)}, "error": str(exc)}))
    await resp.write_eof()
    return resp


async def spool_body(request: web.Request, tmp_dir: str, prefix: str, suffix: str = "") -> str:
    """Write the request body to a temp file in tmp_dir (same filesystem as the stores);
    the file is removed again if that fails."""
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=tmp_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            while True:
                chunk = await request.content.read(CHUNK)
                if not chunk:
                    break
                await asyncio.to_thread(f.write, chunk) if len(chunk) >= CHUNK else f.write(chunk)
        return path
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise
