"""Layer store: unpacked layers under `layers/<chain-hex>/diff`, used as overlay lower dirs.

* `apply(stream, parent_chain_id)` unpacks a layer tar (gzip, zstd or plain, detected by
  magic) turning AUFS whiteouts into overlay ones (`.wh.x` -> char device 0/0 `x`;
  `.wh..wh..opq` -> `trusted.overlay.opaque=y` on the directory), computes the diff_id
  (sha256 of the uncompressed tar) and the chain id, and publishes the layer atomically
  (unpacked into a temp dir, renamed into place).
* `diff(upper_dir)` is the way back: an overlay upper dir becomes a layer tar with AUFS
  whiteouts, deterministic for a given tree.
* `layers/l/<short>` symlinks keep overlay's mount options under a page for many layers.

Paths escaping the layer (`..` components, writing through a symlink, hard links out of
the layer) are refused.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import secrets
import shutil
import stat
import string
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

import zstandard

from berth.errors import InvalidParameter, NotFound
from berth.image.content import ContentStore

WHITEOUT_PREFIX = ".wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_XATTR = "trusted.overlay.opaque"
XATTR_PAX_PREFIX = "SCHILY.xattr."
CHUNK = 1 << 20

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def chain_id(parent_chain_id: str | None, diff_id: str) -> str:
    if not parent_chain_id:
        return diff_id
    return "sha256:" + hashlib.sha256(f"{parent_chain_id} {diff_id}".encode()).hexdigest()


def chain_ids(diff_ids: list[str]) -> list[str]:
    out: list[str] = []
    parent: str | None = None
    for d in diff_ids:
        parent = chain_id(parent, d)
        out.append(parent)
    return out


@dataclass
class Layer:
    chain_id: str
    diff_id: str
    parent: str | None
    size: int
    path: str          # the diff dir
    link: str          # short symlink path (use this as lowerdir)
    blob: str | None = None        # content-store digest holding this layer's tar
    media_type: str | None = None  # media type of that blob (compression)


class _Prefixed:
    """A reader that gives back some already-read bytes before the rest of a stream."""

    def __init__(self, prefix: bytes, raw: IO[bytes]) -> None:
        self._prefix = prefix
        self._raw = raw

    def read(self, n: int = -1) -> bytes:
        if self._prefix:
            if n is None or n < 0:
                data = self._prefix + self._raw.read()
                self._prefix = b""
                return data
            data, self._prefix = self._prefix[:n], self._prefix[n:]
            if len(data) < n:
                data += self._raw.read(n - len(data))
            return data
        return self._raw.read(n)

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> _Prefixed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _TarReader:
    """A decompressing reader that closes the underlying file too."""

    def __init__(self, plain: Any, raw: IO[bytes]) -> None:
        self._plain = plain
        self._raw = raw

    def read(self, n: int = -1) -> bytes:
        return self._plain.read(n)

    def close(self) -> None:
        try:
            self._plain.close()
        finally:
            self._raw.close()

    def __enter__(self) -> _TarReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _HashingReader:
    """Reads the uncompressed tar, hashing it (diff_id) and optionally copying it out."""

    def __init__(self, src: Any, tee: Any = None) -> None:
        self._src = src
        self._tee = tee
        self.hash = hashlib.sha256()
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        if data:
            self.hash.update(data)
            self.count += len(data)
            if self._tee is not None:
                self._tee.write(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def decompressed(stream: IO[bytes]) -> tuple[Any, str]:
    """Wrap a (possibly compressed) tar stream: returns (reader of plain tar, compression)."""
    head = b""
    while len(head) < 4:
        more = stream.read(4 - len(head))
        if not more:
            break
        head += more
    src = _Prefixed(head, stream)
    if head.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=src, mode="rb"), "gzip"  # type: ignore[arg-type]
    if head.startswith(ZSTD_MAGIC):
        return zstandard.ZstdDecompressor().stream_reader(src, read_across_frames=True), "zstd"  # type: ignore[arg-type]
    return src, ""


def _clean_name(name: str) -> str:
    """A member path relative to the layer root; refuses `..` components."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise InvalidParameter(f"layer tar entry {name!r} escapes the layer ('..' in path)")
    return "/".join(parts)


class _Unpacker:
    def __init__(self, root: str) -> None:
        self.root = root
        self.safe_dirs: set[str] = {""}
        self.dir_times: list[tuple[str, float]] = []
        self.size = 0

    def _check_parents(self, rel: str) -> None:
        """Every parent component must be a real directory inside the layer (no symlinks)."""
        parts = rel.split("/")[:-1]
        cur = ""
        for p in parts:
            cur = f"{cur}/{p}" if cur else p
            if cur in self.safe_dirs:
                continue
            full = os.path.join(self.root, cur)
            try:
                st = os.lstat(full)
            except FileNotFoundError:
                os.mkdir(full, 0o755)
                self.safe_dirs.add(cur)
                continue
            if stat.S_ISLNK(st.st_mode):
                raise InvalidParameter(f"layer tar writes through symlink {cur!r}: refused")
            if not stat.S_ISDIR(st.st_mode):
                raise InvalidParameter(f"layer tar entry {rel!r}: parent {cur!r} is not a directory")
            self.safe_dirs.add(cur)

    def _clear(self, full: str, keep_dir: bool) -> None:
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return
            shutil.rmtree(full)
        else:
            os.unlink(full)

    def add(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        rel = _clean_name(m.name)
        if not rel:
            return  # the root itself
        self._check_parents(rel)
        full = os.path.join(self.root, rel)
        base = rel.rsplit("/", 1)[-1]
        parent = os.path.dirname(full)
        if base.startswith(WHITEOUT_PREFIX):
            if base == WHITEOUT_OPAQUE:
                os.setxattr(parent, OPAQUE_XATTR, b"y")
                return
            if base.startswith(WHITEOUT_META_PREFIX):
                return  # other AUFS metadata (.wh..wh.plnk etc.): not carried
            target = os.path.join(parent, base[len(WHITEOUT_PREFIX):])
            self._clear(target, keep_dir=False)
            os.mknod(target, stat.S_IFCHR | 0o600, os.makedev(0, 0))
            return
        if m.isdir():
            self._clear(full, keep_dir=True)
            if not os.path.isdir(full):
                os.mkdir(full, 0o755)
            self.safe_dirs.add(rel)
        elif m.islnk():
            target_rel = _clean_name(m.linkname)
            if not target_rel:
                raise InvalidParameter(f"hard link {rel!r} points at the layer root")
            self._check_parents(target_rel)
            src = os.path.join(self.root, target_rel)
            if not os.path.lexists(src):
                raise InvalidParameter(f"hard link {rel!r} -> {m.linkname!r}: target not in layer")
            self._clear(full, keep_dir=False)
            os.link(src, full, follow_symlinks=False)
            return  # a hard link shares the target's metadata
        else:
            self._clear(full, keep_dir=False)
            if m.issym():
                os.symlink(m.linkname, full)
            elif m.isreg():
                fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as out:
                    src_f = tar.extractfile(m)
                    if src_f is not None:
                        shutil.copyfileobj(src_f, out, CHUNK)
                self.size += m.size
            elif m.ischr() or m.isblk():
                kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
                os.mknod(full, kind | 0o600, os.makedev(m.devmajor, m.devminor))
            elif m.isfifo():
                os.mkfifo(full, 0o600)
            else:
                return  # unknown types are skipped as docker does
        os.lchown(full, m.uid, m.gid)
        for key, value in m.pax_headers.items():
            if key.startswith(XATTR_PAX_PREFIX):
                name = key[len(XATTR_PAX_PREFIX):]
                if name.startswith("trusted.overlay."):
                    continue
                raw = value.encode("utf-8", "surrogateescape")
                try:
                    os.setxattr(full, name, raw, follow_symlinks=False)
                except OSError as exc:
                    if exc.errno not in (errno.ENOTSUP, errno.EPERM):
                        raise
        if not m.issym():
            os.chmod(full, m.mode & 0o7777)
        if m.isdir():
            self.dir_times.append((full, m.mtime))
        else:
            os.utime(full, (m.mtime, m.mtime), follow_symlinks=False)

    def finish(self) -> None:
        for full, mtime in reversed(self.dir_times):
            os.utime(full, (mtime, mtime), follow_symlinks=False)


def unpack(stream: IO[bytes], dest: str, tee: Any = None) -> tuple[str, int, str]:
    """Unpack a layer tar into `dest`. Returns (diff_id, size of files, compression)."""
    plain, compression = decompressed(stream)
    reader = _HashingReader(plain, tee)
    unpacker = _Unpacker(dest)
    try:
        with tarfile.open(fileobj=reader, mode="r|", errorlevel=1) as tar:  # type: ignore[call-overload]
            for m in tar:
                unpacker.add(tar, m)
    except (tarfile.TarError, EOFError, zstandard.ZstdError, gzip.BadGzipFile) as exc:
        raise InvalidParameter(f"invalid layer tar: {exc}") from None
    reader.drain()
    unpacker.finish()
    return "sha256:" + reader.hash.hexdigest(), unpacker.size, compression


# --- diff: overlay upper dir -> layer tar ------------------------------------------------
def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _xattrs(path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for n in sorted(names):
        if n.startswith("trusted.overlay.") or n.startswith("system.posix_acl"):
            continue
        if not (n.startswith("security.") or n.startswith("user.") or n.startswith("trusted.")):
            continue
        try:
            out[XATTR_PAX_PREFIX + n] = os.getxattr(path, n, follow_symlinks=False).decode(
                "utf-8", "surrogateescape")
        except OSError:
            continue
    return out


def _tarinfo(name: str, st: os.stat_result, full: str) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.uname = ti.gname = ""
    ti.mtime = int(st.st_mtime)
    if stat.S_ISDIR(st.st_mode):
        ti.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(st.st_mode):
        ti.type = tarfile.SYMTYPE
        ti.linkname = os.readlink(full)
    elif stat.S_ISREG(st.st_mode):
        ti.type = tarfile.REGTYPE
        ti.size = st.st_size
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        ti.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
        ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(st.st_mode):
        ti.type = tarfile.FIFOTYPE
    else:
        raise ValueError("socket")
    ti.pax_headers = _xattrs(full)
    return ti


def _walk_sorted(root: str, rel: str = "") -> Iterator[tuple[str, str, os.stat_result]]:
    full_dir = os.path.join(root, rel) if rel else root
    for name in sorted(os.listdir(full_dir)):
        r = f"{rel}/{name}" if rel else name
        full = os.path.join(root, r)
        st = os.lstat(full)
        yield r, full, st
        if stat.S_ISDIR(st.st_mode):
            yield from _walk_sorted(root, r)


def write_diff_tar(upper_dir: str, out: BinaryIO) -> None:
    """Write the overlay upper dir as a layer tar (AUFS whiteouts), sorted and reproducible."""
    links: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
        for rel, full, st in _walk_sorted(upper_dir):
            if _is_whiteout(st):
                parent, base = os.path.split(rel)
                ti = tarfile.TarInfo(os.path.join(parent, WHITEOUT_PREFIX + base))
                ti.mode, ti.mtime, ti.uname, ti.gname = 0o644, int(st.st_mtime), "", ""
                tar.addfile(ti)
                continue
            if stat.S_ISSOCK(st.st_mode):
                continue
            ti = _tarinfo(rel, st, full)
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                if key in links:
                    ti.type, ti.linkname, ti.size = tarfile.LNKTYPE, links[key], 0
                    tar.addfile(ti)
                    continue
                links[key] = rel
            if ti.type == tarfile.REGTYPE:
                with open(full, "rb") as f:
                    tar.addfile(ti, f)
            else:
                tar.addfile(ti)
            if stat.S_ISDIR(st.st_mode):
                try:
                    opaque = os.getxattr(full, OPAQUE_XATTR, follow_symlinks=False)
                except OSError:
                    opaque = b""
                if opaque == b"y":
                    wo = tarfile.TarInfo(f"{rel}/{WHITEOUT_OPAQUE}")
                    wo.mode, wo.mtime, wo.uname, wo.gname = 0o644, int(st.st_mtime), "", ""
                    tar.addfile(wo)


def has_changes(upper_dir: str) -> bool:
    try:
        return any(True for _ in os.scandir(upper_dir))
    except FileNotFoundError:
        return False


class LayerStore:
    def __init__(self, root: str | Path, content: ContentStore, tmp: str | Path) -> None:
        self.root = Path(root)
        self.content = content
        self.tmp = Path(tmp)
        (self.root / "l").mkdir(parents=True, exist_ok=True)

    # --- lookups ------------------------------------------------------------------------
    def dir(self, chain: str) -> Path:
        return self.root / chain.removeprefix("sha256:")

    def exists(self, chain: str) -> bool:
        return (self.dir(chain) / "meta.json").is_file()

    def get(self, chain: str) -> Layer:
        d = self.dir(chain)
        try:
            meta = json.loads((d / "meta.json").read_text())
        except (FileNotFoundError, ValueError):
            raise NotFound(f"layer {chain} not found") from None
        return Layer(chain_id=chain, diff_id=meta["diff_id"], parent=meta.get("parent"),
                     size=meta.get("size", 0), path=str(d / "diff"),
                     link=str(self.root / "l" / meta["link"]), blob=meta.get("blob"),
                     media_type=meta.get("media_type"))

    def list(self) -> list[str]:
        return sorted("sha256:" + p.name for p in self.root.iterdir()
                      if len(p.name) == 64 and (p / "meta.json").is_file())

    # --- apply --------------------------------------------------------------------------
    def apply(self, stream: IO[bytes], parent_chain_id: str | None = None,
              blob: str | None = None, media_type: str | None = None,
              expected_diff_id: str | None = None) -> Layer:
        """Unpack a layer on top of `parent_chain_id`. When `blob` (the content-store digest
        the stream came from) is not given, the uncompressed tar is kept in the content store
        under its diff_id so the layer can be saved or pushed later."""
        if parent_chain_id and not self.exists(parent_chain_id):
            raise NotFound(f"parent layer {parent_chain_id} not found")
        work = tempfile.mkdtemp(prefix="layer-", dir=self.root)
        os.chmod(work, 0o755)
        writer = None if blob else self.content.writer()
        try:
            os.mkdir(os.path.join(work, "diff"), 0o755)
            diff_id, size, compression = unpack(stream, os.path.join(work, "diff"), writer)
            if expected_diff_id and diff_id != expected_diff_id:
                raise InvalidParameter(f"layer diff_id {diff_id} does not match expected {expected_diff_id}")
            if writer is not None:
                blob = writer.commit()
                media_type = "application/vnd.oci.image.layer.v1.tar"
            chain = chain_id(parent_chain_id, diff_id)
            if self.exists(chain):
                return self.get(chain)
            link = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(26))
            meta = {"diff_id": diff_id, "parent": parent_chain_id, "size": size, "link": link,
                    "blob": blob, "media_type": media_type or _media_for(compression)}
            with open(os.path.join(work, "meta.json"), "w") as f:
                json.dump(meta, f)
            dest = self.dir(chain)
            os.symlink(f"../{dest.name}/diff", self.root / "l" / link)
            try:
                os.rename(work, dest)
            except OSError as exc:
                os.unlink(self.root / "l" / link)
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST) and self.exists(chain):
                    return self.get(chain)
                raise
            work = ""
            return self.get(chain)
        finally:
            if writer is not None and writer.digest is None:
                writer.abort()
            if work:
                shutil.rmtree(work, ignore_errors=True)

    def apply_file(self, path: str | Path, parent_chain_id: str | None = None, **kw: Any) -> Layer:
        with open(path, "rb") as f:
            return self.apply(f, parent_chain_id, **kw)

    # --- read back ----------------------------------------------------------------------
    def open_tar(self, chain: str) -> Any:
        """The uncompressed tar of a layer, as a readable stream (caller closes)."""
        layer = self.get(chain)
        if not layer.blob or not self.content.exists(layer.blob):
            raise NotFound(f"layer {chain} has no stored tar")
        raw = self.content.open(layer.blob)
        plain, _ = decompressed(raw)
        return _TarReader(plain, raw)

    def lower_dirs(self, chains: list[str]) -> list[str]:
        """Overlay lower dirs for a chain list (bottom first in), top-most first out."""
        return [self.get(c).link for c in reversed(chains)]

    def remove(self, chain: str) -> Layer | None:
        try:
            layer = self.get(chain)
        except NotFound:
            return None
        try:
            os.unlink(layer.link)
        except FileNotFoundError:
            pass
        d = self.dir(chain)
        trash = tempfile.mkdtemp(prefix="rm-", dir=self.root)
        os.rename(d, os.path.join(trash, "x"))
        shutil.rmtree(trash, ignore_errors=True)
        return layer

    # --- diff ---------------------------------------------------------------------------
    def diff(self, upper_dir: str | Path) -> tuple[str, str]:
        """Tar the upper dir into a temp file: returns (tar path, diff_id). The caller
        removes the file (or hands it to `content.adopt_file`)."""
        fd, path = tempfile.mkstemp(prefix="diff-", suffix=".tar", dir=self.tmp)
        try:
            with os.fdopen(fd, "wb") as raw:
                hashing = _HashingWriter(raw)
                write_diff_tar(str(upper_dir), hashing)  # type: ignore[arg-type]
            return path, "sha256:" + hashing.hash.hexdigest()
        except BaseException:
            os.unlink(path)
            raise


class _HashingWriter:
    def __init__(self, dst: BinaryIO) -> None:
        self.dst = dst
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return self.dst.write(data)


def _media_for(compression: str) -> str:
    return {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
            "zstd": "application/vnd.oci.image.layer.v1.tar+zstd"}.get(
        compression, "application/vnd.oci.image.layer.v1.tar")
