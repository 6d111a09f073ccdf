"""Storage drivers. `FilesystemDriver` lays a registry root out so a crash never exposes a
partial blob: uploads grow in `uploads/<uuid>/data`, are verified, fsynced and renamed into
`blobs/<algo>/<hex>`; manifests, links and tags are written to a temp file and renamed.

    blobs/<algo>/<hex>                                     content (layers, configs, manifests)
    repositories/<name>/_layers/<algo>/<hex>               the blob is part of <name>
    repositories/<name>/_manifests/revisions/<algo>/<hex>  manifest of <name> (holds its media type)
    repositories/<name>/_manifests/tags/<tag>              tag -> digest
    repositories/<name>/_description                       for /v1/search
    repositories/<name>/_referrers/<algo>/<subject-hex>/<algo>-<hex>  descriptor of a referrer
    uploads/<uuid>/{repo,data}                             upload sessions
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid as uuidlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

from berth.registry.server.errors import RegistryError

_UUID_CHARS = set("0123456789abcdef-")


def _split(digest: str) -> tuple[str, str]:
    algo, _, hexpart = digest.partition(":")
    return algo, hexpart


def _atomic_write(path: Path, data: bytes, fsync: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuidlib.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class UploadWriter:
    """Appends to an upload's data file while hashing what it writes."""

    def __init__(self, driver: FilesystemDriver, uid: str, path: Path, offset: int,
                 hasher: hashlib._Hash | None) -> None:
        self._driver = driver
        self._uid = uid
        self._f = open(path, "ab")
        self.offset = offset
        self._hasher = hasher

    def write(self, chunk: bytes) -> None:
        self._f.write(chunk)
        if self._hasher is not None:
            self._hasher.update(chunk)
        self.offset += len(chunk)

    def close(self) -> None:
        self._f.close()
        if self._hasher is not None:
            self._driver._hash_state[self._uid] = (self.offset, self._hasher)


class StorageDriver(ABC):
    """What the registry's handlers need from storage."""

    # blobs
    @abstractmethod
    def blob_size(self, digest: str) -> int | None: ...
    @abstractmethod
    def blob_path(self, digest: str) -> Path: ...
    @abstractmethod
    def read_blob(self, digest: str) -> bytes: ...
    @abstractmethod
    def put_blob(self, digest: str, data: bytes) -> None: ...
    @abstractmethod
    def delete_blob(self, digest: str) -> None: ...
    @abstractmethod
    def all_blobs(self) -> Iterator[str]: ...
    # repository links
    @abstractmethod
    def link_blob(self, repo: str, digest: str) -> None: ...
    @abstractmethod
    def blob_linked(self, repo: str, digest: str) -> bool: ...
    @abstractmethod
    def unlink_blob(self, repo: str, digest: str) -> bool: ...
    @abstractmethod
    def linked_blobs(self, repo: str) -> list[str]: ...
    # uploads
    @abstractmethod
    def new_upload(self, repo: str) -> str: ...
    @abstractmethod
    def upload_size(self, repo: str, uid: str) -> int: ...
    @abstractmethod
    def upload_writer(self, repo: str, uid: str) -> UploadWriter: ...
    @abstractmethod
    def commit_upload(self, repo: str, uid: str, digest: str) -> int: ...
    @abstractmethod
    def cancel_upload(self, repo: str, uid: str) -> None: ...
    # manifests and tags
    @abstractmethod
    def put_manifest(self, repo: str, digest: str, data: bytes, media_type: str) -> None: ...
    @abstractmethod
    def manifest_media_type(self, repo: str, digest: str) -> str | None: ...
    @abstractmethod
    def delete_manifest(self, repo: str, digest: str) -> bool: ...
    @abstractmethod
    def manifest_revisions(self, repo: str) -> list[str]: ...
    @abstractmethod
    def add_referrer(self, repo: str, subject: str, descriptor: dict) -> None: ...
    @abstractmethod
    def referrers(self, repo: str, subject: str) -> list[dict]: ...
    @abstractmethod
    def set_tag(self, repo: str, tag: str, digest: str) -> None: ...
    @abstractmethod
    def get_tag(self, repo: str, tag: str) -> str | None: ...
    @abstractmethod
    def delete_tag(self, repo: str, tag: str) -> bool: ...
    @abstractmethod
    def tags(self, repo: str) -> list[str]: ...
    @abstractmethod
    def repositories(self) -> list[str]: ...
    @abstractmethod
    def repo_exists(self, repo: str) -> bool: ...
    @abstractmethod
    def set_description(self, repo: str, text: str) -> None: ...
    @abstractmethod
    def description(self, repo: str) -> str: ...


class FilesystemDriver(StorageDriver):
    def __init__(self, root: str | Path, fsync: bool = True) -> None:
        self.root = Path(root)
        self.fsync = fsync
        for d in ("blobs", "repositories", "uploads"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        # upload uuid -> (bytes hashed so far, running sha256): saves re-reading on finish
        self._hash_state: dict[str, tuple[int, hashlib._Hash]] = {}

    # ---- paths --------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        algo, hexpart = _split(digest)
        return self.root / "blobs" / algo / hexpart

    def _repo(self, repo: str) -> Path:
        return self.root / "repositories" / repo

    def _layer_link(self, repo: str, digest: str) -> Path:
        algo, hexpart = _split(digest)
        return self._repo(repo) / "_layers" / algo / hexpart

    def _revision(self, repo: str, digest: str) -> Path:
        algo, hexpart = _split(digest)
        return self._repo(repo) / "_manifests" / "revisions" / algo / hexpart

    def _tag(self, repo: str, tag: str) -> Path:
        return self._repo(repo) / "_manifests" / "tags" / tag

    def _upload_dir(self, uid: str) -> Path:
        if not uid or len(uid) > 64 or not set(uid) <= _UUID_CHARS:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
        return self.root / "uploads" / uid

    # ---- blobs --------------------------------------------------------------------------
    def blob_size(self, digest: str) -> int | None:
        try:
            return self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            return None

    def read_blob(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    def put_blob(self, digest: str, data: bytes) -> None:
        algo, _ = _split(digest)
        if hashlib.new(algo, data).hexdigest() != _split(digest)[1]:
            raise RegistryError("DIGEST_INVALID", "provided digest did not match uploaded content")
        p = self.blob_path(digest)
        if not p.exists():
            _atomic_write(p, data, self.fsync)

    def delete_blob(self, digest: str) -> None:
        self.blob_path(digest).unlink(missing_ok=True)

    def all_blobs(self) -> Iterator[str]:
        base = self.root / "blobs"
        for algo_dir in base.iterdir() if base.exists() else ():
            for p in algo_dir.iterdir():
                if not p.name.startswith("."):
                    yield f"{algo_dir.name}:{p.name}"

    # ---- links --------------------------------------------------------------------------
    def link_blob(self, repo: str, digest: str) -> None:
        p = self._layer_link(repo, digest)
        if not p.exists():
            _atomic_write(p, b"", fsync=False)

    def blob_linked(self, repo: str, digest: str) -> bool:
        return self._layer_link(repo, digest).exists() and self.blob_path(digest).exists()

    def unlink_blob(self, repo: str, digest: str) -> bool:
        p = self._layer_link(repo, digest)
        existed = p.exists()
        p.unlink(missing_ok=True)
        return existed

    def linked_blobs(self, repo: str) -> list[str]:
        base = self._repo(repo) / "_layers"
        out = []
        for algo_dir in base.iterdir() if base.exists() else ():
            out += [f"{algo_dir.name}:{p.name}" for p in algo_dir.iterdir() if not p.name.startswith(".")]
        return out

    # ---- uploads ------------------------------------------------------------------------
    def new_upload(self, repo: str) -> str:
        uid = str(uuidlib.uuid4())
        d = self._upload_dir(uid)
        d.mkdir(parents=True)
        (d / "repo").write_text(repo)
        (d / "data").touch()
        (d / "startedat").write_text(str(time.time()))
        self._hash_state[uid] = (0, hashlib.sha256())
        return uid

    def _check_upload(self, repo: str, uid: str) -> Path:
        d = self._upload_dir(uid)
        try:
            owner = (d / "repo").read_text()
        except FileNotFoundError:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry") from None
        if owner != repo:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
        return d

    def upload_size(self, repo: str, uid: str) -> int:
        return (self._check_upload(repo, uid) / "data").stat().st_size

    def upload_writer(self, repo: str, uid: str) -> UploadWriter:
        d = self._check_upload(repo, uid)
        size = (d / "data").stat().st_size
        state = self._hash_state.pop(uid, None)
        hasher = state[1] if state and state[0] == size else None
        return UploadWriter(self, uid, d / "data", size, hasher)

    def commit_upload(self, repo: str, uid: str, digest: str) -> int:
        """Verify the upload against `digest`, make it a blob of `repo`; returns its size.
        On a mismatch the upload is discarded and nothing is stored."""
        d = self._check_upload(repo, uid)
        data = d / "data"
        size = data.stat().st_size
        algo, hexpart = _split(digest)
        state = self._hash_state.pop(uid, None)
        if algo == "sha256" and state and state[0] == size:
            actual = state[1].hexdigest()
        else:
            h = hashlib.new(algo)
            with open(data, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            actual = h.hexdigest()
        if actual != hexpart:
            self.cancel_upload(repo, uid)
            raise RegistryError("DIGEST_INVALID", "provided digest did not match uploaded content",
                                detail={"expected": digest, "actual": f"{algo}:{actual}"})
        dest = self.blob_path(digest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            shutil.rmtree(d, ignore_errors=True)
        else:
            if self.fsync:
                fd = os.open(data, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            os.replace(data, dest)
            shutil.rmtree(d, ignore_errors=True)
        self.link_blob(repo, digest)
        return size

    def cancel_upload(self, repo: str, uid: str) -> None:
        d = self._check_upload(repo, uid)
        self._hash_state.pop(uid, None)
        shutil.rmtree(d, ignore_errors=True)

    def stale_uploads(self, older_than: float) -> list[Path]:
        out = []
        for d in (self.root / "uploads").iterdir():
            try:
                started = float((d / "startedat").read_text())
            except (OSError, ValueError):
                started = d.stat().st_mtime
            if time.time() - started > older_than:
                out.append(d)
        return out

    # ---- manifests ----------------------------------------------------------------------
    def put_manifest(self, repo: str, digest: str, data: bytes, media_type: str) -> None:
        self.put_blob(digest, data)
        _atomic_write(self._revision(repo, digest), media_type.encode(), fsync=False)

    def manifest_media_type(self, repo: str, digest: str) -> str | None:
        try:
            mt = self._revision(repo, digest).read_text()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return mt if self.blob_path(digest).exists() else None

    def _referrer_dir(self, repo: str, subject: str) -> Path:
        algo, hexpart = _split(subject)
        return self._repo(repo) / "_referrers" / algo / hexpart

    def add_referrer(self, repo: str, subject: str, descriptor: dict) -> None:
        """Remember that manifest `descriptor` names `subject` (OCI 1.1 referrers)."""
        _atomic_write(self._referrer_dir(repo, subject) / descriptor["digest"].replace(":", "-"),
                      json.dumps(descriptor).encode(), fsync=False)

    def referrers(self, repo: str, subject: str) -> list[dict]:
        d = self._referrer_dir(repo, subject)
        out = []
        for p in sorted(d.iterdir()) if d.exists() else ():
            if p.name.startswith("."):
                continue
            try:
                desc = json.loads(p.read_text())
            except (OSError, ValueError):
                continue
            if self.manifest_media_type(repo, desc.get("digest", "")) is not None:
                out.append(desc)
        return out

    def delete_manifest(self, repo: str, digest: str) -> bool:
        p = self._revision(repo, digest)
        if not p.exists():
            return False
        base = self._repo(repo) / "_referrers"
        for link in base.glob(f"*/*/{digest.replace(':', '-')}") if base.exists() else ():
            link.unlink(missing_ok=True)
        for tag in self.tags(repo):
            if self.get_tag(repo, tag) == digest:
                self.delete_tag(repo, tag)
        p.unlink(missing_ok=True)
        return True

    def manifest_revisions(self, repo: str) -> list[str]:
        base = self._repo(repo) / "_manifests" / "revisions"
        out = []
        for algo_dir in base.iterdir() if base.exists() else ():
            out += [f"{algo_dir.name}:{p.name}" for p in algo_dir.iterdir() if not p.name.startswith(".")]
        return out

    def set_tag(self, repo: str, tag: str, digest: str) -> None:
        _atomic_write(self._tag(repo, tag), digest.encode(), fsync=self.fsync)

    def get_tag(self, repo: str, tag: str) -> str | None:
        try:
            return self._tag(repo, tag).read_text().strip() or None
        except (FileNotFoundError, NotADirectoryError):
            return None

    def delete_tag(self, repo: str, tag: str) -> bool:
        p = self._tag(repo, tag)
        existed = p.exists()
        p.unlink(missing_ok=True)
        return existed

    def tags(self, repo: str) -> list[str]:
        base = self._repo(repo) / "_manifests" / "tags"
        if not base.exists():
            return []
        return sorted(p.name for p in base.iterdir() if not p.name.startswith("."))

    def repositories(self) -> list[str]:
        base = self.root / "repositories"
        out = []
        for dirpath, dirnames, _ in os.walk(base):
            if "_manifests" in dirnames or "_layers" in dirnames:
                out.append(os.path.relpath(dirpath, base))
            dirnames[:] = [d for d in dirnames if not d.startswith("_")]
        return sorted(out)

    def repo_exists(self, repo: str) -> bool:
        r = self._repo(repo)
        return (r / "_manifests").exists() or (r / "_layers").exists()

    def set_description(self, repo: str, text: str) -> None:
        _atomic_write(self._repo(repo) / "_description", text.encode(), fsync=False)

    def description(self, repo: str) -> str:
        try:
            return (self._repo(repo) / "_description").read_text()
        except FileNotFoundError:
            return ""
