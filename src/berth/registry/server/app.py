"""HTTP handlers of berth-registry: the OCI distribution API, `/token` and `/v1/search`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from berth.image.spec import Index, Manifest
from berth.registry import mediatypes as mt
from berth.registry.names import name_problem, valid_digest, valid_tag
from berth.registry.scope import CATALOG, Scope, parse_scopes, repository
from berth.registry.server.auth import Authenticator, AuthSettings, basic_credentials
from berth.registry.server.errors import RegistryError
from berth.registry.server.search import Repo, search_response
from berth.registry.server.storage import FilesystemDriver, StorageDriver

log = logging.getLogger("berth.registry.server")

MAX_MANIFEST_SIZE = 4 << 20
API_HEADERS = {"Docker-Distribution-API-Version": "registry/2.0"}
USER: web.RequestKey[str] = web.RequestKey("user", str)  # who the request was authorized as

_UPLOAD = re.compile(r"^(?P<name>.+)/blobs/uploads/(?P<uid>[^/]*)$")
_BLOB = re.compile(r"^(?P<name>.+)/blobs/(?P<digest>[^/]+)$")
_MANIFEST = re.compile(r"^(?P<name>.+)/manifests/(?P<ref>[^/]+)$")
_TAGS = re.compile(r"^(?P<name>.+)/tags/list$")
_REFERRERS = re.compile(r"^(?P<name>.+)/referrers/(?P<digest>[^/]+)$")


@dataclass
class ServerSettings:
    root: Path
    auth: AuthSettings = field(default_factory=AuthSettings)
    read_only: bool = False
    fsync: bool = True


def _range_header(size: int) -> str:
    return f"0-{max(size - 1, 0)}"


def _parse_n(request: web.Request) -> tuple[int | None, str]:
    n_raw = request.query.get("n")
    n = None
    if n_raw is not None and n_raw != "":
        try:
            n = int(n_raw)
        except ValueError:
            raise RegistryError("PAGINATION_NUMBER_INVALID", f"invalid number of results requested: {n_raw!r}",
                                status=400) from None
        if n < 0:
            raise RegistryError("PAGINATION_NUMBER_INVALID", "n must not be negative", status=400)
    return n, request.query.get("last", "")


def _paginate(items: list[str], n: int | None, last: str, path: str, extra: dict[str, str] | None = None
              ) -> tuple[list[str], dict[str, str]]:
    items = sorted(items)
    if last:
        items = [i for i in items if i > last]
    headers = {}
    if n == 0:
        return [], headers
    if n is not None and len(items) > n:
        items = items[:n]
        q = {**(extra or {}), "n": str(n), "last": items[-1]}
        headers["Link"] = f'<{path}?{urlencode(q)}>; rel="next"'
    return items, headers


class Registry:
    def __init__(self, settings: ServerSettings, driver: StorageDriver | None = None) -> None:
        self.settings = settings
        self.driver = driver or FilesystemDriver(settings.root, fsync=settings.fsync)
        self.auth = Authenticator(settings.auth, Path(settings.root))

    # ---- application ----------------------------------------------------------------------
    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._log_middleware], client_max_size=MAX_MANIFEST_SIZE + 1)
        app.router.add_route("*", "/v2", self._v2_redirect)
        app.router.add_route("*", "/v2/{tail:.*}", self._dispatch)
        app.router.add_route("GET", "/token", self._token)
        app.router.add_route("POST", "/token", self._token)
        app.router.add_route("GET", "/v1/search", self._search)
        app.router.add_route("GET", "/v1/_ping", self._v1_ping)
        return app

    @web.middleware
    async def _log_middleware(self, request: web.Request, handler):  # type: ignore[no-untyped-def]
        start = time.monotonic()
        status = 500
        user = ""
        try:
            resp = await handler(request)
            status = resp.status
            return resp
        except RegistryError as exc:
            status = exc.status
            resp = exc.response(head=request.method == "HEAD")
            resp.headers.update(API_HEADERS)
            return resp
        except web.HTTPException as exc:
            status = exc.status
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            status = 499
            raise
        finally:
            creds = basic_credentials(request.headers.get("Authorization"))
            user = request.get(USER, creds[0] if creds else "")
            log.info('%s %s "%s %s" %d %.1fms', request.remote, user or "-", request.method,
                     request.path_qs, status, (time.monotonic() - start) * 1000)

    async def _v2_redirect(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPMovedPermanently("/v2/")

    def _authorize(self, request: web.Request, needed: list[Scope]) -> None:
        realm_base = f"{request.scheme}://{request.host}"
        request[USER] = self.auth.authorize(request.headers.get("Authorization"), needed, realm_base)

    def _writable(self) -> None:
        if self.settings.read_only:
            raise RegistryError("UNSUPPORTED", "the registry is in read-only mode", status=405)

    @staticmethod
    def _check_name(name: str) -> None:
        problem = name_problem(name)
        if problem:
            raise RegistryError("NAME_INVALID", f"invalid repository name {name!r}: {problem}",
                                detail={"name": name})

    @staticmethod
    def _check_digest(digest: str | None) -> str:
        if not digest or not valid_digest(digest):
            raise RegistryError("DIGEST_INVALID", f"invalid digest {digest!r}: want sha256:<64 hex> "
                                "or sha512:<128 hex>", detail={"digest": digest})
        return digest

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"]
        method = request.method
        if tail == "":
            self._authorize(request, [])
            return web.json_response({}, headers=API_HEADERS)
        if tail.rstrip("/") == "_catalog":
            if method != "GET":
                raise RegistryError("UNSUPPORTED", "method not allowed", status=405)
            self._authorize(request, [CATALOG])
            return await self._catalog(request)
        for pattern, kind in ((_UPLOAD, "upload"), (_BLOB, "blob"), (_MANIFEST, "manifest"),
                              (_TAGS, "tags"), (_REFERRERS, "referrers")):
            m = pattern.match(tail)
            if not m:
                continue
            name = m.group("name")
            self._check_name(name)
            actions = {"GET": ("pull",), "HEAD": ("pull",), "DELETE": ("delete",)}.get(method, ("pull", "push"))
            self._authorize(request, [repository(name, *actions)])
            if method not in ("GET", "HEAD"):
                self._writable()
            if kind == "upload":
                uid = m.group("uid")
                if uid == "":
                    if method != "POST":
                        break
                    return await self._upload_start(request, name)
                handler = {"GET": self._upload_status, "PATCH": self._upload_patch,
                           "PUT": self._upload_finish, "DELETE": self._upload_cancel}.get(method)
                if handler is None:
                    break
                return await handler(request, name, uid)
            if kind == "blob":
                digest = self._check_digest(m.group("digest"))
                if method in ("GET", "HEAD"):
                    return await self._blob_get(request, name, digest)
                if method == "DELETE":
                    return await self._blob_delete(request, name, digest)
                break
            if kind == "manifest":
                ref = m.group("ref")
                handler = {"GET": self._manifest_get, "HEAD": self._manifest_get, "PUT": self._manifest_put,
                           "DELETE": self._manifest_delete}.get(method)
                if handler is None:
                    break
                return await handler(request, name, ref)
            if kind == "tags" and method == "GET":
                return await self._tags(request, name)
            if kind == "referrers" and method == "GET":
                return await self._referrers(request, name, self._check_digest(m.group("digest")))
            break
        else:
            raise RegistryError("NOT_FOUND", f"no route for {method} /v2/{tail}", status=404)
        raise RegistryError("UNSUPPORTED", f"method {method} not allowed on /v2/{tail}", status=405)

    # ---- blobs ----------------------------------------------------------------------------
    async def _blob_get(self, request: web.Request, name: str, digest: str) -> web.StreamResponse:
        size = self.driver.blob_size(digest) if self.driver.blob_linked(name, digest) else None
        if size is None:
            raise RegistryError("BLOB_UNKNOWN", f"blob unknown to registry: {digest}", detail={"digest": digest})
        headers = {**API_HEADERS, "Docker-Content-Digest": digest, "Content-Type": "application/octet-stream",
                   "ETag": f'"{digest}"', "Cache-Control": "max-age=31536000", "Accept-Ranges": "bytes"}
        if request.method == "HEAD":
            headers["Content-Length"] = str(size)
            return web.Response(status=200, headers=headers)
        sock = request.transport.get_extra_info("socket") if request.transport else None
        if sock is not None and size > (8 << 20):
            # a bigger send buffer means fewer wake-ups of the event loop per sendfile()
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        return web.FileResponse(self.driver.blob_path(digest), headers=headers, chunk_size=1 << 20)

    async def _blob_delete(self, request: web.Request, name: str, digest: str) -> web.StreamResponse:
        if not self.driver.unlink_blob(name, digest):
            raise RegistryError("BLOB_UNKNOWN", f"blob unknown to registry: {digest}", detail={"digest": digest})
        return web.Response(status=202, headers={**API_HEADERS, "Content-Length": "0"})

    # ---- uploads --------------------------------------------------------------------------
    def _upload_headers(self, name: str, uid: str, size: int) -> dict[str, str]:
        return {**API_HEADERS, "Location": f"/v2/{name}/blobs/uploads/{uid}",
                "Range": _range_header(size), "Docker-Upload-UUID": uid, "Content-Length": "0"}

    def _blob_created(self, name: str, digest: str) -> web.Response:
        return web.Response(status=201, headers={**API_HEADERS, "Location": f"/v2/{name}/blobs/{digest}",
                                                 "Docker-Content-Digest": digest, "Content-Length": "0"})

    async def _receive(self, request: web.Request, name: str, uid: str) -> int:
        """Append the request body to the upload. Data is gathered into 1 MiB pieces that a
        worker thread hashes and writes while the event loop receives the next one; what
        arrived before a dropped connection stays in the upload (resumable)."""
        writer = self.driver.upload_writer(name, uid)
        buf = bytearray()
        pending: asyncio.Future[None] | None = None
        try:
            while True:
                chunk = await request.content.readany()
                if chunk:
                    buf += chunk
                if len(buf) >= (1 << 20) or (not chunk and buf):
                    if pending is not None:
                        await pending
                    piece, buf = bytes(buf), bytearray()
                    pending = asyncio.ensure_future(asyncio.to_thread(writer.write, piece))
                if not chunk:
                    break
        finally:
            if pending is not None:
                await asyncio.gather(pending, return_exceptions=True)
            if buf:  # received before the connection broke: keep it for a resumed upload
                writer.write(bytes(buf))
            writer.close()
        return writer.offset

    async def _upload_start(self, request: web.Request, name: str) -> web.StreamResponse:
        mount, source = request.query.get("mount"), request.query.get("from")
        if mount:
            self._check_digest(mount)
            if source and not name_problem(source) and self.driver.blob_linked(source, mount):
                try:
                    self._authorize(request, [repository(source, "pull")])
                    allowed = True
                except RegistryError:
                    allowed = False
                if allowed:
                    self.driver.link_blob(name, mount)
                    return self._blob_created(name, mount)
        digest = request.query.get("digest")
        uid = self.driver.new_upload(name)
        if digest:
            self._check_digest(digest)
            try:
                await self._receive(request, name, uid)
                await asyncio.to_thread(self.driver.commit_upload, name, uid, digest)
            except BaseException:
                try:
                    self.driver.cancel_upload(name, uid)
                except RegistryError:
                    pass
                raise
            return self._blob_created(name, digest)
        if request.content_length:
            await self._receive(request, name, uid)
        return web.Response(status=202, headers=self._upload_headers(name, uid, self.driver.upload_size(name, uid)))

    async def _upload_status(self, request: web.Request, name: str, uid: str) -> web.StreamResponse:
        size = self.driver.upload_size(name, uid)
        return web.Response(status=204, headers=self._upload_headers(name, uid, size))

    async def _upload_patch(self, request: web.Request, name: str, uid: str) -> web.StreamResponse:
        size = self.driver.upload_size(name, uid)
        cr = request.headers.get("Content-Range")
        if cr:
            m = re.match(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/\d+|/\*)?$", cr.strip())
            if not m or int(m.group(1)) != size or int(m.group(2)) < int(m.group(1)):
                raise RegistryError("RANGE_INVALID", f"Content-Range {cr!r} does not continue the upload "
                                    f"at offset {size}", status=416,
                                    headers={"Range": _range_header(size), "Location": f"/v2/{name}/blobs/uploads/{uid}"})
        size = await self._receive(request, name, uid)
        return web.Response(status=202, headers=self._upload_headers(name, uid, size))

    async def _upload_finish(self, request: web.Request, name: str, uid: str) -> web.StreamResponse:
        digest = self._check_digest(request.query.get("digest"))
        self.driver.upload_size(name, uid)  # unknown upload -> BLOB_UPLOAD_UNKNOWN
        await self._receive(request, name, uid)
        await asyncio.to_thread(self.driver.commit_upload, name, uid, digest)
        return self._blob_created(name, digest)

    async def _upload_cancel(self, request: web.Request, name: str, uid: str) -> web.StreamResponse:
        self.driver.cancel_upload(name, uid)
        return web.Response(status=204, headers={**API_HEADERS, "Content-Length": "0"})

    # ---- manifests ------------------------------------------------------------------------
    def _resolve(self, name: str, ref: str) -> tuple[str, str]:
        if ":" in ref:
            digest = self._check_digest(ref)
        else:
            if not valid_tag(ref):
                raise RegistryError("TAG_INVALID", f"invalid tag {ref!r}", status=400)
            found = self.driver.get_tag(name, ref)
            if found is None:
                if not self.driver.repo_exists(name):
                    raise RegistryError("NAME_UNKNOWN", f"repository name not known to registry: {name}",
                                        detail={"name": name})
                raise RegistryError("MANIFEST_UNKNOWN", f"manifest unknown: {name}:{ref}",
                                    detail={"tag": ref})
            digest = found
        media_type = self.driver.manifest_media_type(name, digest)
        if media_type is None:
            raise RegistryError("MANIFEST_UNKNOWN", f"manifest unknown: {name}@{digest}",
                                detail={"digest": digest})
        return digest, media_type

    async def _manifest_get(self, request: web.Request, name: str, ref: str) -> web.StreamResponse:
        digest, media_type = self._resolve(name, ref)
        data = self.driver.read_blob(digest)
        headers = {**API_HEADERS, "Content-Type": media_type, "Docker-Content-Digest": digest,
                   "ETag": f'"{digest}"'}
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(data))
            return web.Response(status=200, headers=headers)
        return web.Response(status=200, body=data, headers=headers)

    async def _manifest_put(self, request: web.Request, name: str, ref: str) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > MAX_MANIFEST_SIZE:
            raise RegistryError("MANIFEST_INVALID", f"manifest too big: {request.content_length} bytes "
                                f"exceeds the {MAX_MANIFEST_SIZE >> 20} MiB limit", status=413)
        data = bytearray()
        while chunk := await request.content.readany():
            data += chunk
            if len(data) > MAX_MANIFEST_SIZE:
                raise RegistryError("MANIFEST_INVALID", f"manifest too big: more than "
                                    f"{MAX_MANIFEST_SIZE >> 20} MiB", status=413)
        body = bytes(data)
        tag = None
        if ":" in ref:
            self._check_digest(ref)
        elif not valid_tag(ref):
            raise RegistryError("TAG_INVALID", f"invalid tag {ref!r}", detail={"tag": ref})
        else:
            tag = ref
        try:
            pm = mt.parse_manifest(body, request.headers.get("Content-Type"))
        except ValueError as exc:
            raise RegistryError("MANIFEST_INVALID", f"manifest invalid: {exc}") from None
        algo = ref.partition(":")[0] if tag is None else "sha256"
        digest = f"{algo}:{hashlib.new(algo, body).hexdigest()}"
        if tag is None and digest != ref:
            raise RegistryError("DIGEST_INVALID", f"manifest digest {digest} does not match {ref}",
                                detail={"expected": ref, "actual": digest})
        missing = self._unknown_references(name, pm)
        if missing:
            raise RegistryError("MANIFEST_BLOB_UNKNOWN", f"manifest references blobs unknown to "
                                f"repository {name}: {', '.join(missing)}", detail={"digests": missing})
        await asyncio.to_thread(self.driver.put_manifest, name, digest, body, pm.media_type)
        if tag:
            self.driver.set_tag(name, tag, digest)
            desc = self._description_of(name, pm)
            if desc is not None:
                self.driver.set_description(name, desc)
        headers = {**API_HEADERS, "Location": f"/v2/{name}/manifests/{digest}", "Docker-Content-Digest": digest,
                   "Content-Length": "0"}
        if pm.subject:
            desc: dict[str, Any] = {"mediaType": pm.media_type, "digest": digest, "size": len(body)}
            artifact = pm.artifact_type or (pm.config.media_type if isinstance(pm, Manifest) else "")
            if artifact:
                desc["artifactType"] = artifact
            if pm.annotations:
                desc["annotations"] = pm.annotations
            self.driver.add_referrer(name, pm.subject.digest, desc)
            headers["OCI-Subject"] = pm.subject.digest
        return web.Response(status=201, headers=headers)

    def _unknown_references(self, name: str, pm: Manifest | Index) -> list[str]:
        """What `pm` refers to that the repository lacks: an index's manifests, a manifest's
        config and layers (foreign layers need not be held)."""
        refs = pm.manifests if isinstance(pm, Index) else [d for d in (pm.config, *pm.layers) if not d.foreign]
        for d in refs:
            if not valid_digest(d.digest):
                raise RegistryError("MANIFEST_INVALID", f"manifest invalid: bad digest {d.digest!r}")
        if isinstance(pm, Index):
            return [d.digest for d in refs if self.driver.manifest_media_type(name, d.digest) is None]
        return [d.digest for d in refs if not self.driver.blob_linked(name, d.digest)]

    def _description_of(self, name: str, pm: Manifest | Index, depth: int = 0) -> str | None:
        if pm.annotations and mt.DESCRIPTION_KEY in pm.annotations:
            return pm.annotations[mt.DESCRIPTION_KEY]
        try:
            if isinstance(pm, Manifest) and pm.config.size < (1 << 20):
                cfg = json.loads(self.driver.read_blob(pm.config.digest))
                labels = ((cfg.get("config") or {}).get("Labels") or {}) if isinstance(cfg, dict) else {}
                if isinstance(labels, dict) and mt.DESCRIPTION_KEY in labels:
                    return str(labels[mt.DESCRIPTION_KEY])
            if isinstance(pm, Index) and pm.manifests and depth == 0:
                child = pm.manifests[0]
                sub = mt.parse_manifest(self.driver.read_blob(child.digest), child.media_type or None)
                return self._description_of(name, sub, depth + 1)
        except (OSError, ValueError):
            return None
        return None

    async def _manifest_delete(self, request: web.Request, name: str, ref: str) -> web.StreamResponse:
        if ":" in ref:
            self._check_digest(ref)
            if not self.driver.delete_manifest(name, ref):
                raise RegistryError("MANIFEST_UNKNOWN", f"manifest unknown: {name}@{ref}", detail={"digest": ref})
        elif not self.driver.delete_tag(name, ref):
            raise RegistryError("MANIFEST_UNKNOWN", f"manifest unknown: {name}:{ref}", detail={"tag": ref})
        return web.Response(status=202, headers={**API_HEADERS, "Content-Length": "0"})

    # ---- listings -------------------------------------------------------------------------
    async def _tags(self, request: web.Request, name: str) -> web.StreamResponse:
        if not self.driver.repo_exists(name):
            raise RegistryError("NAME_UNKNOWN", f"repository name not known to registry: {name}",
                                detail={"name": name})
        n, last = _parse_n(request)
        tags, headers = _paginate(self.driver.tags(name), n, last, f"/v2/{quote(name)}/tags/list")
        return web.json_response({"name": name, "tags": tags}, headers={**API_HEADERS, **headers})

    async def _referrers(self, request: web.Request, name: str, digest: str) -> web.StreamResponse:
        """OCI 1.1: an index of the manifests whose `subject` is `digest`."""
        found = self.driver.referrers(name, digest)
        headers = dict(API_HEADERS)
        want = request.query.get("artifactType")
        if want:
            found = [d for d in found if d.get("artifactType") == want]
            headers["OCI-Filters-Applied"] = "artifactType"
        return web.json_response({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": found},
                                 headers=headers, content_type=mt.OCI_INDEX)

    async def _catalog(self, request: web.Request) -> web.StreamResponse:
        n, last = _parse_n(request)
        repos, headers = _paginate(self.driver.repositories(), n, last, "/v2/_catalog")
        return web.json_response({"repositories": repos}, headers={**API_HEADERS, **headers})

    # ---- token endpoint and search ---------------------------------------------------------
    async def _token(self, request: web.Request) -> web.StreamResponse:
        if not self.settings.auth.token_auth:
            raise web.HTTPNotFound(text="token authentication is not enabled")
        params: dict[str, Any] = dict(request.query)
        scopes = request.query.getall("scope", [])
        user: str | None = None
        if request.method == "POST":
            form = await request.post()
            params.update({k: str(v) for k, v in form.items()})
            scopes = [str(v) for v in form.getall("scope", [])] or scopes
            grant = params.get("grant_type")
            if grant != "password":
                return web.json_response({"error": "unsupported_grant_type",
                                          "error_description": f"grant_type {grant!r} is not supported"},
                                         status=400)
            user_s, pw = str(params.get("username", "")), str(params.get("password", ""))
            if not (self.auth.htpasswd and self.auth.htpasswd.verify(user_s, pw)):
                return web.json_response({"error": "invalid_grant",
                                          "error_description": "invalid username or password"}, status=401)
            user = user_s
        else:
            creds = basic_credentials(request.headers.get("Authorization"))
            if creds is not None:
                if not (self.auth.htpasswd and self.auth.htpasswd.verify(*creds)):
                    return RegistryError("UNAUTHORIZED", "authentication failed: invalid username or password",
                                         headers={"WWW-Authenticate": 'Basic realm="berth-registry token"'}
                                         ).response()
                user = creds[0]
        service = params.get("service")
        if service and service != self.settings.auth.service:
            return RegistryError("DENIED", f"unknown service {service!r}", status=400).response()
        try:
            requested = parse_scopes(scopes)
        except ValueError as exc:
            return RegistryError("UNSUPPORTED", str(exc), status=400).response()
        request[USER] = user or ""
        return web.json_response(self.auth.issue(user, requested))

    async def _search(self, request: web.Request) -> web.StreamResponse:
        if self.auth.enabled and not self.settings.auth.anonymous_pull:
            self._authorize(request, [CATALOG])
        query = request.query.get("q", "")
        try:
            n = int(request.query.get("n", "25") or 25)
            page = int(request.query.get("page", "1") or 1)
        except ValueError:
            raise RegistryError("UNSUPPORTED", "n and page must be integers", status=400) from None
        repos = [Repo(r, self.driver.description(r)) for r in self.driver.repositories()]
        return web.json_response(search_response(repos, query, n, page))

    async def _v1_ping(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(True)
