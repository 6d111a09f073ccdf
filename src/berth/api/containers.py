"""Engine API routes: containers."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web

from berth.api.app import DAEMON, HEADERS, api_version, json_object, parse_filters, qbool, qint
from berth.api.streams import MULTIPLEXED, RAW, finished_response, hijack, parse_detach_keys, pump
from berth.engine.humanize import parse_time
from berth.errors import BerthError, InvalidParameter
from berth.network.endpoint import SYSCTLS_OPT

routes = web.RouteTableDef()


def _svc(request: web.Request) -> Any:
    return request.app[DAEMON].containers



def _time_param(v: str | None) -> float | None:
    if not v:
        return None
    try:
        return float(v)
    except ValueError:
        t = parse_time(v)
        if t is None:
            raise InvalidParameter(f"invalid time value {v!r}") from None
        return t


@routes.post("/containers/create")
async def create(request: web.Request) -> web.Response:
    body = await json_object(request)
    name = request.query.get("name") or None
    ours = create_request(body, api_version(request))
    warnings: list[str] = []
    cid = await _svc(request).create(name, body, warnings=warnings)
    return web.json_response({"Id": cid, "Warnings": warnings + ours}, status=201)


def create_request(body: dict[str, Any], version: tuple[int, ...]) -> list[str]:
    """What dockerd 27's router does to a create before the daemon sees it (in place):
    NetworkMode "" or "default" becomes "bridge", and interface sysctls of
    HostConfig.Sysctls move to the endpoint (`_migrate_sysctls`). Neither is gated on the
    API version in dockerd 27 (20.10 recorded "default"; 28 refuses the sysctls from API
    1.48, which berth does not serve). The EndpointsConfig entry `default` (the docker
    CLI's, without --network) is re-keyed `bridge` with it, so errors name `bridge`; and an
    endpoint MacAddress from a client below API 1.44 is zeroed (the field came in 1.44).
    Returns the router's warnings, which come after the daemon's."""
    hc = body.get("HostConfig")
    if hc is None:
        hc = body["HostConfig"] = {}
    net = body.get("NetworkingConfig")
    if net is None:
        net = body["NetworkingConfig"] = {}
    if not isinstance(hc, dict) or not isinstance(net, dict):
        return []   # the daemon refuses the body
    endpoints = net["EndpointsConfig"] = dict(net.get("EndpointsConfig") or {})
    if version < (1, 44):   # endpoint MACs came in 1.44: dockerd zeroes them for older clients
        for name, ep in endpoints.items():
            if isinstance(ep, dict) and ep.get("MacAddress"):
                endpoints[name] = dict(ep, MacAddress="")
    if not hc.get("NetworkMode") or hc["NetworkMode"] == "default":
        hc["NetworkMode"] = "bridge"
        if "default" in endpoints:   # the docker CLI's key without --network
            endpoints["bridge"] = endpoints.pop("default")
    warning = _migrate_sysctls(hc, endpoints, version)
    return [warning] if warning else []


def _migrate_sysctls(hc: dict[str, Any], endpoints: dict[str, Any], version: tuple[int, ...]) -> str:
    """dockerd's handleSysctlBC: `net.X.Y.ethN.Z` sysctls name an interface that does not
    exist when the runtime applies HostConfig.Sysctls, so those for eth0 move to the
    DriverOpts (SYSCTLS_OPT, as `net.X.Y.IFNAME.Z=V`) of the network mode's endpoint, ahead
    of what it had, with a warning; another ethN is refused (which interface it becomes is
    not known). Containers sharing the host's or another container's namespace keep theirs."""
    mode = str(hc.get("NetworkMode") or "")
    sysctls = hc.get("Sysctls")
    if mode == "host" or mode.startswith("container:") or not isinstance(sysctls, dict):
        return ""
    moved: list[str] = []
    settings: list[str] = []
    ep: dict[str, Any] | None = None
    for name, value in sysctls.items():
        parts = name.split(".", 4)
        if len(parts) != 5 or parts[0] != "net" or not parts[3].startswith("eth"):
            continue
        if ep is None:
            ep = _endpoint_of_mode(mode, endpoints, version, name)
        if parts[3] != "eth0":
            # dockerd's plain error: a 500
            raise BerthError(f"unable to determine network endpoint for sysctl {name}, use driver option "
                             f"'{SYSCTLS_OPT}' to set per-interface sysctls")
        moved.append(name)
        settings.append(f"net.{parts[1]}.{parts[2]}.IFNAME.{parts[4]}={value}")
    if ep is None:
        return ""
    option = ",".join(settings)
    warning = (f"Migrated sysctl {json.dumps(','.join(moved), ensure_ascii=False)} to "
               f"DriverOpts{{{json.dumps(SYSCTLS_OPT)}:{json.dumps(option, ensure_ascii=False)}}}.")
    opts = ep["DriverOpts"] = dict(ep.get("DriverOpts") or {})
    if SYSCTLS_OPT in opts:   # the endpoint's own settings come last: they win
        option += "," + str(opts[SYSCTLS_OPT])
    opts[SYSCTLS_OPT] = option
    left = {k: v for k, v in sysctls.items() if k not in moved}
    if left:
        hc["Sysctls"] = left
    else:
        hc.pop("Sysctls")   # dockerd's omitempty: an emptied map is not shown
    return warning


def _endpoint_of_mode(key: str, endpoints: dict[str, Any], version: tuple[int, ...], sysctl: str) -> dict[str, Any]:
    """dockerd's epConfigForNetMode: the EndpointsConfig entry of the network mode (`key`:
    as NetworkMode names the network), made when there is none; before API 1.44 (one entry
    at most) whichever there is; else it must be keyed so (`sysctl` is for the error)."""
    if endpoints and version < (1, 44):
        key = next(iter(endpoints))
    elif endpoints and key not in endpoints:
        raise InvalidParameter(f"unable to find a network for sysctl {sysctl}: HostConfig.NetworkMode must match "
                               "the identity of a network in NetworkSettings.Networks")
    ep = endpoints[key] = dict(endpoints.get(key) or {})
    return ep


@routes.get("/containers/json")
async def list_containers(request: web.Request) -> web.Response:
    filters = parse_filters(request)
    limit = qint(request, "limit", -1) or -1
    svc = _svc(request)
    out = svc.list(qbool(request, "all"), filters, limit)   # a limit lists stopped ones too (the engine)
    if qbool(request, "size"):
        for c in out:
            c["SizeRw"], c["SizeRootFs"] = await asyncio.to_thread(svc.sizes, c["Id"])
    return web.json_response([summary_at(c, api_version(request)) for c in out])


def summary_at(c: dict[str, Any], version: tuple[int, ...]) -> dict[str, Any]:
    """One `GET /containers/json` entry in the shape of API `version`, as dockerd's
    router makes it: HostConfig.Annotations only from 1.46."""
    if version < (1, 46):
        c["HostConfig"].pop("Annotations", None)
    return c


@routes.get("/containers/{id}/changes")
async def changes(request: web.Request) -> web.Response:
    return web.json_response(await asyncio.to_thread(_svc(request).changes, request.match_info["id"]) or None)


@routes.post("/containers/prune")
async def prune(request: web.Request) -> web.Response:
    return web.json_response(await _svc(request).prune(parse_filters(request)))


@routes.get("/containers/{id}/json")
async def inspect(request: web.Request) -> web.Response:
    svc = _svc(request)
    data = svc.inspect(request.match_info["id"])
    if qbool(request, "size"):
        data["SizeRw"], data["SizeRootFs"] = await asyncio.to_thread(svc.sizes, data["Id"])
    return web.json_response(data)


@routes.post("/containers/{id}/start")
async def start(request: web.Request) -> web.Response:
    svc = _svc(request)
    ref = request.match_info["id"]
    try:
        await svc.start(ref)
    except Exception:
        try:
            c = svc.get(ref)
        except Exception:  # noqa: BLE001
            c = None
        if c is not None and c.host_config.get("AutoRemove") and not c.has_been_started:
            with contextlib.suppress(Exception):
                await svc.remove(c.id, force=True, volumes=True)
        raise
    return web.Response(status=204)


@routes.post("/containers/{id}/stop")
async def stop(request: web.Request) -> web.Response:
    t = qint(request, "t")
    if t is None:
        t = qint(request, "timeout")
    await _svc(request).stop(request.match_info["id"], t, request.query.get("signal") or None)
    return web.Response(status=204)


@routes.post("/containers/{id}/restart")
async def restart(request: web.Request) -> web.Response:
    t = qint(request, "t")
    await _svc(request).restart(request.match_info["id"], t, request.query.get("signal") or None)
    return web.Response(status=204)


@routes.post("/containers/{id}/kill")
async def kill(request: web.Request) -> web.Response:
    await _svc(request).kill(request.match_info["id"], request.query.get("signal") or None)
    return web.Response(status=204)


@routes.post("/containers/{id}/pause")
async def pause(request: web.Request) -> web.Response:
    await _svc(request).pause(request.match_info["id"])
    return web.Response(status=204)


@routes.post("/containers/{id}/unpause")
async def unpause(request: web.Request) -> web.Response:
    await _svc(request).unpause(request.match_info["id"])
    return web.Response(status=204)


@routes.post("/containers/{id}/rename")
async def rename(request: web.Request) -> web.Response:
    await _svc(request).rename(request.match_info["id"], request.query.get("name", ""))
    return web.Response(status=204)


@routes.post("/containers/{id}/resize")
async def resize(request: web.Request) -> web.Response:
    h, w = qint(request, "h", 0) or 0, qint(request, "w", 0) or 0
    await _svc(request).resize(request.match_info["id"], h, w)
    return web.Response(status=200)


@routes.post("/containers/{id}/update")
async def update(request: web.Request) -> web.Response:
    warnings = await _svc(request).update(request.match_info["id"], await json_object(request))
    return web.json_response({"Warnings": warnings})


@routes.delete("/containers/{id}")
async def remove(request: web.Request) -> web.Response:
    await _svc(request).remove(request.match_info["id"], qbool(request, "force"), qbool(request, "v"))
    return web.Response(status=204)


@routes.post("/containers/{id}/wait")
async def wait(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    task = svc.wait_future(request.match_info["id"], request.query.get("condition") or "not-running")
    resp = web.StreamResponse(headers={**HEADERS, "Content-Type": "application/json"})
    await resp.prepare(request)
    try:
        result = await task
    except asyncio.CancelledError:
        task.cancel()
        raise
    with contextlib.suppress(ConnectionError):
        await resp.write(json.dumps(result).encode() + b"\n")
        await resp.write_eof()
    return resp


@routes.get("/containers/{id}/logs")
async def logs(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    c = svc.get(request.match_info["id"])
    stdout, stderr = qbool(request, "stdout"), qbool(request, "stderr")
    if not (stdout or stderr):
        raise InvalidParameter("Bad parameters: you must choose at least one stream")
    svc.check_logs_readable(c.id)   # before the answer starts
    gen = svc.logs(c.id, stdout=stdout, stderr=stderr, follow=qbool(request, "follow"),
                   tail=request.query.get("tail", "all"), timestamps=qbool(request, "timestamps"),
                   since=_time_param(request.query.get("since")) or None,
                   until=_time_param(request.query.get("until")),
                   alive=lambda: request.transport is not None and not request.transport.is_closing())
    resp = web.StreamResponse(headers={**HEADERS, "Content-Type": RAW if c.tty else MULTIPLEXED})
    await resp.prepare(request)
    try:
        async for chunk in gen:
            await resp.write(chunk)
    except (ConnectionError, asyncio.CancelledError):
        await gen.aclose()
        raise
    await resp.write_eof()
    return resp


@routes.post("/containers/{id}/attach")
async def attach(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    c = svc.get(request.match_info["id"])
    stdin, stdout, stderr = qbool(request, "stdin"), qbool(request, "stdout"), qbool(request, "stderr")
    want_logs, stream = qbool(request, "logs"), qbool(request, "stream")
    keys = parse_detach_keys(request.query.get("detachKeys") or c.config.get("DetachKeys") or None)
    conn = await hijack(request, c.tty)
    try:
        if want_logs and svc.keeps_logs(c.id):   # a log driver that keeps nothing has nothing to replay
            async for chunk in svc.logs(c.id, stdout=stdout, stderr=stderr):
                await conn.write(chunk)
        if not stream:
            return finished_response()
        try:
            pair = await svc.attach(c.id, stdin=stdin, stdout=stdout, stderr=stderr)
        except Exception:  # noqa: BLE001 - the container never ran or already exited
            return finished_response()
        if pair is None:
            return finished_response()
        reader, writer = pair
        if await pump(conn, reader, writer, stdin, keys if stdin else b""):
            svc._event(c, "detach")
        return finished_response()
    finally:
        conn.close()


@routes.get("/containers/{id}/top")
async def top(request: web.Request) -> web.Response:
    return web.json_response(await _svc(request).top(request.match_info["id"],
                                                     request.query.get("ps_args") or "-ef"))


@routes.get("/containers/{id}/stats")
async def stats(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    ref = request.match_info["id"]
    svc.get(ref)
    stream = qbool(request, "stream", True) and not qbool(request, "one-shot")
    if not stream:
        first = svc.stats(ref)
        if not qbool(request, "one-shot"):
            await asyncio.sleep(0.5)
            second = svc.stats(ref)
            second["precpu_stats"] = first["cpu_stats"]
            second["preread"] = first["read"]
            first = second
        return web.json_response(first)
    resp = web.StreamResponse(headers={**HEADERS, "Content-Type": "application/json"})
    await resp.prepare(request)
    prev: dict[str, Any] | None = None
    while True:
        try:
            cur = svc.stats(ref)
        except Exception:  # noqa: BLE001 - container removed
            break
        if prev is not None:
            cur["precpu_stats"] = prev["cpu_stats"]
            cur["preread"] = prev["read"]
        await resp.write(json.dumps(cur).encode() + b"\n")
        prev = cur
        c = svc._c.get(svc.get(ref).id) if ref else None
        if c is None or not c.running:
            break
        await asyncio.sleep(1.0)
    await resp.write_eof()
    return resp


def _stat_header(stat: dict[str, Any]) -> str:
    import base64
    return base64.b64encode(json.dumps(stat).encode()).decode()


@routes.route("HEAD", "/containers/{id}/archive")
async def archive_head(request: web.Request) -> web.Response:
    stat, _ = await _svc(request).archive(request.match_info["id"], request.query.get("path", ""), False)
    return web.Response(status=200, headers={"X-Docker-Container-Path-Stat": _stat_header(stat),
                                             "Content-Type": "application/json"})


@routes.get("/containers/{id}/archive")
async def archive_get(request: web.Request) -> web.StreamResponse:
    stat, chunks = await _svc(request).archive(request.match_info["id"], request.query.get("path", ""), True)
    resp = web.StreamResponse(headers={**HEADERS, "Content-Type": "application/x-tar",
                                       "X-Docker-Container-Path-Stat": _stat_header(stat)})
    await resp.prepare(request)
    async for data in chunks:
        await resp.write(data)
    await resp.write_eof()
    return resp


@routes.put("/containers/{id}/archive")
async def archive_put(request: web.Request) -> web.Response:
    async def body():
        async for data in request.content.iter_chunked(65536):
            yield data
    await _svc(request).extract(request.match_info["id"], request.query.get("path", ""), body())
    return web.Response(status=200)


@routes.get("/containers/{id}/export")
async def export(request: web.Request) -> web.StreamResponse:
    gen = _svc(request).export(request.match_info["id"])
    try:  # errors (no such container) before the 200 head
        first = await gen.__anext__()
    except StopAsyncIteration:
        first = b""
    resp = web.StreamResponse(headers={**HEADERS, "Content-Type": "application/x-tar"})
    await resp.prepare(request)
    await resp.write(first)
    async for data in gen:
        await resp.write(data)
    await resp.write_eof()
    return resp
