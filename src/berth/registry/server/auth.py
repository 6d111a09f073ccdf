"""Registry authentication: htpasswd (bcrypt) basic auth and Docker's bearer-token flow with
a built-in token endpoint issuing HS256 JWTs whose `access` claim lists granted scopes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import jwt

from berth.registry.scope import Scope, merge
from berth.registry.server.errors import RegistryError

TOKEN_TTL = 300
ISSUER = "berth-registry"


class Htpasswd:
    """An Apache htpasswd file of bcrypt hashes (`htpasswd -B`), re-read when it changes.
    Verified passwords are remembered (as a keyed hash) so bcrypt runs once per credential."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._mtime = -1.0
        self._users: dict[str, bytes] = {}
        self._ok: set[bytes] = set()
        self._key = secrets.token_bytes(32)
        self._load()

    def _load(self) -> None:
        st = self.path.stat()
        if st.st_mtime == self._mtime:
            return
        users: dict[str, bytes] = {}
        for line in self.path.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#") or ":" not in line:
                continue
            user, _, h = line.partition(":")
            users[user] = h.strip().encode()
        self._users, self._ok, self._mtime = users, set(), st.st_mtime

    def verify(self, user: str, password: str) -> bool:
        try:
            self._load()
        except OSError:
            return False
        h = self._users.get(user)
        if h is None:
            return False
        key = hmac.new(self._key, f"{user}\0{password}".encode() + b"\0" + h, hashlib.sha256).digest()
        if key in self._ok:
            return True
        if not h.startswith((b"$2a$", b"$2b$", b"$2y$")):
            return False  # only bcrypt entries are accepted, as distribution does
        try:
            ok = bcrypt.checkpw(password.encode(), b"$2b$" + h[4:])
        except ValueError:
            return False
        if ok:
            self._ok.add(key)
        return ok


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header[:6].lower() == "basic ":
        return None
    try:
        raw = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, pw = raw.partition(":")
    return (user, pw) if sep else None


def bearer_token(header: str | None) -> str | None:
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


@dataclass
class AuthSettings:
    htpasswd: str | None = None
    token_auth: bool = False
    anonymous_pull: bool = False
    service: str = "berth-registry"
    realm: str | None = None          # token endpoint URL; default: this server's /token
    token_key_file: str | None = None


class Authenticator:
    def __init__(self, settings: AuthSettings, root: Path) -> None:
        self.settings = settings
        self.htpasswd = Htpasswd(settings.htpasswd) if settings.htpasswd else None
        if settings.token_auth and not self.htpasswd:
            raise ValueError("--token-auth needs --htpasswd for the accounts it issues tokens to")
        self._key = self._load_key(Path(settings.token_key_file) if settings.token_key_file
                                   else root / "token.key") if settings.token_auth else b""

    @staticmethod
    def _load_key(path: Path) -> bytes:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            key = secrets.token_bytes(32)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key)
            return key

    @property
    def enabled(self) -> bool:
        return self.htpasswd is not None

    # ---- request authorisation -----------------------------------------------------------
    def _challenge(self, realm_base: str, needed: list[Scope], error: str | None = None) -> dict[str, str]:
        if not self.settings.token_auth:
            return {"WWW-Authenticate": f'Basic realm="{self.settings.service}"'}
        realm = self.settings.realm or f"{realm_base}/token"
        parts = [f'realm="{realm}"', f'service="{self.settings.service}"']
        if needed:
            parts.append(f'scope="{" ".join(str(s) for s in needed)}"')
        if error:
            parts.append(f'error="{error}"')
        return {"WWW-Authenticate": "Bearer " + ",".join(parts)}

    def _anonymous_allows(self, needed: list[Scope]) -> bool:
        return self.settings.anonymous_pull and bool(needed) and all(
            s.type == "repository" and set(s.actions) <= {"pull"} for s in needed)

    def authorize(self, authorization: str | None, needed: list[Scope], realm_base: str) -> str:
        """Returns the user name ('' for anonymous) or raises RegistryError 401."""
        if not self.enabled:
            return ""
        creds = basic_credentials(authorization)
        if creds is not None:
            assert self.htpasswd is not None
            if self.htpasswd.verify(*creds):
                return creds[0]
            raise RegistryError("UNAUTHORIZED", "authentication required: invalid username or password",
                                headers=self._challenge(realm_base, needed))
        token = bearer_token(authorization)
        if token is not None and self.settings.token_auth:
            try:
                claims = jwt.decode(token, self._key, algorithms=["HS256"], audience=self.settings.service,
                                    issuer=ISSUER)
            except jwt.PyJWTError as exc:
                raise RegistryError("UNAUTHORIZED", f"authentication required: invalid token: {exc}",
                                    headers=self._challenge(realm_base, needed, "invalid_token")) from None
            granted = [Scope(a.get("type", ""), a.get("name", ""), tuple(a.get("actions", [])))
                       for a in claims.get("access", []) if isinstance(a, dict)]
            if all(any(g.covers(n) for g in granted) for n in needed):
                return str(claims.get("sub", ""))
            if not claims.get("sub"):
                raise RegistryError("UNAUTHORIZED", "authentication required",
                                    detail=[{"Type": s.type, "Name": s.name, "Action": a}
                                            for s in needed for a in s.actions],
                                    headers=self._challenge(realm_base, needed, "insufficient_scope"))
            # RFC 6750: a user's valid token without the scope gets 403 insufficient_scope
            # (clients fetch a wider token from the challenge and retry)
            raise RegistryError("DENIED", "requested access to the resource is denied: the token lacks scope "
                                + " ".join(str(s) for s in needed),
                                detail=[{"Type": s.type, "Name": s.name, "Action": a}
                                        for s in needed for a in s.actions],
                                headers=self._challenge(realm_base, needed, "insufficient_scope"))
        if self._anonymous_allows(needed):
            return ""
        raise RegistryError("UNAUTHORIZED", "authentication required",
                            detail=[{"Type": s.type, "Name": s.name, "Action": a}
                                    for s in needed for a in s.actions] or None,
                            headers=self._challenge(realm_base, needed))

    # ---- token endpoint ----------------------------------------------------------------
    def grant(self, user: str | None, requested: list[Scope]) -> list[Scope]:
        out = []
        for sc in merge(requested):
            if user:
                allowed = {"pull", "push", "delete", "*"}
            elif self.settings.anonymous_pull and sc.type == "repository":
                allowed = {"pull"}
            else:
                allowed = set()
            acts = tuple(a for a in sc.actions if a in allowed)
            if acts:
                out.append(Scope(sc.type, sc.name, acts))
        return out

    def issue(self, user: str | None, requested: list[Scope]) -> dict[str, Any]:
        now = int(time.time())
        granted = self.grant(user, requested)
        claims = {"iss": ISSUER, "sub": user or "", "aud": self.settings.service, "iat": now,
                  "nbf": now - 5, "exp": now + TOKEN_TTL, "jti": uuid.uuid4().hex,
                  "access": [{"type": s.type, "name": s.name, "actions": list(s.actions)} for s in granted]}
        token = jwt.encode(claims, self._key, algorithm="HS256")
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        return {"token": token, "access_token": token, "expires_in": TOKEN_TTL, "issued_at": issued}
