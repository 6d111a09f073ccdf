"""Image archives: `docker import` of a rootfs tar, and (in archive_io) `docker save`/`load`
in Docker's format and the OCI image layout."""

from __future__ import annotations

import platform as _platform
from datetime import UTC, datetime
from typing import IO, Any

from berth.image.changes import apply_changes
from berth.image.layers import LayerStore
from berth.image.spec import new_image_config
from berth.image.store import Image, ImageStore


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def host_arch() -> str:
    m = _platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(m, m)


def import_rootfs_tar(stream: IO[bytes], layers: LayerStore, store: ImageStore,
                      tags: list[str] | None = None, changes: list[str] | None = None,
                      message: str = "", source: str = "-",
                      platform: dict[str, str] | None = None) -> Image:
    """`docker import`: one layer from a (possibly compressed) rootfs tar, a fresh config
    with the `--change` lines applied, and a history entry carrying the message."""
    layer = layers.apply(stream, None)
    created = now_rfc3339()
    cfg = apply_changes({}, changes or [])
    history: dict[str, Any] = {"created": created, "comment": message or f"Imported from {source}"}
    plat = platform or {}
    doc = new_image_config([layer.diff_id], cfg, [history], created,
                           architecture=plat.get("architecture") or host_arch(),
                           os_=plat.get("os") or "linux")
    return store.create(doc, tags=tags or [])
