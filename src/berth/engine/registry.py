"""Engine service: registry — pull, push, search and login for the Engine API.

Wraps `berth.registry.client.RegistryClient` with the daemon's settings (registry mirrors,
insecure registries, hub endpoint) and keeps two small tables: which repositories of which
registry are known to hold a blob (for cross-repository mounts on push) and the gzip digest
made for a layer's plain tar (so a re-push can skip compressing when the registry has it)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from berth.config import DaemonConfig
from berth.errors import InvalidParameter, NotFound
from berth.image import reference
from berth.registry.client import RegistryClient
from berth.registry.client.progress import Progress

log = logging.getLogger("berth.engine.registry")

SCHEMA = """
CREATE TABLE IF NOT EXISTS registry_blob_sources (
    digest TEXT NOT NULL, registry TEXT NOT NULL, repo TEXT NOT NULL, added REAL DEFAULT 0,
    PRIMARY KEY (digest, registry, repo));
CREATE TABLE IF NOT EXISTS registry_compressed (
    diff_id TEXT PRIMARY KEY, digest TEXT NOT NULL, size INTEGER NOT NULL, media_type TEXT NOT NULL);
"""


class _Cache:
    """The blob-source and compression memory (PushCache / BlobSources) over the database."""

    def __init__(self, db: Any) -> None:
        self.db = db
        db.ensure_schema(SCHEMA)

    def remember(self, digest: str, registry: str, repo: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO registry_blob_sources(digest, registry, repo, added) "
                        "VALUES (?,?,?,strftime('%s','now'))", (digest, registry, repo))

    def sources(self, digest: str, registry: str) -> list[str]:
        return [r["repo"] for r in self.db.execute(
            "SELECT repo FROM registry_blob_sources WHERE digest=? AND registry=? ORDER BY added DESC LIMIT 3",
            (digest, registry))]

    def compressed(self, diff_id: str) -> tuple[str, int, str] | None:
        row = self.db.one("SELECT digest, size, media_type FROM registry_compressed WHERE diff_id=?", (diff_id,))
        return (row["digest"], row["size"], row["media_type"]) if row else None

    def remember_compressed(self, diff_id: str, digest: str, size: int, media_type: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO registry_compressed(diff_id, digest, size, media_type) "
                        "VALUES (?,?,?,?)", (diff_id, digest, size, media_type))


class RegistryService:
    def __init__(self, config: DaemonConfig, db: Any, images: Any) -> None:
        self.config = config
        self.db = db
        self.images = images
        self.cache = _Cache(db)
        self._client: RegistryClient | None = None
        # one pull at a time per reference: a second identical pull waits for the first
        self._pull_locks: dict[str, asyncio.Lock] = {}

    def client(self) -> RegistryClient:
        if self._client is None:
            self._client = RegistryClient(mirrors=list(self.config.registry_mirrors),
                                          insecure=list(self.config.insecure_registries),
                                          hub_endpoint=getattr(self.config, "hub_endpoint", "") or "",
                                          cache=self.cache)
        return self._client

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    @staticmethod
    def _auth(auth: dict[str, Any] | None) -> dict[str, Any]:
        return {str(k).lower(): v for k, v in (auth or {}).items()}

    async def pull(self, ref: str, auth: dict[str, Any] | None, progress: Progress | None,
                   platform: str | None = None) -> Any:
        """Pull `ref`; a bare repository name (no tag, no digest) pulls every tag of it, as
        the Engine API does for `fromImage` without `tag` (`docker pull --all-tags`)."""
        bare = reference.parse(ref, default_tag=False)
        if not bare.tag and not bare.digest:
            tags = await self.client().tags(bare, self._auth(auth))
            if not tags:
                raise NotFound(f"repository {bare.familiar_name} has no tags")
            img = None
            for t in tags:
                img = await self.pull(bare.with_tag(t).full, auth, progress, platform)
            return img
        r = reference.parse(ref)
        lock = self._pull_locks.setdefault(r.full, asyncio.Lock())
        async with lock:
            img = await self.client().pull(r, self.images, self._auth(auth), progress, platform)
        if getattr(self.images, "_event", None):
            self.images._event("pull", r.familiar)
        return img

    async def push(self, ref: str, auth: dict[str, Any] | None, progress: Progress | None) -> list[dict[str, Any]]:
        """Push `name:tag`, or every tag of `name` when no tag is given (as docker does).
        Returns [{"Tag", "Digest", "Size"}]."""
        r = reference.parse(ref, default_tag=False)
        if r.digest:
            raise InvalidParameter(f"cannot push a digest reference: {ref}")
        if r.tag:
            targets = [r]
        else:
            targets = []
            for img in self.images.list():
                for t in img.repo_tags:
                    tr = reference.parse(t)
                    if tr.name == r.name and tr.tag:
                        targets.append(tr)
            if not targets:
                raise NotFound(f"An image does not exist locally with the tag: {r.familiar_name}")
        out = []
        for t in sorted(targets, key=lambda x: x.tag or ""):
            try:
                image = self.images.resolve(t.full)
            except NotFound:
                raise NotFound(f"An image does not exist locally with the tag: {t.familiar}") from None
            digest, size = await self.client().push(t, image, self.images, self._auth(auth), progress)
            await asyncio.to_thread(self.images.store.add_repo_digest, image.id, f"{t.name}@{digest}")
            if getattr(self.images, "_event", None):
                self.images._event("push", t.familiar)
            out.append({"Tag": t.tag, "Digest": digest, "Size": size})
        return out

    async def search(self, term: str, limit: int = 25, auth: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return await self.client().search(term, limit, self._auth(auth))

    async def login(self, auth: dict[str, Any]) -> dict[str, str]:
        return await self.client().login(self._auth(auth))
