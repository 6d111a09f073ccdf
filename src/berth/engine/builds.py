"""Engine service: builds."""

from __future__ import annotations
