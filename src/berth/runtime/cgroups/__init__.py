"""Cgroup managers behind one interface, and detection of the host's cgroup layout.

`manager_for(cgroups_path, container_id)` returns a v2 manager on a unified host and a v1
manager otherwise (hybrid hosts: v1 controllers, plus the empty v2 hierarchy joined too).
`from_state(dict)` re-opens the manager recorded in a container's state.
"""

from __future__ import annotations

import os

from berth.runtime.errors import RuntimeFailure

TYPE_CHECKING = False  # no typing import at run time (see berth.runtime)
if TYPE_CHECKING:
    from typing import Any, Protocol

    class Manager(Protocol):
        def create(self) -> None: ...
        def apply(self, resources: Any) -> None: ...
        def add(self, pid: int) -> None: ...
        def procs(self) -> list[int]: ...
        def freeze(self) -> None: ...
        def thaw(self) -> None: ...
        def frozen(self) -> bool: ...
        def oom_killed(self) -> bool: ...
        def stats(self) -> dict[str, Any]: ...
        def destroy(self) -> None: ...
        def to_state(self) -> dict[str, Any]: ...


def cgroup_mounts() -> list[tuple[str, str, str, str]]:
    """(fstype, mount point, mount root, super options) of every cgroup mount."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            rparts = right.split()
            if not rparts or rparts[0] not in ("cgroup", "cgroup2"):
                continue
            lparts = left.split()
            out.append((rparts[0], lparts[4], lparts[3], rparts[2] if len(rparts) > 2 else ""))
    return out


def own_cgroups() -> dict[str, str]:
    """This process' cgroup per hierarchy key ('' for v2, else the controller list)."""
    out: dict[str, str] = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            out[ctrls] = path
    return out


_hold_stop: Any = None  # released by end_prime(): the current holding thread stops


def prime_attach(hold: float = 0.0) -> Any:
    """Pay the kernel's cgroup-attach wait now, on a background thread; returns that thread's
    lock, released when the first write is done (callers need not wait for it).

    Moving a process into a cgroup takes the kernel's cgroup_threadgroup_rwsem for writing.
    The first writer after an idle spell waits for an RCU grace period (5-20 ms on the
    development machine); writers within about one grace period after the last one do not.
    Attaching this process to the v2 cgroup it is already in is a no-op that takes that lock,
    so a caller that is about to move a container's init calls this first and does its other
    work (imports, network set-up) meanwhile. The window closes about a grace period after
    the last write: a caller whose move comes later than that passes `hold` (seconds), and
    the thread repeats the no-op move every 2 ms until `end_prime()` or for `hold` at most.
    Errors are ignored: the later move then waits itself.
    """
    import _thread

    global _hold_stop
    done = _thread.allocate_lock()
    if hold > 0 and _hold_stop is not None:
        return done  # a thread is holding the window open already
    done.acquire()
    stop = None
    if hold > 0:
        stop = _hold_stop = _thread.allocate_lock()
        stop.acquire()
    _thread.start_new_thread(_reattach_self, (done, stop, hold))
    return done


def end_prime() -> None:
    """Stop the thread `prime_attach(hold=...)` started (the move it prepared is done)."""
    global _hold_stop
    stop, _hold_stop = _hold_stop, None
    if stop is not None:
        stop.release()


def _own_v2_procs() -> str | None:
    path = own_cgroups().get("")
    if path is not None:
        for base in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
            procs = f"{base}{path.rstrip('/')}/cgroup.procs"
            if os.path.exists(procs):
                return procs
    return None


def _reattach_self(done: Any, stop: Any, hold: float) -> None:
    import time

    try:
        procs = _own_v2_procs()
        if procs is None:
            return
        fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, b"0")  # "0": the writing thread's own process
            done.release()
            done = None
            deadline = time.monotonic() + hold
            while stop is not None and time.monotonic() < deadline and not stop.acquire(timeout=0.002):
                os.write(fd, b"0")
        finally:
            os.close(fd)
    except OSError:
        pass
    finally:
        if done is not None:
            done.release()


def normalize_path(cgroups_path: str | None, container_id: str) -> str:
    """An OCI cgroupsPath: absolute (from the hierarchy root), relative (from the caller's own
    cgroup) or systemd's `slice:prefix:name`, which becomes `/slice/prefix-name.scope`."""
    if not cgroups_path:
        return f"/berth/{container_id}"
    if ":" in cgroups_path and not cgroups_path.startswith("/"):
        parts = cgroups_path.split(":")
        if len(parts) == 3:
            slice_, prefix, name = parts
            slice_ = slice_ or "system.slice"
            return f"/{slice_}/{prefix}-{name}.scope" if prefix else f"/{slice_}/{name}"
    return cgroups_path


def _write(path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as exc:
        raise RuntimeFailure(f"cgroup: cannot write {value!r} to {path}: {exc.strerror}") from None


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def is_unified() -> bool:
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def manager_for(cgroups_path: str | None, container_id: str) -> Manager:
    path = normalize_path(cgroups_path, container_id)
    if is_unified():
        from berth.runtime.cgroups.v2 import V2Manager
        return V2Manager.for_path(path)
    from berth.runtime.cgroups.v1 import V1Manager
    return V1Manager.for_path(path)


def from_state(data: dict[str, Any]) -> Manager:
    if data.get("version") == 2:
        from berth.runtime.cgroups.v2 import V2Manager
        return V2Manager(data["path"])
    from berth.runtime.cgroups.v1 import V1Manager
    return V1Manager(data["paths"])
