"""Repository name and digest grammar of the distribution spec (pure)."""

from __future__ import annotations

import re

NAME_MAX = 255
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_DIGEST_RE = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
SUPPORTED_ALGORITHMS = ("sha256", "sha512")


def name_problem(name: str) -> str | None:
    """Why `name` is not a valid repository name, or None when it is."""
    if not name:
        return "repository name must not be empty"
    if len(name) > NAME_MAX:
        return f"repository name must not be more than {NAME_MAX} characters"
    if ".." in name.split("/") or "/../" in f"/{name}/" or ".." in name:
        return "repository name must not contain '..'"
    if name != name.lower():
        return "repository name must be lowercase"
    if not _NAME_RE.match(name):
        return ("repository name must be path components of lowercase letters and digits "
                "separated by '.', '_', '__' or '-', joined with '/'")
    return None


def valid_tag(tag: str) -> bool:
    return bool(_TAG_RE.match(tag))


def valid_digest(digest: str) -> bool:
    return bool(_DIGEST_RE.match(digest))


def is_digest(ref: str) -> bool:
    return ":" in ref
