"""What the network service hands the container service for one container."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class Sandbox:
    """`netns`: path of the bind-mounted network namespace the runtime joins (None: the
    runtime makes a fresh empty one, or none at all when `share_host`); `files` maps
    container paths (/etc/hosts, /etc/resolv.conf, /etc/hostname) to host files to
    bind-mount; `settings` is Docker's NetworkSettings for inspect; `ready`, when set, is
    the plumbing still being made in the background (see `plumbed`)."""

    netns: str | None
    share_host: bool
    files: dict[str, str] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    ready: asyncio.Future[None] | None = None

    async def plumbed(self) -> None:
        """Wait until the interfaces, routes, DNS and rules exist (raises what failed). The
        work is shielded: a cancelled caller must not stop it half-way (it runs in threads
        and cleans up after itself when it fails)."""
        if self.ready is not None:
            await asyncio.shield(self.ready)
