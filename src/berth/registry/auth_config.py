"""Client credentials in Docker's `config.json` format.

The file is `$BERTH_CONFIG/config.json`, else `~/.berth/config.json`; it is written with mode
0600 through a temp file and rename. `auths` maps a server to `{"auth": base64("user:pass")}`
(plus `identitytoken`); `credsStore` / `credHelpers` send credentials to a
`docker-credential-<name>` helper (`get`, `store`, `erase` over stdin/stdout) instead.

Docker Hub is keyed `https://index.docker.io/v1/`, other registries by `host[:port]`.
`encode_registry_auth` / `decode_registry_auth` handle the Engine API's X-Registry-Auth header.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from berth.errors import BerthError, InvalidParameter

HUB_KEY = "https://index.docker.io/v1/"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/",
                "https://index.docker.io/v1", "https://registry-1.docker.io", "https://docker.io"}


class CredentialHelperError(BerthError):
    status = 500


def config_dir() -> Path:
    env = os.environ.get("BERTH_CONFIG")
    return Path(env) if env else Path.home() / ".berth"


def default_path() -> Path:
    return config_dir() / "config.json"


def server_key(server: str | None) -> str:
    """The key a server's credentials live under: Hub's legacy URL, or `host[:port]`."""
    s = (server or "").strip()
    if not s or s in _HUB_ALIASES:
        return HUB_KEY
    for prefix in ("https://", "http://"):
        if s.startswith(prefix):
            s = s[len(prefix):]
    s = s.split("/", 1)[0]
    return HUB_KEY if s in _HUB_ALIASES else s


def _b64decode(s: str) -> bytes:
    s = s.strip()
    pad = "=" * (-len(s) % 4)
    try:
        return base64.urlsafe_b64decode(s + pad) if ("-" in s or "_" in s) else base64.b64decode(s + pad)
    except (binascii.Error, ValueError) as exc:
        raise InvalidParameter(f"invalid base64 credentials: {exc}") from None


def encode_registry_auth(auth: dict[str, Any]) -> str:
    """X-Registry-Auth header value (base64url of the AuthConfig JSON), as the docker CLI sends."""
    return base64.urlsafe_b64encode(json.dumps(auth).encode()).decode()


def decode_registry_auth(header: str | None) -> dict[str, Any]:
    """The decoded X-Registry-Auth header; {} when absent or empty (anonymous)."""
    if not header or not header.strip():
        return {}
    try:
        data = json.loads(_b64decode(header))
    except ValueError:
        raise InvalidParameter("X-Registry-Auth is not base64-encoded JSON") from None
    if not isinstance(data, dict):
        raise InvalidParameter("X-Registry-Auth must encode a JSON object")
    return {k.lower(): v for k, v in data.items()}


class AuthConfigFile:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else default_path()

    # ---- file ---------------------------------------------------------------------------
    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise InvalidParameter(f"{self.path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidParameter(f"{self.path} must hold a JSON object")
        return data

    def save(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".config.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent="\t")
                f.write("\n")
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # ---- helpers ------------------------------------------------------------------------
    def helper_for(self, key: str, data: dict[str, Any] | None = None) -> str | None:
        data = self.load() if data is None else data
        helpers = data.get("credHelpers") or {}
        if key in helpers:
            return str(helpers[key])
        bare = key.removeprefix("https://").split("/", 1)[0]
        if bare in helpers:
            return str(helpers[bare])
        store = data.get("credsStore")
        return str(store) if store else None

    @staticmethod
    def _run_helper(helper: str, action: str, payload: str) -> str:
        exe = f"docker-credential-{helper}"
        try:
            res = subprocess.run([exe, action], input=payload, capture_output=True, text=True, timeout=60)
        except FileNotFoundError:
            raise CredentialHelperError(f"credential helper {exe} not found in PATH") from None
        if res.returncode != 0:
            out = (res.stdout or res.stderr).strip()
            if action == "get" and "credentials not found" in out.lower():
                return ""
            raise CredentialHelperError(f"credential helper {exe} {action} failed: {out}")
        return res.stdout

    # ---- credentials --------------------------------------------------------------------
    def get(self, server: str | None) -> dict[str, str] | None:
        """AuthConfig dict (username, password, serveraddress, identitytoken) or None."""
        key = server_key(server)
        data = self.load()
        helper = self.helper_for(key, data)
        if helper:
            out = self._run_helper(helper, "get", key)
            if not out.strip():
                return None
            creds = json.loads(out)
            user, secret = creds.get("Username", ""), creds.get("Secret", "")
            if user == "<token>":
                return {"username": "", "password": "", "serveraddress": key, "identitytoken": secret}
            return {"username": user, "password": secret, "serveraddress": key}
        entry = (data.get("auths") or {}).get(key)
        if entry is None and key == HUB_KEY:
            for alias in _HUB_ALIASES:
                entry = (data.get("auths") or {}).get(alias) or entry
        if not entry:
            return None
        user = entry.get("username", "")
        password = entry.get("password", "")
        if entry.get("auth"):
            raw = _b64decode(entry["auth"]).decode()
            user, _, password = raw.partition(":")
        out = {"username": user, "password": password, "serveraddress": key}
        if entry.get("identitytoken"):
            out["identitytoken"] = entry["identitytoken"]
        return out

    def store(self, server: str | None, username: str, password: str, identitytoken: str = "") -> None:
        key = server_key(server)
        data = self.load()
        helper = self.helper_for(key, data)
        if helper:
            secret = identitytoken or password
            self._run_helper(helper, "store", json.dumps(
                {"ServerURL": key, "Username": "<token>" if identitytoken else username, "Secret": secret}))
            data.setdefault("auths", {})[key] = {}
        else:
            entry: dict[str, str] = {"auth": base64.b64encode(f"{username}:{password if not identitytoken else ''}"
                                                              .encode()).decode()}
            if identitytoken:
                entry["identitytoken"] = identitytoken
            data.setdefault("auths", {})[key] = entry
        self.save(data)

    def erase(self, server: str | None) -> bool:
        """Remove the credential; False when there was none."""
        key = server_key(server)
        data = self.load()
        helper = self.helper_for(key, data)
        found = key in (data.get("auths") or {})
        if helper:
            try:
                self._run_helper(helper, "erase", key)
                found = True
            except CredentialHelperError:
                if not found:
                    return False
        if key in (data.get("auths") or {}):
            del data["auths"][key]
            self.save(data)
        return found

    def all(self) -> dict[str, dict[str, str]]:
        data = self.load()
        out = {}
        for key in (data.get("auths") or {}):
            creds = self.get(key) if not self.helper_for(key, data) else None
            if creds:
                out[key] = creds
        return out
