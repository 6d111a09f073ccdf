"""What the network service hands the container service for one container."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Sandbox:
    """`netns`: path of the bind-mounted network namespace the runtime joins (None: the
    runtime makes a fresh empty one, or none at all when `share_host`); `files` maps
    container paths (/etc/hosts, /etc/resolv.conf, /etc/hostname) to host files to
    bind-mount; `settings` is Docker's NetworkSettings for inspect."""

    netns: str | None
    share_host: bool
    files: dict[str, str] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
