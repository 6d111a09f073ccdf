"""Image references on the client side, through berth.image.reference (Docker's grammar)."""

from __future__ import annotations

from berth.cli.client import CLIError


def _parse(s: str, default_tag: bool = True):  # type: ignore[no-untyped-def]
    from berth.errors import BerthError
    from berth.image.reference import parse

    try:
        return parse(s, default_tag=default_tag)
    except BerthError as exc:
        raise CLIError(str(exc)) from None


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
