"""JSON for the Engine API requests and answers: json.dumps/json.loads with their defaults.

The `json` package costs ~7 ms of imports on every `berth` command: json.decoder compiles
regular expressions at import, which pulls in re, enum, functools and collections. Its C
accelerator `_json` (what `json` itself calls) needs none of them, so this module drives it
directly. Same bytes out and same values in as `json`; outside CPython it is `json` itself.
Commands that print JSON for people (`inspect`, `--format '{{json .}}'`) still use `json`.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's own flag without importing typing
if TYPE_CHECKING:
    from typing import Any

try:
    import _json
except ImportError:  # not CPython: the json package, at its price
    _json = None

_WHITESPACE = " \t\n\r"
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


def _default(o: Any) -> Any:
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


class _Settings:
    """What _json.make_scanner reads from a json.JSONDecoder (its defaults)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


_scan = _json.make_scanner(_Settings()) if _json is not None else None


def dumps(obj: Any, compact: bool = False, ascii: bool = True) -> str:
    """json.dumps(obj, separators=(",", ":") if compact, ensure_ascii=ascii)."""
    key_sep, item_sep = (":", ",") if compact else (": ", ", ")
    if _json is None:
        import json

        return json.dumps(obj, separators=(item_sep, key_sep), ensure_ascii=ascii)
    strings = _json.encode_basestring_ascii if ascii else _json.encode_basestring
    # a new encoder per call, as json.dumps makes: its circular-reference markers start empty
    encode = _json.make_encoder({}, _default, strings, None, key_sep, item_sep, False, False, True)
    return "".join(encode(obj, 0))


def raw_decode(s: str, idx: int = 0) -> tuple[Any, int]:
    """json.JSONDecoder().raw_decode: the value starting at s[idx] and where it ends."""
    if _scan is None:
        import json

        return json.JSONDecoder().raw_decode(s, idx)
    try:
        return _scan(s, idx)
    except StopIteration as err:
        raise ValueError(f"Expecting value: char {err.value}") from None


def loads(data: str | bytes) -> Any:
    """json.loads (bytes as UTF-8): one value, nothing but whitespace around it."""
    s = data.decode("utf-8-sig") if isinstance(data, bytes | bytearray) else data
    start = len(s) - len(s.lstrip(_WHITESPACE))
    obj, end = raw_decode(s, start)
    if s[end:].strip(_WHITESPACE):
        raise ValueError(f"Extra data: char {end}")
    return obj
