"""berthd pushes to and pulls from berth-registry and CNCF distribution through the Engine API."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from berth.registry.auth_config import encode_registry_auth

pytestmark = [pytest.mark.root, pytest.mark.peer]


def _stream(r: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


def _unique_tar() -> bytes:
    import io
    import os
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = os.urandom(64 * 1024)
        ti = tarfile.TarInfo("unique.bin")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _auth(reg: Any, password: str | None = None) -> dict[str, str]:
    return {"X-Registry-Auth": encode_registry_auth(
        {"username": reg.user, "password": password or reg.password, "serveraddress": reg.host})}


def tag(daemon: Any, src: str, repo: str, tag: str) -> None:
    r = daemon.api("POST", f"/images/{src}/tag", params={"repo": repo, "tag": tag})
    assert r.status == 201, r.text


def push(daemon: Any, name: str, tag: str, headers: dict[str, str] | None) -> list[dict[str, Any]]:
    r = daemon.api("POST", f"/images/{name}/push", params={"tag": tag}, headers=headers or {}, timeout=300)
    assert r.status == 200, r.text
    return _stream(r)


def pull(daemon: Any, name: str, tag: str, headers: dict[str, str] | None) -> tuple[int, list[dict[str, Any]], str]:
    r = daemon.api("POST", "/images/create", params={"fromImage": name, "tag": tag}, headers=headers or {},
                   timeout=300)
    return r.status, (_stream(r) if r.status == 200 else []), r.text


def errors_of(msgs: list[dict[str, Any]]) -> list[str]:
    return [m["error"] for m in msgs if "error" in m]


def remove(daemon: Any, ref: str) -> None:
    daemon.api("DELETE", f"/images/{ref}", params={"force": True})


@pytest.mark.parametrize("which", ["berth_registry", "distribution_registry"])
def test_push_then_pull_roundtrip(request: pytest.FixtureRequest, daemon: Any, which: str) -> None:
    reg = request.getfixturevalue(which)
    repo = f"{reg.host}/rt/busybox-{secrets.token_hex(3)}"
    # a layer of its own, so no earlier test's push lets the registry skip or mount it
    r = daemon.api("POST", "/images/create", params={"fromSrc": "-", "repo": repo, "tag": "v1"},
                   body=_unique_tar(), headers={"Content-Type": "application/x-tar"})
    assert r.status == 200, r.text
    try:
        msgs = push(daemon, repo, "v1", _auth(reg))
        assert not errors_of(msgs), msgs
        aux = [m["aux"] for m in msgs if "aux" in m]
        assert aux and aux[0]["Tag"] == "v1" and aux[0]["Digest"].startswith("sha256:")
        assert any(m.get("status") == "Pushed" for m in msgs), msgs
        pushed_digest = aux[0]["Digest"]
        # second push: the registry has every blob
        msgs2 = push(daemon, repo, "v1", _auth(reg))
        assert not errors_of(msgs2)
        assert any(m.get("status") == "Layer already exists" for m in msgs2), msgs2
        before = daemon.api("GET", f"/images/{repo}:v1/json").json()["Id"]
        remove(daemon, f"{repo}:v1")
        assert daemon.api("GET", f"/images/{repo}:v1/json").status == 404
        status, msgs3, text = pull(daemon, repo, "v1", _auth(reg))
        assert status == 200, text
        assert not errors_of(msgs3), msgs3
        assert any(m.get("status") == f"Digest: {pushed_digest}" for m in msgs3), msgs3
        info = daemon.api("GET", f"/images/{repo}:v1/json").json()
        assert info["Id"] == before
        assert f"{repo}@{pushed_digest}" in info["RepoDigests"]
    finally:
        remove(daemon, f"{repo}:v1")


def test_push_without_credentials_fails_clearly(daemon: Any, busybox_image: str, berth_registry: Any) -> None:
    repo = f"{berth_registry.host}/noauth/busybox"
    tag(daemon, busybox_image, repo, "v1")
    try:
        r = daemon.api("POST", f"/images/{repo}/push", params={"tag": "v1"}, timeout=120)
        text = r.text
        msgs = _stream(r) if r.status == 200 else []
        err = " ".join(errors_of(msgs)) if r.status == 200 else json.loads(text)["message"]
        assert "unauthorized" in err.lower() or "authentication required" in err.lower(), text
        assert berth_registry.root.joinpath("repositories", "noauth").exists() is False
    finally:
        remove(daemon, f"{repo}:v1")


def test_pull_with_wrong_password_fails(daemon: Any, berth_registry: Any) -> None:
    status, msgs, text = pull(daemon, f"{berth_registry.host}/rt/none", "v1", _auth(berth_registry, "wrong"))
    assert status == 401 or any("unauthorized" in e.lower() for e in errors_of(msgs)), text


def test_auth_endpoint(daemon: Any, berth_registry: Any, berth_token_registry: Any) -> None:
    for reg in (berth_registry, berth_token_registry):
        ok = daemon.api("POST", "/auth", json={"username": reg.user, "password": reg.password,
                                               "serveraddress": reg.host})
        assert ok.status == 200, ok.text
        assert ok.json() == {"Status": "Login Succeeded", "IdentityToken": ""}
        bad = daemon.api("POST", "/auth", json={"username": reg.user, "password": "nope",
                                                "serveraddress": reg.host})
        assert bad.status == 401, bad.text
        assert "incorrect username or password" in bad.json()["message"]


def test_push_every_tag_and_search_through_the_api(daemon: Any, busybox_image: str, berth_registry: Any) -> None:
    repo = f"{berth_registry.host}/library/alltags-{secrets.token_hex(3)}"
    tag(daemon, busybox_image, repo, "a")
    tag(daemon, busybox_image, repo, "b")
    try:
        r = daemon.api("POST", f"/images/{repo}/push", headers=_auth(berth_registry), timeout=300)
        assert r.status == 200, r.text
        msgs = _stream(r)
        assert not errors_of(msgs), msgs
        assert sorted(m["aux"]["Tag"] for m in msgs if "aux" in m) == ["a", "b"]
        short = repo.split("/", 1)[1].removeprefix("library/")
        s = daemon.api("GET", "/images/search", params={"term": f"{berth_registry.host}/{short}", "limit": 5},
                       headers=_auth(berth_registry))
        assert s.status == 200, s.text
        names = [x["name"] for x in s.json()]
        assert short in names
        hit = s.json()[names.index(short)]
        assert hit["is_official"] is True and set(hit) == {"name", "description", "star_count", "is_official",
                                                            "is_automated"}
        none = daemon.api("GET", "/images/search", params={"term": f"{berth_registry.host}/{short}",
                                                           "filters": json.dumps({"is-official": ["false"]})},
                          headers=_auth(berth_registry))
        assert short not in [x["name"] for x in none.json()]
        bad = daemon.api("GET", "/images/search", params={"term": "x", "filters": json.dumps({"nope": ["1"]})})
        assert bad.status == 400
    finally:
        remove(daemon, f"{repo}:a")
        remove(daemon, f"{repo}:b")


def test_bad_names_refused_by_the_api(daemon: Any) -> None:
    r = daemon.api("POST", "/images/create", params={"fromImage": "127.0.0.1:1/Bad/Name", "tag": "v1"})
    assert r.status == 400 and "invalid reference format" in r.json()["message"]
    r = daemon.api("POST", "/images/a..b/push", params={"tag": "v1"})
    assert r.status in (400, 404), r.text


def test_pull_all_tags(daemon: Any, busybox_image: str, berth_registry: Any) -> None:
    repo = f"{berth_registry.host}/alltags/pull-{secrets.token_hex(3)}"
    for t in ("one", "two"):
        tag(daemon, busybox_image, repo, t)
    try:
        msgs = push(daemon, repo, "", _auth(berth_registry))
        assert not errors_of(msgs)
        for t in ("one", "two"):
            remove(daemon, f"{repo}:{t}")
        r = daemon.api("POST", "/images/create", params={"fromImage": repo}, headers=_auth(berth_registry),
                       timeout=300)
        assert r.status == 200 and not errors_of(_stream(r)), r.text
        for t in ("one", "two"):
            assert daemon.api("GET", f"/images/{repo}:{t}/json").status == 200
    finally:
        for t in ("one", "two"):
            remove(daemon, f"{repo}:{t}")
