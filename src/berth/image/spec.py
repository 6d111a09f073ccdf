"""OCI image spec and Docker image manifest v2 schema 2 structures, media types, and the
one place they are (de)serialised. Canonical JSON: sorted keys, no spaces, UTF-8."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# --- media types ------------------------------------------------------------------------
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
LAYER_TYPES = (OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_LAYER_NONDIST_GZIP,
               DOCKER_LAYER, DOCKER_LAYER_GZIP, DOCKER_FOREIGN_LAYER)

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
# The prefix of the non-distributable layer types (deprecated by image-spec 1.1).
OCI_NONDIST_PREFIX = "application/vnd.oci.image.layer.nondistributable."


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hex_of(digest: str) -> str:
    algo, _, h = digest.partition(":")
    if algo != "sha256" or len(h) != 64:
        raise ValueError(f"unsupported digest {digest!r}")
    return h


def compression_of(media_type: str) -> str:
    """'gzip', 'zstd' or '' (plain tar) from a layer media type; '?' when it says nothing."""
    if media_type.endswith("gzip"):
        return "gzip"
    if media_type.endswith("zstd"):
        return "zstd"
    if media_type in (OCI_LAYER, DOCKER_LAYER):
        return ""
    return "?"


def _optional(d: dict[str, Any], key: str, kind: Callable[[Any], Any]) -> Any:
    """`d[key]` made a dict or a list (None when absent). Whatever converts is taken, as the
    registry always has (it keeps serving what it stored); anything else is a ValueError."""
    value = d.get(key)
    if value is None:
        return None
    try:
        return kind(value or ())
    except (TypeError, ValueError) as exc:
        raise ValueError(f"descriptor {key}: {exc}") from None


@dataclass
class Descriptor:
    """An OCI content descriptor, the one model for the image store, archives and the
    registry client and server (containerd's ocispec.Descriptor)."""

    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] | None = None
    platform: dict[str, Any] | None = None
    urls: list[str] | None = None
    artifact_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        if self.platform:
            d["platform"] = dict(self.platform)
        if self.urls:
            d["urls"] = list(self.urls)
        if self.artifact_type:
            d["artifactType"] = self.artifact_type
        return d

    @classmethod
    def from_dict(cls, d: Any) -> Descriptor:
        """As Go's JSON decoding into ocispec.Descriptor: the digest must be a string and the
        size an integer (0 when absent, as distribution and containerd take it)."""
        if not isinstance(d, dict) or not isinstance(d.get("digest"), str) \
                or not isinstance(d.get("size", 0), int):
            raise ValueError("descriptor needs a digest and an integer size")
        return cls(media_type=str(d.get("mediaType", "")), digest=d["digest"], size=int(d.get("size", 0)),
                   annotations=_optional(d, "annotations", dict), platform=d.get("platform"),
                   urls=_optional(d, "urls", list), artifact_type=d.get("artifactType"))

    @property
    def foreign(self) -> bool:
        """Layers a registry need not hold (Windows base layers and the like)."""
        return self.media_type == DOCKER_FOREIGN_LAYER or self.media_type.startswith(OCI_NONDIST_PREFIX)


def json_object(data: bytes) -> dict[str, Any]:
    """A manifest or index document as JSON; ValueError when it is not a JSON object."""
    try:
        doc = json.loads(data)
    except ValueError as exc:  # UnicodeDecodeError included
        raise ValueError(f"manifest is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError("manifest must be a JSON object")
    return doc


def _check_schema_version(d: dict[str, Any]) -> None:
    if d.get("schemaVersion") != 2:
        raise ValueError("manifest schemaVersion must be 2")


def _media_type(d: dict[str, Any], default: str) -> str:
    """The document's own mediaType when it declares one, else what its referrer said."""
    declared = d.get("mediaType")
    return declared if isinstance(declared, str) and declared else default


def _shared_fields(d: dict[str, Any]) -> dict[str, Any]:
    """What a manifest and an index both may carry, as keyword arguments. Annotations that
    are not an object and a subject that is not one are ignored, not refused: the registry
    has always stored such documents and keeps serving them."""
    a, s = d.get("annotations"), d.get("subject")
    return {"annotations": dict(a) if isinstance(a, dict) else None,
            "subject": Descriptor.from_dict(s) if isinstance(s, dict) else None,
            "artifact_type": d.get("artifactType")}


def _shared_json(annotations: dict[str, str] | None, subject: Descriptor | None,
                 artifact_type: str | None) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if annotations:
        d["annotations"] = dict(annotations)
    if subject:
        d["subject"] = subject.to_dict()
    if artifact_type:
        d["artifactType"] = artifact_type
    return d


@dataclass
class Manifest:
    """An image manifest: OCI (`OCI_MANIFEST`) or Docker schema 2 (`DOCKER_MANIFEST`)."""

    config: Descriptor
    layers: list[Descriptor]
    media_type: str = OCI_MANIFEST
    annotations: dict[str, str] | None = None
    subject: Descriptor | None = None
    artifact_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"schemaVersion": 2, "mediaType": self.media_type, "config": self.config.to_dict(),
                "layers": [x.to_dict() for x in self.layers],
                **_shared_json(self.annotations, self.subject, self.artifact_type)}

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), indent=3).encode() if self.media_type == DOCKER_MANIFEST \
            else canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any], media_type: str | None = None) -> Manifest:
        _check_schema_version(d)
        if "config" not in d:
            raise ValueError("image manifest needs a 'config' descriptor")
        config = Descriptor.from_dict(d["config"])
        layers = d.get("layers", [])
        if not isinstance(layers, list):
            raise ValueError("'layers' must be a list")
        return cls(config=config, layers=[Descriptor.from_dict(x) for x in layers],
                   media_type=_media_type(d, media_type or OCI_MANIFEST), **_shared_fields(d))


@dataclass
class Index:
    """An OCI image index or a Docker manifest list."""

    manifests: list[Descriptor] = field(default_factory=list)
    media_type: str = OCI_INDEX
    annotations: dict[str, str] | None = None
    subject: Descriptor | None = None
    artifact_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"schemaVersion": 2, "mediaType": self.media_type,
                "manifests": [m.to_dict() for m in self.manifests],
                **_shared_json(self.annotations, self.subject, self.artifact_type)}

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any], media_type: str | None = None) -> Index:
        _check_schema_version(d)
        entries = d.get("manifests")
        if not isinstance(entries, list):
            raise ValueError("index needs a 'manifests' list")
        return cls(manifests=[Descriptor.from_dict(x) for x in entries],
                   media_type=_media_type(d, media_type or OCI_INDEX), **_shared_fields(d))


def parse_manifest_or_index(data: bytes, media_type: str | None = None) -> Manifest | Index:
    """A manifest or index whose type its referrer may know (`media_type`), else told by
    its own mediaType or its keys. The registry's stricter checks are in
    berth.registry.mediatypes.parse_manifest."""
    d = json_object(data)
    mt = _media_type(d, media_type or "")
    if mt in INDEX_TYPES or ("manifests" in d and "config" not in d):
        return Index.from_dict(d, mt or OCI_INDEX)
    return Manifest.from_dict(d, mt or OCI_MANIFEST)


def platform_matches(platform: dict[str, Any] | None, os_: str = "linux",
                     arch: str = "amd64", variant: str | None = None) -> bool:
    if not platform:
        return False
    if platform.get("os") != os_ or platform.get("architecture") != arch:
        return False
    return not variant or platform.get("variant") in (None, variant)


# --- image config helpers ---------------------------------------------------------------
CONFIG_KEYS = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
               "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck",
               "ArgsEscaped", "Image", "Volumes", "WorkingDir", "Entrypoint", "NetworkDisabled",
               "MacAddress", "OnBuild", "Labels", "StopSignal", "StopTimeout", "Shell")


@dataclass
class History:
    created: str = ""
    created_by: str = ""
    comment: str = ""
    author: str = ""
    empty_layer: bool = False

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"created": self.created}
        for k in ("created_by", "comment", "author"):
            if getattr(self, k):
                d[k] = getattr(self, k)
        if self.empty_layer:
            d["empty_layer"] = True
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        return cls(created=d.get("created", ""), created_by=d.get("created_by", ""),
                   comment=d.get("comment", ""), author=d.get("author", ""),
                   empty_layer=bool(d.get("empty_layer")))


@dataclass
class ImageConfig:
    """The image config document (OCI `application/vnd.oci.image.config.v1+json`, the same
    keys as Docker's). `config` is the container config (`Env`, `Cmd`, ...); keys berth
    does not model are kept in `extra` so a loaded config re-serialises unchanged."""

    diff_ids: list[str]
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    created: str = ""
    architecture: str = "amd64"
    os: str = "linux"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "architecture": self.architecture,
            "config": self.config,
            "created": self.created,
            "history": self.history,
            "os": self.os,
            "rootfs": {"type": "layers", "diff_ids": list(self.diff_ids)},
        }
        doc.update(self.extra)
        return doc

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageConfig:
        known = {"architecture", "config", "created", "history", "os", "rootfs"}
        return cls(diff_ids=list((d.get("rootfs") or {}).get("diff_ids") or []),
                   config=dict(d.get("config") or {}), history=list(d.get("history") or []),
                   created=d.get("created", ""), architecture=d.get("architecture", ""),
                   os=d.get("os", ""), extra={k: v for k, v in d.items() if k not in known})

    @property
    def layer_history(self) -> list[dict[str, Any]]:
        """History entries that produced a layer (one per diff_id in a valid image)."""
        return [h for h in self.history if not h.get("empty_layer")]


def new_image_config(diff_ids: list[str], config: dict[str, Any] | None, history: list[dict[str, Any]],
                     created: str, architecture: str = "amd64", os_: str = "linux",
                     extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """An image config document (OCI / docker, identical keys for what we write)."""
    return ImageConfig(diff_ids=list(diff_ids), config=config or {}, history=history,
                       created=created, architecture=architecture, os=os_,
                       extra=dict(extra or {})).to_dict()
