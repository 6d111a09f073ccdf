"""Docker's human-readable durations and container status strings (as `docker ps` shows)."""

from __future__ import annotations

import time

from berth.humanize import human_duration as human_duration  # shared with the CLI
from berth.humanize import parse_rfc3339

ZERO_TIME = "0001-01-01T00:00:00Z"


def parse_time(s: str | None) -> float | None:
    """RFC 3339 (with nanoseconds) -> unix seconds; None for empty/zero."""
    return parse_rfc3339(s)


def status_string(state: dict, now: float | None = None) -> str:
    now = time.time() if now is None else now
    st = state.get("Status")
    if st == "running" or st == "paused":
        started = parse_time(state.get("StartedAt")) or now
        s = f"Up {human_duration(now - started)}"
        if st == "paused":
            return s + " (Paused)"
        health = (state.get("Health") or {}).get("Status")
        if health == "starting":
            return s + " (health: starting)"
        return s + f" ({health})" if health in ("healthy", "unhealthy") else s
    if st == "restarting":
        fin = parse_time(state.get("FinishedAt")) or now
        return f"Restarting ({state.get('ExitCode', 0)}) {human_duration(now - fin)} ago"
    if st == "removing":
        return "Removal In Progress"
    if st == "dead":
        return "Dead"
    if st == "exited":
        fin = parse_time(state.get("FinishedAt"))
        if fin is None:
            return "Created" if not parse_time(state.get("StartedAt")) else f"Exited ({state.get('ExitCode', 0)})"
        return f"Exited ({state.get('ExitCode', 0)}) {human_duration(now - fin)} ago"
    return "Created"
