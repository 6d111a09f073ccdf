"""Engine service: containers."""

from __future__ import annotations
