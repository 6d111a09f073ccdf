"""Pull: manifest (list/index -> platform), config, then layers fetched concurrently into the
content store (each verified by digest and size before it becomes visible), unpacked in
order, and finally the image record. An interrupted pull leaves verified blobs and whole
layers only, never a half image; pulling again reuses them."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import Any, Protocol

import aiohttp

from berth import errors
from berth.image.layers import chain_ids
from berth.image.reference import Reference
from berth.image.spec import Descriptor, Index
from berth.registry import mediatypes as mt
from berth.registry.client.platform import Platform, normalize_arch, select
from berth.registry.client.progress import Reporter, short
from berth.registry.client.session import RegistrySession, error_from
from berth.registry.client.stream import GunzipFeeder, Pipe, PipeAborted
from berth.registry.names import valid_digest
from berth.registry.scope import repository

log = logging.getLogger("berth.registry.pull")

CONCURRENT_DOWNLOADS = 3
DOWNLOAD_ATTEMPTS = 3


class _NetworkError(Exception):
    """A download broke off (connection dropped, timeout): worth another attempt."""
MAX_MANIFEST = 4 << 20


class LocalImages(Protocol):
    content: Any   # berth.image.content.ContentStore
    layers: Any    # berth.image.layers.LayerStore
    store: Any     # berth.image.store.ImageStore


class BlobSources(Protocol):
    def remember(self, digest: str, registry: str, repo: str) -> None: ...


async def fetch_manifest(session: RegistrySession, repo: str, ref: str) -> tuple[bytes, str, str]:
    """(bytes, media type, digest) of a manifest; the digest is verified when `ref` is one."""
    resp = await session.request("GET", f"/v2/{repo}/manifests/{ref}", scopes=[repository(repo, "pull")],
                                 headers={"Accept": mt.ACCEPT_MANIFESTS})
    try:
        if resp.status != 200:
            body = await resp.read()
            if resp.status == 404:
                raise errors.NotFound(f"manifest for {session.endpoint.domain}/{repo}:{ref} not found: "
                                      f"manifest unknown")
            raise error_from(resp.status, body, f"fetching manifest {repo}:{ref}")
        if resp.content_length and resp.content_length > MAX_MANIFEST:
            raise errors.InvalidParameter(f"manifest {repo}:{ref} is larger than 4 MiB")
        body = await resp.content.read(MAX_MANIFEST + 1)
        if len(body) > MAX_MANIFEST:
            raise errors.InvalidParameter(f"manifest {repo}:{ref} is larger than 4 MiB")
        ctype = resp.headers.get("Content-Type", "")
    finally:
        resp.release()
    algo = ref.partition(":")[0] if ":" in ref else "sha256"
    digest = f"{algo}:{hashlib.new(algo, body).hexdigest()}"
    if ":" in ref and digest != ref:
        raise errors.InvalidParameter(f"manifest digest {digest} does not match the requested {ref}")
    return body, ctype, digest


class Puller:
    def __init__(self, session: RegistrySession, images: LocalImages, reporter: Reporter,
                 platform: Platform, sources: BlobSources | None = None, explicit_platform: bool = False) -> None:
        self.explicit_platform = explicit_platform  # refuse a single-platform image of another platform
        self.session = session
        self.images = images
        self.rep = reporter
        self.platform = platform
        self.sources = sources

    async def pull(self, ref: Reference) -> Any:
        repo = ref.path
        tag_or_digest = ref.digest or ref.tag or "latest"
        body, ctype, top_digest = await fetch_manifest(self.session, repo, tag_or_digest)
        await self.rep.status(f"Pulling from {ref.path}", ref.tag or ref.digest or "latest")
        try:
            pm = mt.parse_manifest(body, ctype)
        except ValueError as exc:
            raise errors.InvalidParameter(f"{ref.familiar}: {exc}") from None
        if isinstance(pm, Index):
            chosen = select(pm.manifests, self.platform)
            body, ctype, _ = await fetch_manifest(self.session, repo, chosen.digest)
            try:
                pm = mt.parse_manifest(body, ctype or chosen.media_type)
            except ValueError as exc:
                raise errors.InvalidParameter(f"{ref.familiar}: {exc}") from None
            if isinstance(pm, Index):
                raise errors.InvalidParameter(f"{ref.familiar}: nested indexes are not supported")
        config = await self._config(repo, pm.config)
        try:
            cfg = json.loads(config)
        except ValueError:
            raise errors.InvalidParameter(f"{ref.familiar}: image config is not JSON") from None
        if self.explicit_platform:
            have = Platform(str(cfg.get("os", "")), normalize_arch(str(cfg.get("architecture", ""))),
                            str(cfg.get("variant") or ""))
            if not self.platform.matches({"os": have.os, "architecture": have.architecture,
                                          "variant": have.variant}):
                raise errors.NotFound(f"image with reference {ref.familiar} was found but does not match the "
                                      f"specified platform: wanted {self.platform}, actual: {have}")
        diff_ids = list((cfg.get("rootfs") or {}).get("diff_ids") or [])
        if len(diff_ids) != len(pm.layers):
            raise errors.InvalidParameter(f"{ref.familiar}: the manifest lists {len(pm.layers)} layers but "
                                          f"the config has {len(diff_ids)} diff_ids")
        chains = chain_ids(diff_ids)
        for d in pm.layers:
            if not valid_digest(d.digest) or not d.digest.startswith("sha256:"):
                raise errors.InvalidParameter(f"{ref.familiar}: unsupported layer digest {d.digest!r}")
        image_id = "sha256:" + hashlib.sha256(config).hexdigest()
        # as docker: "up to date" when the reference already named this very image
        try:
            before = (self.images.store.by_tag(ref) if ref.tag and not ref.digest
                      else self.images.store.by_digest(ref.with_digest(top_digest)))
        except errors.BerthError:
            before = None
        had_image = before is not None and before.id == image_id
        await self._layers(repo, pm.layers, diff_ids, chains)
        tags = [ref.full] if ref.tag and not ref.digest else []
        img = await asyncio.to_thread(self.images.store.create, config, None, tags,
                                      [f"{ref.name}@{top_digest}"])
        await self.rep.status(f"Digest: {top_digest}")
        shown = ref.familiar
        await self.rep.status(f"Status: Image is up to date for {shown}" if had_image
                              else f"Status: Downloaded newer image for {shown}")
        return img

    async def _config(self, repo: str, desc: Descriptor) -> bytes:
        content = self.images.content
        if content.exists(desc.digest):
            return content.read_bytes(desc.digest)
        resp = await self.session.request("GET", f"/v2/{repo}/blobs/{desc.digest}",
                                          scopes=[repository(repo, "pull")])
        try:
            data = await resp.read()
            if resp.status != 200:
                raise error_from(resp.status, data, f"fetching image config {desc.digest}")
        finally:
            resp.release()
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != desc.digest:
            raise errors.InvalidParameter(f"image config digest {actual} does not match {desc.digest}")
        return data

    async def _layers(self, repo: str, layers: list[Descriptor], diff_ids: list[str],
                      chains: list[str]) -> None:
        sem = asyncio.Semaphore(CONCURRENT_DOWNLOADS)
        tasks: list[asyncio.Task[bool] | None] = []
        for i, d in enumerate(layers):
            if self.images.layers.exists(chains[i]):
                await self.rep.status("Already exists", short(d.digest))
                tasks.append(None)
                continue
            await self.rep.status("Pulling fs layer", short(d.digest))
            # the first missing layer whose parent is present is unpacked while it downloads
            parent = chains[i - 1] if i else None
            stream = (parent is None or self.images.layers.exists(parent)) and \
                not any(t is not None for t in tasks)
            tasks.append(asyncio.create_task(
                self._download(repo, d, sem, (parent, diff_ids[i]) if stream else None)))
        try:
            parent_chain: str | None = None
            for i, d in enumerate(layers):
                task = tasks[i]
                if task is not None:
                    applied = await task
                    if not applied:
                        await self.rep.status("Extracting", short(d.digest))
                        await asyncio.to_thread(self._apply, d, parent_chain, diff_ids[i])
                    await self.rep.status("Pull complete", short(d.digest))
                parent_chain = chains[i]
        finally:
            for t in tasks:
                if t is not None and not t.done():
                    t.cancel()
            await asyncio.gather(*(t for t in tasks if t is not None), return_exceptions=True)

    def _apply(self, d: Descriptor, parent: str | None, diff_id: str) -> None:
        with self.images.content.open(d.digest) as f:
            self.images.layers.apply(f, parent, blob=d.digest, media_type=d.media_type or None,
                                     expected_diff_id=diff_id)

    def _apply_stream(self, pipe: Pipe, d: Descriptor, parent: str | None, diff_id: str) -> None:
        try:
            self.images.layers.apply(pipe, parent, blob=d.digest, media_type=d.media_type or None,
                                     expected_diff_id=diff_id)
        finally:
            pipe.close()

    async def _download(self, repo: str, d: Descriptor, sem: asyncio.Semaphore,
                        stream_apply: tuple[str | None, str] | None = None) -> bool:
        """Fetch a layer blob into the content store (verified), retrying a dropped
        connection (DOWNLOAD_ATTEMPTS in all, as docker retries). With `stream_apply` (parent
        chain, diff_id) the first attempt unpacks the layer while it downloads; returns True
        when it did."""
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            try:
                return await self._download_once(repo, d, sem, stream_apply if attempt == 1 else None)
            except _NetworkError as exc:
                if attempt == DOWNLOAD_ATTEMPTS:
                    raise errors.BerthError(str(exc)) from exc
                log.info("retrying %s after: %s", d.digest, exc)
                await self.rep.status(f"Retrying in {attempt} second{'s' if attempt > 1 else ''}", short(d.digest))
                await asyncio.sleep(attempt)
        raise AssertionError("unreachable")

    async def _download_once(self, repo: str, d: Descriptor, sem: asyncio.Semaphore,
                             stream_apply: tuple[str | None, str] | None = None) -> bool:
        content = self.images.content
        sid = short(d.digest)
        if content.exists(d.digest) and content.size(d.digest) == d.size:
            await self.rep.status("Download complete", sid)
            return False
        async with sem:
            await self.rep.status("Waiting", sid)
            try:
                resp = await self.session.request("GET", f"/v2/{repo}/blobs/{d.digest}",
                                                  scopes=[repository(repo, "pull")])
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise _NetworkError(f"fetching layer {d.digest} failed: {type(exc).__name__}: {exc}") from exc
            writer = content.writer(d.digest, d.size)
            pipe: Pipe | None = None
            unpack: asyncio.Future[None] | None = None
            if stream_apply is not None and resp.status == 200:
                pipe = Pipe()
                unpack = asyncio.ensure_future(asyncio.to_thread(self._apply_stream, pipe, d, *stream_apply))

            gunzip = GunzipFeeder()

            def sink(chunk: bytes) -> None:
                writer.write(chunk)
                if pipe is not None:
                    plain = gunzip.feed(chunk)
                    if plain:
                        pipe.put(plain)
            try:
                if resp.status != 200:
                    raise error_from(resp.status, await resp.read(), f"fetching layer {d.digest}")
                done = 0
                async for chunk in resp.content.iter_chunked(1 << 20):
                    if len(chunk) >= (256 << 10) or pipe is not None:
                        await asyncio.to_thread(sink, chunk)
                    else:
                        writer.write(chunk)
                    done += len(chunk)
                    await self.rep.bytes("Downloading", sid, done, d.size)
                await self.rep.status("Verifying Checksum", sid)
                if pipe is not None:
                    try:
                        tail = gunzip.flush()
                    except ValueError as exc:
                        raise errors.InvalidParameter(f"layer {d.digest}: {exc}") from None
                    if tail:
                        await asyncio.to_thread(pipe.put, tail)
                await asyncio.to_thread(writer.commit)
                if pipe is not None and unpack is not None:
                    await self.rep.status("Download complete", sid)
                    await self.rep.status("Extracting", sid)
                    pipe.finish()  # only now may the unpacker see the end and publish the layer
                    await unpack
            except (TimeoutError, aiohttp.ClientError) as exc:
                writer.abort()
                raise _NetworkError(f"fetching layer {d.digest} failed: {type(exc).__name__}: {exc}") from exc
            except PipeAborted:
                writer.abort()
                if unpack is not None:
                    await unpack  # raises the unpacker's own error (bad tar, diff_id mismatch)
                raise
            except BaseException as exc:
                writer.abort()
                raise exc
            finally:
                if pipe is not None:
                    pipe.fail(errors.BerthError(f"download of {d.digest} did not complete"))
                    if unpack is not None and not unpack.done():
                        await asyncio.gather(unpack, return_exceptions=True)
                resp.release()
        if self.sources is not None:
            self.sources.remember(d.digest, self.session.endpoint.domain, repo)
        if pipe is None:
            await self.rep.status("Download complete", sid)
        return pipe is not None
