"""Platform selection from a manifest list / OCI index (pure)."""

from __future__ import annotations

import platform as _platform
from dataclasses import dataclass
from typing import Any

from berth.errors import InvalidParameter, NotFound
from berth.image.spec import Descriptor

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm",
         "armv6l": "arm", "i386": "386", "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x",
         "riscv64": "riscv64"}
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def matches(self, p: dict[str, Any] | None) -> bool:
        if not p:
            return False
        if p.get("os") != self.os or normalize_arch(str(p.get("architecture", ""))) != self.architecture:
            return False
        want = self.variant or _DEFAULT_VARIANT.get(self.architecture, "")
        have = p.get("variant") or _DEFAULT_VARIANT.get(self.architecture, "")
        return not want or not have or want == have


def normalize_arch(arch: str) -> str:
    return _ARCH.get(arch, arch)


def host_platform() -> Platform:
    return Platform("linux", normalize_arch(_platform.machine()))


def parse_platform(s: str | None) -> Platform:
    """`linux`, `linux/amd64`, `linux/arm64/v8`, `amd64`; empty means this host."""
    if not s:
        return host_platform()
    parts = [p.strip().lower() for p in s.split("/")]
    if len(parts) == 1:
        if parts[0] in ("linux", "windows", "darwin", "freebsd"):
            return Platform(parts[0], host_platform().architecture)
        return Platform("linux", normalize_arch(parts[0]))
    if len(parts) > 3 or not all(parts):
        raise InvalidParameter(f"invalid platform {s!r}: want os[/arch[/variant]]")
    return Platform(parts[0], normalize_arch(parts[1]), parts[2] if len(parts) == 3 else "")


def select(manifests: list[Descriptor], want: Platform) -> Descriptor:
    """The entry for `want`; an exact variant beats an unspecified one. Attestation
    entries (platform unknown/unknown) are never chosen."""
    best: Descriptor | None = None
    best_score = -1
    for d in manifests:
        p = d.platform or {}
        if p.get("os") == "unknown" or not want.matches(p):
            continue
        score = 1
        want_v = want.variant or _DEFAULT_VARIANT.get(want.architecture, "")
        if want_v and p.get("variant") == want_v:
            score = 2
        if score > best_score:
            best, best_score = d, score
    if best is None:
        raise NotFound(f"no matching manifest for {want} in the manifest list entries")
    return best
