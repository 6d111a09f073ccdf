"""Docker's JSON message streams (pull, push, load, build, import) shown as docker shows them:
a line per layer updated in place on a terminal, plain lines otherwise."""

from __future__ import annotations

from berth.cli.client import CLIError
from berth.cli.format import human_size

TYPE_CHECKING = False  # typing's own flag without importing typing (~4 ms on every command)
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import IO, Any


def progress_bar(detail: dict[str, Any], width: int = 50) -> str:
    current = int(detail.get("current") or 0)
    total = int(detail.get("total") or 0)
    if total <= 0:
        return human_size(current) if current else ""
    frac = min(current / total, 1.0)
    filled = int(frac * width)
    bar = "=" * filled + (">" if filled < width else "") + " " * max(0, width - filled - 1)
    return f"[{bar}] {human_size(current):>8}/{human_size(total)}"


class JSONMessageError(CLIError):
    pass


def display(messages: Iterable[dict[str, Any]], out: IO[str], terminal: bool,
            on_aux: Any = None) -> None:
    """Render a stream; raise JSONMessageError at the first error message."""
    ids: list[str] = []
    width = 0
    if terminal:
        import os

        try:
            width = os.get_terminal_size(out.fileno()).columns
        except (OSError, AttributeError, ValueError):
            width = 0
    for msg in messages:
        if msg.get("error") or msg.get("errorDetail"):
            detail = msg.get("errorDetail") or {}
            text = msg.get("error") or detail.get("message") or "unknown error"
            raise JSONMessageError(text)
        if "aux" in msg:
            if on_aux is not None:
                on_aux(msg["aux"])
            continue
        ident = msg.get("id") or ""
        status = msg.get("status") or ""
        stream = msg.get("stream")
        detail = msg.get("progressDetail") or {}
        has_progress = bool(detail) or bool(msg.get("progress"))
        if stream is not None:
            out.write(stream)
            out.flush()
            continue
        if not terminal:
            if has_progress and (detail.get("current") or msg.get("progress")):
                continue  # no progress bars on a pipe
            line = f"{ident}: {status}" if ident else status
            out.write(line + "\n")
            out.flush()
            continue
        text = f"{ident}: {status}" if ident else status
        if has_progress:
            bar = progress_bar(detail) if detail else str(msg.get("progress") or "")
            if bar and width and len(text) + 1 + len(bar) >= width:
                # a wrapped line would break the redraw-in-place: shrink the bar to fit
                room = width - len(text) - 24
                bar = progress_bar(detail, max(room, 0)) if detail and room >= 10 else \
                    bar[bar.find("]") + 1:].strip() if "]" in bar else bar
            if bar:
                text += " " + bar
        if width and len(text) >= width:
            text = text[:width - 1]
        if ident:
            if ident in ids:
                up = len(ids) - ids.index(ident)
                out.write(f"\x1b[{up}A\r\x1b[2K{text}\r\x1b[{up}B")
            else:
                ids.append(ident)
                out.write(f"\x1b[2K{text}\n")
        else:
            ids.clear()
            out.write(f"\x1b[2K{text}\n")
        out.flush()
