"""Docker's image reference grammar (distribution/reference), normalised as the docker CLI does.

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [domain "/"] path-component ["/" path-component]*
    domain     := host [":" port]        (a first component with "." or ":" or "localhost",
                                          or one with uppercase letters, is a domain)
    path-comp  := [a-z0-9]+ ( ( [._] | "__" | "-"+ ) [a-z0-9]+ )*
    tag        := [\\w][\\w.-]{0,127}
    digest     := algorithm ":" hex      (sha256 needs 64 lowercase hex digits)

`nginx` means `docker.io/library/nginx:latest`; `.familiar` gives the short form back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from berth.errors import InvalidParameter

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_TAG_RE = re.compile(rf"^{_TAG}$")
_DIGEST_RE = re.compile(rf"^{_DIGEST}$")
_ID_RE = re.compile(r"^[a-f0-9]{64}$")
_SHORT_ID_RE = re.compile(r"^(?:sha256:)?[a-f0-9]{1,64}$")


def _err(what: str) -> InvalidParameter:
    return InvalidParameter(f"invalid reference format: {what}" if what else "invalid reference format")


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """Fully qualified repository: `docker.io/library/nginx`."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """Short repository as docker shows it: `nginx`, `user/app`, `host:5000/app`."""
        if self.domain == DEFAULT_DOMAIN:
            if self.path.startswith(OFFICIAL_PREFIX) and "/" not in self.path[len(OFFICIAL_PREFIX):]:
                return self.path[len(OFFICIAL_PREFIX):]
            return self.path
        return self.name

    def _suffix(self) -> str:
        s = ""
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s

    @property
    def full(self) -> str:
        return self.name + self._suffix()

    @property
    def familiar(self) -> str:
        return self.familiar_name + self._suffix()

    @property
    def repo_tag(self) -> str | None:
        """`nginx:latest` (familiar) when the reference carries a tag."""
        return f"{self.familiar_name}:{self.tag}" if self.tag else None

    def with_tag(self, tag: str) -> Reference:
        validate_tag(tag)
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.domain, self.path, None, digest)

    @property
    def registry(self) -> str:
        """Host to talk to for this repository (`docker.io` for Docker Hub)."""
        return self.domain

    def __str__(self) -> str:
        return self.familiar


def validate_tag(tag: str) -> str:
    if not _TAG_RE.match(tag):
        raise InvalidParameter(f"invalid tag format: {tag!r}")
    return tag


def validate_digest(digest: str) -> str:
    if not _DIGEST_RE.match(digest):
        raise InvalidParameter(f"invalid digest format: {digest!r}")
    algo, _, hexpart = digest.partition(":")
    if algo == "sha256" and not re.fullmatch(r"[a-f0-9]{64}", hexpart):
        raise InvalidParameter(f"invalid digest format: {digest!r}")
    return digest


def _split_domain(name: str) -> tuple[str, str]:
    i = name.find("/")
    first = name[:i] if i >= 0 else ""
    if i == -1 or ("." not in first and ":" not in first and first != "localhost"
                   and first.lower() == first):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, name[i + 1:]
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def parse(s: str, default_tag: bool = True) -> Reference:
    """Parse and normalise a reference; adds `:latest` when neither tag nor digest is given
    (unless `default_tag` is False). Raises InvalidParameter with docker's wording."""
    if not isinstance(s, str) or not s:
        raise _err("repository name must have at least one component")
    if _ID_RE.match(s):
        raise InvalidParameter(
            f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings")
    # split off digest and tag from the end the way the grammar does
    name, digest = s, None
    if "@" in name:
        name, _, digest = name.partition("@")
        if not digest or not _DIGEST_RE.match(digest):
            raise _err("")
        validate_digest_or_err(digest)
    tag = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
        if not _TAG_RE.match(tag):
            raise _err("")
    if not name:
        raise _err("repository name must have at least one component")
    domain, remainder = _split_domain(name)
    if remainder.lower() != remainder:
        raise _err("repository name must be lowercase")
    full_name = f"{domain}/{remainder}"
    if not re.fullmatch(_DOMAIN, domain) or not _PATH_RE.match(remainder):
        raise _err("")
    if len(full_name) > NAME_TOTAL_MAX or len(name) > NAME_TOTAL_MAX:
        raise _err(f"repository name must not be more than {NAME_TOTAL_MAX} characters")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, remainder, tag, digest)


def validate_digest_or_err(digest: str) -> None:
    try:
        validate_digest(digest)
    except InvalidParameter:
        raise _err("") from None


def parse_repository(s: str) -> Reference:
    """A repository name without tag or digest (for `POST /images/{name}/tag?repo=`)."""
    ref = parse(s, default_tag=False)
    if ref.tag or ref.digest:
        raise InvalidParameter(f"invalid repository name: {s!r} must not carry a tag or digest")
    return ref


def looks_like_id(s: str) -> bool:
    """A full or short image id (`sha256:` optional)."""
    return bool(_SHORT_ID_RE.match(s))
