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
    import berth.runtime.runtime  # noqa: F401
    import berth.shim.server  # noqa: F401
    for mod in ("berth.runtime.init", "berth.runtime.cgroups", "berth.runtime.mounts",
                "berth.runtime.namespaces", "berth.runtime.seccomp", "berth.runtime.spec",
                "berth.runtime.console", "berth.runtime.devices", "berth.runtime.capabilities",
                "seccomp"):
        try:
            __import__(mod)
        except ImportError:
            pass


def serve_template(log_dir: str) -> None:
    from berth.shim.server import _detach_stdio, run_shim

    _preload()
    stdin = sys.stdin.buffer
    out = sys.stdout.buffer
    while True:
        line = stdin.readline()
        if not line:
            return
        try:
            cfg = ShimConfig.from_json(line)
        except (ValueError, TypeError) as exc:
            out.write(encode({"ok": False, "error": f"bad shim config: {exc}", "kind": "InvalidParameter"}))
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
        os.waitpid(pid, 0)
        reply = b""
        with os.fdopen(r, "rb") as f:
            reply = f.readline()
        if not reply.endswith(b"\n"):
            reply = encode({"ok": False, "error": "the shim exited before creating the container",
                            "kind": "ShimFailed"})
        out.write(reply)
        out.flush()


class TemplateClient:
    """Daemon side: one template process, one request at a time."""

    def __init__(self, log_dir: str) -> None:
        self.log_dir = log_dir
        self.proc: asyncio.subprocess.Process | None = None
        self.lock = asyncio.Lock()

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

    async def spawn(self, cfg: ShimConfig) -> bytes | None:
        """The shim's ready line, or None when the template is not usable."""
        async with self.lock:
            if self.proc is None or self.proc.returncode is not None:
                await self.start()
            proc = self.proc
            assert proc is not None and proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(cfg.to_json().encode() + b"\n")
                await proc.stdin.drain()
                line = await proc.stdout.readline()
            except (ConnectionError, OSError):
                line = b""
            if not line:
                self.proc = None
                return None
            return line

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

    def info(self) -> dict[str, Any]:
        return {"pid": self.proc.pid if self.proc else None}
