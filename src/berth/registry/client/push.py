"""Push: layers (already-compressed blobs as they are, plain tars gzipped fast), blobs the
registry has skipped by HEAD, cross-repository mounts where another repository of the same
registry is known to hold a blob, uploads in parallel, then config and manifest."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from berth import errors
from berth.image.reference import Reference
from berth.image.spec import compression_of
from berth.registry import mediatypes as mt
from berth.registry.client.compress import gzip_file
from berth.registry.client.progress import Reporter, short
from berth.registry.client.pull import LocalImages
from berth.registry.client.session import RegistrySession, error_from
from berth.registry.scope import repository

log = logging.getLogger("berth.registry.push")

CONCURRENT_UPLOADS = 4
UPLOAD_ATTEMPTS = 3
CHUNK = 1 << 20


class PushCache(Protocol):
    def remember(self, digest: str, registry: str, repo: str) -> None: ...
    def sources(self, digest: str, registry: str) -> list[str]: ...
    def compressed(self, diff_id: str) -> tuple[str, int, str] | None: ...
    def remember_compressed(self, diff_id: str, digest: str, size: int, media_type: str) -> None: ...


@dataclass
class LayerPlan:
    diff_id: str
    chain: str
    blob: str | None            # content-store digest usable as-is (compressed)
    media_type: str
    size: int
    digest: str | None = None   # what the registry will know it as
    temp: str | None = None     # a compressed temp file to upload (removed afterwards)


def _manifest_media(compression: str, oci: bool) -> str:
    if oci:
        return {"gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD}.get(compression, mt.OCI_LAYER)
    return {"gzip": mt.DOCKER_LAYER_GZIP, "zstd": mt.DOCKER_LAYER_ZSTD}.get(
        compression, "application/vnd.docker.image.rootfs.diff.tar")


class Pusher:
    def __init__(self, session: RegistrySession, images: LocalImages, reporter: Reporter,
                 cache: PushCache | None = None) -> None:
        self.session = session
        self.images = images
        self.rep = reporter
        self.cache = cache

    @property
    def registry(self) -> str:
        return self.session.endpoint.domain

    async def push(self, ref: Reference, image: Any) -> tuple[str, int]:
        """Push `image` as `ref` (which carries a tag); returns (manifest digest, size)."""
        repo = ref.path
        scopes = [repository(repo, "pull", "push")]
        plans = [self._plan(c) for c in image.layers]
        for p in plans:
            await self.rep.status("Preparing", short(p.digest or p.diff_id))
        # prove auth before any work, so a push without credentials fails at once and clearly
        resp = await self.session.request("GET", f"/v2/{repo}/tags/list", scopes=scopes)
        body = await resp.read()
        resp.release()
        if resp.status in (401, 403):
            raise error_from(resp.status, body, f"push to {ref.name}")
        sem = asyncio.Semaphore(CONCURRENT_UPLOADS)
        tasks = [asyncio.create_task(self._push_layer(repo, p, sem)) for p in plans]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                if not t.done():
                    t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for p in plans:
                if p.temp:
                    try:
                        os.unlink(p.temp)
                    except FileNotFoundError:
                        pass
        compressions = {compression_of(p.media_type) for p in plans}
        oci = "zstd" in compressions or "" in compressions or "?" in compressions
        config_bytes: bytes = image.config_bytes
        config_digest = image.id
        await self._push_bytes(repo, config_digest, config_bytes)
        manifest = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST if oci else mt.DOCKER_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG if oci else mt.DOCKER_CONFIG,
                       "digest": config_digest, "size": len(config_bytes)},
            "layers": [{"mediaType": _manifest_media(compression_of(p.media_type), oci),
                        "digest": p.digest, "size": p.size} for p in plans],
        }
        data = json.dumps(manifest, indent=3).encode()
        import hashlib
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        resp = await self.session.request("PUT", f"/v2/{repo}/manifests/{ref.tag}", scopes=scopes, data=data,
                                          headers={"Content-Type": manifest["mediaType"]})
        body = await resp.read()
        resp.release()
        if resp.status not in (200, 201, 202):
            raise error_from(resp.status, body, f"pushing manifest {ref.familiar}")
        await self.rep.status(f"{ref.tag}: digest: {digest} size: {len(data)}")
        await self.rep.emit({"progressDetail": {}, "aux": {"Tag": ref.tag, "Digest": digest, "Size": len(data)}})
        return digest, len(data)

    def _plan(self, chain: str) -> LayerPlan:
        layer = self.images.layers.get(chain)
        content = self.images.content
        media = layer.media_type or ""
        if layer.blob and content.exists(layer.blob) and compression_of(media) in ("gzip", "zstd"):
            return LayerPlan(layer.diff_id, chain, layer.blob, media, content.size(layer.blob), layer.blob)
        cached = self.cache.compressed(layer.diff_id) if self.cache else None
        if cached:
            digest, size, cmedia = cached
            return LayerPlan(layer.diff_id, chain, None, cmedia, size, digest)
        return LayerPlan(layer.diff_id, chain, None, mt.OCI_LAYER_GZIP, 0, None)

    async def _exists(self, repo: str, digest: str) -> bool:
        resp = await self.session.request("HEAD", f"/v2/{repo}/blobs/{digest}",
                                          scopes=[repository(repo, "pull", "push")])
        await resp.read()
        resp.release()
        if resp.status in (401, 403):
            raise error_from(resp.status, b"", f"checking blob {digest}")
        return resp.status == 200

    async def _compress(self, p: LayerPlan) -> None:
        sid = short(p.diff_id)
        await self.rep.status("Compressing", sid)

        def run() -> Any:
            layer = self.images.layers.get(p.chain)
            content = self.images.content
            if layer.blob and content.exists(layer.blob) and compression_of(layer.media_type or "") == "":
                # the plain tar is a file: the compressor reads it directly
                with open(content.path(layer.blob), "rb") as f:
                    return gzip_file(f, str(content.tmp))
            with self.images.layers.open_tar(p.chain) as src:
                return gzip_file(src, str(content.tmp))
        c = await asyncio.to_thread(run)
        p.temp, p.digest, p.size, p.media_type = c.path, c.digest, c.size, mt.OCI_LAYER_GZIP
        if self.cache:
            self.cache.remember_compressed(p.diff_id, c.digest, c.size, mt.OCI_LAYER_GZIP)

    async def _push_layer(self, repo: str, p: LayerPlan, sem: asyncio.Semaphore) -> None:
        async with sem:
            if p.digest and await self._exists(repo, p.digest):
                await self.rep.status("Layer already exists", short(p.digest))
                return
            if p.digest and await self._mount(repo, p):
                return
            if p.blob is None and p.temp is None:
                await self._compress(p)
                assert p.digest is not None
                if await self._exists(repo, p.digest):
                    await self.rep.status("Layer already exists", short(p.digest))
                    return
            assert p.digest is not None
            sid = short(p.digest)
            path = p.temp or str(self.images.content.path(p.blob))
            for attempt in range(1, UPLOAD_ATTEMPTS + 1):
                try:
                    await self._upload_file(repo, p.digest, path, p.size, sid)
                    break
                except (TimeoutError, aiohttp.ClientError) as exc:
                    # a dropped upload leaves nothing visible on the registry: start a new one
                    if attempt == UPLOAD_ATTEMPTS:
                        raise errors.BerthError(f"uploading layer {p.digest} failed: "
                                                f"{type(exc).__name__}: {exc}") from exc
                    log.info("retrying upload of %s after: %s", p.digest, exc)
                    await self.rep.status(f"Retrying in {attempt} second{'s' if attempt > 1 else ''}", sid)
                    await asyncio.sleep(attempt)
            if self.cache:
                self.cache.remember(p.digest, self.registry, repo)
            await self.rep.status("Pushed", sid)

    async def _mount(self, repo: str, p: LayerPlan) -> bool:
        if not self.cache or not p.digest:
            return False
        for source in self.cache.sources(p.digest, self.registry):
            if source == repo:
                continue
            resp = await self.session.request(
                "POST", f"/v2/{repo}/blobs/uploads/", params={"mount": p.digest, "from": source},
                scopes=[repository(repo, "pull", "push"), repository(source, "pull")])
            await resp.read()
            resp.release()
            if resp.status == 201:
                await self.rep.status(f"Mounted from {source}", short(p.digest))
                self.cache.remember(p.digest, self.registry, repo)
                return True
            if resp.status == 202 and resp.headers.get("Location"):
                # the registry started an upload instead; drop it, we start our own
                loc = resp.headers["Location"]
                r2 = await self.session.request("DELETE", loc, scopes=[repository(repo, "pull", "push")])
                await r2.read()
                r2.release()
        return False

    async def _start_upload(self, repo: str) -> str:
        resp = await self.session.request("POST", f"/v2/{repo}/blobs/uploads/",
                                          scopes=[repository(repo, "pull", "push")])
        body = await resp.read()
        resp.release()
        if resp.status != 202 or not resp.headers.get("Location"):
            raise error_from(resp.status, body, f"starting an upload to {repo}")
        return resp.headers["Location"]

    async def _finish_url(self, location: str, digest: str) -> str:
        sep = "&" if "?" in location else "?"
        from urllib.parse import quote
        return f"{location}{sep}digest={quote(digest)}"

    async def _upload_file(self, repo: str, digest: str, path: str, size: int, sid: str) -> None:
        location = await self._start_upload(repo)

        async def body() -> AsyncIterator[bytes]:
            done = 0
            with open(path, "rb") as f:
                while True:
                    chunk = await asyncio.to_thread(f.read, 4 * CHUNK)
                    if not chunk:
                        break
                    done += len(chunk)
                    yield chunk
                    await self.rep.bytes("Pushing", sid, done, size)

        url = await self._finish_url(location, digest)
        resp = await self.session.request("PUT", url, scopes=[repository(repo, "pull", "push")], data=body(),
                                          headers={"Content-Type": "application/octet-stream",
                                                   "Content-Length": str(size)}, retry_auth=False)
        text = await resp.read()
        resp.release()
        if resp.status not in (201, 204):
            raise error_from(resp.status, text, f"uploading layer {digest}")

    async def _push_bytes(self, repo: str, digest: str, data: bytes) -> None:
        if await self._exists(repo, digest):
            return
        location = await self._start_upload(repo)
        url = await self._finish_url(location, digest)
        resp = await self.session.request("PUT", url, scopes=[repository(repo, "pull", "push")], data=data,
                                          headers={"Content-Type": "application/octet-stream"})
        text = await resp.read()
        resp.release()
        if resp.status not in (201, 204):
            raise error_from(resp.status, text, f"uploading blob {digest}")
