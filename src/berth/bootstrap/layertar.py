"""Deterministic layer tars: the same tree gives the same bytes, whatever its timestamps.

Entries are written in byte order of their paths (parents before children), every mtime
is set to one epoch, uid/gid and mode are kept as on disk, user/group names are left
empty, no atime/ctime is stored, hard links become link entries, and the only extended
attribute kept is `security.capability` (as Docker does). The PAX format is used, whose
extra headers are produced only from the entry's own data.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

KEPT_XATTRS = ("security.capability",)


class HashingWriter:
    """A write-only file object that hashes and counts what passes through it."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        self.out.write(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


@dataclass(frozen=True)
class LayerInfo:
    diff_id: str     # sha256:<hex> of the tar bytes
    size: int        # bytes of the tar
    entries: int


def walk(root: Path) -> list[str]:
    """Relative paths under root (root excluded), sorted bytewise, parents first."""
    out: list[str] = []

    def rec(rel: bytes) -> None:
        base = os.path.join(os.fsencode(root), rel) if rel else os.fsencode(root)
        names = sorted(os.listdir(base))
        for n in names:
            child = os.path.join(rel, n) if rel else n
            out.append(os.fsdecode(child))
            if stat.S_ISDIR(os.lstat(os.path.join(os.fsencode(root), child)).st_mode):
                rec(child)

    rec(b"")
    return out


def _xattrs(path: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in KEPT_XATTRS:
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
        # tarfile writes str PAX values; surrogateescape keeps the raw bytes intact.
        found["SCHILY.xattr." + name] = value.decode("utf-8", "surrogateescape")
    return found


def write_layer(root: str | Path, out: BinaryIO, epoch: int) -> LayerInfo:
    """Write `root`'s tree as a layer tar to `out`; returns its diff id."""
    root = Path(root)
    w = HashingWriter(out)
    links: dict[tuple[int, int], str] = {}
    count = 0
    with tarfile.open(fileobj=w, mode="w|", format=tarfile.PAX_FORMAT,  # type: ignore[call-overload]
                      encoding="utf-8", errors="surrogateescape") as tar:
        for rel in walk(root):
            full = os.path.join(root, rel)
            st = os.lstat(full)
            ti = tarfile.TarInfo(rel)
            ti.mtime = int(epoch)
            ti.mode = stat.S_IMODE(st.st_mode)
            ti.uid, ti.gid = st.st_uid, st.st_gid
            ti.uname = ti.gname = ""
            pax = _xattrs(full)
            if pax:
                ti.pax_headers = pax
            data = None
            m = st.st_mode
            if stat.S_ISREG(m):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in links:
                    ti.type = tarfile.LNKTYPE
                    ti.linkname = links[key]
                else:
                    if st.st_nlink > 1:
                        links[key] = rel
                    ti.type = tarfile.REGTYPE
                    ti.size = st.st_size
                    data = open(full, "rb")  # noqa: SIM115 - closed below
            elif stat.S_ISDIR(m):
                ti.type = tarfile.DIRTYPE
            elif stat.S_ISLNK(m):
                ti.type = tarfile.SYMTYPE
                ti.linkname = os.readlink(full)
            elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
                ti.type = tarfile.CHRTYPE if stat.S_ISCHR(m) else tarfile.BLKTYPE
                ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            elif stat.S_ISFIFO(m):
                ti.type = tarfile.FIFOTYPE
            else:
                continue  # sockets and the like have no place in an image
            try:
                tar.addfile(ti, data)
            finally:
                if data is not None:
                    data.close()
            count += 1
    return LayerInfo(diff_id=w.digest, size=w.size, entries=count)


def write_layer_file(root: str | Path, dest: str | Path, epoch: int) -> LayerInfo:
    with open(dest, "wb") as f:
        info = write_layer(root, f, epoch)
        f.flush()
        os.fsync(f.fileno())
    return info
