"""Helpers (no tests) shared by the runtime's integration tests: busybox bundles and running them
through the library with captured output. Every bundle lives under the run's root and
every container uses a cgroup below the run's cgroup parent."""

from __future__ import annotations

import os
import select
import shutil
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from berth.runtime import capabilities, spec
from berth.runtime.runtime import Runtime


@dataclass
class Result:
    code: int
    out: str
    err: str
    oom: bool


def make_bundle(base: Path, name: str, busybox_tar: str, args: list[str]) -> tuple[Path, spec.Spec]:
    bundle = base / name
    rootfs = bundle / "rootfs"
    rootfs.mkdir(parents=True)
    with tarfile.open(busybox_tar) as tar:
        tar.extractall(rootfs)
    sp = spec.default_spec()
    sp.process.terminal = False
    sp.process.args = args
    sp.root.readonly = False
    sp.hostname = "box-" + name[:8]
    caps = capabilities.DOCKER_DEFAULT
    sp.process.capabilities = spec.Capabilities(bounding=list(caps), effective=list(caps),
                                                permitted=list(caps))
    sp.process.no_new_privileges = True
    return bundle, sp


def write(bundle: Path, sp: spec.Spec) -> None:
    spec.dump(sp, str(bundle))


def read_all(fds: list[int], timeout: float = 60) -> list[bytes]:
    bufs = {fd: b"" for fd in fds}
    open_fds = list(fds)
    deadline = time.monotonic() + timeout
    while open_fds and time.monotonic() < deadline:
        ready, _, _ = select.select(open_fds, [], [], 0.5)
        for fd in ready:
            data = os.read(fd, 65536)
            if not data:
                open_fds.remove(fd)
            else:
                bufs[fd] += data
    return [bufs[fd] for fd in fds]


def wait_pid(pid: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got, status = os.waitpid(pid, os.WNOHANG)
        if got:
            return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
        time.sleep(0.01)
    raise TimeoutError(f"pid {pid} did not exit")


def run(rt: Runtime, cid: str, bundle: Path, timeout: float = 60) -> Result:
    """create + start, collect stdout/stderr, reap, read OOM, delete."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    r_out, w_out = os.pipe()
    r_err, w_err = os.pipe()
    try:
        pid = rt.create(cid, str(bundle), stdio=(devnull, w_out, w_err))
    finally:
        for fd in (devnull, w_out, w_err):
            os.close(fd)
    try:
        rt.start(cid)
        out, err = read_all([r_out, r_err], timeout)
        code = wait_pid(pid, timeout)
        oom = rt.oom_killed(cid)
    finally:
        os.close(r_out)
        os.close(r_err)
        rt.delete(cid, force=True)
    return Result(code, out.decode(errors="replace"), err.decode(errors="replace"), oom)


def rm_bundle(bundle: Path) -> None:
    shutil.rmtree(bundle, ignore_errors=True)
