"""Engine events: a small in-memory bus with a bounded history, served by GET /events."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Event:
    type: str            # container, image, network, volume, daemon
    action: str          # create, start, die, destroy, ...
    actor_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    time_nano: int = field(default_factory=time.time_ns)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "Type": self.type, "Action": self.action,
            "Actor": {"ID": self.actor_id, "Attributes": dict(self.attributes)},
            "scope": "local", "time": self.time_nano // 1_000_000_000, "timeNano": self.time_nano,
        }
        if self.type in ("container", "image"):   # dockerd's deprecated fields, kept for these two
            d["status"] = self.action
            d["id"] = self.actor_id
            if self.type == "container" and "image" in self.attributes:
                d["from"] = self.attributes["image"]
        return d

    def matches(self, filters: dict[str, list[str]]) -> bool:
        def ok(key: str, value: str | None) -> bool:
            wanted = filters.get(key)
            return not wanted or (value is not None and value in wanted)

        if not ok("type", self.type) or not ok("event", self.action.split(":")[0]):
            return False
        if filters.get("container") and self.type == "container":
            names = {self.actor_id, self.actor_id[:12], self.attributes.get("name", "")}
            if not names & set(filters["container"]):
                return False
        elif filters.get("container"):
            return False
        if filters.get("image") and self.attributes.get("image") not in filters["image"] \
                and not (self.type == "image" and self.actor_id in filters["image"]):
            return False
        for lab in filters.get("label", []):
            k, _, v = lab.partition("=")
            if k not in self.attributes or (v and self.attributes[k] != v):
                return False
        return True


class EventBus:
    def __init__(self, history: int = 1000) -> None:
        self._history: deque[Event] = deque(maxlen=history)
        self._subs: set[asyncio.Queue[Event]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def publish(self, type_: str, action: str, actor_id: str, **attributes: str) -> None:
        """Safe to call from the event loop or from worker threads."""
        ev = Event(type_, action, actor_id, {k: str(v) for k, v in attributes.items()})
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is not None and running is not loop:
            loop.call_soon_threadsafe(self._deliver, ev)
        else:
            self._deliver(ev)

    def _deliver(self, ev: Event) -> None:
        self._history.append(ev)
        for q in list(self._subs):
            q.put_nowait(ev)

    def since(self, since_nano: int, until_nano: int | None = None) -> list[Event]:
        return [e for e in self._history
                if e.time_nano >= since_nano and (until_nano is None or e.time_nano <= until_nano)]

    def subscribe(self) -> asyncio.Queue[Event]:
        q: asyncio.Queue[Event] = asyncio.Queue()
        self._subs.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[Event]) -> None:
        self._subs.discard(q)
