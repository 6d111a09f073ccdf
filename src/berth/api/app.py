"""The Engine API application: versioned paths, Docker's error shape, route tables per area.

Each area module (system, containers, exec, images, build, networks, volumes, registry)
exposes `routes = web.RouteTableDef()`; handlers reach the daemon as request.app[DAEMON].
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from aiohttp import web

from berth import API_VERSION, MIN_API_VERSION
from berth.errors import BerthError

if TYPE_CHECKING:
    from berth.registry.client.platform import Platform

log = logging.getLogger("berth.api")

_VERSIONED = re.compile(r"^/v(\d+\.\d+)(/.*)$")


# aiohttp's typed keys: the daemon behind the routes, and the API version a request was made at
DAEMON: web.AppKey[Any] = web.AppKey("daemon")
API_VERSION_KEY: web.RequestKey[str] = web.RequestKey("api_version", str)


def _vtuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def api_version(request: web.Request) -> tuple[int, ...]:
    """The API version the request was made at (its /vX.Y, else the newest we serve), as a
    tuple to compare with: dockerd gates fields and parameters on it (`versions.LessThan`)."""
    return _vtuple(str(request.get(API_VERSION_KEY) or API_VERSION))


@web.middleware
async def version_middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
    """Strip a /vX.Y prefix, refuse versions outside what we serve, remember the version."""
    m = _VERSIONED.match(request.rel_url.path)
    version = API_VERSION
    if m:
        version = m.group(1)
        if _vtuple(version) > _vtuple(API_VERSION):
            return json_error(
                f"client version {version} is too new. Maximum supported API version is {API_VERSION}", 400)
        if _vtuple(version) < _vtuple(MIN_API_VERSION):
            return json_error(
                f"client version {version} is too old. Minimum supported API version is {MIN_API_VERSION}, "
                "please upgrade your client to a newer version", 400)
    request[API_VERSION_KEY] = version
    resp = await handler(request)
    return resp


@web.middleware
async def error_middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            return json_error(exc.reason if not exc.text or exc.text.startswith(str(exc.status)) else exc.text,
                              exc.status)
        raise
    except BerthError as exc:
        if exc.status == 304:
            return web.Response(status=304, headers=_headers())
        return json_error(str(exc), exc.status)
    except Exception as exc:  # noqa: BLE001 - the API answers every failure in Docker's shape
        log.exception("%s %s failed", request.method, request.path)
        return json_error(f"{type(exc).__name__}: {exc}", 500)
    if isinstance(resp, web.StreamResponse) and not resp.prepared:
        resp.headers.update(_headers())
    return resp


def json_error(message: str, status: int) -> web.Response:
    """Docker's error body. The Content-Type must be exactly application/json (no charset):
    the docker CLI only decodes the message then."""
    import json

    return web.Response(body=json.dumps({"message": message}).encode(), status=status,
                        headers={**_headers(), "Content-Type": "application/json"})


def parse_filters(request: web.Request, allowed: Collection[str] | None = None, *,
                  empty_ok: bool = False) -> dict[str, list[str]]:
    """Docker's `filters` query parameter: {"k":["v"]} or the legacy {"k":{"v":true}}.

    With `allowed`, a key outside it is refused ("invalid filter 'k'") and a body that is
    not JSON / not an object is reported with the raw text, as the image, network, volume
    and search routes always did. `empty_ok` takes a JSON value that is false (null, [],
    0...) as no filters (the search route)."""
    import json

    from berth.errors import InvalidParameter

    raw = request.query.get("filters")
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        if allowed is not None:
            raise InvalidParameter(f"invalid filter: {raw!r} is not JSON") from None
        raise InvalidParameter(f"invalid filter: {exc}") from exc
    if empty_ok and not data:
        return {}
    if not isinstance(data, dict):
        raise InvalidParameter("invalid filter: must be a JSON object" if allowed is not None
                               else "invalid filter: expected a JSON object")
    out: dict[str, list[str]] = {}
    for k, v in data.items():
        if allowed is not None and k not in allowed:
            raise InvalidParameter(f"invalid filter '{k}'")
        if isinstance(v, dict):  # {"label": {"a=b": true}}
            out[k] = [x for x, on in v.items() if on]
        elif isinstance(v, list):
            out[k] = [str(x) for x in v]
        else:
            out[k] = [str(v)]
    return out


def service(request: web.Request, name: str, what: str) -> Any:
    """The daemon's `name` service (images, networks, builder, ...); while it has none, the
    answer is 503 "<what> service unavailable"."""
    svc = getattr(request.app[DAEMON], name, None)
    if svc is None:
        raise web.HTTPServiceUnavailable(text=f"{what} service unavailable")
    return svc


async def json_object(request: web.Request, what: str = "the request body") -> dict[str, Any]:
    """A request's JSON object body: none, blank or `null` give {}; anything else that is not
    a JSON object is refused (400) naming `what`."""
    import json

    from berth.errors import InvalidParameter

    raw = await request.read() if request.can_read_body else b""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidParameter(f"{what} is not valid JSON: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidParameter(f"{what} must be a JSON object, not {type(data).__name__}")
    return data


def qbool(request: web.Request, name: str, default: bool = False) -> bool:
    """dockerd's BoolValueOrDefault: `default` when the parameter is absent; else anything but
    ""/0/no/false/none (any case, spaces trimmed) is true."""
    v = request.query.get(name)
    if v is None:
        return default
    return v.strip().lower() not in ("", "0", "no", "false", "none")


def qint(request: web.Request, name: str, default: int | None = None) -> int | None:
    from berth.errors import InvalidParameter

    v = request.query.get(name)
    if v is None or v == "":
        return default
    try:
        return int(v)
    except ValueError as exc:
        raise InvalidParameter(f"invalid value for {name}: {v!r}") from exc


def decode_platform(raw: str) -> Platform:
    """A JSON-encoded OCI platform query value (`{"os":"linux","architecture":"arm64"}`),
    checked as dockerd's httputils.DecodePlatform: 400 for what is not one."""
    import json

    from berth.errors import InvalidParameter
    from berth.registry.client.platform import Platform

    try:
        p = json.loads(raw)
    except ValueError as exc:
        raise InvalidParameter(f"failed to parse platform: {exc}") from None
    if not isinstance(p, dict):
        raise InvalidParameter(f"failed to parse platform: json: cannot unmarshal {type(p).__name__} "
                               "into Go value of type v1.Platform")
    os_, arch = str(p.get("os") or ""), str(p.get("architecture") or "")
    if not (os_ or arch) and (p.get("variant") or p.get("os.version") or p.get("os.features")):
        raise InvalidParameter("optional platform fields provided, but OS and Architecture are missing")
    if not (os_ and arch):
        raise InvalidParameter("both OS and Architecture must be provided")
    return Platform(os_, arch, str(p.get("variant") or ""))


def _headers() -> dict[str, str]:
    return HEADERS


HEADERS = {"Api-Version": API_VERSION, "Server": "berth", "Docker-Experimental": "false",
           "Ostype": "linux"}


@web.middleware
async def timing_middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
    """With --debug: one log line per request with its duration."""
    import time

    t0 = time.perf_counter()
    try:
        return await handler(request)
    finally:
        log.debug("%s %s %.1f ms", request.method, request.path_qs, 1000 * (time.perf_counter() - t0))


def build_app(daemon: object) -> web.Application:
    from berth.api import build, containers, execs, images, networks, registry, system, volumes

    middlewares = [version_middleware, error_middleware]
    if getattr(getattr(daemon, "config", None), "debug", False):
        middlewares.insert(0, timing_middleware)
    app = web.Application(middlewares=middlewares, client_max_size=0)
    app[DAEMON] = daemon
    for mod in (system, containers, execs, images, build, networks, volumes, registry):
        for route in mod.routes:
            assert isinstance(route, web.RouteDef)
            # every path is served both bare and under /vX.Y, as dockerd does
            for path in (route.path, r"/v{_api_version:[0-9]+\.[0-9]+}" + route.path):
                app.router.add_route(route.method, path, route.handler, **route.kwargs)
    return app
