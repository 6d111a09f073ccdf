"""Client credentials in Docker's config.json format, and the X-Registry-Auth header."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from berth.registry.auth_config import (
    HUB_KEY,
    AuthConfigFile,
    decode_registry_auth,
    encode_registry_auth,
    server_key,
)


def test_store_get_erase(tmp_path: Path) -> None:
    f = AuthConfigFile(tmp_path / "cfg" / "config.json")
    assert f.get("127.0.0.1:5000") is None
    f.store("127.0.0.1:5000", "alice", "s3cret")
    mode = stat.S_IMODE(os.stat(f.path).st_mode)
    assert mode == 0o600
    doc = json.loads(f.path.read_text())
    assert doc == {"auths": {"127.0.0.1:5000": {"auth": "YWxpY2U6czNjcmV0"}}}
    assert f.get("http://127.0.0.1:5000/v2/") == {"username": "alice", "password": "s3cret",
                                                   "serveraddress": "127.0.0.1:5000"}
    f.store(None, "bob", "pw")
    assert f.get("docker.io")["username"] == "bob"
    assert HUB_KEY in json.loads(f.path.read_text())["auths"]
    assert f.erase("127.0.0.1:5000") is True
    assert f.erase("127.0.0.1:5000") is False
    assert f.get("127.0.0.1:5000") is None
    assert list(f.all()) == [HUB_KEY]


def test_keeps_other_settings(tmp_path: Path) -> None:
    p = tmp_path / "config.json"
    p.write_text(json.dumps({"psFormat": "table {{.ID}}", "auths": {}}))
    AuthConfigFile(p).store("r.example", "u", "p")
    assert json.loads(p.read_text())["psFormat"] == "table {{.ID}}"


def test_env_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTH_CONFIG", str(tmp_path / "x"))
    assert AuthConfigFile().path == tmp_path / "x" / "config.json"


def test_credential_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "helper-store.json"
    helper = tmp_path / "bin" / "docker-credential-testhelper"
    helper.parent.mkdir()
    helper.write_text(f"""#!/bin/sh
set -e
STORE={store}
case "$1" in
  store) cat > "$STORE" ;;
  get) read server || true; if [ -s "$STORE" ]; then cat "$STORE"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  erase) read server || true; rm -f "$STORE" ;;
esac
""")
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper.parent}:{os.environ['PATH']}")
    p = tmp_path / "config.json"
    p.write_text(json.dumps({"credsStore": "testhelper"}))
    f = AuthConfigFile(p)
    assert f.get("r.example") is None
    f.store("r.example", "alice", "pw")
    assert json.loads(store.read_text()) == {"ServerURL": "r.example", "Username": "alice", "Secret": "pw"}
    assert "pw" not in p.read_text()
    assert f.get("r.example") == {"username": "alice", "password": "pw", "serveraddress": "r.example"}
    assert f.erase("r.example")
    assert not store.exists()
    # credHelpers picks a helper per registry; others stay in the file
    p.write_text(json.dumps({"credHelpers": {"r.example": "testhelper"}}))
    f.store("r.example", "bob", "pw2")
    f.store("other.example", "carol", "pw3")
    assert json.loads(store.read_text())["Username"] == "bob"
    doc = json.loads(p.read_text())
    assert doc["auths"]["r.example"] == {} and "auth" in doc["auths"]["other.example"]
    assert f.get("r.example")["username"] == "bob" and f.get("other.example")["username"] == "carol"


def test_registry_auth_header_roundtrip() -> None:
    auth = {"username": "u", "password": "p?>", "serveraddress": "127.0.0.1:5000"}
    assert decode_registry_auth(encode_registry_auth(auth)) == auth
    assert decode_registry_auth(None) == {} and decode_registry_auth("") == {}
    # the docker CLI's padding-less url-safe form and capitalised keys are accepted
    raw = encode_registry_auth({"Username": "u", "Password": "p"}).rstrip("=")
    assert decode_registry_auth(raw) == {"username": "u", "password": "p"}
    assert server_key("https://index.docker.io/v1/") == HUB_KEY
