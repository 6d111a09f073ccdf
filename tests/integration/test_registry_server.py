"""berth-registry over HTTP: the distribution API, auth, bad input, search, gc, TLS."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from fixtures.registry import RunningRegistry, start_berth_registry
from support import venv_exe

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def session(reg: RunningRegistry) -> requests.Session:
    s = requests.Session()
    s.auth = (reg.user, reg.password)
    return s


def upload(s: requests.Session, reg: RunningRegistry, repo: str, data: bytes) -> str:
    d = digest_of(data)
    r = s.post(f"{reg.url}/v2/{repo}/blobs/uploads/", params={"digest": d}, data=data)
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == d
    return d


def image_manifest(config: bytes, layers: list[bytes], media: str = OCI_MANIFEST,
                   annotations: dict[str, str] | None = None) -> bytes:
    doc: dict[str, Any] = {
        "schemaVersion": 2, "mediaType": media,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest_of(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest_of(b),
                    "size": len(b)} for b in layers]}
    if annotations:
        doc["annotations"] = annotations
    return json.dumps(doc).encode()


def push_image(s: requests.Session, reg: RunningRegistry, repo: str, tag: str, layer: bytes | None = None,
               annotations: dict[str, str] | None = None) -> tuple[str, bytes]:
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"},
                         "n": os.urandom(4).hex()}).encode()
    layer = layer or os.urandom(1000)
    upload(s, reg, repo, config)
    upload(s, reg, repo, layer)
    m = image_manifest(config, [layer], annotations=annotations)
    r = s.put(f"{reg.url}/v2/{repo}/manifests/{tag}", data=m, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == digest_of(m)
    return digest_of(m), m


def raw(reg: RunningRegistry, method: str, path: str, body: bytes | None = None,
        headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """A request whose path is sent byte for byte (no client-side normalisation of `..`)."""
    import base64
    host, port = reg.host.split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    h = {"Authorization": "Basic " + base64.b64encode(f"{reg.user}:{reg.password}".encode()).decode()}
    h.update(headers or {})
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    out = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    c.close()
    return out


def blob_files(reg: RunningRegistry) -> set[str]:
    base = reg.root / "blobs" / "sha256"
    return {p.name for p in base.iterdir()} if base.exists() else set()


def error_codes(r: requests.Response) -> list[str]:
    return [e["code"] for e in r.json()["errors"]]


# ---------------------------------------------------------------------------------------
def test_base_and_auth(berth_registry: RunningRegistry) -> None:
    r = requests.get(f"{berth_registry.url}/v2/")
    assert r.status_code == 401
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert r.headers["WWW-Authenticate"].startswith("Basic ")
    assert error_codes(r) == ["UNAUTHORIZED"]
    assert requests.get(f"{berth_registry.url}/v2/", auth=(berth_registry.user, "bad")).status_code == 401
    ok = session(berth_registry).get(f"{berth_registry.url}/v2/")
    assert ok.status_code == 200 and ok.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_blob_get_head_range_delete(berth_registry: RunningRegistry) -> None:
    s = session(berth_registry)
    data = os.urandom(5000)
    d = upload(s, berth_registry, "t/blobs", data)
    h = s.head(f"{berth_registry.url}/v2/t/blobs/blobs/{d}")
    assert h.status_code == 200 and int(h.headers["Content-Length"]) == 5000
    assert h.headers["Docker-Content-Digest"] == d
    g = s.get(f"{berth_registry.url}/v2/t/blobs/blobs/{d}")
    assert g.content == data
    part = s.get(f"{berth_registry.url}/v2/t/blobs/blobs/{d}", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    # not linked into another repository
    other = s.get(f"{berth_registry.url}/v2/t/other/blobs/{d}")
    assert other.status_code == 404 and error_codes(other) == ["BLOB_UNKNOWN"]
    assert s.delete(f"{berth_registry.url}/v2/t/blobs/blobs/{d}").status_code == 202
    assert s.head(f"{berth_registry.url}/v2/t/blobs/blobs/{d}").status_code == 404


def test_chunked_resumable_upload(berth_registry: RunningRegistry) -> None:
    s = session(berth_registry)
    url = berth_registry.url
    data = os.urandom(300_000)
    r = s.post(f"{url}/v2/t/chunked/blobs/uploads/")
    assert r.status_code == 202 and r.headers["Range"] == "0-0"
    loc = r.headers["Location"]
    r = s.patch(url + loc, data=data[:100_000], headers={"Content-Range": "0-99999",
                                                         "Content-Type": "application/octet-stream"})
    assert r.status_code == 202 and r.headers["Range"] == "0-99999"
    # a chunk that does not continue at the current offset is refused
    bad = s.patch(url + loc, data=data[200_000:], headers={"Content-Range": "200000-299999"})
    assert bad.status_code == 416 and bad.headers["Range"] == "0-99999"
    # the client asks where to resume
    st = s.get(url + r.headers["Location"])
    assert st.status_code == 204 and st.headers["Range"] == "0-99999"
    r = s.patch(url + st.headers["Location"], data=data[100_000:], headers={"Content-Range": "100000-299999"})
    assert r.status_code == 202
    assert s.head(f"{url}/v2/t/chunked/blobs/{digest_of(data)}").status_code == 404  # not yet visible
    fin = s.put(url + r.headers["Location"], params={"digest": digest_of(data)})
    assert fin.status_code == 201, fin.text
    assert s.get(f"{url}/v2/t/chunked/blobs/{digest_of(data)}").content == data
    assert list((berth_registry.root / "uploads").iterdir()) == []


def test_blob_with_wrong_digest_is_rejected_and_not_stored(berth_registry: RunningRegistry) -> None:
    s = session(berth_registry)
    data = os.urandom(4096)
    claimed = digest_of(b"something else")
    before = blob_files(berth_registry)
    r = s.post(f"{berth_registry.url}/v2/t/bad/blobs/uploads/", params={"digest": claimed}, data=data)
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    # session upload finished with a lying digest
    r = s.post(f"{berth_registry.url}/v2/t/bad/blobs/uploads/")
    loc = r.headers["Location"]
    s.patch(berth_registry.url + loc, data=data)
    r = s.put(berth_registry.url + loc, params={"digest": claimed})
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    assert blob_files(berth_registry) == before
    assert s.head(f"{berth_registry.url}/v2/t/bad/blobs/{claimed}").status_code == 404
    assert s.head(f"{berth_registry.url}/v2/t/bad/blobs/{digest_of(data)}").status_code == 404
    assert list((berth_registry.root / "uploads").iterdir()) == []


def test_push_cut_off_midway_leaves_nothing_and_retry_succeeds(berth_registry: RunningRegistry) -> None:
    s = session(berth_registry)
    url = berth_registry.url
    data = os.urandom(2_000_000)
    d = digest_of(data)
    r = s.post(f"{url}/v2/t/cut/blobs/uploads/")
    loc = r.headers["Location"]
    # a PUT announcing the whole blob, cut off after a quarter of it
    host, port = berth_registry.host.split(":")
    import base64
    sock = socket.create_connection((host, int(port)))
    auth = base64.b64encode(f"{berth_registry.user}:{berth_registry.password}".encode()).decode()
    sock.sendall(f"PUT {loc}?digest={d} HTTP/1.1\r\nHost: {berth_registry.host}\r\n"
                 f"Authorization: Basic {auth}\r\nContent-Length: {len(data)}\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n".encode() + data[:500_000])
    time.sleep(0.3)
    sock.close()
    time.sleep(0.3)
    assert s.head(f"{url}/v2/t/cut/blobs/{d}").status_code == 404
    assert d.split(":")[1] not in blob_files(berth_registry)
    # the upload can be resumed where it stopped (once the server has seen the cut) ...
    deadline = time.monotonic() + 10
    while True:
        st = s.get(url + loc)
        assert st.status_code == 204
        have = int(st.headers["Range"].split("-")[1]) + 1
        if have > 1 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert 0 < have <= 500_000
    r = s.put(url + loc, params={"digest": d}, data=data[have:])
    assert r.status_code == 201, r.text
    assert s.get(f"{url}/v2/t/cut/blobs/{d}").content == data
    # ... and a full retry of an abandoned upload works as well
    r = s.post(f"{url}/v2/t/cut2/blobs/uploads/")
    loc2 = r.headers["Location"]
    s.patch(url + loc2, data=data[:1000])
    fresh = upload(s, berth_registry, "t/cut2", data)
    assert fresh == d


def test_manifest_roundtrip_tags_and_delete(berth_registry: RunningRegistry) -> None:
    s = session(berth_registry)
    url = berth_registry.url
    md, m = push_image(s, berth_registry, "t/man", "v1")
    g = s.get(f"{url}/v2/t/man/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert g.status_code == 200 and g.content == m
    assert g.headers["Content-Type"] == OCI_MANIFEST and g.headers["Docker-Content-Digest"] == md
    h = s.head(f"{url}/v2/t/man/manifests/{md}")
    assert h.status_code == 200 and int(h.headers["Content-Length"]) == len(m)
    assert s.put(f"{url}/v2/t/man/manifests/v2", data=m, headers={"Content-Type": OCI_MANIFEST}).status_code == 201
    assert s.get(f"{url}/v2/t/man/tags/list").json() == {"name": "t/man", "tags": ["v1", "v2"]}
    # put by digest, wrong digest refused
    assert s.put(f"{url}/v2/t/man/manifests/{md}", data=m, headers={"Content-Type": OCI_MANIFEST}).status_code == 201
    wrong = s.put(f"{url}/v2/t/man/manifests/{digest_of(b'x')}", data=m, headers={"Content-Type": OCI_MANIFEST})
    assert wrong.status_code == 400 and error_codes(wrong) == ["DIGEST_INVALID"]
    assert s.delete(f"{url}/v2/t/man/manifests/v2").status_code == 202
    assert s.get(f"{url}/v2/t/man/tags/list").json()["tags"] == ["v1"]
    assert s.delete(f"{url}/v2/t/man/manifests/{md}").status_code == 202
    gone = s.get(f"{url}/v2/t/man/manifests/{md}")
    assert gone.status_code == 404 and error_codes(gone) == ["MANIFEST_UNKNOWN"]
    assert s.get(f"{url}/v2/t/man/tags/list").json()["tags"] == []
    unknown = s.get(f"{url}/v2/t/nosuchrepo/manifests/v1")
    assert unknown.status_code == 404 and error_codes(unknown) == ["NAME_UNKNOWN"]


def test_index_and_docker_schema2(berth_registry: RunningRegistry) -> None:
    s = session(berth_registry)
    url = berth_registry.url
    md, m = push_image(s, berth_registry, "t/idx", "amd64")
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": md, "size": len(m),
         "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    r = s.put(f"{url}/v2/t/idx/manifests/latest", data=index, headers={"Content-Type": OCI_INDEX})
    assert r.status_code == 201, r.text
    assert s.get(f"{url}/v2/t/idx/manifests/latest").headers["Content-Type"] == OCI_INDEX
    missing = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest_of(b"nope"), "size": 4}]}).encode()
    r = s.put(f"{url}/v2/t/idx/manifests/broken", data=missing, headers={"Content-Type": OCI_INDEX})
    assert r.status_code == 400 and error_codes(r) == ["MANIFEST_BLOB_UNKNOWN"]
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    upload(s, berth_registry, "t/idx", config)
    docker = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": {
        "mediaType": "application/vnd.docker.container.image.v1+json", "digest": digest_of(config),
        "size": len(config)}, "layers": []}).encode()
    r = s.put(f"{url}/v2/t/idx/manifests/docker", data=docker, headers={"Content-Type": DOCKER_MANIFEST})
    assert r.status_code == 201, r.text
    assert s.get(f"{url}/v2/t/idx/manifests/docker").headers["Content-Type"] == DOCKER_MANIFEST
    mlist_type = "application/vnd.docker.distribution.manifest.list.v2+json"
    mlist = json.dumps({"schemaVersion": 2, "mediaType": mlist_type, "manifests": [
        {"mediaType": DOCKER_MANIFEST, "digest": digest_of(docker), "size": len(docker),
         "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    r = s.put(f"{url}/v2/t/idx/manifests/list", data=mlist, headers={"Content-Type": mlist_type})
    assert r.status_code == 201, r.text
    got = s.get(f"{url}/v2/t/idx/manifests/list")
    assert got.headers["Content-Type"] == mlist_type and got.content == mlist


def test_manifest_naming_a_missing_blob_is_refused(berth_registry: RunningRegistry) -> None:
    s = session(berth_registry)
    config = b'{"os":"linux"}'
    upload(s, berth_registry, "t/missing", config)
    m = image_manifest(config, [b"never uploaded"])
    r = s.put(f"{berth_registry.url}/v2/t/missing/manifests/v1", data=m, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400 and error_codes(r) == ["MANIFEST_BLOB_UNKNOWN"]
    assert digest_of(b"never uploaded") in r.json()["errors"][0]["message"]
    assert s.get(f"{berth_registry.url}/v2/t/missing/manifests/v1").status_code == 404
    # a blob present in another repository only does not count either
    other = os.urandom(100)
    upload(s, berth_registry, "t/elsewhere", other)
    m = image_manifest(config, [other])
    r = s.put(f"{berth_registry.url}/v2/t/missing/manifests/v1", data=m, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400 and error_codes(r) == ["MANIFEST_BLOB_UNKNOWN"]


def test_manifest_over_4mib_refused(berth_registry: RunningRegistry) -> None:
    s = session(berth_registry)
    config = b'{"os":"linux"}'
    upload(s, berth_registry, "t/big", config)
    doc = json.loads(image_manifest(config, []))
    doc["annotations"] = {"pad": "x" * (4 * 1024 * 1024)}
    r = s.put(f"{berth_registry.url}/v2/t/big/manifests/v1", data=json.dumps(doc).encode(),
              headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 413
    assert error_codes(r) == ["MANIFEST_INVALID"] and "4 MiB" in r.json()["errors"][0]["message"]
    assert s.get(f"{berth_registry.url}/v2/t/big/manifests/v1").status_code == 404


def test_invalid_manifest_refused(berth_registry: RunningRegistry) -> None:
    s = session(berth_registry)
    for body in (b"not json", b"[]", b'{"schemaVersion": 1, "name": "x"}'):
        r = s.put(f"{berth_registry.url}/v2/t/inv/manifests/v1", data=body, headers={"Content-Type": OCI_MANIFEST})
        assert r.status_code == 400 and error_codes(r) == ["MANIFEST_INVALID"], body


@pytest.mark.parametrize("name", ["a/../b", "..", "Upper/case", "a//b", "-a", "a_", "a%2F..%2Fb", "a/./b"])
def test_bad_repository_names_refused(berth_registry: RunningRegistry, name: str) -> None:
    status, _, body = raw(berth_registry, "GET", f"/v2/{name}/tags/list")
    assert status == 400, (name, status, body)
    assert json.loads(body)["errors"][0]["code"] == "NAME_INVALID"
    status, _, body = raw(berth_registry, "POST", f"/v2/{name}/blobs/uploads/")
    assert status == 400 and json.loads(body)["errors"][0]["code"] == "NAME_INVALID"
    assert not any(p.name.startswith("..") for p in (berth_registry.root / "repositories").iterdir())


def test_tags_and_catalog_pagination(tmp_path: Path) -> None:
    with start_berth_registry(tmp_path) as reg:
        s = session(reg)
        for i in range(5):
            push_image(s, reg, f"pg/r{i}", "t0")
        for t in ("a", "b", "c"):
            push_image(s, reg, "pg/r0", t)
        r = s.get(f"{reg.url}/v2/pg/r0/tags/list", params={"n": 2})
        assert r.json()["tags"] == ["a", "b"]
        assert r.headers["Link"] == '</v2/pg/r0/tags/list?n=2&last=b>; rel="next"'
        assert s.get(f"{reg.url}/v2/pg/r0/tags/list", params={"n": 0}).json()["tags"] == []
        r = s.get(f"{reg.url}/v2/pg/r0/tags/list", params={"n": 2, "last": "b"})
        assert r.json()["tags"] == ["c", "t0"] and "Link" not in r.headers
        r = s.get(f"{reg.url}/v2/_catalog", params={"n": 3})
        assert r.json()["repositories"] == ["pg/r0", "pg/r1", "pg/r2"]
        assert 'last=pg%2Fr2' in r.headers["Link"]
        r = s.get(f"{reg.url}/v2/_catalog", params={"n": 3, "last": "pg/r2"})
        assert r.json()["repositories"] == ["pg/r3", "pg/r4"] and "Link" not in r.headers


def test_cross_repository_mount(berth_registry: RunningRegistry) -> None:
    s = session(berth_registry)
    data = os.urandom(2048)
    d = upload(s, berth_registry, "t/src", data)
    r = s.post(f"{berth_registry.url}/v2/t/dst/blobs/uploads/", params={"mount": d, "from": "t/src"})
    assert r.status_code == 201 and r.headers["Location"] == f"/v2/t/dst/blobs/{d}"
    assert s.get(f"{berth_registry.url}/v2/t/dst/blobs/{d}").content == data
    # unknown source: an upload session starts instead
    r = s.post(f"{berth_registry.url}/v2/t/dst2/blobs/uploads/", params={"mount": d, "from": "t/none"})
    assert r.status_code == 202 and "/blobs/uploads/" in r.headers["Location"]


def test_search_ranks_and_describes(tmp_path: Path) -> None:
    with start_berth_registry(tmp_path) as reg:
        s = session(reg)
        push_image(s, reg, "library/nginx", "latest",
                   annotations={"org.opencontainers.image.description": "the web server"})
        push_image(s, reg, "someone/nginx-proxy", "latest")
        push_image(s, reg, "other/app", "latest",
                   annotations={"org.opencontainers.image.description": "runs behind nginx"})
        push_image(s, reg, "other/unrelated", "latest")
        assert requests.get(f"{reg.url}/v1/search", params={"q": "nginx"}).status_code == 401
        doc = s.get(f"{reg.url}/v1/search", params={"q": "nginx", "n": 10}).json()
        assert doc["num_results"] == 3 and doc["query"] == "nginx"
        assert [r["name"] for r in doc["results"]] == ["nginx", "someone/nginx-proxy", "other/app"]
        first = doc["results"][0]
        assert first == {"name": "nginx", "description": "the web server", "star_count": 0,
                         "is_official": True, "is_automated": False}
        assert doc["results"][1]["is_official"] is False
        page2 = s.get(f"{reg.url}/v1/search", params={"q": "nginx", "n": 2, "page": 2}).json()
        assert [r["name"] for r in page2["results"]] == ["other/app"]


def test_token_auth_scopes(berth_token_registry: RunningRegistry) -> None:
    reg = berth_token_registry
    r = requests.get(f"{reg.url}/v2/t/tok/tags/list")
    assert r.status_code == 401
    challenge = r.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ") and f'realm="{reg.url}/token"' in challenge
    assert 'scope="repository:t/tok:pull"' in challenge
    bad = requests.get(f"{reg.url}/token", params={"service": "berth-registry", "scope": "repository:t/tok:pull"},
                       auth=(reg.user, "wrong"))
    assert bad.status_code == 401
    anon = requests.get(f"{reg.url}/token", params={"service": "berth-registry",
                                                    "scope": "repository:t/tok:pull,push"}).json()["token"]
    r = requests.post(f"{reg.url}/v2/t/tok/blobs/uploads/", headers={"Authorization": f"Bearer {anon}"})
    assert r.status_code == 401 and 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
    pull_only = requests.get(f"{reg.url}/token", params={"service": "berth-registry",
                                                         "scope": "repository:t/tok:pull"},
                             auth=(reg.user, reg.password)).json()["token"]
    r = requests.post(f"{reg.url}/v2/t/tok/blobs/uploads/", headers={"Authorization": f"Bearer {pull_only}"})
    assert r.status_code == 403, "push needs the push scope"
    assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"] and error_codes(r) == ["DENIED"]
    push_tok = requests.get(f"{reg.url}/token", params={"service": "berth-registry",
                                                        "scope": "repository:t/tok:pull,push"},
                            auth=(reg.user, reg.password)).json()["token"]
    data = b"token-blob"
    r = requests.post(f"{reg.url}/v2/t/tok/blobs/uploads/", params={"digest": digest_of(data)}, data=data,
                      headers={"Authorization": f"Bearer {push_tok}"})
    assert r.status_code == 201, r.text
    # a token for one repository does not open another
    r = requests.get(f"{reg.url}/v2/t/other/tags/list", headers={"Authorization": f"Bearer {push_tok}"})
    assert r.status_code == 403
    forged = push_tok[:-4] + ("AAAA" if not push_tok.endswith("AAAA") else "BBBB")
    r = requests.get(f"{reg.url}/v2/t/tok/blobs/{digest_of(data)}", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401


def test_anonymous_pull_and_read_only(tmp_path: Path) -> None:
    shared = tmp_path / "shared-root"
    with start_berth_registry(tmp_path, token_auth=True, anonymous_pull=True, root=shared) as reg:
        tok = requests.get(f"{reg.url}/token", params={"scope": "repository:t/anon:pull,push"},
                           auth=(reg.user, reg.password)).json()["token"]
        h = {"Authorization": f"Bearer {tok}"}
        data = b"public"
        assert requests.post(f"{reg.url}/v2/t/anon/blobs/uploads/", params={"digest": digest_of(data)},
                             data=data, headers=h).status_code == 201
        anon = requests.get(f"{reg.url}/token", params={"scope": "repository:t/anon:pull,push"}).json()
        claims = json.loads(__import__("base64").urlsafe_b64decode(anon["token"].split(".")[1] + "=="))
        assert claims["access"] == [{"type": "repository", "name": "t/anon", "actions": ["pull"]}]
        r = requests.get(f"{reg.url}/v2/t/anon/blobs/{digest_of(data)}",
                         headers={"Authorization": f"Bearer {anon['token']}"})
        assert r.status_code == 200 and r.content == data
    with start_berth_registry(tmp_path, read_only=True, root=shared) as ro:
        s = session(ro)
        assert s.get(f"{ro.url}/v2/t/anon/blobs/{digest_of(data)}").content == data
        r = s.post(f"{ro.url}/v2/t/anon/blobs/uploads/")
        assert r.status_code == 405 and error_codes(r) == ["UNSUPPORTED"]
        assert "read-only" in r.json()["errors"][0]["message"]


def test_garbage_collect(tmp_path: Path) -> None:
    root = tmp_path / "gc-root"
    with start_berth_registry(tmp_path, root=root) as reg:
        s = session(reg)
        md, m = push_image(s, reg, "t/gc", "keep")
        orphan = upload(s, reg, "t/gc", os.urandom(300))
        before = blob_files(reg)
    gc = [venv_exe("berth-registry"), "garbage-collect", "--root", str(root)]
    out = subprocess.run(gc, capture_output=True, text=True, check=True).stdout
    assert "0 blobs removed" in out, "a fresh blob may belong to a push under way"
    out = subprocess.run([*gc, "--keep-recent", "0"], capture_output=True, text=True, check=True).stdout
    assert f"removed {orphan}" in out
    after = {p.name for p in (root / "blobs" / "sha256").iterdir()}
    assert after == before - {orphan.split(":")[1]}
    assert md.split(":")[1] in after


def test_tls(tmp_path: Path) -> None:
    import urllib.request
    with start_berth_registry(tmp_path, tls=True) as reg:
        assert reg.url.startswith("https://")
        r = requests.get(f"{reg.url}/v2/", auth=(reg.user, reg.password), verify=str(reg.extra["cert"]))
        assert r.status_code == 200
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://{reg.host}/v2/", timeout=5)
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{reg.url}/v2/")  # not trusted by default


def test_config_file(tmp_path: Path) -> None:
    from fixtures.registry import write_htpasswd
    write_htpasswd(tmp_path / "users", {"cfguser": "cfgpass"})
    conf = tmp_path / "registry.toml"
    conf.write_text(f'htpasswd = "{tmp_path / "users"}"\ntoken_auth = true\nservice = "my-registry"\n')
    with start_berth_registry(tmp_path, auth=False, extra_args=("--config", str(conf))) as reg:
        r = requests.get(f"{reg.url}/v2/")
        assert r.status_code == 401 and 'service="my-registry"' in r.headers["WWW-Authenticate"]
        tok = requests.get(f"{reg.url}/token", params={"service": "my-registry"}, auth=("cfguser", "cfgpass"))
        assert tok.status_code == 200
        assert requests.get(f"{reg.url}/v2/", headers={"Authorization": f"Bearer {tok.json()['token']}"}
                            ).status_code == 200
    bad = tmp_path / "bad.json"
    bad.write_text('{"listen": "127.0.0.1:1", "nonsense": 1}')
    out = subprocess.run([venv_exe("berth-registry"), "serve", "--config", str(bad), "--root", str(tmp_path / "r")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "unknown setting(s)" in out.stderr and "nonsense" in out.stderr


def test_one_log_line_per_request(berth_registry: RunningRegistry) -> None:
    s = session(berth_registry)
    marker = f"t/logline{os.getpid()}"
    s.get(f"{berth_registry.url}/v2/{marker}/tags/list")
    s.get(f"{berth_registry.url}/v2/{marker}/tags/list", params={"n": 1})
    time.sleep(0.2)
    lines = [ln for ln in berth_registry.log_text().splitlines() if marker in ln]
    assert len(lines) == 2
    assert f'"GET /v2/{marker}/tags/list" 404' in lines[0] and berth_registry.user in lines[0]


def test_referrers(berth_registry: RunningRegistry) -> None:
    s = session(berth_registry)
    url = berth_registry.url
    md, m = push_image(s, berth_registry, "t/refs", "v1")
    empty = upload(s, berth_registry, "t/refs", b"{}")
    sbom = upload(s, berth_registry, "t/refs", b'{"sbom": true}')
    art = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sbom",
                      "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
                      "layers": [{"mediaType": "application/json", "digest": sbom, "size": 14}],
                      "subject": {"mediaType": OCI_MANIFEST, "digest": md, "size": len(m)},
                      "annotations": {"org.example": "yes"}}).encode()
    r = s.put(f"{url}/v2/t/refs/manifests/{digest_of(art)}", data=art, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201 and r.headers["OCI-Subject"] == md
    idx = s.get(f"{url}/v2/t/refs/referrers/{md}")
    assert idx.status_code == 200 and idx.headers["Content-Type"].startswith(OCI_INDEX)
    assert idx.json()["manifests"] == [{"mediaType": OCI_MANIFEST, "digest": digest_of(art), "size": len(art),
                                        "artifactType": "application/vnd.example.sbom",
                                        "annotations": {"org.example": "yes"}}]
    other = s.get(f"{url}/v2/t/refs/referrers/{md}", params={"artifactType": "application/other"})
    assert other.json()["manifests"] == [] and other.headers["OCI-Filters-Applied"] == "artifactType"
    assert s.delete(f"{url}/v2/t/refs/manifests/{digest_of(art)}").status_code == 202
    assert s.get(f"{url}/v2/t/refs/referrers/{md}").json()["manifests"] == []


def test_search_description_from_config_label(tmp_path: Path) -> None:
    with start_berth_registry(tmp_path) as reg:
        s = session(reg)
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                             "config": {"Labels": {"org.opencontainers.image.description": "from a label"}}}).encode()
        upload(s, reg, "lbl/app", config)
        m = image_manifest(config, [])
        assert s.put(f"{reg.url}/v2/lbl/app/manifests/v1", data=m,
                     headers={"Content-Type": OCI_MANIFEST}).status_code == 201
        doc = s.get(f"{reg.url}/v1/search", params={"q": "app"}).json()
        assert doc["results"] == [{"name": "lbl/app", "description": "from a label", "star_count": 0,
                                   "is_official": False, "is_automated": False}]
