"""/dev in the container: the default device nodes, the spec's devices, standard symlinks,
/dev/pts/ptmx and /dev/console."""

from __future__ import annotations

import os
import stat

from berth import kernel
from berth.runtime.mounts import secure_join

# (path, type, major, minor) of the nodes every container gets (as runc)
DEFAULT_DEVICES = [("/dev/null", "c", 1, 3), ("/dev/zero", "c", 1, 5), ("/dev/full", "c", 1, 7),
                   ("/dev/random", "c", 1, 8), ("/dev/urandom", "c", 1, 9), ("/dev/tty", "c", 5, 0)]
# the device cgroup rules every container gets after the spec's own, as runc's
# AllowedDevices: mknod of any node (opening one needs a rule of its own), the default
# nodes, /dev/console, /dev/ptmx and the ptys, /dev/net/tun
DEFAULT_ALLOW = [("c", -1, -1, "m"), ("b", -1, -1, "m"),
                 ("c", 1, 3, "rwm"), ("c", 1, 5, "rwm"), ("c", 1, 7, "rwm"), ("c", 1, 8, "rwm"), ("c", 1, 9, "rwm"),
                 ("c", 5, 0, "rwm"), ("c", 5, 1, "rwm"), ("c", 5, 2, "rwm"), ("c", 136, -1, "rwm"),
                 ("c", 10, 200, "rwm")]
SYMLINKS = [("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
            ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr")]


def cgroup_rules(rules) -> list:
    """linux.resources.devices followed by DEFAULT_ALLOW, as DeviceCgroup objects."""
    from berth.runtime.spec import DeviceCgroup

    return list(rules) + [DeviceCgroup(allow=True, type=t, major=major, minor=minor, access=access)
                          for t, major, minor, access in DEFAULT_ALLOW]


def _type_bits(kind: str) -> int:
    if kind in ("c", "u"):
        return stat.S_IFCHR
    if kind == "b":
        return stat.S_IFBLK
    if kind == "p":
        return stat.S_IFIFO
    raise ValueError(f"unknown device type {kind!r}")


def make_device(rootfs: str, path: str, kind: str, major: int, minor: int, mode: int = 0o666,
                uid: int = 0, gid: int = 0) -> None:
    target = secure_join(rootfs, path)
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    if os.path.lexists(target):
        os.unlink(target)
    try:
        os.mknod(target, (mode & 0o7777) | _type_bits(kind), os.makedev(major, minor))
    except PermissionError:
        # no CAP_MKNOD (e.g. a user namespace): bind the host's node instead
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
        kernel.mount(path, target, None, kernel.MS_BIND)
        return
    os.chmod(target, mode & 0o7777)
    if uid or gid:
        os.chown(target, uid, gid)


def setup_dev(rootfs: str, devices, bind_dev: bool) -> None:
    """Create device nodes and links. `bind_dev`: /dev comes from the host, leave it alone."""
    if bind_dev:
        return
    for path, kind, major, minor in DEFAULT_DEVICES:
        make_device(rootfs, path, kind, major, minor)
    for d in devices or []:
        if d.path in {p for p, *_ in DEFAULT_DEVICES} and d.file_mode is None:
            continue
        make_device(rootfs, d.path, d.type, d.major, d.minor,
                    d.file_mode if d.file_mode is not None else 0o666, d.uid or 0, d.gid or 0)
    for src, dst in SYMLINKS:
        target = secure_join(rootfs, dst)
        if not os.path.lexists(target):
            os.symlink(src, target)
    if os.path.exists("/proc/kcore"):
        target = secure_join(rootfs, "/dev/core")
        if not os.path.lexists(target):
            os.symlink("/proc/kcore", target)
    ptmx = secure_join(rootfs, "/dev/ptmx")
    if os.path.isdir(secure_join(rootfs, "/dev/pts")):
        if os.path.lexists(ptmx):
            os.unlink(ptmx)
        os.symlink("pts/ptmx", ptmx)


def bind_console(rootfs: str, slave_path: str) -> None:
    """Bind the pty slave onto /dev/console (before pivot_root)."""
    target = secure_join(rootfs, "/dev/console")
    if not os.path.lexists(target):
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
    kernel.mount(slave_path, target, None, kernel.MS_BIND)
