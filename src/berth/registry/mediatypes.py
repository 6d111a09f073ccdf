"""Media types of the OCI image spec and Docker's schema 2, and what a manifest refers to."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from berth.image.spec import (  # noqa: F401 - re-exported: the registry's names for them
    DOCKER_CONFIG,
    DOCKER_FOREIGN_LAYER,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
)

DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_LAYER_ZSTD = "application/vnd.docker.image.rootfs.diff.tar.zstd"
OCI_NONDIST_PREFIX = "application/vnd.oci.image.layer.nondistributable."
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

IMAGE_MANIFESTS = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEXES = (DOCKER_MANIFEST_LIST, OCI_INDEX)
MANIFEST_TYPES = IMAGE_MANIFESTS + INDEXES
# What a client offers in Accept when fetching a manifest.
ACCEPT_MANIFESTS = ", ".join(MANIFEST_TYPES)

DESCRIPTION_KEY = "org.opencontainers.image.description"


@dataclass
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict[str, Any] | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    urls: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, d: Any) -> Descriptor:
        if not isinstance(d, dict) or not isinstance(d.get("digest"), str) \
                or not isinstance(d.get("size", 0), int):
            raise ValueError("descriptor needs a digest and an integer size")
        return cls(media_type=str(d.get("mediaType", "")), digest=d["digest"], size=int(d.get("size", 0)),
                   platform=d.get("platform"), annotations=dict(d.get("annotations") or {}),
                   urls=list(d.get("urls") or []))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform:
            out["platform"] = self.platform
        if self.annotations:
            out["annotations"] = self.annotations
        if self.urls:
            out["urls"] = self.urls
        return out

    @property
    def foreign(self) -> bool:
        """Layers a registry need not hold (Windows base layers and the like)."""
        return self.media_type == DOCKER_FOREIGN_LAYER or self.media_type.startswith(OCI_NONDIST_PREFIX)


@dataclass
class ParsedManifest:
    media_type: str
    raw: dict[str, Any]
    config: Descriptor | None = None
    layers: list[Descriptor] = field(default_factory=list)
    manifests: list[Descriptor] = field(default_factory=list)
    subject: Descriptor | None = None

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEXES

    @property
    def annotations(self) -> dict[str, str]:
        a = self.raw.get("annotations")
        return dict(a) if isinstance(a, dict) else {}


def detect_media_type(doc: dict[str, Any], content_type: str | None = None) -> str:
    ct = (content_type or "").split(";")[0].strip()
    if ct in MANIFEST_TYPES or ct in (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED):
        return ct
    mt = doc.get("mediaType")
    if isinstance(mt, str) and mt:
        return mt
    if doc.get("schemaVersion") == 1:
        return DOCKER_SCHEMA1_SIGNED
    if "manifests" in doc:
        return OCI_INDEX
    return OCI_MANIFEST


def parse_manifest(data: bytes, content_type: str | None = None) -> ParsedManifest:
    """Parse a manifest or index; ValueError says what is wrong with it."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"manifest is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError("manifest must be a JSON object")
    mt = detect_media_type(doc, content_type)
    if mt in (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED):
        raise ValueError("Docker schema 1 manifests are not supported")
    if mt not in MANIFEST_TYPES:
        raise ValueError(f"unsupported manifest media type {mt!r}")
    if doc.get("schemaVersion") != 2:
        raise ValueError("manifest schemaVersion must be 2")
    declared = doc.get("mediaType")
    if isinstance(declared, str) and declared and declared != mt:
        raise ValueError(f"manifest mediaType {declared!r} does not match Content-Type {mt!r}")
    pm = ParsedManifest(media_type=mt, raw=doc)
    if mt in INDEXES:
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise ValueError("index needs a 'manifests' list")
        pm.manifests = [Descriptor.from_json(e) for e in entries]
    else:
        if "config" not in doc:
            raise ValueError("image manifest needs a 'config' descriptor")
        pm.config = Descriptor.from_json(doc["config"])
        layers = doc.get("layers", [])
        if not isinstance(layers, list):
            raise ValueError("'layers' must be a list")
        pm.layers = [Descriptor.from_json(e) for e in layers]
    if isinstance(doc.get("subject"), dict):
        pm.subject = Descriptor.from_json(doc["subject"])
    return pm


def layer_compression(media_type: str) -> str:
    """'gzip', 'zstd' or '' (plain tar) from a layer media type; '?' when it says nothing."""
    if media_type.endswith("gzip"):
        return "gzip"
    if media_type.endswith("zstd"):
        return "zstd"
    if media_type in (OCI_LAYER, "application/vnd.docker.image.rootfs.diff.tar"):
        return ""
    return "?"
