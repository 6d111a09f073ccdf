"""Output formatting as the docker CLI prints it: tables, sizes, ages, ports (pure)."""

from __future__ import annotations

import time

# Re-exported: callers use fmt.human_size / fmt.bytes_size / fmt.human_duration.
from berth.cli import wirejson
from berth.humanize import bytes_size as bytes_size
from berth.humanize import human_duration as human_duration
from berth.humanize import human_size as human_size
from berth.humanize import parse_rfc3339

TYPE_CHECKING = False  # typing's own flag without importing typing (~4 ms on every command)
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any


def parse_time(value: Any) -> float | None:
    """Unix seconds from an int, or an RFC 3339 string with nanoseconds; None if unset."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    return parse_rfc3339(str(value))


def ago(value: Any, now: float | None = None) -> str:
    t = parse_time(value)
    if t is None:
        return "N/A"
    return human_duration((now if now is not None else time.time()) - t) + " ago"


def short_id(ident: str) -> str:
    return ident.removeprefix("sha256:")[:12]


def ellipsis(s: str, width: int) -> str:
    if len(s) <= width:
        return s
    return s[:width - 1] + "\u2026"


def quote(s: str) -> str:
    return wirejson.dumps(s, ascii=False)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], min_width: int = 10) -> str:
    """Docker's tabwriter (min width 10 including 3 spaces of padding, last column bare;
    `top` uses 20)."""
    cols = len(headers)
    cells = [list(map(str, headers))] + [[str(c) for c in r] for r in rows]
    widths = [0] * cols
    for r in cells:
        for i, c in enumerate(r[:cols]):
            widths[i] = max(widths[i], len(c))
    lines = []
    for r in cells:
        parts = []
        for i, c in enumerate(r[:cols]):
            if i == cols - 1:
                parts.append(c)
            else:
                parts.append(c.ljust(max(widths[i] + 3, min_width)))
        lines.append("".join(parts))   # no rstrip: tabwriter pads an empty last cell's column too
    return "\n".join(lines) + "\n"


def format_ports(ports: list[dict[str, Any]] | None) -> str:
    """`0.0.0.0:8080->80/tcp, 443/tcp` from /containers/json Ports entries."""
    out: list[str] = []
    for p in sorted(ports or [], key=lambda p: (p.get("PrivatePort", 0), p.get("Type", ""),
                                                 p.get("IP", ""), p.get("PublicPort", 0))):
        proto = p.get("Type", "tcp")
        if p.get("PublicPort"):
            ip = p.get("IP") or "0.0.0.0"
            ip = f"[{ip}]" if ":" in ip and ip != "::" else ip
            item = f"{ip}:{p['PublicPort']}->{p.get('PrivatePort')}/{proto}"
            if ip == "::":
                item = f":::{p['PublicPort']}->{p.get('PrivatePort')}/{proto}"
        else:
            item = f"{p.get('PrivatePort')}/{proto}"
        if item not in out:
            out.append(item)
    return ", ".join(out)


def container_names(names: list[str] | None) -> str:
    clean = [n.lstrip("/") for n in (names or [])]
    return ",".join(n for n in clean if "/" not in n)


def render_format(fmt: str, items: Sequence[dict[str, Any]], headers: dict[str, str],
                  default: Callable[[], str] | None = None) -> str:
    """`--format`: `table ...` prints a header row through the tabwriter, else one line each."""
    from berth.cli.template import Template

    if fmt == "json":
        return "".join(wirejson.dumps({k: v for k, v in it.items() if not callable(v)}, compact=True,
                                      ascii=False) + "\n" for it in items)
    fmt = fmt.replace("\\t", "\t").replace("\\n", "\n")
    if fmt.startswith("table"):
        body = fmt[5:].strip() or None
        if body is None:
            return default() if default else ""
        tmpl = Template(body)
        head_tmpl = Template(body)
        head = head_tmpl.render({k: v for k, v in headers.items()})
        rows = [tmpl.render(it).split("\t") for it in items]
        hdr = head.split("\t")
        width = max([len(hdr)] + [len(r) for r in rows])
        hdr += [""] * (width - len(hdr))
        rows = [r + [""] * (width - len(r)) for r in rows]
        return table(hdr, rows)
    tmpl = Template(fmt)
    return "".join(tmpl.render(it) + "\n" for it in items)


def listing(template: str | None, rows: Sequence[dict[str, Any]], headers: dict[str, Any],
            cols: Sequence[str]) -> str:
    """What a list command prints: the table of `cols` (as `--format table` alone), or the
    rows rendered through `--format`."""
    def default() -> str:
        return table([headers[c] for c in cols], [[r[c] for c in cols] for r in rows])
    return render_format(template, rows, headers, default=default) if template else default()
