"""What a container shares at start: the pid and IPC namespaces of another container it
joins (`--pid container:X`, `--ipc container:X`), the host's /dev/shm (`--ipc host`), and
the /dev/shm of a shareable IPC namespace (`--ipc shareable`), which its joiners bind too.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from berth import kernel
from berth.engine import hostconfig
from berth.engine.container import Container
from berth.errors import Conflict, NotFound


class Sharing:
    """`containers_dir` holds each container's directory; `get(ref)` looks one up."""

    def __init__(self, containers_dir: Path, get: Callable[[str], Container]) -> None:
        self._dir, self._get = containers_dir, get

    def shm_dir(self, cid: str) -> str:
        """A shareable container's /dev/shm: a tmpfs the daemon mounts in the container's
        directory (dockerd's ShmPath), bound by it and by the containers joining its IPC
        namespace (a mount inside another mount namespace cannot be bound)."""
        return str(self._dir / cid / "shm")

    def _shm_of(self, c: Container) -> str:
        return {"host": "/dev/shm", "shareable": self.shm_dir(c.id)}.get(c.host_config.get("IpcMode") or "", "")

    def joined(self, c: Container) -> tuple[dict[str, str], str]:
        """Namespace paths of the containers whose pid/ipc namespace `c` joins, and where its
        /dev/shm comes from (that container's, or the host's for IpcMode host)."""
        hc = c.host_config
        joined: dict[str, str] = {}
        shm = self._shm_of(c)
        ref = hostconfig.joined_container(hc.get("PidMode"))
        if ref:
            try:
                donor = self._get(ref)
            except NotFound:
                raise Conflict(f"cannot join PID of a non running container: {ref}") from None
            joined["pid"] = f"/proc/{_running_pid(donor, '')}/ns/pid"
        ref = hostconfig.joined_container(hc.get("IpcMode"))
        if ref:
            prefix = f"can't join IPC of container {ref}: "
            try:
                donor = self._get(ref)
            except NotFound as exc:
                raise Conflict(prefix + str(exc)) from None
            pid = _running_pid(donor, prefix)
            shm = self._shm_of(donor)
            if not shm or not os.path.ismount(shm):
                raise Conflict(prefix + "non-shareable IPC (hint: use IpcMode:shareable for the donor container)")
            joined["ipc"] = f"/proc/{pid}/ns/ipc"
        return joined, shm

    def mount_shm(self, c: Container) -> None:
        """A shareable container's /dev/shm, mounted before it starts (once)."""
        if c.host_config.get("IpcMode") != "shareable":
            return
        path = self.shm_dir(c.id)
        if os.path.ismount(path):
            return
        os.makedirs(path, exist_ok=True)
        size = int(c.host_config.get("ShmSize") or 64 * 1024 * 1024)
        kernel.mount("shm", path, "tmpfs", kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC,
                     f"mode=1777,size={size}")

    def release_shm(self, c: Container) -> None:
        path = self.shm_dir(c.id)
        if c.host_config.get("IpcMode") == "shareable" and os.path.ismount(path):
            kernel.umount(path, kernel.MNT_DETACH)   # joiners keep their own binds of it


def _running_pid(c: Container, prefix: str) -> int:
    pid = int(c.state.get("Pid") or 0)
    if not c.running or not pid:
        raise Conflict(f"{prefix}container {c.id} is not running")
    return pid
