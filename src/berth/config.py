"""Daemon-wide settings: where state lives and what names berth's host objects carry.

Every path and host-visible name (bridge, firewall chains, cgroup parent) comes from here,
so a second daemon (or a test run) can live beside the first without collisions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DATA_ROOT = "/var/lib/berth"
DEFAULT_EXEC_ROOT = "/run/berth"
DEFAULT_SOCKET = "/run/berth/berth.sock"


@dataclass
class DaemonConfig:
    data_root: Path = Path(DEFAULT_DATA_ROOT)
    exec_root: Path = Path(DEFAULT_EXEC_ROOT)
    host: str = f"unix://{DEFAULT_SOCKET}"
    # Default bridge network: device name and subnet ("" = pick one free of host routes).
    bridge: str = "berth0"
    bridge_subnet: str = ""
    # Prefix of berth's own firewall chains (upper-cased for iptables).
    firewall_prefix: str = "berth"
    # Parent cgroup under every controller: containers live at /<cgroup_parent>/<id>.
    cgroup_parent: str = "berth"
    registry_mirrors: list[str] = field(default_factory=list)
    # Where requests for docker.io go (pull, push, search, login). Empty: Docker Hub itself.
    # The journeys' local set-up points it at a berth-registry on loopback.
    hub_endpoint: str = ""
    insecure_registries: list[str] = field(default_factory=lambda: ["127.0.0.0/8"])
    debug: bool = False
    # The init `--init` bind-mounts as /sbin/docker-init ("" = tini-static or docker-init on PATH).
    init_path: str = ""

    # --- derived locations -------------------------------------------------------------
    @property
    def socket_path(self) -> str:
        return self.host.removeprefix("unix://")

    @property
    def db_path(self) -> Path:
        return self.data_root / "berth.db"

    @property
    def blobs_dir(self) -> Path:
        return self.data_root / "blobs"

    @property
    def layers_dir(self) -> Path:
        return self.data_root / "layers"

    @property
    def containers_dir(self) -> Path:
        return self.data_root / "containers"

    @property
    def volumes_dir(self) -> Path:
        return self.data_root / "volumes"

    @property
    def tmp_dir(self) -> Path:
        return self.data_root / "tmp"

    @property
    def runtime_root(self) -> Path:
        return self.exec_root / "runtime"

    @property
    def netns_dir(self) -> Path:
        return self.exec_root / "netns"

    @property
    def shims_dir(self) -> Path:
        return self.exec_root / "shims"

    def ensure_dirs(self) -> None:
        for d in (self.data_root, self.blobs_dir, self.layers_dir, self.containers_dir,
                  self.volumes_dir, self.tmp_dir, self.exec_root, self.runtime_root,
                  self.netns_dir, self.shims_dir):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_root, 0o711)
