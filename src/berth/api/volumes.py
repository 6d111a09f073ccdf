"""Engine API routes: volumes (list, inspect, create, remove, prune)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from berth.api.app import DAEMON, json_object, parse_filters, service

routes = web.RouteTableDef()


def _svc(request: web.Request) -> Any:
    return service(request, "volumes", "volume")


def _publish(request: web.Request, action: str, name: str) -> None:
    events = request.app[DAEMON].events
    if events is not None:
        events.publish("volume", action, name, driver="local")


@routes.get("/volumes")
async def list_volumes(request: web.Request) -> web.Response:
    filters = parse_filters(request, {"name", "driver", "label", "dangling"})
    vols = await asyncio.to_thread(_svc(request).list, filters)
    return web.json_response({"Volumes": vols, "Warnings": []})


@routes.get("/volumes/{name}")
async def inspect_volume(request: web.Request) -> web.Response:
    return web.json_response(await asyncio.to_thread(_svc(request).get, request.match_info["name"]))


@routes.post("/volumes/create")
async def create_volume(request: web.Request) -> web.Response:
    body = await json_object(request)
    vol = await asyncio.to_thread(_svc(request).create, str(body.get("Name") or ""),
                                  str(body.get("Driver") or "local"), body.get("DriverOpts") or {},
                                  body.get("Labels") or {})
    _publish(request, "create", vol["Name"])
    return web.json_response(vol, status=201)


@routes.delete("/volumes/{name}")
async def remove_volume(request: web.Request) -> web.Response:
    force = request.query.get("force", "").lower() in ("1", "true")
    name = request.match_info["name"]
    await asyncio.to_thread(_svc(request).remove, name, force)
    _publish(request, "destroy", name)
    return web.Response(status=204)


@routes.post("/volumes/prune")
async def prune_volumes(request: web.Request) -> web.Response:
    filters = parse_filters(request, {"label", "label!", "all", "until"})
    filters.pop("until", None)
    res = await asyncio.to_thread(_svc(request).prune, filters)
    for name in res["VolumesDeleted"]:
        _publish(request, "destroy", name)
    return web.json_response(res)
