"""Which URLs serve a registry domain: mirrors for docker.io, `hub_endpoint`, and whether
plain HTTP may be tried (insecure registries; 127.0.0.0/8 by default, as docker does)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

DOCKER_IO = "docker.io"
HUB_REGISTRY = "https://registry-1.docker.io"
HUB_INDEX = "https://index.docker.io"


@dataclass
class Endpoint:
    domain: str                      # the reference's domain (credentials are looked up by it)
    candidates: list[str] = field(default_factory=list)  # base URLs in the order to try
    mirror: bool = False
    insecure: bool = False           # TLS certificates are not verified (docker's insecure registries)

    @property
    def url(self) -> str:
        return self.candidates[0]


def _host_only(hostport: str) -> str:
    if hostport.startswith("["):
        return hostport[1:hostport.index("]")]
    return hostport.rsplit(":", 1)[0] if hostport.count(":") == 1 else hostport


def is_insecure(hostport: str, insecure: list[str]) -> bool:
    """True when plain HTTP may be used for `host[:port]`: listed by name (with or without
    port), inside a listed CIDR, or a loopback name."""
    host = _host_only(hostport)
    if host == "localhost":
        return True
    for entry in insecure:
        e = entry.strip().removeprefix("http://").removeprefix("https://").rstrip("/")
        if e in (hostport, host):
            return True
        try:
            net = ipaddress.ip_network(e, strict=False)
        except ValueError:
            continue
        try:
            if ipaddress.ip_address(host) in net:
                return True
        except ValueError:
            continue
    return False


def _candidates(spec: str, insecure: list[str]) -> list[str]:
    """URLs for a `host[:port]` or a URL given with its scheme."""
    spec = spec.rstrip("/")
    if spec.startswith(("http://", "https://")):
        return [spec]
    if is_insecure(spec, insecure):
        return [f"https://{spec}", f"http://{spec}"]
    return [f"https://{spec}"]


def _endpoint(domain: str, spec: str, insecure: list[str], mirror: bool = False) -> Endpoint:
    hostport = spec.split("://", 1)[-1].split("/", 1)[0]
    return Endpoint(domain, _candidates(spec, insecure), mirror=mirror, insecure=is_insecure(hostport, insecure))


def endpoints(domain: str, mirrors: list[str] | None = None, insecure: list[str] | None = None,
              hub_endpoint: str = "", push: bool = False) -> list[Endpoint]:
    """Endpoints to try for `domain`, best first. Mirrors only serve pulls of docker.io."""
    insecure = list(insecure or [])
    out: list[Endpoint] = []
    if domain == DOCKER_IO:
        if not push:
            for m in mirrors or []:
                out.append(_endpoint(domain, m, insecure, mirror=True))
        out.append(_endpoint(domain, hub_endpoint, insecure) if hub_endpoint else Endpoint(domain, [HUB_REGISTRY]))
        return out
    return [_endpoint(domain, domain, insecure)]


def search_endpoint(domain: str, insecure: list[str] | None = None, hub_endpoint: str = "") -> Endpoint:
    if domain == DOCKER_IO:
        return _endpoint(domain, hub_endpoint, list(insecure or [])) if hub_endpoint else Endpoint(domain, [HUB_INDEX])
    return _endpoint(domain, domain, list(insecure or []))
