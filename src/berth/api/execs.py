"""Engine API routes: exec create/start/inspect/resize."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from berth.api.app import DAEMON, json_object, qint
from berth.api.streams import finished_response, hijack, pump
from berth.errors import BerthError
from berth.shim.protocol import frame

routes = web.RouteTableDef()


def _svc(request: web.Request) -> Any:
    return request.app[DAEMON].containers



@routes.post("/containers/{id}/exec")
async def exec_create(request: web.Request) -> web.Response:
    eid = _svc(request).exec_create(request.match_info["id"], await json_object(request))
    return web.json_response({"Id": eid}, status=201)


@routes.post("/exec/{id}/start")
async def exec_start(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    eid = request.match_info["id"]
    body = await json_object(request)
    e = svc.get_exec(eid)
    detach = bool(body.get("Detach"))
    tty = bool(body.get("Tty")) or e.config["Tty"]
    if detach:
        await svc.exec_start(eid, detach=True, tty=tty, console_size=body.get("ConsoleSize"))
        return web.Response(status=200)
    svc.exec_check(eid)  # unknown exec, already started, container not running: plain HTTP errors
    # as dockerd: the connection is hijacked first and the process started after, so no output
    # can arrive before the client has read the 101 head; a failure to start goes into the
    # stream (the client then reads ExitCode 126/127 from exec inspect)
    conn = await hijack(request, tty)
    try:
        try:
            pair = await svc.exec_start(eid, detach=False, tty=tty, console_size=body.get("ConsoleSize"))
        except BerthError as exc:
            msg = f"{exc}\r\n".encode()
            await conn.write(msg if tty else frame(1, msg))
            return finished_response()
        if pair is not None:
            reader, writer = pair
            await pump(conn, reader, writer, e.config["AttachStdin"])
        try:
            await svc.exec_finished(eid)
        except BerthError:
            pass
        return finished_response()
    finally:
        conn.close()


@routes.get("/exec/{id}/json")
async def exec_inspect(request: web.Request) -> web.Response:
    return web.json_response(await _svc(request).exec_inspect(request.match_info["id"]))


@routes.post("/exec/{id}/resize")
async def exec_resize(request: web.Request) -> web.Response:
    svc = _svc(request)
    e = svc.get_exec(request.match_info["id"])
    await svc.resize(e.container_id, qint(request, "h", 0) or 0, qint(request, "w", 0) or 0, exec_id=e.id)
    return web.Response(status=200)
