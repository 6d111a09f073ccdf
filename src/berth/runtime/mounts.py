"""The container's filesystem: rootfs preparation, the spec's mounts, pivot_root, masked and
read-only paths, and a read-only root. Runs in the container's mount namespace (init side).
"""

from __future__ import annotations

import errno
import os
import stat

from berth import kernel
from berth.runtime.errors import RuntimeFailure

# option -> (clear flags, set flags)
_FLAGS: dict[str, tuple[bool, int]] = {
    "ro": (False, kernel.MS_RDONLY), "rw": (True, kernel.MS_RDONLY),
    "nosuid": (False, kernel.MS_NOSUID), "suid": (True, kernel.MS_NOSUID),
    "nodev": (False, kernel.MS_NODEV), "dev": (True, kernel.MS_NODEV),
    "noexec": (False, kernel.MS_NOEXEC), "exec": (True, kernel.MS_NOEXEC),
    "sync": (False, kernel.MS_SYNCHRONOUS), "async": (True, kernel.MS_SYNCHRONOUS),
    "dirsync": (False, kernel.MS_DIRSYNC), "remount": (False, kernel.MS_REMOUNT),
    "mand": (False, kernel.MS_MANDLOCK), "nomand": (True, kernel.MS_MANDLOCK),
    "atime": (True, kernel.MS_NOATIME), "noatime": (False, kernel.MS_NOATIME),
    "diratime": (True, kernel.MS_NODIRATIME), "nodiratime": (False, kernel.MS_NODIRATIME),
    "bind": (False, kernel.MS_BIND), "rbind": (False, kernel.MS_BIND | kernel.MS_REC),
    "relatime": (False, kernel.MS_RELATIME), "norelatime": (True, kernel.MS_RELATIME),
    "strictatime": (False, kernel.MS_STRICTATIME), "nostrictatime": (True, kernel.MS_STRICTATIME),
    "nosymfollow": (False, kernel.MS_NOSYMFOLLOW), "symfollow": (True, kernel.MS_NOSYMFOLLOW),
}
PROPAGATION = {
    "private": kernel.MS_PRIVATE, "rprivate": kernel.MS_PRIVATE | kernel.MS_REC,
    "shared": kernel.MS_SHARED, "rshared": kernel.MS_SHARED | kernel.MS_REC,
    "slave": kernel.MS_SLAVE, "rslave": kernel.MS_SLAVE | kernel.MS_REC,
    "unbindable": kernel.MS_UNBINDABLE, "runbindable": kernel.MS_UNBINDABLE | kernel.MS_REC,
}
# options that only make sense to the runtime, never passed to mount(2) as data
_IGNORED = {"defaults", "tmpcopyup", "idmap", "ridmap", "nocopyup", "copyup", "rro", "rrw"}


def parse_options(options: list[str] | None) -> tuple[int, list[int], str]:
    """Mount options -> (flags, propagation flags, data string)."""
    flags = 0
    prop: list[int] = []
    data: list[str] = []
    for opt in options or []:
        if opt in _FLAGS:
            clear, bit = _FLAGS[opt]
            flags = flags & ~bit if clear else flags | bit
        elif opt in PROPAGATION:
            prop.append(PROPAGATION[opt])
        elif opt in _IGNORED:
            continue
        else:
            data.append(opt)
    return flags, prop, ",".join(data)


def secure_join(root: str, path: str) -> str:
    """`path` inside `root`, resolving symlinks as if `root` were `/` (never escaping it)."""
    parts = [p for p in path.split("/") if p and p != "."]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > 255:
                raise RuntimeFailure(f"too many symlinks resolving {path} in the rootfs")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def _ensure_target(target: str, source_is_dir: bool) -> None:
    if os.path.lexists(target):
        return
    if source_is_dir:
        os.makedirs(target, mode=0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))


def prepare_root(rootfs: str, propagation: str | None) -> None:
    """Stop mount events leaking to the host and make the rootfs a mount point of its own."""
    flag = PROPAGATION.get(propagation or "", kernel.MS_SLAVE | kernel.MS_REC)
    kernel.mount(None, "/", None, flag)
    kernel.mount(rootfs, rootfs, None, kernel.MS_BIND | kernel.MS_REC)


def is_cgroup(m) -> bool:
    """Whether `mount_one` mounts `m` (a `spec.Mount`) as a cgroup filesystem: one that
    shows the container's own cgroup directories, which must exist by then."""
    return m.type == "cgroup" and not {"bind", "rbind"} & set(m.options or [])


def mount_one(rootfs: str, m, has_netns: bool, cgroup_paths: dict[str, str] | None,
              has_cgroupns: bool) -> None:
    """Mount one spec mount (`spec.Mount`) below `rootfs`."""
    dest = m.destination
    if not dest.startswith("/"):
        dest = "/" + dest
    target = secure_join(rootfs, dest)
    flags, prop, data = parse_options(m.options)
    kind = m.type or ("bind" if flags & kernel.MS_BIND else "")
    if kind == "bind" or flags & kernel.MS_BIND:
        src = m.source or ""
        if not os.path.exists(src):
            raise RuntimeFailure(f"bind mount source {src} for {dest} does not exist")
        _ensure_target(target, os.path.isdir(src))
        bind_flags = kernel.MS_BIND | (flags & kernel.MS_REC)
        kernel.mount(src, target, None, bind_flags)
        rest = flags & ~(kernel.MS_BIND | kernel.MS_REC | kernel.MS_REMOUNT)
        if rest:
            remount_bind(target, rest)
        for p in prop:
            kernel.mount(None, target, None, p)
        return
    if kind == "cgroup":
        _mount_cgroup(target, flags, cgroup_paths or {}, has_cgroupns)
        return
    os.makedirs(target, mode=0o755, exist_ok=True)
    try:
        kernel.mount(m.source or kind, target, kind, flags, data or None)
    except OSError as exc:
        if kind == "sysfs" and exc.errno == errno.EPERM and not has_netns:
            # sysfs cannot be mounted from a network namespace we do not own: bind the host's
            kernel.mount("/sys", target, None, kernel.MS_BIND | kernel.MS_REC)
        elif kind == "mqueue" and exc.errno in (errno.EPERM, errno.ENODEV):
            kernel.mount("/dev/mqueue", target, None, kernel.MS_BIND)
        else:
            raise RuntimeFailure(f"mounting {m.source or kind} ({kind}) on {dest}: {exc.strerror}") from None
    if kind == "sysfs" and flags & kernel.MS_RDONLY and not _is_readonly(target):
        remount_bind(target, flags)
    for p in prop:
        kernel.mount(None, target, None, p)


def _is_readonly(path: str) -> bool:
    return bool(os.statvfs(path).f_flag & os.ST_RDONLY)


def remount_bind(target: str, flags: int) -> None:
    """Remount a bind mount with new flags, keeping the flags the kernel locks on it."""
    locked = 0
    try:
        st = os.statvfs(target)
        for bit, sv in ((kernel.MS_NOSUID, os.ST_NOSUID), (kernel.MS_NODEV, os.ST_NODEV),
                        (kernel.MS_NOEXEC, os.ST_NOEXEC), (kernel.MS_RDONLY, os.ST_RDONLY)):
            if st.f_flag & sv:
                locked |= bit
    except OSError:
        pass
    kernel.mount(None, target, None, kernel.MS_REMOUNT | kernel.MS_BIND | flags | (locked & ~kernel.MS_RDONLY))


def _mount_cgroup(target: str, flags: int, cgroup_paths: dict[str, str], has_cgroupns: bool) -> None:
    """/sys/fs/cgroup in the container: cgroup2 when the host is unified, else a tmpfs with one
    directory per v1 hierarchy showing the container's own cgroup."""
    os.makedirs(target, mode=0o755, exist_ok=True)
    base = flags & (kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC)
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        if has_cgroupns:
            kernel.mount("cgroup2", target, "cgroup2", flags)
        else:
            src = cgroup_paths.get("unified") or "/sys/fs/cgroup"
            kernel.mount(src, target, None, kernel.MS_BIND | kernel.MS_REC)
            if flags & kernel.MS_RDONLY:
                remount_bind(target, kernel.MS_RDONLY | base)
        return
    kernel.mount("tmpfs", target, "tmpfs", base, "mode=755")
    for key, host_dir in cgroup_paths.items():
        name = "unified" if key == "unified" else key.replace("name=", "")
        sub = os.path.join(target, name)
        os.makedirs(sub, exist_ok=True)
        if has_cgroupns and key != "unified":
            kernel.mount("cgroup", sub, "cgroup", flags, key)
        elif has_cgroupns:
            kernel.mount("cgroup2", sub, "cgroup2", flags)
        else:
            kernel.mount(host_dir, sub, None, kernel.MS_BIND)
            remount_bind(sub, flags | base)
        if "," in key:  # cpu,cpuacct -> cpu and cpuacct links, as on the host
            for alias in key.split(","):
                link = os.path.join(target, alias)
                if not os.path.lexists(link):
                    os.symlink(name, link)
    if flags & kernel.MS_RDONLY:
        kernel.mount(None, target, None, kernel.MS_REMOUNT | kernel.MS_RDONLY | base, "mode=755")


def pivot(rootfs: str) -> None:
    """pivot_root into `rootfs` using the '.' trick (no put_old directory left behind)."""
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(new)
        kernel.pivot_root(".", ".")
        os.fchdir(old)
        # the old root may be shared with the host: make it slave so the detach stays ours
        kernel.mount(None, ".", None, kernel.MS_SLAVE | kernel.MS_REC)
        kernel.umount(".", kernel.MNT_DETACH)
        os.chdir("/")
    finally:
        os.close(old)
        os.close(new)


def move_root(rootfs: str) -> None:
    """--no-pivot: move the rootfs over / and chroot (for ramfs roots)."""
    os.chdir(rootfs)
    kernel.mount(rootfs, "/", None, kernel.MS_MOVE)
    os.chroot(".")
    os.chdir("/")


def mask_path(path: str) -> None:
    """Hide `path`: /dev/null over a file, an empty read-only tmpfs over a directory."""
    try:
        kernel.mount("/dev/null", path, None, kernel.MS_BIND)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return
        if exc.errno == errno.ENOTDIR:
            kernel.mount("tmpfs", path, "tmpfs", kernel.MS_RDONLY)
            return
        raise


def readonly_path(path: str) -> None:
    try:
        kernel.mount(path, path, None, kernel.MS_BIND | kernel.MS_REC)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return
        raise
    remount_bind(path, kernel.MS_RDONLY)


def readonly_root() -> None:
    remount_bind("/", kernel.MS_RDONLY)
