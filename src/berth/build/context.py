"""The build context: safe extraction of the context tar, path resolution that cannot
leave the context, source globbing and content hashing for the cache."""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import posixpath
import shutil
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from berth.build.dockerignore import PatternMatcher, read_dockerignore
from berth.errors import InvalidParameter


class OutsideContext(InvalidParameter):
    pass


def _norm_member(name: str) -> str:
    n = posixpath.normpath("/" + name).lstrip("/")
    return "" if n == "." else n


def _inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _peek(f: BinaryIO) -> bytes:
    try:
        pos = f.tell()
        head = f.read(6)
        f.seek(pos)
        return head
    except (AttributeError, OSError, ValueError):
        return b""


class _Padded(io.RawIOBase):
    """A reader that, at the end of the real data, supplies the NULs a tar stream is
    missing: up to the next 512-byte boundary plus two 512-byte end blocks."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.count = 0
        self.extra: int | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.extra is None:
            data = self.raw.read(len(buf))
            if data:
                buf[:len(data)] = data
                self.count += len(data)
                return len(data)
            self.extra = (-self.count) % 512 + 1024
        n = min(len(buf), self.extra)
        buf[:n] = b"\0" * n
        self.extra -= n
        return n


def extract_tar(fileobj: BinaryIO, dest: str | Path, what: str = "the build context") -> list[str]:
    """Extract a (possibly compressed) tar stream into dest. Refuses members that would land
    outside dest: `..` names and paths through symlinks. Symlinks themselves are kept."""
    root = os.path.realpath(dest)
    os.makedirs(root, exist_ok=True)
    # The docker CLI sends an archive whose last member lacks its padding and end blocks
    # when it adds a Dockerfile from outside the context; Go's tar reader accepts that, so
    # an uncompressed stream is padded with what is missing (at most the last block's
    # padding and the two end blocks).
    head = _peek(fileobj)
    if not head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")):
        fileobj = _Padded(fileobj)  # type: ignore[assignment]
    try:
        tar = tarfile.open(fileobj=fileobj, mode="r|*")
    except tarfile.TarError as exc:
        raise InvalidParameter(f"{what} is not a valid tar archive: {exc}") from None
    dirs: list[tuple[str, tarfile.TarInfo]] = []
    extracted: list[str] = []
    with tar:
        try:
            for m in tar:
                if ".." in m.name.split("/"):
                    raise OutsideContext(f"invalid path in build context tar: {m.name}")
                name = _norm_member(m.name)
                if not name:
                    continue
                target = os.path.join(root, name)
                parent = os.path.realpath(os.path.dirname(target))
                if not _inside(root, parent):
                    raise OutsideContext(f"invalid path in build context tar (through a symlink): {m.name}")
                if m.islnk():
                    link = _norm_member(m.linkname)
                    if ".." in m.linkname.split("/") or not _inside(root, os.path.realpath(os.path.join(root, link))):
                        raise OutsideContext(f"invalid hard link in build context tar: {m.name}")
                    m.linkname = link
                if m.isdev():
                    continue  # device nodes in a context make no sense and need no support
                m.name = name
                if os.path.lexists(target) and not (m.isdir() and os.path.isdir(target)):
                    if os.path.isdir(target) and not os.path.islink(target):
                        shutil.rmtree(target)
                    else:
                        os.unlink(target)
                tar.extract(m, root, set_attrs=not m.isdir(), numeric_owner=True)
                extracted.append(target)
                if m.isdir():
                    dirs.append((target, m))
        except (tarfile.TarError, EOFError, OSError) as exc:
            if isinstance(exc, InvalidParameter):
                raise
            raise InvalidParameter(f"failed to read {what}: {exc}") from None
    for path, m in reversed(dirs):  # directory modes/times last, as tar does
        try:
            os.chmod(path, m.mode & 0o7777)
            os.utime(path, (m.mtime, m.mtime))
        except OSError:
            pass
    return extracted


def resolve_in_root(root: str, path: str, *, follow_last: bool = True, clamp: bool = True,
                    what: str = "") -> str:
    """Resolve `path` (relative to root, or absolute meaning root-relative) following
    symlinks inside root. With clamp (image rootfs), `..` and absolute symlink targets stay
    within root, as a chroot would. Without clamp (build context), leaving root raises
    OutsideContext naming the path."""
    root = os.path.realpath(root)
    if not clamp:
        rel = posixpath.normpath(path) if path else "."
        if rel == ".." or rel.startswith("../") or (not path.startswith("/") and rel.startswith("/..")):
            raise OutsideContext(f"forbidden path outside the build context: {what or path}")
    parts = [p for p in path.split("/") if p and p != "."]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            elif not clamp:
                raise OutsideContext(f"forbidden path outside the build context: {what or path}")
            continue
        cand = os.path.join(root, *resolved, part)
        if os.path.islink(cand) and (parts or follow_last):
            hops += 1
            if hops > 255:
                raise InvalidParameter(f"too many levels of symbolic links: {what or path}")
            link = os.readlink(cand)
            if link.startswith("/"):
                if not clamp:
                    raise OutsideContext(
                        f"forbidden path outside the build context: {what or path} (symlink to {link})")
                resolved = []
            else:
                # check a relative link does not climb out (for the context)
                if not clamp:
                    depth = len(resolved)
                    for seg in link.split("/"):
                        if seg == "..":
                            depth -= 1
                            if depth < 0:
                                raise OutsideContext(
                                    f"forbidden path outside the build context: {what or path} (symlink to {link})")
                        elif seg and seg != ".":
                            depth += 1
            parts = [p for p in link.split("/") if p and p != "."] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def _go_pattern(component: str) -> str:
    return component.replace("[^", "[!")


def has_glob(s: str) -> bool:
    return any(c in s for c in "*?[")


@dataclass
class BuildContext:
    """An extracted context directory. `preloaded` holds files read before .dockerignore
    was applied (the Dockerfile is read even when .dockerignore excludes it)."""

    root: str
    preloaded: dict[str, str] = field(default_factory=dict)

    def apply_dockerignore(self, preload: tuple[str, ...] = ()) -> None:
        """Remove what .dockerignore excludes, as the legacy builder does on the daemon:
        the files named in `preload` are read first, then removed too if excluded, so
        COPY never sees an excluded Dockerfile or .dockerignore."""
        for name in preload:
            rel = posixpath.normpath(name)
            try:
                path = self.resolve(rel)
            except InvalidParameter:
                continue
            if os.path.isfile(path):
                with open(path, encoding="utf-8", errors="replace") as f:
                    self.preloaded[rel] = f.read()
        di = os.path.join(self.root, ".dockerignore")
        if not os.path.isfile(di) or os.path.islink(di):
            return
        with open(di, encoding="utf-8", errors="replace") as f:
            patterns = read_dockerignore(f.read())
        if not patterns:
            return
        pm = PatternMatcher(patterns)
        for dirpath, dirnames, filenames in os.walk(self.root, topdown=True):
            rel_dir = os.path.relpath(dirpath, self.root)
            rel_dir = "" if rel_dir == "." else rel_dir
            for name in list(dirnames):
                rel = posixpath.join(rel_dir, name)
                if pm.matches(rel) and not pm.exclusions:
                    full = os.path.join(dirpath, name)
                    if os.path.islink(full):
                        os.unlink(full)
                    else:
                        shutil.rmtree(full)
                    dirnames.remove(name)
            for name in filenames:
                rel = posixpath.join(rel_dir, name)
                if pm.matches(rel):
                    os.unlink(os.path.join(dirpath, name))

    def has(self, rel: str) -> bool:
        rel = posixpath.normpath(rel)
        return rel in self.preloaded or os.path.lexists(os.path.join(self.root, rel))

    def resolve(self, rel: str) -> str:
        return resolve_in_root(self.root, rel, clamp=False, what=rel)

    def glob(self, pattern: str) -> list[str]:
        """Context-relative paths matching a COPY source (Go filepath.Match per component)."""
        return glob_in(self.root, pattern, clamp=False)

    def read_text(self, rel: str) -> str:
        norm = posixpath.normpath(rel)
        if norm in self.preloaded:
            return self.preloaded[norm]
        path = self.resolve(rel)
        if not os.path.isfile(path):
            raise InvalidParameter(f"Cannot locate specified Dockerfile: {rel}")
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()


def glob_in(root: str, pattern: str, clamp: bool) -> list[str]:
    norm = posixpath.normpath("/" + pattern.lstrip("/")) if clamp else posixpath.normpath(pattern)
    if not clamp:
        if norm == ".." or norm.startswith("../"):
            raise OutsideContext(f"forbidden path outside the build context: {pattern}")
        norm = norm.lstrip("/") if pattern.startswith("/") else norm
    parts = [p for p in norm.split("/") if p and p != "."]
    if not has_glob(pattern):
        rel = "/".join(parts)
        path = resolve_in_root(root, rel, clamp=clamp, what=pattern)
        return [rel or "."] if os.path.lexists(path) else []
    matches: list[str] = [""]
    for comp in parts:
        nxt: list[str] = []
        for base in matches:
            d = resolve_in_root(root, base, clamp=clamp, what=base or pattern) if base else os.path.realpath(root)
            if not has_glob(comp):
                cand = posixpath.join(base, comp) if base else comp
                if os.path.lexists(os.path.join(d, comp)):
                    nxt.append(cand)
                continue
            if not os.path.isdir(d):
                continue
            for name in sorted(os.listdir(d)):
                if fnmatch.fnmatchcase(name, _go_pattern(comp)):
                    nxt.append(posixpath.join(base, name) if base else name)
        matches = nxt
        if not matches:
            break
    for m in matches:  # every match must resolve inside
        resolve_in_root(root, m, clamp=clamp, what=m)
    return matches


def hash_tree(host_path: str, rel: str) -> dict[str, str]:
    """Content digests of everything under a source path: {relpath: digest}. Modes,
    symlink targets and file content count; mtimes do not."""
    out: dict[str, str] = {}

    def one(p: str, r: str) -> None:
        st = os.lstat(p)
        h = hashlib.sha256()
        h.update(f"{stat.S_IFMT(st.st_mode):o}:{stat.S_IMODE(st.st_mode):o}:".encode())
        if stat.S_ISLNK(st.st_mode):
            h.update(os.readlink(p).encode())
        elif stat.S_ISREG(st.st_mode):
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        out[r] = h.hexdigest()
        if stat.S_ISDIR(st.st_mode):
            for name in sorted(os.listdir(p)):
                one(os.path.join(p, name), posixpath.join(r, name) if r not in ("", ".") else name)

    one(host_path, rel)
    return out


def digest_of(hashes: dict[str, str]) -> str:
    h = hashlib.sha256()
    for k in sorted(hashes):
        h.update(k.encode() + b"\0" + hashes[k].encode() + b"\n")
    return h.hexdigest()
