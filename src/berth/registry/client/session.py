"""One registry endpoint over aiohttp: scheme choice (https, then http where insecure),
auth negotiation from `WWW-Authenticate` (Basic, or Bearer tokens fetched from the realm
per scope), retries on `insufficient_scope`, and redirects followed without sending
credentials to another host."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from berth import errors
from berth.registry.client.challenge import Challenge, parse_challenges, pick
from berth.registry.client.endpoints import Endpoint
from berth.registry.scope import Scope, merge, parse_scopes

log = logging.getLogger("berth.registry.client")

USER_AGENT = "berth/0.1 (registry client)"


class RegistryUnreachable(errors.BerthError):
    status = 500


def error_from(status: int, body: bytes, what: str) -> errors.BerthError:
    """A BerthError carrying the registry's own error codes and messages."""
    detail = ""
    try:
        doc = json.loads(body or b"{}")
        errs = doc.get("errors") if isinstance(doc, dict) else None
        if errs:
            detail = "; ".join(f"{str(e.get('code', '')).lower()}: {e.get('message', '')}".strip(": ")
                               for e in errs if isinstance(e, dict))
        elif isinstance(doc, dict) and (doc.get("error") or doc.get("details")):
            detail = str(doc.get("error_description") or doc.get("details") or doc.get("error"))
    except (ValueError, AttributeError):
        detail = body[:200].decode(errors="replace").strip() if body else ""
    if status == 401:
        return errors.Unauthorized(f"{what}: {detail or 'unauthorized: authentication required'}")
    if status == 403:
        return errors.Forbidden(f"{what}: {detail or 'denied: requested access to the resource is denied'}")
    if status == 404:
        return errors.NotFound(f"{what}: {detail or 'not found'}")
    if status in (400, 405, 413, 416):
        return errors.InvalidParameter(f"{what}: {detail or f'registry answered {status}'}")
    err = errors.BerthError(f"{what}: registry answered {status}{': ' + detail if detail else ''}")
    return err


class RegistrySession:
    def __init__(self, http: aiohttp.ClientSession, endpoint: Endpoint, auth: dict[str, Any] | None = None,
                 ssl_context: ssl.SSLContext | bool | None = None) -> None:
        self.http = http
        self.endpoint = endpoint
        self.auth = dict(auth or {})
        self.base = ""
        self.challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}
        self._granted_scopes: list[Scope] = []
        self._ssl = ssl_context
        self._lock = asyncio.Lock()
        self._pinged = False

    @property
    def username(self) -> str:
        return str(self.auth.get("username") or "")

    @property
    def password(self) -> str:
        return str(self.auth.get("password") or "")

    @property
    def identity_token(self) -> str:
        return str(self.auth.get("identitytoken") or "")

    # ---- ping -----------------------------------------------------------------------------
    async def ping(self) -> int:
        """GET /v2/ on each candidate base URL until one answers; remembers the challenge.
        Returns the status of /v2/ (200 or 401)."""
        async with self._lock:
            if self._pinged:
                return 200
            last_exc: Exception | None = None
            for base in self.endpoint.candidates:
                try:
                    async with self.http.get(f"{base}/v2/", ssl=self._ssl_for(base),
                                             allow_redirects=False) as r:
                        await r.read()
                        if r.status in (200, 401):
                            self.base = base
                            self.challenge = pick(parse_challenges(r.headers.getall("WWW-Authenticate", [])))
                            self._pinged = True
                            return r.status
                        last_exc = RegistryUnreachable(f"{base}/v2/ answered {r.status}")
                except (TimeoutError, aiohttp.ClientError, ssl.SSLError, OSError) as exc:
                    last_exc = exc
                    log.debug("ping %s failed: %s", base, exc)
            raise RegistryUnreachable(f"registry {self.endpoint.domain} is unreachable at "
                                      f"{', '.join(self.endpoint.candidates)}: {last_exc}")

    def _ssl_for(self, url: str) -> Any:
        if not url.startswith("https://"):
            return None
        if self.endpoint.insecure and urlsplit(url).netloc == urlsplit(self.endpoint.url).netloc:
            return False  # an insecure registry: TLS without certificate checks, as docker does
        return self._ssl

    # ---- auth -----------------------------------------------------------------------------
    def _basic(self) -> str | None:
        if not self.username and not self.password:
            return None
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    async def _token(self, challenge: Challenge, scopes: list[Scope]) -> str:
        key = tuple(sorted(str(s) for s in scopes))
        cached = self._tokens.get(key)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        realm = challenge.realm
        if not realm:
            raise errors.Unauthorized("registry sent a Bearer challenge without a realm")
        params: list[tuple[str, str]] = []
        if challenge.service:
            params.append(("service", challenge.service))
        for s in scopes:
            params.append(("scope", str(s)))
        headers = {}
        if self.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": self.identity_token,
                    "client_id": "berth", "service": challenge.service,
                    "scope": " ".join(str(s) for s in scopes)}
            async with self.http.post(realm, data=form, ssl=self._ssl_for(realm)) as r:
                body = await r.read()
                status = r.status
        else:
            basic = self._basic()
            if basic:
                headers["Authorization"] = basic
                params.append(("account", self.username))
            async with self.http.get(realm, params=params, headers=headers, ssl=self._ssl_for(realm)) as r:
                body = await r.read()
                status = r.status
        if status != 200:
            if status in (401, 403):
                raise errors.Unauthorized(
                    f"unauthorized: incorrect username or password"
                    f"{' (' + error_from(status, body, 'token').args[0] + ')' if body else ''}"
                    if self.username or self.identity_token else
                    "unauthorized: authentication required")
            raise error_from(status, body, f"fetching a token from {realm}")
        try:
            doc = json.loads(body)
            token = doc.get("token") or doc.get("access_token")
            lifetime = int(doc.get("expires_in") or 60)
        except (ValueError, TypeError, AttributeError):
            token, lifetime = None, 60
        if not token:
            raise errors.Unauthorized(f"token endpoint {realm} answered without a token")
        # renew a little before the registry would refuse it (the spec's default life is 60 s)
        self._tokens[key] = (token, time.monotonic() + max(lifetime - 20, lifetime / 2))
        return token

    async def authorization(self, scopes: list[Scope]) -> str | None:
        ch = self.challenge
        if ch is None:
            return None
        if self.auth.get("registrytoken"):
            return f"Bearer {self.auth['registrytoken']}"  # a token the caller already holds
        if ch.scheme == "basic":
            return self._basic()
        if ch.scheme == "bearer":
            return "Bearer " + await self._token(ch, scopes)
        return None

    # ---- requests -------------------------------------------------------------------------
    async def request(self, method: str, path_or_url: str, *, scopes: list[Scope] | None = None,
                      headers: dict[str, str] | None = None, data: Any = None,
                      params: dict[str, str] | list[tuple[str, str]] | None = None,
                      follow: bool = True, timeout: aiohttp.ClientTimeout | None = None,
                      retry_auth: bool = True) -> aiohttp.ClientResponse:
        """Send a request, negotiating auth; the caller reads and releases the response.
        A body that is a file object cannot be re-sent: pass retry_auth=False for those after
        the first attempt has proven auth."""
        await self.ping()
        scopes = list(scopes or [])
        url = path_or_url if path_or_url.startswith(("http://", "https://")) else self.base + path_or_url
        for attempt in (0, 1):
            hdrs = dict(headers or {})
            auth = await self.authorization(scopes)
            if auth:
                hdrs["Authorization"] = auth
            resp = await self.http.request(method, url, headers=hdrs, data=data, params=params,
                                           allow_redirects=False, ssl=self._ssl_for(url),
                                           timeout=timeout or aiohttp.ClientTimeout(total=None, sock_read=300))
            ch = pick(parse_challenges(resp.headers.getall("WWW-Authenticate", []))) \
                if resp.status in (401, 403) else None
            if attempt == 0 and retry_auth and (resp.status == 401 or (
                    resp.status == 403 and ch is not None and ch.error == "insufficient_scope")):
                await resp.read()
                resp.release()
                if ch is None:
                    raise errors.Unauthorized(f"{method} {url}: unauthorized, and no challenge to answer")
                if ch.scheme == "bearer" and ch.scope:
                    try:
                        scopes = merge(scopes + parse_scopes([ch.scope]))
                    except ValueError:
                        pass
                    self._tokens.pop(tuple(sorted(str(s) for s in scopes)), None)
                self.challenge = ch
                if ch.scheme == "basic" and not self._basic():
                    raise errors.Unauthorized(f"unauthorized: authentication required by {self.endpoint.domain}")
                continue
            if follow and resp.status in (301, 302, 303, 307, 308) and method in ("GET", "HEAD"):
                return await self._follow(resp, method, url, hdrs)
            return resp
        raise AssertionError("unreachable")

    async def _follow(self, resp: aiohttp.ClientResponse, method: str, url: str,
                      hdrs: dict[str, str]) -> aiohttp.ClientResponse:
        origin = urlsplit(url).netloc
        for _ in range(10):
            loc = resp.headers.get("Location")
            await resp.read()
            resp.release()
            if not loc:
                raise errors.BerthError(f"{method} {url}: redirect without a Location")
            url = urljoin(url, loc)
            h = {k: v for k, v in hdrs.items() if k.lower() != "authorization"} \
                if urlsplit(url).netloc != origin else hdrs
            resp = await self.http.request(method, url, headers=h, allow_redirects=False,
                                           ssl=self._ssl_for(url),
                                           timeout=aiohttp.ClientTimeout(total=None, sock_read=300))
            if resp.status not in (301, 302, 303, 307, 308):
                return resp
        raise errors.BerthError(f"{method} {url}: too many redirects")

    async def check_login(self) -> None:
        """Prove the credentials: /v2/ (and a token when the registry uses bearer auth)."""
        status = await self.ping()
        if status == 200 and self.challenge is None:
            return
        resp = await self.request("GET", "/v2/")
        body = await resp.read()
        resp.release()
        if resp.status != 200:
            if resp.status == 401:
                raise errors.Unauthorized("unauthorized: incorrect username or password")
            raise error_from(resp.status, body, f"login to {self.endpoint.domain}")
