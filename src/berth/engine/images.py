"""Engine service: images."""

from __future__ import annotations
