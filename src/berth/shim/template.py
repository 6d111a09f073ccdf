"""A pre-forked shim template (fork server) so starting a container skips interpreter start-up.

The daemon runs `python -m berth.shim --template LOG_DIR` with pipes on stdin/stdout. The
template imports the shim and runtime code once, stays single-threaded, and for each JSON
line (a ShimConfig) on stdin forks twice (the shim ends up re-parented away from it, in its
own session, exactly like a shim started with `python -m berth.shim`) and answers with
the shim's ready line. It exits when stdin closes (the daemon stopped or died).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from berth.shim.protocol import ShimConfig, encode


def _preload() -> None:
    """Everything a shim and its runtime create/exec import, so forked shims import nothing
    (the runtime keeps the list: its own cgroup v1/v2 managers were missing from ours)."""
    import berth.runtime.runtime
    import berth.runtime.spec  # noqa: F401
    import berth.shim.server  # noqa: F401
    berth.runtime.runtime.preload()


def serve_template(log_dir: str) -> None:
    """Serve spawn requests; several shims may be creating their containers at once. Each
    answer is the shim's ready line prefixed with the container id and a space."""
    import selectors

    from berth.shim.server import _detach_stdio, run_shim

    _preload()
    out = sys.stdout.buffer
    sel = selectors.DefaultSelector()
    os.set_blocking(0, False)
    sel.register(0, selectors.EVENT_READ, None)
    inbuf = b""
    pending: dict[int, tuple[str, bytes]] = {}   # ready-pipe fd -> (container id, bytes so far)

    def answer(cid: str, line: bytes) -> None:
        if not line.endswith(b"\n"):
            line = encode({"ok": False, "error": "the shim exited before creating the container",
                           "kind": "ShimFailed"})
        out.write(cid.encode() + b" " + line)
        out.flush()

    while True:
        for key, _ in sel.select():
            if key.fd == 0:
                try:
                    chunk = os.read(0, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    return
                inbuf += chunk
                while b"\n" in inbuf:
                    line, inbuf = inbuf.split(b"\n", 1)
                    try:
                        cfg = ShimConfig.from_json(line)
                    except (ValueError, TypeError) as exc:
                        out.write(b"- " + encode({"ok": False, "error": f"bad shim config: {exc}",
                                                  "kind": "InvalidParameter"}))
                        out.flush()
                        continue
                    r, w = os.pipe()
                    pid = os.fork()
                    if pid == 0:
                        code = 1
                        try:
                            os.close(r)
                            os.setsid()
                            if os.fork() > 0:
                                os._exit(0)
                            os.makedirs(os.path.dirname(cfg.socket), exist_ok=True)
                            _detach_stdio(os.path.join(os.path.dirname(cfg.socket), "shim.log"))
                            code = run_shim(cfg, w)
                        finally:
                            os._exit(code)
                    os.close(w)
                    os.waitpid(pid, 0)   # the intermediate exits at once
                    os.set_blocking(r, False)
                    pending[r] = (cfg.id, b"")
                    sel.register(r, selectors.EVENT_READ, None)
            else:
                cid, got = pending[key.fd]
                try:
                    chunk = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                got += chunk
                if chunk and b"\n" not in got:
                    pending[key.fd] = (cid, got)
                    continue
                sel.unregister(key.fd)
                os.close(key.fd)
                del pending[key.fd]
                answer(cid, got.split(b"\n", 1)[0] + b"\n" if b"\n" in got else got)


class TemplateClient:
    """Daemon side: one template process; requests may overlap (answers carry the id)."""

    def __init__(self, log_dir: str) -> None:
        self.log_dir = log_dir
        self.proc: asyncio.subprocess.Process | None = None
        self.lock = asyncio.Lock()
        self.waiting: dict[str, asyncio.Future[bytes | None]] = {}
        self.reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        os.makedirs(self.log_dir, exist_ok=True)
        log = open(os.path.join(self.log_dir, "template.log"), "ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "berth.shim", "--template", self.log_dir,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log,
                start_new_session=True)
        finally:
            log.close()
        self.reader = asyncio.create_task(self._read(self.proc))

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        try:
            while True:
                line = await proc.stdout.readline()
                if not line:
                    break
                cid, _, reply = line.partition(b" ")
                fut = self.waiting.pop(cid.decode(errors="replace"), None)
                if fut is not None and not fut.done():
                    fut.set_result(reply)
        finally:
            if self.proc is proc:
                self.proc = None
            for fut in self.waiting.values():
                if not fut.done():
                    fut.set_result(None)
            self.waiting.clear()

    async def spawn(self, cfg: ShimConfig) -> bytes | None:
        """The shim's ready line, or None when the template is not usable."""
        async with self.lock:
            if self.proc is None or self.proc.returncode is not None:
                await self.start()
            proc = self.proc
            assert proc is not None and proc.stdin is not None
            fut: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
            self.waiting[cfg.id] = fut
            try:
                proc.stdin.write(cfg.to_json().encode() + b"\n")
                await proc.stdin.drain()
            except (ConnectionError, OSError):
                self.waiting.pop(cfg.id, None)
                return None
        return await fut

    async def stop(self) -> None:
        proc = self.proc
        self.proc = None
        if proc is not None and proc.returncode is None:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self.reader is not None:
            self.reader.cancel()

    def info(self) -> dict[str, Any]:
        return {"pid": self.proc.pid if self.proc else None}
