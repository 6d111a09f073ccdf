"""Engine API routes: images (list, inspect, history, tag, remove, import, load, save,
prune, commit). Pull (`POST /images/create?fromImage=`) is served here too and handed to
the registry service; push/search/auth live in api/registry.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from berth.api.app import DAEMON, api_version, json_object, parse_filters, qbool, service
from berth.api.streams import CHUNK, json_line, progress_stream, spool_body
from berth.errors import BerthError, InvalidParameter, NotFound
from berth.image import reference
from berth.registry.auth_config import decode_registry_auth

routes = web.RouteTableDef()


def _svc(request: web.Request) -> Any:
    return service(request, "images", "image")


_FILTERS = frozenset({"dangling", "label", "label!", "before", "since", "reference", "until"})


def summary_at(img: dict[str, Any], version: tuple[int, ...]) -> dict[str, Any]:
    """One `GET /images/json` entry in the shape of API `version`, as dockerd's router
    makes it: `<none>` placeholders for untagged images before 1.43 (empty lists from
    then on), VirtualSize only before 1.44, and Containers -1 (not counted) before 1.51."""
    if version < (1, 43):
        if not img["RepoTags"] and not img["RepoDigests"]:
            img["RepoTags"], img["RepoDigests"] = ["<none>:<none>"], ["<none>@<none>"]
        else:  # dockerd of those versions answers null for an empty list
            img["RepoTags"] = img["RepoTags"] or None
            img["RepoDigests"] = img["RepoDigests"] or None
    if version >= (1, 44):
        img.pop("VirtualSize", None)
    if version < (1, 51):
        img["Containers"] = -1
    return img


def inspect_at(data: dict[str, Any], version: tuple[int, ...]) -> dict[str, Any]:
    """`GET /images/{name}/json` in the shape of API `version` (dockerd's getImagesByName):
    VirtualSize, and the zero time for a missing Created, only before 1.44 (Created is
    left out from then on); Container and ContainerConfig only before 1.45."""
    if version < (1, 44):
        data["VirtualSize"] = data["Size"]
        data["Created"] = data.get("Created") or "0001-01-01T00:00:00Z"
    else:
        data.pop("VirtualSize", None)
        if not data.get("Created"):
            data.pop("Created", None)
    if version >= (1, 45):
        data.pop("Container", None)
        data.pop("ContainerConfig", None)
    return data


@routes.get("/images/json")
async def list_images(request: web.Request) -> web.Response:
    """As dockerd's router: `all` shows intermediate images; `digests` is accepted and
    RepoDigests are always answered (dockerd ignores the flag too); `shared-size` from
    API 1.42; the legacy `filter=` before 1.41. `manifests` (API 1.47) fills `Manifests`
    only on a multi-platform image store (containerd's); berth keeps one platform per
    image, as dockerd's graphdriver store does, which leaves the field out too."""
    svc = _svc(request)
    version = api_version(request)
    filters = parse_filters(request, _FILTERS)
    if version < (1, 41) and request.query.get("filter"):
        filters.setdefault("reference", []).append(request.query["filter"])
    shared = version >= (1, 42) and qbool(request, "shared-size")
    out = await asyncio.to_thread(svc.filter_list, qbool(request, "all"), filters, shared)
    return web.json_response([summary_at(img, version) for img in out])


@routes.get("/images/get")
async def save_many(request: web.Request) -> web.StreamResponse:
    names = request.query.getall("names", [])
    if not names:
        raise InvalidParameter("no image names given (names=...)")
    return await _save(request, names)


@routes.post("/images/load")
async def load(request: web.Request) -> web.StreamResponse:
    svc = _svc(request)
    quiet = qbool(request, "quiet")
    path = await spool_body(request, str(svc.config.tmp_dir), "load-")
    try:
        def run() -> list[str]:
            with open(path, "rb") as f:
                return svc.load(f)
        try:
            loaded = await asyncio.to_thread(run)
        except BerthError as exc:
            raise InvalidParameter(str(exc)) if exc.status >= 500 else exc from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    for name in loaded:
        msg = f"Loaded image ID: {name}\n" if name.startswith("sha256:") else f"Loaded image: {name}\n"
        await resp.write(json_line({"stream": msg}))
    del quiet
    await resp.write_eof()
    return resp


@routes.post("/images/prune")
async def prune(request: web.Request) -> web.Response:
    svc = _svc(request)
    filters = parse_filters(request, _FILTERS)
    dangling = True
    if "dangling" in filters:
        dangling = filters.pop("dangling")[-1].lower() in ("true", "1")
    res = await asyncio.to_thread(svc.prune, dangling, filters)
    return web.json_response(res)


@routes.post("/images/create")
async def create(request: web.Request) -> web.StreamResponse:
    src = request.query.get("fromSrc")
    image = request.query.get("fromImage")
    if src is not None:
        return await _import(request, src)
    if image:
        return await _pull(request, image)
    raise InvalidParameter("either fromSrc or fromImage must be given")


async def _import(request: web.Request, src: str) -> web.StreamResponse:
    svc = _svc(request)
    repo = request.query.get("repo", "")
    tag = request.query.get("tag", "")
    changes = request.query.getall("changes", [])
    message = request.query.get("message", "")
    platform = request.query.get("platform", "")
    if repo:
        svc.tag_ref(repo, tag)  # validate before reading the body
    if src == "-":
        path = await spool_body(request, str(svc.config.tmp_dir), "load-")
    else:
        path = await _download(src, str(svc.config.tmp_dir))
    try:
        def run() -> Any:
            with open(path, "rb") as f:
                return svc.import_tar(f, repo=repo, tag=tag, changes=changes, message=message,
                                      source=src, platform=platform)
        img = await asyncio.to_thread(run)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    await resp.write(json_line({"status": img.id}))
    await resp.write_eof()
    return resp


async def _download(url: str, tmp_dir: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise InvalidParameter(f"fromSrc must be '-' or an http(s) URL, not {url!r}")
    import aiohttp
    fd, path = tempfile.mkstemp(prefix="load-", dir=tmp_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            async with aiohttp.ClientSession() as s, s.get(url) as r:
                if r.status != 200:
                    raise InvalidParameter(f"fetching {url}: HTTP {r.status}")
                async for chunk in r.content.iter_chunked(CHUNK):
                    f.write(chunk)
        return path
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise


async def _pull(request: web.Request, image: str) -> web.StreamResponse:
    registry = service(request, "registry", "registry")
    tag = request.query.get("tag", "")
    ref = image
    if tag:
        ref = f"{image}@{tag}" if ":" in tag and tag.startswith("sha256") else f"{image}:{tag}"
    reference.parse(ref)  # refuse invalid names with a 400 before streaming
    platform = request.query.get("platform") or None
    auth = decode_registry_auth(request.headers.get("X-Registry-Auth"))
    pull: Callable[..., Awaitable[Any]] = registry.pull
    return await progress_stream(request, lambda progress: pull(ref, auth, progress, platform=platform))


@routes.get(r"/images/{name:.+}/json")
async def inspect(request: web.Request) -> web.Response:
    svc = _svc(request)
    data = await asyncio.to_thread(svc.inspect, request.match_info["name"])
    return web.json_response(inspect_at(data, api_version(request)))


@routes.get(r"/images/{name:.+}/history")
async def history(request: web.Request) -> web.Response:
    svc = _svc(request)
    return web.json_response(await asyncio.to_thread(svc.history, request.match_info["name"]))


@routes.post(r"/images/{name:.+}/tag")
async def tag(request: web.Request) -> web.Response:
    svc = _svc(request)
    repo = request.query.get("repo", "")
    if not repo:
        raise InvalidParameter("repository name must have at least one component")
    await asyncio.to_thread(svc.tag, request.match_info["name"], repo, request.query.get("tag", ""))
    return web.Response(status=201)


@routes.get(r"/images/{name:.+}/get")
async def save_one(request: web.Request) -> web.StreamResponse:
    return await _save(request, [request.match_info["name"]])


async def _save(request: web.Request, names: list[str]) -> web.StreamResponse:
    svc = _svc(request)
    fmt = "oci" if request.query.get("format") == "oci" else "docker"
    fd, path = tempfile.mkstemp(prefix="save-", dir=str(svc.config.tmp_dir))
    try:
        def run() -> None:
            with os.fdopen(fd, "wb") as f:
                svc.save(names, f, fmt)
        await asyncio.to_thread(run)  # a missing image fails here, before anything is sent
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/x-tar"})
        await resp.prepare(request)
        with open(path, "rb") as f:
            while True:
                chunk = await asyncio.to_thread(f.read, CHUNK)
                if not chunk:
                    break
                await resp.write(chunk)
        await resp.write_eof()
        return resp
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


@routes.delete(r"/images/{name:.+}")
async def remove(request: web.Request) -> web.Response:
    svc = _svc(request)
    records = await asyncio.to_thread(svc.delete, request.match_info["name"],
                                      qbool(request, "force"), not qbool(request, "noprune"))
    return web.json_response(records)


@routes.post("/commit")
async def commit(request: web.Request) -> web.Response:
    d = request.app[DAEMON]
    svc = _svc(request)
    cid = request.query.get("container", "")
    if not cid:
        raise InvalidParameter("container is required (container=...)")
    repo = request.query.get("repo", "")
    tags = [svc.tag_ref(repo, request.query.get("tag", ""))] if repo else []
    body = await json_object(request, "the commit's body")
    info = await asyncio.to_thread(d.containers.inspect, cid)
    full_id = info["Id"]
    parent_id = info.get("Image") or ""
    parent = None
    if parent_id:
        try:
            parent = await asyncio.to_thread(svc.get, parent_id)
        except NotFound:
            parent = None
    cfg = dict((parent.config.get("config") or {}) if parent else {})
    ccfg = info.get("Config") or {}
    for k in ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes",
              "Labels", "StopSignal", "Healthcheck", "OnBuild", "Shell"):
        if ccfg.get(k) not in (None, "", [], {}):
            cfg[k] = ccfg[k]
    for k, v in (body or {}).items():
        if v not in (None, "", [], {}):
            cfg[k] = v
    pause = not request.query.get("pause", "").strip() or qbool(request, "pause")  # dockerd: blank is true
    paused = False
    if pause and (info.get("State") or {}).get("Running") and hasattr(d.containers, "pause"):
        try:
            await d.containers.pause(full_id)
            paused = True
        except BerthError:
            paused = False
    try:
        history = {"created_by": "", "comment": request.query.get("comment", ""),
                   "author": request.query.get("author", "")}
        img = await asyncio.to_thread(svc.commit, full_id, parent, cfg, history, tags,
                                      request.query.getall("changes", []),
                                      request.query.get("author", ""))
    finally:
        if paused:
            with contextlib.suppress(BerthError):
                await d.containers.unpause(full_id)
    return web.json_response({"Id": img.id}, status=201)

