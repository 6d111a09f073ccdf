"""`docker top` and `docker stats`: a container's processes and resource use, read through the
runtime's cgroup manager (v1 hierarchies or the v2 tree, whichever the host has) and /proc.

`cgroup_parent` is also where the container service puts a container's cgroups at start.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from berth.engine.container import Container
from berth.engine.humanize import ZERO_TIME
from berth.errors import Conflict, InvalidParameter
from berth.runtime.errors import RuntimeFailure
from berth.shim.protocol import rfc3339_nano


def cgroup_parent(host_config: dict[str, Any], default: str) -> str:
    """The container's `--cgroup-parent`, else the daemon's, without slashes around it."""
    return (host_config.get("CgroupParent") or default).strip("/")


def _cgroups(c: Container, default_parent: str) -> Any:
    """The runtime's manager of the container's cgroups (v1 hierarchies or the v2 tree, as
    the host has them; the path is the one specgen gives the runtime)."""
    from berth.runtime import cgroups

    return cgroups.manager_for(f"/{cgroup_parent(c.host_config, default_parent)}/{c.id}", c.id)


def pids(c: Container, default_parent: str) -> list[int]:
    """The container's processes (host pids)."""
    try:
        procs = _cgroups(c, default_parent).procs()
    except (RuntimeFailure, OSError):
        procs = []
    return procs or ([c.state["Pid"]] if c.state.get("Pid") else [])


async def top(c: Container, default_parent: str, ps_args: str = "-ef") -> dict[str, Any]:
    """The host's `ps` output, only the container's processes (dockerd's way)."""
    if not c.running:
        raise Conflict(f"Container {c.id} is not running")
    wanted = set(pids(c, default_parent))
    proc = await asyncio.create_subprocess_exec("ps", *(ps_args or "-ef").split(),
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise InvalidParameter(f"Error running ps: {err.decode().strip()}")
    lines = out.decode().splitlines()
    titles = lines[0].split()
    if "PID" not in titles:
        raise InvalidParameter("Couldn't find PID field in ps output")
    pi = titles.index("PID")
    procs = []
    for ln in lines[1:]:
        fields = ln.split(None, len(titles) - 1)
        if len(fields) > pi and fields[pi].isdigit() and int(fields[pi]) in wanted:
            procs.append(fields)
    return {"Titles": titles, "Processes": procs}


def stats(c: Container, default_parent: str) -> dict[str, Any]:
    """One sample in the Engine API's stats shape (`precpu_stats` left for the caller), from
    the runtime's reading of the container's cgroups."""
    running = c.running
    sample: dict[str, Any] = {}
    if running:
        try:
            sample = _cgroups(c, default_parent).stats()
        except (RuntimeFailure, OSError):
            pass
    mem = sample.get("memory") or {}
    cpu = sample.get("cpu") or {}
    usage = cpu.get("usage") or {}
    throttling = cpu.get("throttling") or {}
    pids_now = sample.get("pids") or {}
    mem_limit = mem.get("limit") or 0
    if mem_limit > (1 << 62) or mem_limit == 0:
        mem_limit = meminfo_total()
    cpu_usage: dict[str, Any] = {"total_usage": usage.get("total") or 0,
                                 "usage_in_kernelmode": usage.get("kernel") or 0,
                                 "usage_in_usermode": usage.get("user") or 0}
    if usage.get("percpu"):
        cpu_usage["percpu_usage"] = usage["percpu"]
    return {
        "read": rfc3339_nano(), "preread": ZERO_TIME, "name": "/" + c.name, "id": c.id,
        "pids_stats": {"current": pids_now.get("current") or 0,
                       **({"limit": pids_now["limit"]} if pids_now.get("limit") else {})},
        "blkio_stats": {"io_service_bytes_recursive": None, "io_serviced_recursive": None},
        "num_procs": 0, "storage_stats": {},
        "cpu_stats": {"cpu_usage": cpu_usage, "system_cpu_usage": _system_cpu_usage(),
                      "online_cpus": os.cpu_count() or 1,
                      "throttling_data": {"periods": throttling.get("periods") or 0,
                                          "throttled_periods": throttling.get("throttled_periods") or 0,
                                          "throttled_time": throttling.get("throttled_time") or 0}},
        "precpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
        "memory_stats": {"usage": mem.get("usage") or 0, "limit": mem_limit, "stats": mem.get("stats") or {},
                         "max_usage": mem.get("max_usage") or 0, "failcnt": mem.get("failcnt") or 0}
        if running else {},
        "networks": _net_dev(c.state.get("Pid") or 0) if running else {},
    }


def _net_dev(pid: int) -> dict[str, dict[str, int]]:
    """Interface counters as the container sees them (its network namespace)."""
    out: dict[str, dict[str, int]] = {}
    if not pid:
        return out
    try:
        lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    except OSError:
        return out
    keys = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "tx_bytes", "tx_packets", "tx_errors",
            "tx_dropped")
    for ln in lines:
        name, _, rest = ln.partition(":")
        name = name.strip()
        if name == "lo" or not rest:
            continue
        f = rest.split()
        vals = [int(f[i]) for i in (0, 1, 2, 3, 8, 9, 10, 11)]
        out[name] = dict(zip(keys, vals, strict=True))
    return out


def meminfo_total() -> int:
    """The host's memory in bytes (a container without a memory limit has this one)."""
    try:
        with open("/proc/meminfo") as f:
            for ln in f:
                if ln.startswith("MemTotal:"):
                    return int(ln.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _system_cpu_usage() -> int:
    try:
        with open("/proc/stat") as f:
            parts = f.readline().split()[1:8]
        return sum(int(x) for x in parts) * 10**9 // os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return 0
