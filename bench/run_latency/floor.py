"""The least a Python OCI runtime does to run a bundle: a reference point, not a runtime.

Usage: .venv/bin/python -I bench/run_latency/floor.py BUNDLE CGROUP_PATH

bench/run_latency/runtime.py runs it beside `berth-runtime run` and `runc run` on the same
bundle, started the same way (the venv's interpreter, -I), to show what part of the gap to
runc any Python runtime pays on this machine. It reads config.json with `json`, makes and
joins the container's cgroup in every hierarchy (as runc's cgroupfs driver does; with
berth's `prime_attach`, which takes the kernel's attach wait early), unshares the spec's
namespaces (the pid one before its fork, the others in the child), and in the new pid
namespace makes the root private, binds the rootfs, mounts /proc, pivots and execs
process.args; then it reaps the process and removes the cgroups.

It skips what a real runtime must also do: the rest of the spec's mounts, /dev and its
devices, masked and read-only paths, capabilities, rlimits, user, seccomp, the state
directory, create/start as two steps, and every error path.
"""

import json
import os
import sys

from berth import kernel
from berth.runtime import cgroups as berth_cgroups

_NS = {"pid": kernel.CLONE_NEWPID, "network": kernel.CLONE_NEWNET, "ipc": kernel.CLONE_NEWIPC,
       "uts": kernel.CLONE_NEWUTS, "mount": kernel.CLONE_NEWNS}
_CGROUP_ROOT = "/sys/fs/cgroup"


def _cgroups(path: str) -> list[str]:
    dirs = []
    for hierarchy in sorted(os.listdir(_CGROUP_ROOT)):
        base = os.path.join(_CGROUP_ROOT, hierarchy)
        if os.path.islink(base) or not os.path.exists(os.path.join(base, "cgroup.procs")):
            continue  # cpu,cpuacct-style symlinks, and anything that is not a hierarchy
        d = base + path
        os.makedirs(d, exist_ok=True)
        if hierarchy == "cpuset":  # a v1 cpuset cgroup takes no task until it has cpus and mems
            level = base
            for part in path.strip("/").split("/"):
                parent, level = level, os.path.join(level, part)
                for f in ("cpuset.cpus", "cpuset.mems"):
                    with open(os.path.join(level, f)) as cur:
                        if cur.read().strip():
                            continue
                    with open(os.path.join(parent, f)) as src, open(os.path.join(level, f), "w") as dst:
                        dst.write(src.read())
        dirs.append(d)
    return dirs


def _child(spec: dict, rootfs: str, flags: int) -> None:
    kernel.unshare(flags & ~kernel.CLONE_NEWPID)  # here: the runtime keeps the host's mounts
    kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)
    kernel.mount(rootfs, rootfs, None, kernel.MS_BIND | kernel.MS_REC)
    kernel.mount("proc", rootfs + "/proc", "proc", kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC)
    if spec.get("hostname"):
        kernel.sethostname(spec["hostname"])
    os.chdir(rootfs)
    kernel.pivot_root(".", ".")
    kernel.umount(".", kernel.MNT_DETACH)
    os.chdir(spec["process"].get("cwd") or "/")
    proc = spec["process"]
    env = dict(e.split("=", 1) for e in proc.get("env") or [])
    args = proc["args"]
    path = args[0] if "/" in args[0] else next(
        (p for p in (os.path.join(d, args[0]) for d in env.get("PATH", "/bin").split(":")) if os.path.exists(p)),
        args[0])
    os.execve(path, args, env)


def main(bundle: str, cgroup_path: str) -> int:
    # the kernel's cgroup-attach wait (an RCU grace period, 5-20 ms here) taken while the
    # rest loads, as berth-runtime does; without it this floor is about 10 ms higher
    berth_cgroups.prime_attach(hold=5.0)
    with open(os.path.join(bundle, "config.json")) as f:
        spec = json.load(f)
    rootfs = os.path.join(bundle, spec["root"]["path"])
    flags = 0
    for ns in spec["linux"]["namespaces"]:
        flags |= _NS.get(ns["type"], 0)
    cgroups = _cgroups(cgroup_path)
    try:
        for d in cgroups:
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        berth_cgroups.end_prime()
        kernel.unshare(flags & kernel.CLONE_NEWPID)  # the next child is the new namespace's init
        pid = os.fork()
        if pid == 0:
            try:
                _child(spec, rootfs, flags)
            finally:
                os._exit(127)
        _, status = os.waitpid(pid, 0)
    finally:
        for d in cgroups:  # back to each hierarchy's root, so the container's can go
            root = _CGROUP_ROOT + "/" + d[len(_CGROUP_ROOT) + 1:].split("/", 1)[0]
            with open(os.path.join(root, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
            os.rmdir(d)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.stdout.flush()
    os._exit(main(sys.argv[1], sys.argv[2]))
