"""Engine API routes: system (/_ping, /version, /info, /events, /system/df)."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import socket
import time
from typing import Any

from aiohttp import web

from berth import API_VERSION, MIN_API_VERSION, __version__
from berth.api.app import DAEMON, HEADERS, parse_filters
from berth.engine import hostconfig
from berth.engine.stats import meminfo_total

routes = web.RouteTableDef()

_PING_HEADERS = {**HEADERS, "Builder-Version": "1", "Swarm": "inactive",
                 "Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"}


@routes.get("/_ping")
async def ping(request: web.Request) -> web.Response:
    return web.Response(text="OK", headers=_PING_HEADERS)


@routes.head("/_ping")
async def ping_head(request: web.Request) -> web.Response:
    return web.Response(headers={**_PING_HEADERS, "Content-Type": "text/plain; charset=utf-8",
                                 "Content-Length": "0"})


def _version() -> dict[str, Any]:
    u = os.uname()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(u.machine, u.machine)
    return {
        "Platform": {"Name": "berth"},
        "Components": [{"Name": "Engine", "Version": __version__, "Details": {
            "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Arch": arch, "Os": "linux",
            "KernelVersion": u.release, "GoVersion": f"python{platform.python_version()}",
            "GitCommit": "berth", "Experimental": "false"}}],
        "Version": __version__, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "berth", "GoVersion": f"python{platform.python_version()}", "Os": "linux",
        "Arch": arch, "KernelVersion": u.release, "BuildTime": "", "Experimental": False,
    }


@routes.get("/version")
async def version(request: web.Request) -> web.Response:
    return web.json_response(_version())


def _os_name() -> str:
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


@routes.get("/info")
async def info(request: web.Request) -> web.Response:
    d = request.app[DAEMON]
    cfg = d.config
    running = paused = stopped = 0
    if d.containers is not None:
        running, paused, stopped = d.containers.counts()
    n_images = 0
    if d.images is not None:
        try:
            n_images = len(await asyncio.to_thread(d.images.list))
        except Exception:  # noqa: BLE001 - /info must answer even if a service misbehaves
            n_images = 0
    u = os.uname()
    return web.json_response({
        "ID": d.containers.daemon_id if d.containers is not None else "",
        "Containers": running + paused + stopped, "ContainersRunning": running,
        "ContainersPaused": paused, "ContainersStopped": stopped, "Images": n_images,
        "Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "extfs"]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"],
                    "Authorization": None, "Log": ["json-file"]},
        "MemoryLimit": True, "SwapLimit": os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"),
        "CpuCfsPeriod": True, "CpuCfsQuota": True, "CPUShares": True, "CPUSet": True,
        "PidsLimit": True, "OomKillDisable": True, "IPv4Forwarding": True, "BridgeNfIptables": True,
        "BridgeNfIp6tables": True, "Debug": cfg.debug, "NFd": len(os.listdir("/proc/self/fd")),
        "NGoroutines": len(asyncio.all_tasks()), "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "LoggingDriver": "json-file", "CgroupDriver": "cgroupfs",
        "CgroupVersion": "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1",
        "NEventsListener": 0, "KernelVersion": u.release, "OperatingSystem": _os_name(),
        "OSVersion": "", "OSType": "linux", "Architecture": u.machine,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"InsecureRegistryCIDRs": [c for c in cfg.insecure_registries if "/" in c],
                           "IndexConfigs": {}, "Mirrors": list(cfg.registry_mirrors)},
        "NCPU": os.cpu_count() or 1, "MemTotal": meminfo_total(), "DockerRootDir": str(cfg.data_root),
        "HttpProxy": os.environ.get("HTTP_PROXY", ""), "HttpsProxy": os.environ.get("HTTPS_PROXY", ""),
        "NoProxy": os.environ.get("NO_PROXY", ""), "Name": socket.gethostname(), "Labels": [],
        "ExperimentalBuild": False, "ServerVersion": __version__,
        "Runtimes": {name: dict(rt) for name, rt in hostconfig.RUNTIMES.items()},
        "DefaultRuntime": hostconfig.DEFAULT_RUNTIME,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False,
                  "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": hostconfig.INIT_BINARY,
        "ContainerdCommit": {"ID": "", "Expected": ""}, "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": ["name=seccomp,profile=builtin"], "Warnings": [],
        "ExecRoot": str(cfg.exec_root), "BridgeName": cfg.bridge,
    })


def _parse_time(v: str | None) -> int | None:
    """Docker's since/until: unix seconds (possibly fractional) -> nanoseconds."""
    if not v:
        return None
    try:
        return int(float(v) * 1_000_000_000)
    except ValueError:
        from berth.errors import InvalidParameter
        raise InvalidParameter(f"invalid timestamp {v!r}") from None


@routes.get("/events")
async def events(request: web.Request) -> web.StreamResponse:
    bus = request.app[DAEMON].events
    filters = parse_filters(request)
    since = _parse_time(request.query.get("since"))
    until = _parse_time(request.query.get("until"))
    q = bus.subscribe()
    try:
        resp = web.StreamResponse(headers={**HEADERS, "Content-Type": "application/json"})
        await resp.prepare(request)
        if since is not None:
            for ev in bus.since(since, until):
                if ev.matches(filters):
                    await resp.write(json.dumps(ev.to_json()).encode() + b"\n")
        now = time.time_ns()
        if until is not None and until <= now:
            return resp
        while True:
            timeout = 1.0 if until is None else min(1.0, max(0.0, (until - time.time_ns()) / 1e9))
            try:
                ev = await asyncio.wait_for(q.get(), timeout)
            except TimeoutError:
                if until is not None and time.time_ns() >= until:
                    break
                if request.transport is None or request.transport.is_closing():
                    break  # the client went away
                continue
            if since is not None and ev.time_nano < since:
                continue
            if ev.matches(filters):
                await resp.write(json.dumps(ev.to_json()).encode() + b"\n")
        return resp
    finally:
        bus.unsubscribe(q)


@routes.get("/system/df")
async def system_df(request: web.Request) -> web.Response:
    d = request.app[DAEMON]
    images: list[dict[str, Any]] = []
    if d.images is not None:
        try:
            for img in await asyncio.to_thread(d.images.list):
                images.append({"Id": img.id, "RepoTags": list(img.repo_tags or []),
                               "RepoDigests": list(getattr(img, "repo_digests", []) or []),
                               "Created": int(getattr(img, "created", 0) or 0) if isinstance(getattr(img, "created", 0), (int, float)) else 0,
                               "Size": getattr(img, "size", 0) or 0, "SharedSize": -1,
                               "Containers": len(d.containers.uses_image(img.id)), "ParentId": "",
                               "Labels": (img.config.get("config") or {}).get("Labels") or {}})
        except Exception:  # noqa: BLE001
            images = []
    containers = await asyncio.to_thread(d.containers.list, True, {}) if d.containers else []
    for c in containers:
        c["SizeRw"] = 0
        c["SizeRootFs"] = 0
    volumes: list[dict[str, Any]] = []
    if d.volumes is not None:
        try:
            for v in await asyncio.to_thread(d.volumes.list):
                volumes.append(v if isinstance(v, dict) else getattr(v, "__dict__", {}))
        except Exception:  # noqa: BLE001
            volumes = []
    builder = getattr(d, "builder", None)
    cache = await asyncio.to_thread(builder.disk_usage) if builder is not None else []
    return web.json_response({"LayersSize": sum(i["Size"] for i in images), "Images": images,
                              "Containers": containers, "Volumes": volumes, "BuildCache": cache})
