"""Image references on the client side, through berth.image.reference (Docker's grammar)."""

from __future__ import annotations

from berth.cli.client import CLIError


def _parse(s: str, default_tag: bool = True):  # type: ignore[no-untyped-def]
    from berth.errors import BerthError
    from berth.image.reference import parse

    try:
        return parse(s, default_tag=default_tag)
    except BerthError as exc:
        msg = str(exc)
        if msg.endswith("must be lowercase"):
            msg = f"invalid reference format: repository name ({_remainder(s)}) must be lowercase"
        raise CLIError(msg) from None


def _remainder(s: str) -> str:
    """The repository path docker's reference.ParseNormalizedNamed names in its lowercase
    error: the domain split off as splitDockerDomain does, `library/` added on Docker Hub,
    the tag cut."""
    first, slash, rest = s.partition("/")
    if not slash or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        domain, remote = "docker.io", s
    else:
        domain, remote = first, rest
    if domain in ("docker.io", "index.docker.io") and "/" not in remote:
        remote = f"library/{remote}"
    return remote.partition("@")[0].partition(":")[0]


def normalized(image: str) -> str:
    """`busybox` -> `busybox:latest` (familiar form, tag added when missing)."""
    return _parse(image).familiar


def split_for_pull(image: str) -> tuple[str, str]:
    """(fromImage, tag) as the docker CLI sends them to POST /images/create."""
    ref = _parse(image)
    if ref.digest:
        return ref.familiar_name, ref.digest
    return ref.familiar_name, ref.tag or "latest"


def registry_of(image: str) -> str:
    try:
        return _parse(image).domain
    except CLIError:
        return "docker.io"
