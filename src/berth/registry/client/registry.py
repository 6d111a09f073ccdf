"""`RegistryClient`: pull, push, search and login against any distribution registry."""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any

import aiohttp

from berth import errors
from berth.image import reference
from berth.image.reference import Reference
from berth.registry.client.endpoints import DOCKER_IO, Endpoint, endpoints, search_endpoint
from berth.registry.client.platform import parse_platform
from berth.registry.client.progress import Progress, Reporter
from berth.registry.client.pull import LocalImages, Puller
from berth.registry.client.push import PushCache, Pusher
from berth.registry.client.session import RegistrySession, RegistryUnreachable, error_from
from berth.registry.scope import repository

_RETRY_ON_MIRROR = (RegistryUnreachable, errors.NotFound, aiohttp.ClientError, asyncio.TimeoutError)


def registry_of_server(server: str | None) -> str:
    """The registry domain named by a login `serveraddress` (Hub's many spellings -> docker.io)."""
    s = (server or "").strip()
    for prefix in ("https://", "http://"):
        s = s.removeprefix(prefix)
    s = s.split("/", 1)[0]
    if s in ("", "docker.io", "index.docker.io", "registry-1.docker.io"):
        return DOCKER_IO
    return s


def split_search_term(term: str) -> tuple[str, str]:
    """`host:5000/foo` -> (host:5000, foo); `foo` -> (docker.io, foo)."""
    first, sep, rest = term.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return DOCKER_IO, term


class RegistryClient:
    def __init__(self, mirrors: list[str] | None = None, insecure: list[str] | None = None,
                 hub_endpoint: str = "", cache: PushCache | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.mirrors = list(mirrors or [])
        self.insecure = list(insecure if insecure is not None else ["127.0.0.0/8"])
        self.hub_endpoint = hub_endpoint
        self.cache = cache
        self.ssl_context = ssl_context
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=32, ttl_dns_cache=60),
                headers={"User-Agent": "berth/0.1"}, auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None, connect=30, sock_read=300))
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def session(self, endpoint: Endpoint, auth: dict[str, Any] | None) -> RegistrySession:
        return RegistrySession(self.http(), endpoint, auth, self.ssl_context)

    # ---- pull ---------------------------------------------------------------------------
    async def pull(self, ref: str | Reference, images: LocalImages, auth: dict[str, Any] | None = None,
                   progress: Progress | None = None, platform: str | None = None) -> Any:
        r = reference.parse(ref) if isinstance(ref, str) else ref
        want = parse_platform(platform)
        eps = endpoints(r.domain, self.mirrors, self.insecure, self.hub_endpoint)
        last: Exception | None = None
        for i, ep in enumerate(eps):
            # credentials are never sent to mirrors
            sess = self.session(ep, None if ep.mirror else auth)
            try:
                return await Puller(sess, images, Reporter(progress), want, self.cache,
                                    explicit_platform=bool(platform)).pull(r)
            except _RETRY_ON_MIRROR as exc:
                last = exc
                if not ep.mirror or i == len(eps) - 1:
                    raise
        assert last is not None
        raise last

    async def tags(self, ref: str | Reference, auth: dict[str, Any] | None = None) -> list[str]:
        """Every tag of a repository (following the registry's `Link` pagination)."""
        r = reference.parse(ref, default_tag=False) if isinstance(ref, str) else ref
        ep = endpoints(r.domain, self.mirrors, self.insecure, self.hub_endpoint, push=True)[0]
        sess = self.session(ep, auth)
        out: list[str] = []
        url: str | None = f"/v2/{r.path}/tags/list?n=1000"
        for _ in range(1000):
            if url is None:
                break
            resp = await sess.request("GET", url, scopes=[repository(r.path, "pull")])
            body = await resp.read()
            resp.release()
            if resp.status != 200:
                raise error_from(resp.status, body, f"listing tags of {r.familiar_name}")
            out += [t for t in (json.loads(body).get("tags") or []) if t not in out]
            link = resp.headers.get("Link", "")
            url = link[link.index("<") + 1:link.index(">")] if "<" in link and 'rel="next"' in link else None
        return out

    # ---- push ---------------------------------------------------------------------------
    async def push(self, ref: str | Reference, image: Any, images: LocalImages,
                   auth: dict[str, Any] | None = None, progress: Progress | None = None) -> tuple[str, int]:
        r = reference.parse(ref) if isinstance(ref, str) else ref
        if not r.tag:
            raise errors.InvalidParameter(f"push needs a tag: {r.familiar}")
        ep = endpoints(r.domain, self.mirrors, self.insecure, self.hub_endpoint, push=True)[0]
        rep = Reporter(progress)
        await rep.status(f"The push refers to repository [{r.name}]")
        return await Pusher(self.session(ep, auth), images, rep, self.cache).push(r, image)

    # ---- login and search -----------------------------------------------------------------
    async def login(self, auth: dict[str, Any]) -> dict[str, str]:
        domain = registry_of_server(auth.get("serveraddress"))
        if not (auth.get("username") or auth.get("identitytoken")):
            raise errors.InvalidParameter("login needs a username and password (or an identity token)")
        ep = endpoints(domain, [], self.insecure, self.hub_endpoint, push=True)[0]
        await self.session(ep, auth).check_login()
        return {"Status": "Login Succeeded", "IdentityToken": ""}

    async def search(self, term: str, limit: int = 25, auth: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        domain, q = split_search_term(term)
        if not q:
            raise errors.InvalidParameter("search term must not be empty")
        limit = max(1, min(int(limit or 25), 100))
        sess = self.session(search_endpoint(domain, self.insecure, self.hub_endpoint), auth)
        resp = await sess.request("GET", "/v1/search", params={"q": q, "n": str(limit)})
        body = await resp.read()
        resp.release()
        if resp.status != 200:
            raise error_from(resp.status, body, f"searching {domain}")
        try:
            doc = json.loads(body)
        except ValueError:
            raise errors.BerthError(f"search answer from {domain} is not JSON") from None
        results = doc.get("results") if isinstance(doc, dict) else None
        if not isinstance(results, list):
            raise errors.BerthError(f"search answer from {domain} has no results list")
        out = []
        for item in results[:limit]:
            if not isinstance(item, dict):
                continue
            name = str(item.get("name", ""))
            # names as the registry gives them, as dockerd passes them on
            out.append({"name": name,
                        "description": item.get("description") or "",
                        "star_count": int(item.get("star_count") or 0),
                        "is_official": bool(item.get("is_official")),
                        "is_automated": bool(item.get("is_automated"))})
        return out
