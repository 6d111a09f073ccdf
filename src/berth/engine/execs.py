"""`docker exec`: exec instances of running containers, in memory as in dockerd.

`Execs` creates them (checked as dockerd checks `POST /containers/{id}/exec`), starts them
through the container's shim (detached, or as a raw stream the API relays), and answers
`GET /exec/{id}/json` from the shim's view of the process. The container service owns one
and tells it when a container exits or is removed.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from berth.engine import specgen
from berth.engine.container import Container
from berth.errors import BerthError, Conflict, InvalidParameter, NotFound
from berth.shim import client as shim


class ExecFailed(BerthError):
    """The container's command could not be run (exit code in .exit_code)."""

    status = 400

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def exec_failed(exc: shim.ShimError, prefix: str, argv0: str) -> ExecFailed | None:
    """The runtime's "cannot run this command" errors in dockerd's words, which the docker
    CLI turns into exit code 127 or 126; None for other failures."""
    codes = {"ExecNotFound": ("executable file not found in $PATH", 127),
             "ExecNotPermitted": ("permission denied", 126)}
    if exc.kind not in codes:
        return None
    reason, code = codes[exc.kind]
    return ExecFailed(f'{prefix}unable to start container process: exec: "{argv0}": {reason}: unknown', code)


@dataclass
class Exec:
    id: str
    container_id: str
    config: dict[str, Any]
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    started: bool = False


class Execs:
    """The daemon's exec instances. `get_container(ref)` looks a container up (NotFound if
    gone), `shim_sock(id)` is its shim's socket, `event(container, action, **attrs)`
    publishes an event."""

    def __init__(self, get_container: Callable[[str], Container], shim_sock: Callable[[str], str],
                 event: Callable[..., None]) -> None:
        self._get_container, self._shim_sock, self._event = get_container, shim_sock, event
        self._execs: dict[str, Exec] = {}

    def create(self, c: Container, body: dict[str, Any]) -> str:
        if c.state.get("Status") == "paused":
            raise Conflict(f"Container {c.id} is paused, unpause the container before exec")
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        cmd = body.get("Cmd")
        if isinstance(cmd, str):
            cmd = [cmd]
        if not cmd:
            raise InvalidParameter("No exec command specified")
        eid = secrets.token_hex(32)
        cfg = {"Tty": bool(body.get("Tty")), "AttachStdin": bool(body.get("AttachStdin")),
               "AttachStdout": bool(body.get("AttachStdout")), "AttachStderr": bool(body.get("AttachStderr")),
               "Cmd": list(cmd), "Env": body.get("Env") or [], "User": body.get("User") or "",
               "WorkingDir": body.get("WorkingDir") or "", "Privileged": bool(body.get("Privileged")),
               "ConsoleSize": body.get("ConsoleSize"), "DetachKeys": body.get("DetachKeys") or ""}
        self._execs[eid] = Exec(eid, c.id, cfg)
        self._event(c, f"exec_create: {' '.join(cmd)}", execID=eid)
        return eid

    def get(self, eid: str) -> Exec:
        e = self._execs.get(eid)
        if e is None:
            raise NotFound(f"No such exec instance: {eid}")
        return e

    def ids(self, container_id: str) -> list[str]:
        return [e.id for e in self._execs.values() if e.container_id == container_id]

    def container_exited(self, container_id: str) -> None:
        for e in self._execs.values():
            if e.container_id == container_id:
                e.running = False

    def forget(self, container_id: str) -> None:
        """The container is removed: its execs go with it."""
        for eid in self.ids(container_id):
            del self._execs[eid]

    def check(self, eid: str) -> tuple[Exec, Container]:
        """What `start` would raise for an exec that cannot start (the API asks before it
        hijacks the connection, so these are plain HTTP errors)."""
        e = self.get(eid)
        if e.started:
            raise Conflict(f"Exec {eid} has already been started")
        c = self._get_container(e.container_id)
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        return e, c

    async def start(self, eid: str, detach: bool = False, tty: bool | None = None,
                    console_size: list[int] | None = None,
                    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Run the exec's process; attached, the stream to relay (frames unless tty)."""
        e, c = self.check(eid)
        if tty is not None:
            e.config["Tty"] = bool(tty) or e.config["Tty"]
        if console_size:
            e.config["ConsoleSize"] = console_size
        caps = specgen.container_caps(c.host_config)
        proc = specgen.exec_process(c.config, e.config, c.rootfs, list(c.config.get("Env") or []), caps)
        e.started = True
        msg = {"op": "exec", "exec_id": eid, "process": proc, "tty": e.config["Tty"],
               "stdin": e.config["AttachStdin"] and not detach, "attach": not detach}
        sock = self._shim_sock(c.id)
        pair: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            if detach:
                e.pid = (await shim.call(sock, msg)).get("pid", 0)
            else:
                r, w, _ = await shim.open_stream(sock, msg)
                pair = r, w
        except shim.ShimError as exc:
            failed = exec_failed(exc, "OCI runtime exec failed: exec failed: ", e.config["Cmd"][0])
            e.exit_code = failed.exit_code if failed else 126
            raise (failed or BerthError(f"OCI runtime exec failed: {exc}")) from None
        e.running = True
        self._event(c, f"exec_start: {' '.join(e.config['Cmd'])}", execID=eid)
        return pair

    async def refresh(self, eid: str) -> Exec:
        """Learn the process's state (and exit code) from the shim."""
        e = self.get(eid)
        if not e.started or e.exit_code is not None and not e.running:
            return e
        try:
            st = await shim.call(self._shim_sock(e.container_id), {"op": "exec_state", "exec_id": e.id},
                                 timeout=5)
            e.pid = st.get("pid") or e.pid
            e.running = bool(st.get("running"))
            if st.get("exit_code") is not None:
                e.exit_code = int(st["exit_code"])
        except (TimeoutError, shim.ShimError, OSError, KeyError):
            e.running = False
            if e.exit_code is None:
                e.exit_code = 137
        return e

    async def inspect(self, eid: str) -> dict[str, Any]:
        e = await self.refresh(eid)
        cfg = e.config
        return {"ID": e.id, "Running": e.running, "ExitCode": e.exit_code, "ContainerID": e.container_id,
                "Pid": e.pid, "OpenStdin": cfg["AttachStdin"], "OpenStdout": cfg["AttachStdout"],
                "OpenStderr": cfg["AttachStderr"], "CanRemove": False, "DetachKeys": cfg["DetachKeys"],
                "ProcessConfig": {"tty": cfg["Tty"], "entrypoint": cfg["Cmd"][0], "arguments": cfg["Cmd"][1:],
                                  "privileged": cfg["Privileged"], "user": cfg["User"]}}
