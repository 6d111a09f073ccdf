"""Engine service: registry."""

from __future__ import annotations
