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


_holder: tuple[int, int] | None = None  # (pid, write end of its pipe): see prime_attach(hold=...)


def prime_attach(hold: float = 0.0) -> Any:
    """Pay the kernel's cgroup-attach wait now, off the caller's critical path.

    Moving a process into a cgroup takes the kernel's cgroup_threadgroup_rwsem for writing.
    The first writer after an idle spell waits for an RCU grace period (5-20 ms on the
    development machine), holding the global cgroup_mutex meanwhile, so cgroup mkdirs wait
    too; writers within about one grace period after the last one do not wait. Attaching this
    process to the v2 cgroup it is already in is a no-op that takes that lock.

    Without `hold`, a thread makes one such move; the returned lock is released once it is
    done (callers need not wait for it). A long-lived caller (berthd) uses this a few ms
    before the shim moves an init.

    With `hold` (seconds), the window is also kept open until `end_prime()` (or for `hold`
    at most) by repeating the move every 2 ms, in a small forked process: a thread would
    need the GIL to start and to loop, and a caller busy importing holds it for 5 ms at a
    time, so the thread's first move came 10-15 ms late and each later one could miss the
    window. Returns None then. Errors are ignored: the later move then waits itself.
    """
    if hold > 0:
        _start_holder(hold)
        return None
    import _thread

    done = _thread.allocate_lock()
    done.acquire()
    _thread.start_new_thread(_reattach_once, (done,))
    return done


def end_prime() -> None:
    """Stop and reap the process `prime_attach(hold=...)` started (the move it prepared is
    done, or the create failed)."""
    global _holder
    holder, _holder = _holder, None
    if holder is None:
        return
    pid, wfd = holder
    # a byte, not just EOF: children forked since (the bridge, the init) hold copies of wfd
    try:
        os.write(wfd, b"x")
    finally:
        os.close(wfd)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _own_v2_procs() -> str | None:
    path = own_cgroups().get("")
    if path is not None:
        for base in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
            procs = f"{base}{path.rstrip('/')}/cgroup.procs"
            if os.path.exists(procs):
                return procs
    return None


def _reattach_once(done: Any) -> None:
    try:
        procs = _own_v2_procs()
        if procs is not None:
            with open(procs, "w") as f:
                f.write("0")  # "0": the writing thread's own process
    except OSError:
        pass
    finally:
        done.release()


def _start_holder(hold: float) -> None:
    global _holder
    if _holder is not None:
        return  # a holder is keeping the window open already
    procs = _own_v2_procs()
    if procs is None:
        return
    import select
    import time

    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    caller = os.getpid()
    try:
        pid = os.fork()
    except OSError:  # e.g. the caller's pids limit: the move then waits itself
        os.close(rfd)
        os.close(wfd)
        return
    if pid == 0:  # pragma: no cover - the holder
        try:
            os.close(wfd)
            _hold_window(procs, rfd, caller, hold, select.select, time.monotonic)
        finally:
            os._exit(0)
    os.close(rfd)
    _holder = (pid, wfd)


def _hold_window(procs: str, rfd: int, caller: int, hold: float, wait: Any, clock: Any) -> None:
    """The holder's loop: move itself (a no-op) every 2 ms until end_prime writes to its pipe,
    the caller is gone (the holder was re-parented), or `hold` seconds passed."""
    try:
        fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return
    deadline = clock() + hold
    while True:
        try:
            os.write(fd, b"0")
        except OSError:
            return
        if clock() >= deadline or wait([rfd], [], [], 0.002)[0] or os.getppid() != caller:
            return


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
