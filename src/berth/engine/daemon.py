"""Engine service: daemon."""

from __future__ import annotations
