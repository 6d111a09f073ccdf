"""`docker save` / `docker load`.

`save` writes one tar that is both a Docker archive (`manifest.json`, `repositories`) and
an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/...`), as Docker 25 does:
config and uncompressed layer tars are blobs, `manifest.json` points at them.

`load` accepts a Docker archive (classic `<id>/layer.tar` or blob paths), an OCI image
layout (index.json, nested indexes, gzip/zstd layers), either possibly gzip/zstd
compressed as a whole. Layers are verified against the config's diff_ids; a failed load
removes the layers it created and records no image.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tarfile
import tempfile
from typing import IO, TYPE_CHECKING, Any

from berth.errors import BerthError, InvalidParameter, NotFound
from berth.image import reference
from berth.image.layers import chain_id, decompressed
from berth.image.spec import (
    ANNOTATION_CONTAINERD_NAME,
    ANNOTATION_REF_NAME,
    INDEX_TYPES,
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    Descriptor,
    Index,
    Manifest,
    canonical_json,
    hex_of,
    json_object,
    parse_manifest_or_index,
    sha256_digest,
)

if TYPE_CHECKING:
    from berth.engine.images import ImageService  # noqa: F401 - typing only
    from berth.image.store import Image

CHUNK = 1 << 20


# --- save ---------------------------------------------------------------------------------
def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = 0o644
    tar.addfile(ti, _BytesReader(data))


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = len(self._data) - self._pos
        out = bytes(self._data[self._pos:self._pos + n])
        self._pos += len(out)
        return out


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.DIRTYPE
    ti.mode = 0o755
    tar.addfile(ti)


def save(svc: Any, names: list[str], out: IO[bytes], fmt: str = "docker") -> None:
    """Write the named images as one archive (Docker archive + OCI layout)."""
    del fmt  # one layout serves both readers
    wanted: list[tuple[Image, str | None]] = []
    for n in names:
        # a repository name alone (`busybox`) saves every tag of it, as docker does
        try:
            bare = reference.parse(n, default_tag=False)
        except InvalidParameter:
            bare = None
        if bare is not None and not bare.tag and not bare.digest:
            tagged = svc.store.tags_in_repository(bare.name)
            if tagged:
                for full, image_id in tagged:
                    wanted.append((svc.store.get(image_id), full))
                continue
        img = svc.resolve(n)
        tag = None
        by_id = reference.looks_like_id(n) and img.id.removeprefix("sha256:").startswith(
            n.removeprefix("sha256:"))
        if not by_id:
            ref = reference.parse(n)
            if ref.tag:
                tag = ref.full
        wanted.append((img, tag))
    written: set[str] = set()
    manifest_json: list[dict[str, Any]] = []
    index = Index()
    repositories: dict[str, dict[str, str]] = {}
    order: list[str] = []
    tags_of: dict[str, list[str]] = {}
    for img, tag in wanted:
        if img.id not in tags_of:
            order.append(img.id)
            tags_of[img.id] = []
        if tag and tag not in tags_of[img.id]:
            tags_of[img.id].append(tag)
    images = {img.id: img for img, _ in wanted}
    tmp_dir = str(svc.config.tmp_dir)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
        _add_dir(tar, "blobs")
        _add_dir(tar, "blobs/sha256")
        for image_id in order:
            img = images[image_id]
            cfg_digest = img.id
            if cfg_digest not in written:
                _add_bytes(tar, f"blobs/sha256/{hex_of(cfg_digest)}", img.config_bytes)
                written.add(cfg_digest)
            layer_descs = []
            for ch, diff_id in zip(img.layers, img.diff_ids, strict=True):
                size = _add_layer(svc, tar, ch, diff_id, written, tmp_dir)
                layer_descs.append(Descriptor(OCI_LAYER, diff_id, size))
            m = Manifest(config=Descriptor(OCI_CONFIG, cfg_digest, len(img.config_bytes)),
                         layers=layer_descs, media_type=OCI_MANIFEST)
            mbytes = m.to_bytes()
            mdigest = sha256_digest(mbytes)
            if mdigest not in written:
                _add_bytes(tar, f"blobs/sha256/{hex_of(mdigest)}", mbytes)
                written.add(mdigest)
            familiar_tags = [reference.parse(t).familiar for t in tags_of[image_id]]
            manifest_json.append({
                "Config": f"blobs/sha256/{hex_of(cfg_digest)}",
                "RepoTags": familiar_tags or None,
                "Layers": [f"blobs/sha256/{hex_of(d)}" for d in img.diff_ids],
            })
            refs = tags_of[image_id] or [None]
            for full in refs:
                ann = None
                if full:
                    r = reference.parse(full)
                    ann = {ANNOTATION_CONTAINERD_NAME: r.full, ANNOTATION_REF_NAME: r.tag or ""}
                    top = hex_of(img.layers[-1]) if img.layers else hex_of(img.id)
                    repositories.setdefault(r.familiar_name, {})[r.tag or "latest"] = top
                index.manifests.append(Descriptor(OCI_MANIFEST, mdigest, len(mbytes), annotations=ann))
        _add_bytes(tar, "index.json", index.to_bytes())
        _add_bytes(tar, "manifest.json", json.dumps(manifest_json).encode())
        _add_bytes(tar, "oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"}))
        if repositories:
            _add_bytes(tar, "repositories", json.dumps(repositories).encode())


def _add_layer(svc: Any, tar: tarfile.TarFile, chain: str, diff_id: str, written: set[str],
               tmp_dir: str) -> int:
    """Add a layer's uncompressed tar as blob `diff_id`; returns its size."""
    name = f"blobs/sha256/{hex_of(diff_id)}"
    layer = svc.layers.get(chain)
    if layer.blob == diff_id and svc.content.exists(diff_id):
        size = svc.content.size(diff_id)
        if diff_id not in written:
            with svc.content.open(diff_id) as f:
                ti = tarfile.TarInfo(name)
                ti.size, ti.mode = size, 0o644
                tar.addfile(ti, f)
            written.add(diff_id)
        return size
    # a compressed blob (pulled layer): decompress to a temp file first (tar needs a size)
    fd, path = tempfile.mkstemp(prefix="save-", dir=tmp_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            src = svc.layers.open_tar(chain)
            try:
                shutil.copyfileobj(src, f, CHUNK)
            finally:
                src.close()
        size = os.path.getsize(path)
        if diff_id not in written:
            with open(path, "rb") as f:
                ti = tarfile.TarInfo(name)
                ti.size, ti.mode = size, 0o644
                tar.addfile(ti, f)
            written.add(diff_id)
        return size
    finally:
        os.unlink(path)


# --- load ---------------------------------------------------------------------------------
def _extract(stream: IO[bytes], dest: str) -> None:
    """Extract an archive's regular files, dirs and in-archive symlinks into `dest`."""
    plain, _ = decompressed(stream)
    try:
        with tarfile.open(fileobj=plain, mode="r|") as tar:  # type: ignore[call-overload]
            for m in tar:
                parts = [p for p in m.name.split("/") if p not in ("", ".")]
                if not parts:
                    continue
                if ".." in parts:
                    raise InvalidParameter(f"archive entry {m.name!r} escapes the archive")
                full = os.path.join(dest, *parts)
                os.makedirs(os.path.dirname(full), exist_ok=True)
                if m.isdir():
                    os.makedirs(full, exist_ok=True)
                elif m.isreg():
                    src = tar.extractfile(m)
                    with open(full, "wb") as f:
                        if src is not None:
                            shutil.copyfileobj(src, f, CHUNK)
                elif m.issym():
                    os.symlink(m.linkname, full)
                elif m.islnk():
                    target = os.path.join(dest, *[p for p in m.linkname.split("/") if p not in ("", ".")])
                    if ".." in m.linkname.split("/"):
                        raise InvalidParameter(f"archive link {m.name!r} escapes the archive")
                    os.link(target, full)
    except (tarfile.TarError, EOFError) as exc:
        raise InvalidParameter(f"invalid image archive: {exc}") from None


def _inside(root: str, rel: str) -> str:
    """Path of `rel` in the extracted archive; refuses anything resolving outside it."""
    full = os.path.realpath(os.path.join(root, rel))
    if not (full + "/").startswith(os.path.realpath(root) + "/"):
        raise InvalidParameter(f"archive path {rel!r} escapes the archive")
    try:
        st = os.stat(full)
    except FileNotFoundError:
        raise InvalidParameter(f"archive is missing {rel!r}") from None
    if not stat.S_ISREG(st.st_mode):
        raise InvalidParameter(f"archive entry {rel!r} is not a file")
    return full


def _read(root: str, rel: str) -> bytes:
    with open(_inside(root, rel), "rb") as f:
        return f.read()


class _Loader:
    def __init__(self, svc: Any, root: str) -> None:
        self.svc = svc
        self.root = root
        self.new_layers: list[str] = []

    def layers_for(self, config_bytes: bytes, layer_paths: list[str]) -> None:
        cfg = json.loads(config_bytes)
        diff_ids = list((cfg.get("rootfs") or {}).get("diff_ids") or [])
        if len(diff_ids) != len(layer_paths):
            raise InvalidParameter(f"image config lists {len(diff_ids)} layers but the archive "
                                   f"has {len(layer_paths)}")
        parent: str | None = None
        for diff_id, rel in zip(diff_ids, layer_paths, strict=True):
            ch = chain_id(parent, diff_id)
            if not self.svc.layers.exists(ch):
                with open(_inside(self.root, rel), "rb") as f:
                    self.svc.layers.apply(f, parent, expected_diff_id=diff_id)
                self.new_layers.append(ch)
            parent = ch

    def rollback(self) -> None:
        for ch in reversed(self.new_layers):
            in_use = any(ch in img.layers for img in self.svc.store.list())
            if not in_use:
                self.svc.layers.remove(ch)


def _select_manifests(root: str, desc: Descriptor, depth: int = 0) -> list[tuple[Descriptor, Manifest]]:
    if depth > 4:
        raise InvalidParameter("image index nests too deeply")
    data = _read(root, f"blobs/{desc.digest.replace(':', '/')}")
    if sha256_digest(data) != desc.digest:
        raise InvalidParameter(f"blob {desc.digest} in the archive does not match its digest")
    doc = parse_manifest_or_index(data, desc.media_type)
    if isinstance(doc, Manifest):
        return [(desc, doc)]
    from berth.image.archive import host_arch
    subs = [m for m in doc.manifests if m.media_type not in ("application/vnd.in-toto+json",)]
    chosen = [m for m in subs if (m.platform or {}).get("os") == "linux"
              and (m.platform or {}).get("architecture") == host_arch()]
    if not chosen:
        chosen = [m for m in subs if not m.platform] or subs[:1]
    out = []
    for m in chosen[:1]:
        if m.annotations is None and desc.annotations:
            m.annotations = desc.annotations
        out.extend(_select_manifests(root, m, depth + 1))
    return out


def load(svc: Any, stream: IO[bytes]) -> list[str]:
    """Load a Docker archive or OCI layout; returns what docker prints: tags loaded
    (familiar `name:tag`) or `sha256:<id>` for untagged images."""
    work = tempfile.mkdtemp(prefix="load-", dir=str(svc.config.tmp_dir))
    loader = _Loader(svc, work)
    created: list[str] = []
    try:
        _extract(stream, work)
        loaded: list[str] = []
        entries: list[tuple[bytes, list[str], list[str]]] = []  # config, layer paths, tags
        if os.path.isfile(os.path.join(work, "manifest.json")):
            try:
                manifest = json.loads(_read(work, "manifest.json"))
            except ValueError as exc:
                raise InvalidParameter(f"manifest.json is not JSON: {exc}") from None
            if not isinstance(manifest, list):
                raise InvalidParameter("manifest.json must be a list")
            for e in manifest:
                tags = [reference.parse(t).full for t in (e.get("RepoTags") or [])]
                entries.append((_read(work, e["Config"]), list(e.get("Layers") or []), tags))
        elif os.path.isfile(os.path.join(work, "index.json")):
            try:
                idx = Index.from_dict(json_object(_read(work, "index.json")))
            except ValueError as exc:
                raise InvalidParameter(f"index.json: {exc}") from None
            for d in idx.manifests:
                if d.media_type not in (OCI_MANIFEST, *INDEX_TYPES, "application/vnd.docker.distribution.manifest.v2+json"):
                    continue
                for mdesc, m in _select_manifests(work, d):
                    cfg = _read(work, f"blobs/{m.config.digest.replace(':', '/')}")
                    if sha256_digest(cfg) != m.config.digest:
                        raise InvalidParameter(f"config {m.config.digest} does not match its digest")
                    tags = []
                    ann = mdesc.annotations or d.annotations or {}
                    name = ann.get(ANNOTATION_CONTAINERD_NAME) or ann.get(ANNOTATION_REF_NAME) or ""
                    if name:
                        try:
                            r = reference.parse(name)
                            if r.tag and not r.digest and (ANNOTATION_CONTAINERD_NAME in ann or "/" in name
                                                           or ":" in name):
                                tags.append(r.full)
                        except InvalidParameter:
                            pass
                    entries.append((cfg, [f"blobs/{x.digest.replace(':', '/')}" for x in m.layers], tags))
        else:
            raise InvalidParameter("archive has neither manifest.json nor index.json: "
                                   "not a docker save archive or OCI image layout")
        if not entries:
            raise InvalidParameter("archive holds no image")
        for cfg, layer_paths, tags in entries:
            loader.layers_for(cfg, layer_paths)
            existed = svc.store.exists(sha256_digest(cfg))
            img = svc.store.create(cfg, tags=tags)
            if not existed:
                created.append(img.id)
            if tags:
                loaded.extend(reference.parse(t).familiar for t in tags)
            else:
                loaded.append(img.id)
            svc._event("load", img.id)
        return loaded
    except BaseException as exc:
        for image_id in created:
            try:
                svc.store.delete(image_id)
            except BerthError:
                pass
        loader.rollback()
        if isinstance(exc, (KeyError, ValueError)) and not isinstance(exc, BerthError):
            raise InvalidParameter(f"invalid image archive: {exc}") from None
        if isinstance(exc, NotFound):
            raise InvalidParameter(str(exc)) from None
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
