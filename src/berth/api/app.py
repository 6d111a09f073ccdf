"""The Engine API application: versioned paths, Docker's error shape, route tables per area.

Each area module (system, containers, exec, images, build, networks, volumes, registry)
exposes `routes = web.RouteTableDef()`; handlers reach the daemon as request.app["daemon"].
"""

from __future__ import annotations

import logging
import re

from aiohttp import web

from berth import API_VERSION, MIN_API_VERSION
from berth.errors import BerthError

log = logging.getLogger("berth.api")

_VERSIONED = re.compile(r"^/v(\d+\.\d+)(/.*)$")


def _vtuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


@web.middleware
async def version_middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
    """Strip a /vX.Y prefix, refuse versions outside what we serve, remember the version."""
    m = _VERSIONED.match(request.rel_url.path)
    version = API_VERSION
    if m:
        version = m.group(1)
        if _vtuple(version) > _vtuple(API_VERSION):
            return web.json_response(
                {"message": f"client version {version} is too new. Maximum supported API version is {API_VERSION}"},
                status=400)
        if _vtuple(version) < _vtuple(MIN_API_VERSION):
            return web.json_response(
                {"message": f"client version {version} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"},
                status=400)
    request["api_version"] = version
    resp = await handler(request)
    return resp


@web.middleware
async def error_middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            return web.json_response({"message": exc.reason if not exc.text or exc.text.startswith(str(exc.status)) else exc.text},
                                     status=exc.status, headers=_headers())
        raise
    except BerthError as exc:
        return web.json_response({"message": str(exc)}, status=exc.status, headers=_headers())
    except Exception as exc:  # noqa: BLE001 - the API answers every failure in Docker's shape
        log.exception("%s %s failed", request.method, request.path)
        return web.json_response({"message": f"{type(exc).__name__}: {exc}"}, status=500,
                                 headers=_headers())
    if isinstance(resp, web.StreamResponse) and not resp.prepared:
        resp.headers.update(_headers())
    return resp


def _headers() -> dict[str, str]:
    return {"Api-Version": API_VERSION, "Server": "berth", "Docker-Experimental": "false",
            "Ostype": "linux"}


def build_app(daemon: object) -> web.Application:
    from berth.api import build, containers, execs, images, networks, registry, system, volumes

    app = web.Application(middlewares=[version_middleware, error_middleware], client_max_size=0)
    app["daemon"] = daemon
    for mod in (system, containers, execs, images, build, networks, volumes, registry):
        for route in mod.routes:
            assert isinstance(route, web.RouteDef)
            # every path is served both bare and under /vX.Y, as dockerd does
            for path in (route.path, r"/v{_api_version:[0-9]+\.[0-9]+}" + route.path):
                app.router.add_route(route.method, path, route.handler, **route.kwargs)
    return app
