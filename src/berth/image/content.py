"""Content-addressed blob store: `<root>/sha256/<hex>`.

A blob is written to a temp file under `tmp` (same filesystem), fsynced, its digest and size
verified, and only then renamed into place, so nothing half-written is ever readable. A
mismatch raises `DigestMismatch` and removes the temp file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from berth.errors import InvalidParameter, NotFound
from berth.image.spec import hex_of

CHUNK = 1 << 20


class DigestMismatch(InvalidParameter):
    """Blob bytes do not match the digest (or size) they were announced with."""


class BlobWriter:
    """Write a blob; `commit()` verifies and publishes it, `abort()` throws it away.

    Use as a context manager: leaving the block without commit aborts."""

    def __init__(self, store: ContentStore, expected_digest: str | None = None,
                 expected_size: int | None = None) -> None:
        if expected_digest is not None:
            hex_of(expected_digest)  # validates the algorithm and form
        self.store = store
        self.expected_digest = expected_digest
        self.expected_size = expected_size
        fd, self.tmp_path = tempfile.mkstemp(prefix="blob-", dir=store.tmp)
        self._f: BinaryIO | None = os.fdopen(fd, "wb")
        self._h = hashlib.sha256()
        self.size = 0
        self.digest: str | None = None

    def write(self, data: bytes) -> int:
        assert self._f is not None, "writer closed"
        self._f.write(data)
        self._h.update(data)
        self.size += len(data)
        if self.expected_size is not None and self.size > self.expected_size:
            self.abort()
            raise DigestMismatch(f"blob is larger than its announced size {self.expected_size}")
        return len(data)

    def write_from(self, src: BinaryIO) -> None:
        while True:
            chunk = src.read(CHUNK)
            if not chunk:
                return
            self.write(chunk)

    def commit(self) -> str:
        """Verify digest and size, then make the blob visible. Returns its digest."""
        assert self._f is not None, "writer closed"
        try:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            self._f = None
            digest = "sha256:" + self._h.hexdigest()
            if self.expected_size is not None and self.size != self.expected_size:
                raise DigestMismatch(f"blob size {self.size} does not match expected size "
                                     f"{self.expected_size}")
            if self.expected_digest is not None and digest != self.expected_digest:
                raise DigestMismatch(f"blob digest {digest} does not match expected digest "
                                     f"{self.expected_digest}")
            dest = self.store.path(digest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(self.tmp_path, 0o644)
            os.replace(self.tmp_path, dest)
            _fsync_dir(dest.parent)
            self.digest = digest
            return digest
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
        try:
            os.unlink(self.tmp_path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.digest is None:
            self.abort()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ContentStore:
    def __init__(self, root: str | Path, tmp: str | Path) -> None:
        self.root = Path(root)
        self.tmp = Path(tmp)
        (self.root / "sha256").mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        return self.root / "sha256" / hex_of(digest)

    def exists(self, digest: str) -> bool:
        try:
            return self.path(digest).is_file()
        except ValueError:
            return False

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def writer(self, expected_digest: str | None = None, expected_size: int | None = None) -> BlobWriter:
        return BlobWriter(self, expected_digest, expected_size)

    def write_bytes(self, data: bytes, expected_digest: str | None = None) -> str:
        with self.writer(expected_digest, len(data) if expected_digest else None) as w:
            w.write(data)
            return w.commit()

    def write_stream(self, chunks: Iterable[bytes] | BinaryIO, expected_digest: str | None = None,
                     expected_size: int | None = None) -> str:
        with self.writer(expected_digest, expected_size) as w:
            if hasattr(chunks, "read"):
                w.write_from(chunks)  # type: ignore[arg-type]
            else:
                for c in chunks:  # type: ignore[union-attr]
                    w.write(c)
            return w.commit()

    def ingest_file(self, path: str | Path, expected_digest: str | None = None) -> str:
        """Copy a file into the store (verified like any other write)."""
        with open(path, "rb") as f:
            return self.write_stream(f, expected_digest)

    def adopt_file(self, path: str | Path, digest: str) -> str:
        """Move a file already known to hash to `digest` (same filesystem) into the store."""
        dest = self.path(digest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o644)
        os.replace(path, dest)
        return digest

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def read_bytes(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def iter_chunks(self, digest: str, chunk: int = CHUNK) -> Iterator[bytes]:
        with self.open(digest) as f:
            while True:
                b = f.read(chunk)
                if not b:
                    return
                yield b

    def delete(self, digest: str) -> bool:
        try:
            self.path(digest).unlink()
            return True
        except FileNotFoundError:
            return False

    def list(self) -> list[str]:
        return sorted("sha256:" + p.name for p in (self.root / "sha256").iterdir()
                      if p.is_file() and len(p.name) == 64)
