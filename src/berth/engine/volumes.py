"""Engine service: volumes."""

from __future__ import annotations
