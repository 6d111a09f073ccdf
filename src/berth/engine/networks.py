"""Engine service: networks."""

from __future__ import annotations
