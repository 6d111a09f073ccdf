"""Engine API routes: networks (list, inspect, create, remove, connect, disconnect, prune)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from berth.api.app import parse_filters
from berth.errors import InvalidParameter, NotFound

routes = web.RouteTableDef()


def _svc(request: web.Request) -> Any:
    svc = request.app["daemon"].networks
    if svc is None:
        raise web.HTTPServiceUnavailable(text="network service unavailable")
    return svc


async def _body(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise InvalidParameter("invalid JSON body") from None
    if not isinstance(body, dict):
        raise InvalidParameter("the request body must be a JSON object")
    return body


async def _container(request: web.Request, ref: str) -> tuple[str, str]:
    """(full id, name) of a container given by name or id, through the container service."""
    containers = request.app["daemon"].containers
    if not ref:
        raise InvalidParameter("a container is required")
    if containers is None:
        return ref, ""
    info = await _maybe_await(containers.inspect(ref))
    return info["Id"], str(info.get("Name") or "").lstrip("/")


async def _maybe_await(v: Any) -> Any:
    if hasattr(v, "__await__"):
        return await v
    return v


@routes.get("/networks")
async def list_networks(request: web.Request) -> web.Response:
    filters = parse_filters(request, {"name", "id", "driver", "label", "type", "dangling", "scope"})
    return web.json_response(await _svc(request).list(filters))


@routes.get("/networks/{id}")
async def inspect_network(request: web.Request) -> web.Response:
    return web.json_response(await _svc(request).inspect(request.match_info["id"]))


@routes.post("/networks/create")
async def create_network(request: web.Request) -> web.Response:
    body = await _body(request)
    ipam = body.get("IPAM") or {}
    configs = ipam.get("Config") or []
    if len(configs) > 1:
        raise InvalidParameter("only one IPAM configuration (one IPv4 subnet) is supported")
    if ipam.get("Driver") not in (None, "", "default"):
        raise NotFound(f"plugin \"{ipam['Driver']}\" not found")
    cfg = configs[0] if configs else {}
    if body.get("EnableIPv6"):
        raise InvalidParameter("IPv6 networks are not supported")
    res = await _svc(request).create(
        name=str(body.get("Name") or ""), driver=str(body.get("Driver") or "bridge"),
        internal=bool(body.get("Internal")), subnet=str(cfg.get("Subnet") or ""),
        gateway=str(cfg.get("Gateway") or ""), labels=body.get("Labels") or {},
        options=body.get("Options") or {}, attachable=bool(body.get("Attachable")))
    events = request.app["daemon"].events
    if events is not None:
        events.publish("network", "create", res["Id"], name=str(body.get("Name")),
                       type=str(body.get("Driver") or "bridge"))
    return web.json_response(res, status=201)


@routes.delete("/networks/{id}")
async def remove_network(request: web.Request) -> web.Response:
    svc = _svc(request)
    info = await svc.inspect(request.match_info["id"])
    await svc.remove(info["Id"])
    events = request.app["daemon"].events
    if events is not None:
        events.publish("network", "destroy", info["Id"], name=info["Name"], type=info["Driver"])
    return web.Response(status=204)


@routes.post("/networks/{id}/connect")
async def connect_network(request: web.Request) -> web.Response:
    body = await _body(request)
    cid, name = await _container(request, str(body.get("Container") or ""))
    ep = body.get("EndpointConfig") or {}
    ipam_cfg = ep.get("IPAMConfig") or {}
    svc = _svc(request)
    await svc.connect(request.match_info["id"], cid, aliases=list(ep.get("Aliases") or []),
                      ipv4_address=str(ipam_cfg.get("IPv4Address") or ""), name=name)
    events = request.app["daemon"].events
    if events is not None:
        info = await svc.inspect(request.match_info["id"])
        events.publish("network", "connect", info["Id"], container=cid, name=info["Name"], type=info["Driver"])
    return web.Response(status=200)


@routes.post("/networks/{id}/disconnect")
async def disconnect_network(request: web.Request) -> web.Response:
    body = await _body(request)
    cid, _ = await _container(request, str(body.get("Container") or ""))
    svc = _svc(request)
    await svc.disconnect(request.match_info["id"], cid, force=bool(body.get("Force")))
    events = request.app["daemon"].events
    if events is not None:
        info = await svc.inspect(request.match_info["id"])
        events.publish("network", "disconnect", info["Id"], container=cid, name=info["Name"],
                       type=info["Driver"])
    return web.Response(status=200)


@routes.post("/networks/prune")
async def prune_networks(request: web.Request) -> web.Response:
    filters = parse_filters(request, {"label", "label!", "until"})
    filters.pop("until", None)
    removed = await _svc(request).prune(filters)
    return web.json_response({"NetworksDeleted": removed})
