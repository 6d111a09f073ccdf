"""Engine service: containers (placeholder until the full service lands)."""

from __future__ import annotations

import secrets
from typing import Any


class ContainerService:
    def __init__(self, config: Any, db: Any, images: Any, networks: Any, volumes: Any,
                 events: Any = None) -> None:
        self.config, self.db, self.images = config, db, images
        self.networks, self.volumes, self.events = networks, volumes, events
        self.daemon_id = secrets.token_hex(16)

    def counts(self) -> tuple[int, int, int]:
        return 0, 0, 0

    def uses_image(self, image_id: str) -> list[str]:
        return []

    def list(self, all: bool = False, filters: dict | None = None) -> list[dict]:
        return []
