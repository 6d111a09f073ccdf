"""COPY and ADD into a container rootfs with Docker's rules.

- a directory source copies its contents (not itself) into the destination;
- the destination is a directory if it ends with `/`, already is one, or there are
  several sources (which then requires the trailing `/`);
- relative destinations are relative to WORKDIR; missing directories are created;
- everything copied is owned by 0:0 unless `--chown`, modes kept unless `--chmod`;
- ADD extracts local tar archives (plain, gzip, bzip2, xz) into the destination, the
  extracted files owned by 0:0 or `--chown`'s owner.
Paths inside the rootfs resolve like a chroot (absolute symlinks stay inside)."""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
from dataclasses import dataclass

from berth.build.context import extract_tar, resolve_in_root
from berth.errors import InvalidParameter


@dataclass
class Source:
    root: str                    # context dir or a source image's rootfs
    rel: str                     # path relative to root (already glob-expanded)
    clamp: bool = False          # True for an image rootfs, False for the context
    inline: bytes | None = None  # heredoc content (rel is the heredoc name)


def parse_chown(spec: str, rootfs: str) -> tuple[int, int]:
    """`user[:group]` (names or numbers, names looked up in the rootfs)."""
    user, _, group = spec.partition(":")

    def lookup(name: str, file: str, what: str) -> int:
        if name.isdigit():
            return int(name)
        path = resolve_in_root(rootfs, file, clamp=True)
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    parts = line.strip().split(":")
                    if len(parts) >= 3 and parts[0] == name:
                        return int(parts[2])
        except OSError:
            pass
        raise InvalidParameter(
            f"unable to convert uid/gid chown string to host mapping: can't find {what} for {what} name {name}: no such {what} in {file}")

    if not user:
        raise InvalidParameter(f"invalid --chown value: {spec!r}")
    uid = lookup(user, "/etc/passwd", "user")
    gid = lookup(group, "/etc/group", "group") if group else uid
    return uid, gid


def parse_chmod(spec: str) -> int:
    try:
        mode = int(spec, 8)
    except ValueError:
        raise InvalidParameter(f"invalid chmod parameter: {spec!r} (octal permissions expected)") from None
    if mode < 0 or mode > 0o7777:
        raise InvalidParameter(f"invalid chmod parameter: {spec!r}")
    return mode


def _is_archive(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    if head.startswith(b"\x1f\x8b") or head.startswith(b"BZh") or head.startswith(b"\xfd7zXZ\x00"):
        return True
    return len(head) >= 262 and head[257:262] == b"ustar"


class Copier:
    def __init__(self, rootfs: str, uid: int = 0, gid: int = 0, chmod: int | None = None) -> None:
        self.rootfs = os.path.realpath(rootfs)
        self.uid, self.gid, self.chmod = uid, gid, chmod

    def _host(self, path: str, follow_last: bool = True) -> str:
        return resolve_in_root(self.rootfs, path, clamp=True, follow_last=follow_last)

    def mkdirs(self, path: str, chown: bool = True) -> str:
        """mkdir -p inside the rootfs; created directories are 0755 and owned as copied files."""
        parts = [p for p in path.split("/") if p and p != "."]
        cur = "/"
        for p in parts:
            cur = posixpath.join(cur, p)
            host = self._host(cur)
            if not os.path.lexists(host):
                os.mkdir(host, 0o755)
                os.chmod(host, 0o755)
                if chown:
                    os.lchown(host, self.uid, self.gid)
            elif not os.path.isdir(host):
                raise InvalidParameter(f"cannot create directory {cur}: a file is in the way")
        return self._host(path)

    def _fix(self, host: str, is_dir: bool) -> None:
        os.lchown(host, self.uid, self.gid)
        if self.chmod is not None and not os.path.islink(host):
            os.chmod(host, self.chmod)

    def _copy_file(self, src: str, dst_host: str) -> None:
        if os.path.isdir(dst_host) and not os.path.islink(dst_host):
            raise InvalidParameter(f"cannot copy a file over the directory {dst_host[len(self.rootfs):] or '/'}")
        if os.path.lexists(dst_host):
            os.unlink(dst_host)
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst_host)
        else:
            shutil.copy2(src, dst_host, follow_symlinks=False)
        self._fix(dst_host, False)

    def _copy_tree(self, src: str, dst: str) -> None:
        """Copy the contents of host dir src into rootfs path dst (rootfs-absolute)."""
        self.mkdirs(dst)
        for name in sorted(os.listdir(src)):
            s = os.path.join(src, name)
            d = posixpath.join(dst, name)
            dh = self._host(d, follow_last=False)
            if os.path.isdir(s) and not os.path.islink(s):
                if os.path.lexists(dh) and not os.path.isdir(dh):
                    os.unlink(dh)
                if not os.path.lexists(dh):
                    os.mkdir(dh)
                st = os.stat(s)
                os.chmod(dh, stat.S_IMODE(st.st_mode))
                self._copy_tree(s, d)
                self._fix(dh, True)
                os.utime(dh, ns=(st.st_atime_ns, st.st_mtime_ns))
            elif os.path.isfile(s) or os.path.islink(s):
                self._copy_file(s, dh)

    def copy(self, sources: list[Source], dest: str, workdir: str = "/", is_add: bool = False) -> None:
        dest_is_dir = dest.endswith("/") or dest in (".", "..") or dest.endswith("/.")
        dest_abs = dest if dest.startswith("/") else posixpath.join(workdir or "/", dest)
        dest_abs = posixpath.normpath(dest_abs)
        if dest_abs.startswith("//"):
            dest_abs = "/" + dest_abs.lstrip("/")
        if len(sources) > 1 and not dest_is_dir:
            raise InvalidParameter(
                "When using COPY with more than one source file, the destination must be a directory and end with a /")
        for src in sources:
            if src.inline is not None:
                target = dest_abs
                if dest_is_dir or os.path.isdir(self._host(dest_abs)):
                    target = posixpath.join(dest_abs, src.rel)
                self.mkdirs(posixpath.dirname(target))
                th = self._host(target, follow_last=False)
                if os.path.lexists(th):
                    os.unlink(th)
                with open(th, "wb") as f:
                    f.write(src.inline)
                os.chmod(th, 0o644)
                self._fix(th, False)
                continue
            host_src = resolve_in_root(src.root, src.rel, clamp=src.clamp, what=src.rel)
            if not os.path.lexists(host_src):
                raise InvalidParameter(f"COPY failed: file not found in build context or excluded by .dockerignore: stat {src.rel}: file does not exist")
            if os.path.isdir(host_src):
                self._copy_tree(host_src, dest_abs)
                continue
            if is_add and _is_archive(host_src):
                dh = self.mkdirs(dest_abs)
                with open(host_src, "rb") as f:
                    paths = extract_tar(f, dh, what=f"the archive {src.rel}")
                for p in paths:  # owned by root, or --chown's owner, as docker's ADD does
                    os.lchown(p, self.uid, self.gid)
                continue
            target = dest_abs
            existing = self._host(dest_abs)
            if dest_is_dir or (os.path.isdir(existing)):
                target = posixpath.join(dest_abs, posixpath.basename(src.rel.rstrip("/")) or "file")
                self.mkdirs(dest_abs)
            else:
                self.mkdirs(posixpath.dirname(dest_abs))
            self._copy_file(host_src, self._host(target, follow_last=False))
