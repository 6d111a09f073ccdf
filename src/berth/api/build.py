"""Engine API routes: build (POST /build, legacy builder's JSON-line stream) and
POST /build/prune."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import os
from typing import Any

from aiohttp import web

from berth.api.app import DAEMON, parse_filters, qbool, service
from berth.api.streams import json_line, spool_body
from berth.build.builder import BuildError, BuildOptions
from berth.build.cache import PRUNE_FILTERS
from berth.errors import BerthError, InvalidParameter
from berth.image import reference

routes = web.RouteTableDef()


def _svc(request: web.Request) -> Any:
    return service(request, "builder", "build")


def _json_map(request: web.Request, name: str) -> dict[str, Any]:
    raw = request.query.get(name)
    if not raw:
        return {}
    try:
        val = json.loads(raw)
    except ValueError:
        raise InvalidParameter(f"invalid {name}: {raw!r} is not JSON") from None
    if val is None:
        return {}
    if not isinstance(val, dict):
        raise InvalidParameter(f"invalid {name}: a JSON object is required")
    return val


def _json_list(request: web.Request, name: str, what: str) -> list[Any]:
    """A JSON array parameter (`ulimits`, `cachefrom`); dockerd answers a bad one with the
    decoder's error, prefixed with what it was reading."""
    raw = request.query.get(name)
    if not raw:
        return []
    try:
        val = json.loads(raw)
    except ValueError as exc:
        raise InvalidParameter(f"{what}: {exc}") from None
    if val is None:
        return []
    if not isinstance(val, list):
        raise InvalidParameter(f"{what}: a JSON array is required")
    return val


def _ulimits(request: web.Request) -> list[dict[str, Any]]:
    """HostConfig.Ulimits for the RUN containers (create checks names and values)."""
    out = _json_list(request, "ulimits", "error reading ulimit settings")
    if not all(isinstance(u, dict) for u in out):
        raise InvalidParameter("error reading ulimit settings: each ulimit is a JSON object")
    return out


def _check_unsupported(request: web.Request) -> None:
    """What dockerd's classic builder refuses on Linux, with its words."""
    q = request.query
    isolation = q.get("isolation", "")
    if isolation and isolation.lower() != "default":
        raise InvalidParameter(f'Unsupported isolation: "{isolation}"')
    if q.getall("securityopt", []):
        # dockerd takes security options on build on Windows only (credential specs)
        raise InvalidParameter("The daemon on this platform does not support setting security "
                               "options on build")
    if qbool(request, "squash"):
        raise InvalidParameter("squash is only supported with experimental mode")


def _registry_config(request: web.Request) -> dict[str, Any]:
    raw = request.headers.get("X-Registry-Config")
    if not raw:
        return {}
    try:
        data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, binascii.Error):
        return {}
    return data if isinstance(data, dict) else {}


def options_from_request(request: web.Request) -> BuildOptions:
    q = request.query
    if q.get("remote"):
        raise InvalidParameter("building from a remote context (git URL or tarball URL) is not supported")
    if q.get("version") == "2":
        raise InvalidParameter("BuildKit (version=2) is not supported by berthd; use the legacy builder "
                               "(DOCKER_BUILDKIT=0)")
    _check_unsupported(request)
    tags = [t for t in q.getall("t", []) if t]
    for t in tags:
        ref = reference.parse(t)
        if ref.digest:
            raise InvalidParameter(f"invalid reference format: {t} (a tag cannot have a digest)")
    build_args = {str(k): (None if v is None else str(v))
                  for k, v in _json_map(request, "buildargs").items()}
    labels = {str(k): str(v) for k, v in _json_map(request, "labels").items()}
    hc: dict[str, Any] = {}
    extra_hosts = [h for v in q.getall("extrahosts", []) for h in v.split(",") if h]
    if extra_hosts:
        hc["ExtraHosts"] = extra_hosts
    for param, key in (("memory", "Memory"), ("memswap", "MemorySwap"), ("cpushares", "CpuShares"),
                       ("cpuperiod", "CpuPeriod"), ("cpuquota", "CpuQuota"), ("shmsize", "ShmSize")):
        raw = q.get(param)
        if raw and raw not in ("0", "-0"):
            try:
                hc[key] = int(raw)
            except ValueError:
                raise InvalidParameter(f"invalid {param}: {raw!r}") from None
    for param, key in (("cpusetcpus", "CpusetCpus"), ("cpusetmems", "CpusetMems"),
                       ("cgroupparent", "CgroupParent")):
        if q.get(param):
            hc[key] = q[param]
    ulimits = _ulimits(request)
    if ulimits:
        hc["Ulimits"] = ulimits
    cache_from = [str(x) for x in _json_list(request, "cachefrom", "error reading cache-from images")]
    force_remove = qbool(request, "forcerm")
    return BuildOptions(
        dockerfile=q.get("dockerfile") or "Dockerfile",
        tags=tags,
        build_args=build_args,
        no_cache=qbool(request, "nocache"),
        target=q.get("target") or None,
        quiet=qbool(request, "q"),
        labels=labels,
        network_mode=q.get("networkmode") or None,
        pull=qbool(request, "pull"),
        platform=q.get("platform") or None,
        run_host_config=hc,
        # dockerd: rm defaults to true, forcerm implies it
        remove=force_remove or not request.query.get("rm") or qbool(request, "rm"),  # dockerd: blank rm is true
        force_remove=force_remove,
        cache_from=cache_from,
    )


async def _cancel_on_disconnect(request: web.Request, task: asyncio.Future[Any]) -> None:
    """Docker cancels a build whose client disconnected (^C on `docker build`)."""
    while not task.done():
        transport = request.transport
        if transport is None or transport.is_closing():
            task.cancel()
            return
        await asyncio.sleep(0.2)


@routes.post("/build")
async def build(request: web.Request) -> web.StreamResponse:
    d = request.app[DAEMON]
    svc = _svc(request)
    opts = options_from_request(request)
    tmp_dir = str(svc.config.tmp_dir)
    os.makedirs(tmp_dir, exist_ok=True)
    path = await spool_body(request, tmp_dir, "build-ctx-", ".tar")
    try:
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})

        lock = asyncio.Lock()  # pull progress may arrive from several tasks at once

        async def emit(msg: dict[str, Any]) -> None:
            async with lock:
                if not resp.prepared:
                    await resp.prepare(request)
                await resp.write(json_line(msg))

        task = asyncio.ensure_future(svc.build(path, opts, emit, registry=getattr(d, "registry", None),
                                               auth=_registry_config(request)))
        watcher = asyncio.ensure_future(_cancel_on_disconnect(request, task))
        try:
            await task
        except (BerthError, OSError) as exc:
            if request.transport is None or request.transport.is_closing():
                return resp  # the client is gone: nobody to tell
            if not resp.prepared:
                # nothing was streamed yet: a plain error response with its status
                if isinstance(exc, BerthError):
                    raise
                raise InvalidParameter(str(exc)) from None
            detail: dict[str, Any] = {"message": str(exc)}
            if isinstance(exc, BuildError) and exc.code is not None:
                detail["code"] = exc.code
            await resp.write(json_line({"errorDetail": detail, "error": str(exc)}))
        finally:
            watcher.cancel()
        if not resp.prepared:
            await resp.prepare(request)
        await resp.write_eof()
        return resp
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


@routes.post("/build/prune")
async def prune(request: web.Request) -> web.Response:
    svc = _svc(request)
    filters = parse_filters(request, PRUNE_FILTERS)
    raw = request.query.get("keep-storage") or "0"
    try:
        keep = int(raw)
    except ValueError:
        raise InvalidParameter(f"keep-storage is in bytes and expects an integer, got {raw}: "
                               f'strconv.Atoi: parsing "{raw}": invalid syntax') from None
    result = await asyncio.to_thread(svc.prune, qbool(request, "all"), filters, keep)
    return web.json_response(result)


@routes.post("/session")
async def session(request: web.Request) -> web.Response:
    raise web.HTTPNotImplemented(text="BuildKit sessions are not supported; use DOCKER_BUILDKIT=0")
