"""HEALTHCHECK: run the image's (or `--health-*`) test in the container, as dockerd does.

`run_health(service, container)` loops while the container runs: every Interval (after
StartPeriod, failures do not count) it execs the test through the shim with a Timeout,
keeps the last five results in `State.Health.Log`, and sets `Status` to healthy after a
success or unhealthy after `Retries` consecutive failures (events `health_status: ...`).
"""

from __future__ import annotations

import asyncio
import secrets
import struct
import time
from typing import Any

from berth.shim import client as shim
from berth.shim.protocol import rfc3339_nano

NS = 1_000_000_000
DEFAULT_INTERVAL = 30 * NS
DEFAULT_TIMEOUT = 30 * NS
DEFAULT_RETRIES = 3
OUTPUT_LIMIT = 4096


def test_argv(hc: dict[str, Any] | None, shell: list[str] | None = None) -> list[str] | None:
    """The command to run, or None when there is no (or a disabled) check."""
    if not hc:
        return None
    test = hc.get("Test") or []
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        return list(test[1:]) or None
    if test[0] == "CMD-SHELL":
        return [*(shell or ["/bin/sh", "-c"]), " ".join(test[1:])]
    return list(test)


async def _probe(sock: str, process: dict[str, Any], timeout: float) -> tuple[int, str]:
    eid = "health-" + secrets.token_hex(8)
    reader, writer, _ = await shim.open_stream(sock, {"op": "exec", "exec_id": eid, "process": process,
                                                      "tty": False, "stdin": False, "attach": True})
    out = b""
    try:
        async def read_all() -> None:
            nonlocal out
            while True:
                head = await reader.readexactly(8)
                _, n = struct.unpack(">BxxxI", head)
                data = await reader.readexactly(n)
                if len(out) < OUTPUT_LIMIT:
                    out += data[: OUTPUT_LIMIT - len(out)]
        try:
            await asyncio.wait_for(read_all(), timeout)
        except asyncio.IncompleteReadError:
            pass
        except TimeoutError:
            st = await shim.call(sock, {"op": "exec_state", "exec_id": eid})
            if st.get("running") and st.get("pid"):
                await shim.call(sock, {"op": "kill", "exec_id": eid, "signal": 9})
            return -1, f"Health check exceeded timeout ({timeout:g}s)"
    finally:
        writer.close()
    st = await shim.call(sock, {"op": "exec_state", "exec_id": eid})
    code = st.get("exit_code")
    return (int(code) if code is not None else -1), out.decode(errors="replace")


async def run_health(svc: Any, c: Any) -> None:
    hc = c.config.get("Healthcheck") or {}
    argv = test_argv(hc, c.config.get("Shell"))
    if argv is None:
        return
    interval = (hc.get("Interval") or DEFAULT_INTERVAL) / NS
    timeout = (hc.get("Timeout") or DEFAULT_TIMEOUT) / NS
    start_period = (hc.get("StartPeriod") or 0) / NS
    retries = hc.get("Retries") or DEFAULT_RETRIES
    started = time.monotonic()
    health = {"Status": "starting", "FailingStreak": 0, "Log": []}
    c.state["Health"] = health
    sock = svc._shim_sock(c.id)
    while c.running:
        await asyncio.sleep(interval)
        if not c.running:
            return
        if c.state.get("Status") == "paused":
            continue
        from berth.engine import specgen
        try:
            process = specgen.exec_process(c.config, {"Cmd": argv}, c.rootfs, list(c.config.get("Env") or []),
                                           specgen.container_caps(c.host_config))
        except Exception as exc:  # noqa: BLE001
            code, output = -1, str(exc)
        t0 = rfc3339_nano()
        try:
            code, output = await _probe(sock, process, timeout)
        except (shim.ShimError, OSError) as exc:
            if not c.running:
                return
            code, output = -1, str(exc)
        health["Log"] = (health["Log"] + [{"Start": t0, "End": rfc3339_nano(), "ExitCode": code,
                                           "Output": output}])[-5:]
        before = health["Status"]
        if code == 0:
            health["Status"] = "healthy"
            health["FailingStreak"] = 0
        elif time.monotonic() - started >= start_period or before != "starting":
            health["FailingStreak"] += 1
            if health["FailingStreak"] >= retries:
                health["Status"] = "unhealthy"
        if health["Status"] != before:
            svc._event(c, f"health_status: {health['Status']}")
        svc._save(c)
