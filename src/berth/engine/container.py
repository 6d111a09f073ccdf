"""The container record: what the container service keeps per container, persisted as one
JSON document (`doc()`) in the `containers` table, plus the runtime-only parts (waiters,
tasks, the lock) that live while the daemon runs."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from berth.engine import links as legacy_links
from berth.engine.humanize import ZERO_TIME


@dataclass
class Container:
    id: str
    name: str
    image_id: str
    created: str
    config: dict[str, Any]
    host_config: dict[str, Any]
    hidden: bool = False
    state: dict[str, Any] = field(default_factory=dict)
    rootfs: str = ""
    mounts: list[dict[str, Any]] = field(default_factory=list)       # Docker's Mounts entries
    oci_mounts: list[dict[str, Any]] = field(default_factory=list)
    network_settings: dict[str, Any] = field(default_factory=dict)
    restart_count: int = 0
    manually_stopped: bool = False
    has_been_started: bool = False
    lower_dirs: list[str] = field(default_factory=list)
    links: list[legacy_links.Link] = field(default_factory=list)   # legacy links; host_config holds no "Links"
    # runtime only (not persisted)
    attach_waiters: list[tuple[dict[str, Any], asyncio.Future[Any]]] = field(default_factory=list)
    exit_waiters: list[asyncio.Future[dict[str, Any]]] = field(default_factory=list)
    removed_waiters: list[asyncio.Future[int]] = field(default_factory=list)
    monitor: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    netns: str | None = None
    net_up: bool = False
    removal: asyncio.Future[None] | None = None
    health: asyncio.Task[None] | None = None

    def doc(self) -> str:
        # the stored HostConfig.Links name targets by ID, for the network service (see links)
        host_config = {**self.host_config, "Links": [link.stored(self.name) for link in self.links] or None}
        return json.dumps({
            "config": self.config, "host_config": host_config, "state": self.state,
            "rootfs": self.rootfs, "mounts": self.mounts, "oci_mounts": self.oci_mounts,
            "network_settings": self.network_settings, "restart_count": self.restart_count,
            "manually_stopped": self.manually_stopped, "has_been_started": self.has_been_started,
            "lower_dirs": self.lower_dirs, "links": legacy_links.to_record(self.links)})

    @classmethod
    def from_row(cls, row: Any) -> Container:
        d = json.loads(row["doc"])
        links = legacy_links.from_record(d)
        d["host_config"].pop("Links", None)
        return cls(id=row["id"], name=row["name"], image_id=row["image_id"], created=row["created"],
                   hidden=bool(row["hidden"]), config=d["config"], host_config=d["host_config"], links=links,
                   state=d["state"], rootfs=d.get("rootfs", ""), mounts=d.get("mounts", []),
                   oci_mounts=d.get("oci_mounts", []), network_settings=d.get("network_settings", {}),
                   restart_count=d.get("restart_count", 0), manually_stopped=d.get("manually_stopped", False),
                   has_been_started=d.get("has_been_started", False), lower_dirs=d.get("lower_dirs", []))

    @property
    def running(self) -> bool:
        return self.state.get("Status") in ("running", "paused")

    @property
    def tty(self) -> bool:
        return bool(self.config.get("Tty"))


def new_state() -> dict[str, Any]:
    return {"Status": "created", "Running": False, "Paused": False, "Restarting": False,
            "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
            "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME}
