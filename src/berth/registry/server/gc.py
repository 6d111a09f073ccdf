"""`berth-registry garbage-collect`: mark every blob a manifest of any repository refers to,
then sweep the rest (and repository links to swept blobs, and stale upload sessions).

A push in progress has blobs that no manifest names yet: blobs younger than `keep_recent`
seconds (default 10 minutes) are kept, so collecting while the registry serves is safe for
pushes shorter than that; for certainty run it with the registry stopped or `--read-only`."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass

from berth.image.spec import Index
from berth.registry import mediatypes as mt
from berth.registry.server.storage import FilesystemDriver

log = logging.getLogger("berth.registry.gc")

STALE_UPLOAD_SECONDS = 7 * 24 * 3600
KEEP_RECENT_SECONDS = 600


@dataclass
class GCResult:
    kept: int
    removed: list[str]
    freed_bytes: int
    uploads_removed: int


def mark(driver: FilesystemDriver) -> set[str]:
    marked: set[str] = set()
    for repo in driver.repositories():
        for digest in driver.manifest_revisions(repo):
            stack = [digest]
            while stack:
                d = stack.pop()
                if d in marked:
                    continue
                try:
                    data = driver.read_blob(d)
                except FileNotFoundError:
                    continue
                marked.add(d)
                try:
                    pm = mt.parse_manifest(data, driver.manifest_media_type(repo, d))
                except ValueError:
                    continue
                if isinstance(pm, Index):
                    stack.extend(m.digest for m in pm.manifests)
                else:
                    marked.add(pm.config.digest)
                    marked.update(layer.digest for layer in pm.layers)
                if pm.subject:
                    stack.append(pm.subject.digest)
    return marked


def collect(driver: FilesystemDriver, dry_run: bool = False,
            stale_uploads: float = STALE_UPLOAD_SECONDS, keep_recent: float = KEEP_RECENT_SECONDS) -> GCResult:
    started = time.time()
    marked = mark(driver)
    removed, freed = [], 0
    for digest in list(driver.all_blobs()):
        if digest in marked:
            continue
        try:
            if started - driver.blob_path(digest).stat().st_mtime < keep_recent:
                continue
        except FileNotFoundError:
            continue
        size = driver.blob_size(digest) or 0
        removed.append(digest)
        freed += size
        if not dry_run:
            driver.delete_blob(digest)
    if not dry_run:
        gone = set(removed)
        for repo in driver.repositories():
            for d in driver.linked_blobs(repo):
                if d in gone:
                    driver.unlink_blob(repo, d)
    uploads = driver.stale_uploads(stale_uploads)
    if not dry_run:
        for d in uploads:
            shutil.rmtree(d, ignore_errors=True)
    return GCResult(kept=len(marked), removed=removed, freed_bytes=freed, uploads_removed=len(uploads))
