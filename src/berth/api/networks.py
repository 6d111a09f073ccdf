"""Engine API routes: networks (list, inspect, create, remove, connect, disconnect, prune)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from berth.api.app import DAEMON, json_object, parse_filters, service
from berth.errors import InvalidParameter, NotFound
from berth.network.endpoint import requested

routes = web.RouteTableDef()


def _svc(request: web.Request) -> Any:
    return service(request, "networks", "network")



async def _container(request: web.Request, ref: str) -> tuple[str, str]:
    """(full id, name) of a container given by name or id, through the container service."""
    containers = request.app[DAEMON].containers
    if not ref:
        raise InvalidParameter("a container is required")
    if containers is None:
        return ref, ""
    info = containers.inspect(ref)
    return info["Id"], str(info.get("Name") or "").lstrip("/")


@routes.get("/networks")
async def list_networks(request: web.Request) -> web.Response:
    filters = parse_filters(request, {"name", "id", "driver", "label", "type", "dangling", "scope"})
    return web.json_response(await _svc(request).list(filters))


@routes.get("/networks/{id}")
async def inspect_network(request: web.Request) -> web.Response:
    return web.json_response(await _svc(request).inspect(request.match_info["id"]))


def ipam_by_version(configs: list) -> dict[int, dict]:
    """IPAM.Config entries keyed by IP version (of the Subnet, else of the Gateway): a
    network has at most one IPv4 and one IPv6 subnet."""
    out: dict[int, dict] = {}
    for cfg in configs:
        if not isinstance(cfg, dict):
            raise InvalidParameter("IPAM.Config entries must be objects")
        addr = str(cfg.get("Subnet") or cfg.get("Gateway") or "")
        version = 6 if ":" in addr else 4
        if version in out:
            raise InvalidParameter(f"only one IPv{version} subnet per network is supported")
        out[version] = cfg
    return out


# the driver options that stand for EnableIPv4/EnableIPv6 when those are not given (netlabel)
FAMILY_OPTIONS = {"EnableIPv4": ("com.docker.network.enable_ipv4", True),
                  "EnableIPv6": ("com.docker.network.enable_ipv6", False)}
_GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
             "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


def address_families(body: dict, options: dict[str, str]) -> tuple[bool, bool, dict[str, str]]:
    """(IPv4 enabled, IPv6 enabled, the options left) as dockerd's createNetwork settles
    them: EnableIPv4/EnableIPv6 when given (an option of the same meaning is then dropped,
    so inspect cannot contradict it), else the driver option (a Go bool, else dockerd's
    400), else IPv4 on and IPv6 off. EnableIPv4 is API 1.48 (docker 28's --ipv4=false);
    berth serves 1.47, to which docker 28 negotiates and still sends the field, so it is
    honoured at every version (dockerd 28 ignores it before 1.48)."""
    options = dict(options)
    enabled = []
    for field_name, (option, default) in FAMILY_OPTIONS.items():
        if body.get(field_name) is not None:
            enabled.append(bool(body[field_name]))
            options.pop(option, None)
        elif option in options:
            if options[option] not in _GO_BOOLS:
                raise InvalidParameter(f"driver-opt \"{option}\" is not a valid bool")
            enabled.append(_GO_BOOLS[options[option]])
        else:
            enabled.append(default)
    return enabled[0], enabled[1], options


@routes.post("/networks/create")
async def create_network(request: web.Request) -> web.Response:
    body = await json_object(request)
    ipam = body.get("IPAM") or {}
    if ipam.get("Driver") not in (None, "", "default"):
        raise NotFound(f"plugin \"{ipam['Driver']}\" not found")
    configs = ipam_by_version(ipam.get("Config") or [])
    v4, v6 = configs.get(4, {}), configs.get(6, {})
    ipv4, ipv6, options = address_families(body, {str(k): str(v) for k, v in (body.get("Options") or {}).items()})
    res = await _svc(request).create(
        name=str(body.get("Name") or ""), driver=str(body.get("Driver") or "bridge"),
        internal=bool(body.get("Internal")), subnet=str(v4.get("Subnet") or ""),
        gateway=str(v4.get("Gateway") or ""), labels=body.get("Labels") or {},
        options=options, attachable=bool(body.get("Attachable")),
        ipv4=ipv4, ipv6=ipv6, subnet6=str(v6.get("Subnet") or ""),
        gateway6=str(v6.get("Gateway") or ""))
    events = request.app[DAEMON].events
    if events is not None:
        events.publish("network", "create", res["Id"], name=str(body.get("Name")),
                       type=str(body.get("Driver") or "bridge"))
    return web.json_response(res, status=201)


@routes.delete("/networks/{id}")
async def remove_network(request: web.Request) -> web.Response:
    svc = _svc(request)
    info = await svc.inspect(request.match_info["id"])
    await svc.remove(info["Id"])
    events = request.app[DAEMON].events
    if events is not None:
        events.publish("network", "destroy", info["Id"], name=info["Name"], type=info["Driver"])
    return web.Response(status=204)


@routes.post("/networks/{id}/connect")
async def connect_network(request: web.Request) -> web.Response:
    body = await json_object(request)
    cid, name = await _container(request, str(body.get("Container") or ""))
    aliases, ipv4, ipv6, mac, link_local = requested(body.get("EndpointConfig"))
    driver_opts = (body.get("EndpointConfig") or {}).get("DriverOpts")
    if driver_opts is not None and not isinstance(driver_opts, dict):
        raise InvalidParameter("EndpointConfig.DriverOpts must be an object")
    svc = _svc(request)
    await svc.connect(request.match_info["id"], cid, aliases=aliases, ipv4_address=ipv4, name=name,
                      ipv6_address=ipv6, mac_address=mac, link_local_ips=link_local,
                      driver_opts=None if driver_opts is None else {str(k): str(v) for k, v in driver_opts.items()})
    request.app[DAEMON].containers.network_changed(cid)
    events = request.app[DAEMON].events
    if events is not None:
        info = await svc.inspect(request.match_info["id"])
        events.publish("network", "connect", info["Id"], container=cid, name=info["Name"], type=info["Driver"])
    return web.Response(status=200)


@routes.post("/networks/{id}/disconnect")
async def disconnect_network(request: web.Request) -> web.Response:
    body = await json_object(request)
    cid, _ = await _container(request, str(body.get("Container") or ""))
    svc = _svc(request)
    await svc.disconnect(request.match_info["id"], cid, force=bool(body.get("Force")))
    request.app[DAEMON].containers.network_changed(cid)
    events = request.app[DAEMON].events
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
