"""Human-readable durations and sizes as Docker prints them (docker/go-units), and the
RFC 3339 times Docker writes.

Pure and stdlib-only: shared by the CLI (`berth.cli.format`) and the daemon
(`berth.engine.humanize`), so it must stay cheap to import.
"""

from __future__ import annotations

_DECIMAL_UNITS = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
_BINARY_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]


def _scaled(size: float, base: float, units: list[str], precision: int) -> str:
    i = 0
    size = float(size)
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return f"{size:.{precision}g}{units[i]}"


def human_size(size: float, precision: int = 4) -> str:
    """units.HumanSizeWithPrecision: decimal units, `precision` significant digits."""
    return _scaled(size, 1000.0, _DECIMAL_UNITS, precision)


def bytes_size(size: float) -> str:
    """units.BytesSize: binary units, e.g. `1.5MiB` (used by stats)."""
    return _scaled(size, 1024.0, _BINARY_UNITS, 4)


def human_duration(seconds: float) -> str:
    """units.HumanDuration: hours round half up (int(h + 0.5)); years from whole hours."""
    if seconds < 1:
        return "Less than a second"
    if int(seconds) == 1:
        return "1 second"
    if seconds < 60:
        return f"{int(seconds)} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


_RAM_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_in_bytes(value: str) -> int | None:
    """units.RAMInBytes: `32m`, `1g`, `512k`, `1.5GB`, `100` (bytes); None if it is not a size."""
    import re  # here, not at the top: the CLI imports this module on every start

    m = re.match(r"(?i)^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?$", value.strip())
    if not m:
        return None
    return int(float(m.group(1)) * _RAM_UNITS[m.group(2).lower()])


def parse_rfc3339(value: str | None) -> float | None:
    """RFC 3339 as Go writes it (`2024-01-02T03:04:05.123456789Z`, any zone offset) -> unix
    seconds (a time without a zone is taken as UTC); None when empty, Go's zero time (year
    1) or not a time."""
    if not value:
        return None
    s = value.strip()
    if s.startswith("0001-01-01"):
        return None
    frac = 0.0
    if "." in s:  # nanoseconds: more digits than datetime takes
        head, _, tail = s.partition(".")
        digits = ""
        for ch in tail:
            if not ch.isdigit():
                break
            digits += ch
        frac = float("0." + digits) if digits else 0.0
        s = head + tail[len(digits):]
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    from datetime import UTC, datetime  # here: ~1 ms of imports the CLI's other commands never need

    try:
        t = datetime.fromisoformat(s)
    except ValueError:
        return None
    if t.tzinfo is None:  # not RFC 3339, which always names its zone: read as UTC
        t = t.replace(tzinfo=UTC)
    return t.timestamp() + frac
