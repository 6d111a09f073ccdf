"""Progress messages in Docker's JSON-stream shape (`status`, `id`, `progressDetail`, `progress`)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

Progress = Callable[[dict[str, Any]], Any]


def short(digest: str) -> str:
    return digest.partition(":")[2][:12] or digest[:12]


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1000
    return f"{n}"


def bar(current: int, total: int) -> str:
    if total <= 0:
        return _human(current)
    width = 50
    filled = min(width, int(width * current / total))
    arrow = ">" if filled < width else ""
    return f"[{'=' * max(filled - (1 if arrow else 0), 0)}{arrow}{' ' * (width - filled)}] " \
           f"{_human(current)}/{_human(total)}"


class Reporter:
    """Sends messages to a callback (sync or async); rate-limits byte progress per id."""

    def __init__(self, callback: Progress | None) -> None:
        self.callback = callback
        self._last: dict[str, int] = {}

    async def emit(self, msg: dict[str, Any]) -> None:
        if self.callback is None:
            return
        res = self.callback(msg)
        if inspect.isawaitable(res):
            await res

    async def status(self, status: str, id: str | None = None) -> None:
        msg: dict[str, Any] = {"status": status}
        if id is not None:
            msg["id"] = id
            msg["progressDetail"] = {}
        await self.emit(msg)

    async def bytes(self, status: str, id: str, current: int, total: int, force: bool = False) -> None:
        step = max(total // 50, 512 * 1024) if total > 0 else 1 << 20
        last = self._last.get(f"{status}:{id}", -step)
        if not force and current - last < step and current != total:
            return
        self._last[f"{status}:{id}"] = current
        await self.emit({"status": status, "id": id, "progressDetail": {"current": current, "total": total},
                         "progress": bar(current, total)})
