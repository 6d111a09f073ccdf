"""The empty files a container's rootfs gets only as targets for its own /etc/hosts,
/etc/hostname and /etc/resolv.conf bind mounts.

The runtime makes a missing mount target, so on an image without these files they appear
in the container's overlay upper dir. Docker keeps them in an "init" layer below the
container's own: they are never part of a committed or built layer, nor of `docker diff`.
berth drops them from a RUN step's upper dir before it becomes a layer, and leaves them out
of `diff`.
"""

from __future__ import annotations

import os
import stat

TARGETS = ("etc/hosts", "etc/hostname", "etc/resolv.conf")


def is_placeholder(upper: str, rel: str) -> bool:
    """Whether `rel` (relative to the upper dir) is a mount target left empty by the runtime."""
    if rel.strip("/") not in TARGETS:
        return False
    try:
        st = os.lstat(os.path.join(upper, rel.strip("/")))
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == 0


def only_placeholders(upper: str, rel_dir: str) -> bool:
    """Whether the upper dir's `rel_dir` holds nothing but placeholders (it was copied up only
    to make them) and is not opaque (a directory replaced whole is a change of its own)."""
    d = os.path.join(upper, rel_dir.strip("/"))
    try:
        names = os.listdir(d)
    except OSError:
        return False
    if not names or _opaque(d):
        return False
    rel = rel_dir.strip("/")
    return all(is_placeholder(upper, f"{rel}/{n}") for n in names)


def drop_placeholders(upper: str) -> None:
    """Remove the placeholders (and an `etc/` then empty and not opaque) from an upper dir."""
    for rel in TARGETS:
        if is_placeholder(upper, rel):
            os.unlink(os.path.join(upper, rel))
    etc = os.path.join(upper, "etc")
    try:
        if os.path.isdir(etc) and not os.path.islink(etc) and not os.listdir(etc) and not _opaque(etc):
            os.rmdir(etc)
    except OSError:
        pass


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False
