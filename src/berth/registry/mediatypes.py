"""Media types a registry deals in, and its strict reading of a pushed or pulled manifest
(built on the one descriptor and manifest model, berth.image.spec)."""

from __future__ import annotations

from typing import Any

from berth.image.spec import (  # noqa: F401 - re-exported: the registry's names for them
    DOCKER_CONFIG,
    DOCKER_FOREIGN_LAYER,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    INDEX_TYPES,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
    Index,
    Manifest,
    json_object,
)

DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_LAYER_ZSTD = "application/vnd.docker.image.rootfs.diff.tar.zstd"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

IMAGE_MANIFESTS = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEXES = (DOCKER_MANIFEST_LIST, OCI_INDEX)
MANIFEST_TYPES = IMAGE_MANIFESTS + INDEXES
# What a client offers in Accept when fetching a manifest.
ACCEPT_MANIFESTS = ", ".join(MANIFEST_TYPES)

DESCRIPTION_KEY = "org.opencontainers.image.description"


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


def parse_manifest(data: bytes, content_type: str | None = None) -> Manifest | Index:
    """A manifest or index as a registry takes it: its type from Content-Type (or the
    document), schema 1 and unknown types refused, a declared mediaType that contradicts
    Content-Type refused; ValueError says what is wrong."""
    doc = json_object(data)
    mt = detect_media_type(doc, content_type)
    if mt in (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED):
        raise ValueError("Docker schema 1 manifests are not supported")
    if mt not in MANIFEST_TYPES:
        raise ValueError(f"unsupported manifest media type {mt!r}")
    declared = doc.get("mediaType")
    if isinstance(declared, str) and declared and declared != mt:
        raise ValueError(f"manifest mediaType {declared!r} does not match Content-Type {mt!r}")
    return Index.from_dict(doc, mt) if mt in INDEX_TYPES else Manifest.from_dict(doc, mt)
