"""Mount points of a RUN step's `--mount`s, kept out of the layer the step commits.

`make(rootfs, targets)` creates each missing target in the (mounted) rootfs before the
container starts, a directory or an empty file to match the source, and remembers what
it made and the metadata of the existing directories above it. `scrub(upper)` then runs
on the step's overlay upper dir (unmounted, before the commit): made paths that are still
empty go, and so do the copied-up parents that hold nothing else and were not changed,
as BuildKit removes the mount points it had to create."""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass, field

from berth.build.context import resolve_in_root
from berth.errors import InvalidParameter


def _meta(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_mode, st.st_uid, st.st_gid


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


@dataclass
class Mountpoints:
    made: list[str] = field(default_factory=list)       # rootfs-relative, parents first
    parents: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # rel -> metadata

    def make(self, rootfs: str, target: str, is_dir: bool) -> None:
        host = resolve_in_root(rootfs, target, clamp=True)
        root = os.path.realpath(rootfs)
        rel = os.path.relpath(host, root)
        if rel == ".":
            return
        parts = rel.split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            path = os.path.join(root, sub)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                last = i == len(parts)
                if last and not is_dir:
                    os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
                else:
                    os.mkdir(path, 0o755)
                self.made.append(sub)
                continue
            if stat.S_ISDIR(st.st_mode) and i < len(parts):
                self.parents.setdefault(sub, _meta(st))

    def scrub(self, upper: str) -> None:
        for rel in reversed(self.made):
            path = os.path.join(upper, rel)
            with contextlib.suppress(OSError):  # kept: the step put something there
                if os.path.isdir(path) and not os.path.islink(path):
                    os.rmdir(path)
                elif os.path.isfile(path) and os.path.getsize(path) == 0:
                    os.unlink(path)
        for rel in sorted(self.parents, key=lambda r: r.count("/"), reverse=True):
            path = os.path.join(upper, rel)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            if (stat.S_ISDIR(st.st_mode) and _meta(st) == self.parents[rel]
                    and not _opaque(path) and not os.listdir(path)):
                with contextlib.suppress(OSError):
                    os.rmdir(path)


def make(rootfs: str, targets: list[tuple[str, bool]]) -> Mountpoints:
    """Create the missing `(target, is_dir)` mount points in `rootfs`."""
    mp = Mountpoints()
    for target, is_dir in targets:
        try:
            mp.make(rootfs, target, is_dir)
        except OSError as exc:  # e.g. a file where the target needs a directory
            raise InvalidParameter(f"cannot make the mount point {target}: {exc.strerror}") from None
    return mp
