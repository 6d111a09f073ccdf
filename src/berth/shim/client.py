"""Daemon-side helpers for talking to shims (asyncio).

`spawn_shim` starts a shim for a container and returns once the container is created (or
raises the runtime's error); `call` sends one request; `open_stream` sends a request whose
connection then carries a raw stream (attach, exec with attach, wait).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from typing import Any

from berth.shim.protocol import ShimConfig, decode, encode

_TEMPLATE: Any = None   # set by the daemon to a template.TemplateClient when one runs


class ShimError(Exception):
    def __init__(self, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.kind = kind


class ShimGone(ShimError):
    """No shim answers on the socket (it exited)."""


def use_template(client: Any) -> None:
    global _TEMPLATE
    _TEMPLATE = client


async def spawn_shim(cfg: ShimConfig) -> dict[str, Any]:
    """Start a detached shim; returns {"pid", "shim_pid"} once the container is created."""
    os.makedirs(os.path.dirname(cfg.socket), exist_ok=True)
    if _TEMPLATE is not None:
        try:
            line = await _TEMPLATE.spawn(cfg)
        except OSError:
            line = None
        if line is not None:
            return _ready(line)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "berth.shim", cfg.to_json(), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
    assert proc.stdout is not None
    # one line only: the container's init (forked, blocked until start) may still hold
    # a copy of the pipe, so EOF would not come before start
    line = await proc.stdout.readline()
    await proc.wait()
    return _ready(line)


def _ready(line: bytes) -> dict[str, Any]:
    if not line.strip():
        raise ShimError("the shim exited before creating the container", "ShimFailed")
    msg = decode(line.splitlines()[0])
    if not msg.get("ok"):
        raise ShimError(msg.get("error", "shim failed"), msg.get("kind", ""))
    return msg


def connect_unix(path: str) -> socket.socket:
    """A connected AF_UNIX socket, also for paths longer than sun_path allows (through
    /proc/self/fd/<dir fd>/<name>)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        if len(path.encode()) < 100:
            s.connect(path)
        else:
            dfd = os.open(os.path.dirname(path), os.O_PATH | os.O_CLOEXEC)
            try:
                s.connect(f"/proc/self/fd/{dfd}/{os.path.basename(path)}")
            finally:
                os.close(dfd)
    except BaseException:
        s.close()
        raise
    s.setblocking(False)
    return s


async def _connect(sock: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        s = connect_unix(sock)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise ShimGone(f"shim at {sock} is gone", "ShimGone") from exc
    return await asyncio.open_unix_connection(sock=s, limit=2**20)


async def call(sock: str, msg: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
    reader, writer = await _connect(sock)
    try:
        writer.write(encode(msg))
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            raise ShimGone(f"shim at {sock} closed the connection", "ShimGone")
        reply = decode(line)
        if not reply.get("ok"):
            raise ShimError(reply.get("error", "shim request failed"), reply.get("kind", ""))
        return reply
    finally:
        writer.close()


async def open_stream(sock: str, msg: dict[str, Any]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter,
                                                                dict[str, Any]]:
    """Send a request and return the connection (now a raw stream) with the first reply."""
    reader, writer = await _connect(sock)
    try:
        writer.write(encode(msg))
        await writer.drain()
        line = await reader.readline()
    except BaseException:
        writer.close()
        raise
    if not line:
        writer.close()
        raise ShimGone(f"shim at {sock} closed the connection", "ShimGone")
    reply = decode(line)
    if not reply.get("ok"):
        writer.close()
        raise ShimError(reply.get("error", "shim request failed"), reply.get("kind", ""))
    return reader, writer, reply


async def wait_exit(sock: str) -> dict[str, Any]:
    """Block until the container exits; returns exit info (exit_code, oom_killed, ...)."""
    reader, writer = await _connect(sock)
    try:
        writer.write(encode({"op": "wait"}))
        await writer.drain()
        line = await reader.readline()
    finally:
        writer.close()
    if not line:
        raise ShimGone(f"shim at {sock} closed the connection", "ShimGone")
    reply = decode(line)
    if not reply.get("ok"):
        raise ShimError(reply.get("error", "wait failed"), reply.get("kind", ""))
    return reply


def read_exit(path: str) -> dict[str, Any] | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
