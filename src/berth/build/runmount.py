"""`RUN --mount=...` specs (pure), as BuildKit's Dockerfile frontend parses them.

A spec is a CSV list of `key=value` fields (`type=cache,target=/root/.cache,sharing=locked`)
plus the bare flags `ro`/`readonly`/`rw`/`readwrite`. `parse_mount(text)` validates what
it can before any value is expanded (the instruction's parse); `parse_mount(text, expand)`
expands every value but `from` with the stage's variables and returns the final `Mount`
(the RUN's dispatch). `from` never expands, as in BuildKit ("define alias stage instead")."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass

from berth import humanize
from berth.errors import InvalidParameter

TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING = ("shared", "private", "locked")

# spellings BuildKit accepts -> the one key used here
_ALIASES = {"src": "source", "dst": "target", "destination": "target", "ro": "readonly",
            "rw": "readwrite"}
_KEYS = frozenset({"type", "from", "source", "target", "readonly", "readwrite", "id", "sharing",
                   "mode", "uid", "gid", "size", "required"})


@dataclass(frozen=True)
class Mount:
    type: str = "bind"
    target: str = ""
    source: str = ""
    from_: str = ""
    readonly: bool = True          # bind: ro unless rw; cache and tmpfs: rw unless ro
    id: str = ""                   # cache id ("" = the target)
    sharing: str = ""              # cache: shared (the default), private or locked
    mode: int | None = None        # cache: a new cache directory's mode/owner
    uid: int | None = None
    gid: int | None = None
    size: int | None = None        # tmpfs: bytes

    @property
    def cache_id(self) -> str:
        return self.id or self.target

    def flag(self) -> str:
        """The spec, expanded and in one spelling (part of the step's cache key)."""
        words = [f"type={self.type}", "ro" if self.readonly else "rw"]
        for key in ("target", "source", "from_", "id", "sharing", "uid", "gid", "size"):
            v = getattr(self, key)
            if v not in (None, ""):
                words.append(f"{key.rstrip('_')}={v}")
        if self.mode is not None:
            words.append(f"mode={self.mode:o}")
        return ",".join(words)


def _bool(key: str, value: str) -> bool:
    low = value.lower()
    if low in ("1", "t", "true"):
        return True
    if low in ("0", "f", "false"):
        return False
    raise InvalidParameter(f"invalid value for {key}: {value}")


def _uint(key: str, value: str, base: int = 10) -> int:
    try:
        n = int(value, base)
    except ValueError:
        raise InvalidParameter(f"invalid value {value} for {key}") from None
    if not 0 <= n < 1 << 32:
        raise InvalidParameter(f"invalid value {value} for {key}")
    return n


def ram_in_bytes(key: str, value: str) -> int:
    """go-units RAMInBytes: `64m`, `1g`, `512k`, `1.5GB`, `100` (bytes)."""
    n = humanize.ram_in_bytes(value)
    if n is None:
        raise InvalidParameter(f"invalid value for {key}: {value}")
    return n


def _fields(text: str) -> list[str]:
    try:
        rows = list(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise InvalidParameter(f"failed to parse csv mounts: {exc}") from None
    return rows[0] if rows else []


def parse_mount(text: str, expand: Callable[[str], str] | None = None) -> Mount:
    """One `--mount` value. Without `expand`, values holding a `$` are left for the
    dispatch to check (they are only known once expanded)."""
    opts: dict[str, object] = {}
    deferred: set[str] = set()
    ro_set = False
    kind = "bind"
    for field in _fields(text):
        key, eq, value = field.partition("=")
        key = _ALIASES.get(key.strip().lower(), key.strip().lower())
        if not eq:
            if key in ("readonly", "readwrite"):
                opts["readonly"] = key == "readonly"
                ro_set = True
                continue
            if key == "required":
                raise InvalidParameter(f"unexpected key '{key}' for mount type '{kind}'")
            raise InvalidParameter(f"invalid field '{field}' must be a key=value pair")
        if key not in _KEYS:
            raise InvalidParameter(f"unexpected key '{key}' in '{field}'")
        if key == "from":
            if re.search(r"\$.", value):
                raise InvalidParameter("'from' doesn't support variable expansion, define alias stage instead")
        elif expand is not None:
            value = expand(value)
        elif "$" in value:
            deferred.add(key)  # checked at dispatch, once expanded
            continue
        if key == "type":
            kind = value.lower()
            if kind not in TYPES:
                raise InvalidParameter(f"unsupported mount type \"{value}\" (one of: {', '.join(TYPES)})")
        elif key in ("readonly", "readwrite"):
            opts["readonly"] = _bool(key, value) == (key == "readonly")
            ro_set = True
        elif key == "sharing":
            if value.lower() not in SHARING:
                raise InvalidParameter(f"unsupported sharing value \"{value}\" (one of: {', '.join(SHARING)})")
            opts["sharing"] = value.lower()
        elif key == "mode":
            opts["mode"] = _uint(key, value, 8)
        elif key in ("uid", "gid"):
            opts[key] = _uint(key, value)
        elif key in ("size", "required"):
            opts[key] = value  # checked below, once the type is known
        else:
            opts[key.replace("from", "from_")] = value
    if "type" in deferred:
        # the rest depends on the type: all of it is checked at dispatch
        return Mount(from_=str(opts.get("from_") or ""), target="$")
    return _validate(kind, opts, ro_set, has_target="target" in deferred)


def _validate(kind: str, opts: dict[str, object], ro_set: bool, has_target: bool) -> Mount:
    if kind in ("secret", "ssh"):
        raise InvalidParameter(f"--mount=type={kind} needs a BuildKit session, which berth's builder "
                               "does not have (build secrets and SSH forwarding are not supported)")
    if "required" in opts:
        raise InvalidParameter(f"unexpected key 'required' for mount type '{kind}'")
    if kind != "cache":
        for key in ("mode", "uid", "gid"):
            if key in opts:
                raise InvalidParameter(f"{key} not allowed for \"{kind}\" type mounts")
        for key in ("sharing", "id"):
            if key in opts:
                raise InvalidParameter(f"{key} not allowed for \"{kind}\" type mounts")
    if "size" in opts:
        if kind != "tmpfs":
            raise InvalidParameter(f"unexpected key 'size' for mount type '{kind}'")
        opts["size"] = ram_in_bytes("size", str(opts["size"]))
    if kind == "tmpfs" and ("from_" in opts or "source" in opts):
        raise InvalidParameter("tmpfs mounts take no source or from")
    if not ro_set:
        opts["readonly"] = kind == "bind"
    if not opts.get("target") and not has_target:
        raise InvalidParameter(f"mount type={kind} requires a target (target=/path)")
    return Mount(type=kind, **opts)  # type: ignore[arg-type]
