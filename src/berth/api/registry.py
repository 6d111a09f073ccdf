"""Engine API routes: registry — `POST /images/{name}/push`, `GET /images/search`, `POST /auth`.
(Pull, `POST /images/create?fromImage=`, is served by api/images.py.)"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from berth.api.app import api_version, decode_platform, json_object, parse_filters, service
from berth.api.streams import progress_stream
from berth.errors import InvalidParameter, NotFound
from berth.image import reference
from berth.registry.auth_config import decode_registry_auth
from berth.registry.client.platform import Platform, normalize_arch

routes = web.RouteTableDef()


def _svc(request: web.Request) -> Any:
    return service(request, "registry", "registry")


@routes.post(r"/images/{name:.+}/push")
async def push(request: web.Request) -> web.StreamResponse:
    """No tag pushes every tag of the repository. `platform` (API 1.46, JSON; dockerd
    ignores it before) names the platform to push: berth keeps one platform per image, so,
    as dockerd's graphdriver store, it only checks that the image is of that platform."""
    svc = _svc(request)
    name = request.match_info["name"]
    tag = request.query.get("tag", "")
    ref = f"{name}:{tag}" if tag else name
    r = reference.parse(ref, default_tag=False)  # 400 for a bad name before streaming
    raw_platform = request.query.get("platform")
    if raw_platform and api_version(request) >= (1, 46):
        want = decode_platform(raw_platform)
        image = await asyncio.to_thread(service(request, "images", "image").resolve, r.full)
        check_platform(image, r.full, want)
    auth = decode_registry_auth(request.headers.get("X-Registry-Auth"))
    return await progress_stream(request, lambda progress: svc.push(ref, auth, progress))


def check_platform(image: Any, ref: str, want: Platform) -> None:
    """dockerd's GetImage with a platform: the image must be of it (os, architecture,
    variant; `arm64` takes `arm64/v8`), else 404 in its words."""
    cfg = image.config
    if Platform(want.os, normalize_arch(want.architecture), want.variant).matches(cfg):
        return
    actual = "/".join(str(cfg[k]) for k in ("os", "architecture", "variant") if cfg.get(k))
    raise NotFound(f"image with reference {ref} was found but does not match the specified platform: "
                   f"wanted {want}, actual: {actual}")


def _bool_filter(name: str, vals: list[str]) -> bool:
    v = vals[-1].lower()
    if v not in ("true", "false", "1", "0"):
        raise InvalidParameter(f"invalid filter '{name}={vals[-1]}'")
    return v in ("true", "1")


@routes.get("/images/search")
async def search(request: web.Request) -> web.Response:
    svc = _svc(request)
    term = request.query.get("term", "")
    if not term:
        raise InvalidParameter("term is required")
    try:
        limit = int(request.query.get("limit") or 25)
    except ValueError:
        raise InvalidParameter("limit must be an integer") from None
    if not 1 <= limit <= 100:
        raise InvalidParameter(f"limit {limit} is outside the range of [1, 100]")
    filters = parse_filters(request, ("is-official", "is-automated", "stars"), empty_ok=True)
    auth = decode_registry_auth(request.headers.get("X-Registry-Auth"))
    results = await svc.search(term, limit, auth)
    if "is-official" in filters:
        want = _bool_filter("is-official", filters["is-official"])
        results = [r for r in results if r["is_official"] == want]
    if "is-automated" in filters:
        want = _bool_filter("is-automated", filters["is-automated"])
        results = [r for r in results if r["is_automated"] == want]
    if "stars" in filters:
        try:
            stars = int(filters["stars"][-1])
        except ValueError:
            raise InvalidParameter(f"invalid filter 'stars={filters['stars'][-1]}'") from None
        results = [r for r in results if r["star_count"] >= stars]
    return web.json_response(results)


@routes.post("/auth")
async def auth(request: web.Request) -> web.Response:
    svc = _svc(request)
    body = await json_object(request, "the AuthConfig")
    return web.json_response(await svc.login({str(k).lower(): v for k, v in body.items()}))
