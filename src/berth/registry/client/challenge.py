"""`WWW-Authenticate` parsing (RFC 7235) for registry auth negotiation (pure).

    Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:x:pull"
    Basic realm="Registry Realm"
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM = re.compile(rf'\s*({_TOKEN})\s*=\s*("(?:[^"\\]|\\.)*"|{_TOKEN}=*)\s*')
_SCHEME = re.compile(rf"\s*({_TOKEN})(?:\s+|$)")


@dataclass
class Challenge:
    scheme: str                      # lower-cased: "basic", "bearer"
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def service(self) -> str:
        return self.params.get("service", "")

    @property
    def scope(self) -> str:
        return self.params.get("scope", "")

    @property
    def error(self) -> str:
        return self.params.get("error", "")


def _unquote(v: str) -> str:
    if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        return re.sub(r"\\(.)", r"\1", v[1:-1])
    return v


def parse_challenges(header: str | list[str] | None) -> list[Challenge]:
    """All challenges in one or several WWW-Authenticate header values."""
    if header is None:
        return []
    values = header if isinstance(header, list) else [header]
    out: list[Challenge] = []
    for value in values:
        pos = 0
        current: Challenge | None = None
        while pos < len(value):
            if value[pos] in ", \t":
                pos += 1
                continue
            m = _PARAM.match(value, pos)
            if m and current is not None:
                current.params[m.group(1).lower()] = _unquote(m.group(2))
                pos = m.end()
                continue
            m = _SCHEME.match(value, pos)
            if not m:
                break
            current = Challenge(m.group(1).lower())
            out.append(current)
            pos = m.end()
    return out


def pick(challenges: list[Challenge]) -> Challenge | None:
    """Bearer is preferred over Basic, as docker does."""
    for scheme in ("bearer", "basic"):
        for c in challenges:
            if c.scheme == scheme:
                return c
    return None
