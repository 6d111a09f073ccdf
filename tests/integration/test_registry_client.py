"""The registry client as a library: pull (index/platform, gzip/zstd/plain layers, digest
verification, interruption and retry, redirects without credentials) and push (skip,
cross-repository mount), into the image stores on a temp directory."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import zstandard
from aiohttp import web

from berth.engine.db import Database
from berth.errors import BerthError, Unauthorized
from berth.image.content import ContentStore
from berth.image.layers import LayerStore
from berth.image.store import ImageStore
from berth.registry import mediatypes as mt
from berth.registry.client import RegistryClient
from fixtures.registry import RunningRegistry

pytestmark = [pytest.mark.root]


def sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


@dataclass
class Local:
    root: Path
    content: ContentStore = field(init=False)
    layers: LayerStore = field(init=False)
    store: ImageStore = field(init=False)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.db = Database(self.root / "db.sqlite")
        self.content = ContentStore(self.root / "blobs", self.root / "tmp")
        self.layers = LayerStore(self.root / "layers", self.content, self.root / "tmp")
        self.store = ImageStore(self.db, self.content, self.layers)


@pytest.fixture
def local(tmp_path: Path) -> Local:
    return Local(tmp_path / "local")


def layer_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class Built:
    blobs: dict[str, bytes]
    manifests: dict[str, tuple[bytes, str]]   # ref -> (bytes, media type)
    config_id: str
    layer_digests: list[str]


def build_image(arch: str = "amd64", compressions: tuple[str, ...] = ("gzip", "zstd", "")) -> Built:
    blobs: dict[str, bytes] = {}
    diff_ids, layers = [], []
    for i, comp in enumerate(compressions):
        plain = layer_tar({f"file{i}-{arch}.txt": f"layer {i} {comp or 'plain'} {arch}\n".encode()})
        diff_ids.append(sha(plain))
        data = {"gzip": lambda b: gzip.compress(b, mtime=0), "zstd": zstandard.compress,
                "": lambda b: b}[comp](plain)
        blobs[sha(data)] = data
        media = {"gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD, "": mt.OCI_LAYER}[comp]
        layers.append({"mediaType": media, "digest": sha(data), "size": len(data)})
    config = json.dumps({"architecture": arch, "os": "linux", "config": {"Cmd": ["/bin/true"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    blobs[sha(config)] = config
    manifest = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                           "config": {"mediaType": mt.OCI_CONFIG, "digest": sha(config), "size": len(config)},
                           "layers": layers}).encode()
    return Built(blobs, {sha(manifest): (manifest, mt.OCI_MANIFEST)}, sha(config), [la["digest"] for la in layers])


def upload_built(reg: RunningRegistry, repo: str, built: Built) -> None:
    s = requests.Session()
    s.auth = (reg.user, reg.password)
    for d, data in built.blobs.items():
        assert s.post(f"{reg.url}/v2/{repo}/blobs/uploads/", params={"digest": d}, data=data).status_code == 201
    for d, (data, media) in built.manifests.items():
        r = s.put(f"{reg.url}/v2/{repo}/manifests/{d}", data=data, headers={"Content-Type": media})
        assert r.status_code == 201, r.text


def auth_of(reg: RunningRegistry) -> dict[str, str]:
    return {"username": reg.user, "password": reg.password, "serveraddress": reg.host}


def test_pull_index_platform_and_all_compressions(berth_token_registry: RunningRegistry, local: Local) -> None:
    reg = berth_token_registry
    amd, arm = build_image("amd64"), build_image("arm64")
    upload_built(reg, "cl/multi", amd)
    upload_built(reg, "cl/multi", arm)
    entries = []
    for b, arch in ((amd, "amd64"), (arm, "arm64")):
        [(d, (data, media))] = b.manifests.items()
        entries.append({"mediaType": media, "digest": d, "size": len(data),
                        "platform": {"os": "linux", "architecture": arch}})
    index = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}).encode()
    r = requests.put(f"{reg.url}/v2/cl/multi/manifests/latest", data=index, headers={
        "Content-Type": mt.OCI_INDEX, "Authorization": "Bearer " + requests.get(
            f"{reg.url}/token", params={"scope": "repository:cl/multi:pull,push"},
            auth=(reg.user, reg.password)).json()["token"]})
    assert r.status_code == 201, r.text
    msgs: list[dict[str, Any]] = []

    async def go() -> Any:
        async with RegistryClient() as c:
            img = await c.pull(f"{reg.host}/cl/multi:latest", local, auth_of(reg), msgs.append, "linux/arm64")
            again = await c.pull(f"{reg.host}/cl/multi:latest", local, auth_of(reg), msgs.append, "linux/arm64")
            return img, again
    img, again = asyncio.run(go())
    assert img.id == arm.config_id and again.id == img.id
    assert img.repo_tags == [f"{reg.host}/cl/multi:latest"]
    assert img.repo_digests == [f"{reg.host}/cl/multi@{sha(index)}"]
    for i, chain in enumerate(img.layers):
        layer = local.layers.get(chain)
        assert (Path(layer.path) / f"file{i}-arm64.txt").read_text().startswith(f"layer {i}")
    statuses = [m.get("status") for m in msgs]
    assert statuses.count("Pull complete") == 3 and "Already exists" in statuses
    assert f"Status: Image is up to date for {reg.host}/cl/multi:latest" in statuses
    # the credentials are needed
    async def anon() -> None:
        async with RegistryClient() as c:
            await c.pull(f"{reg.host}/cl/multi:latest", local, None, None, "linux/amd64")
    with pytest.raises(Unauthorized):
        asyncio.run(anon())


class FakeRegistry:
    """A minimal registry in-process whose blob answers can be broken on purpose."""

    def __init__(self, built: Built, repo: str) -> None:
        self.built, self.repo = built, repo
        self.cut_blob: str | None = None          # serve half of this blob, then drop the connection
        self.cuts_left = -1                       # ... this many times (-1: always)
        self.corrupt_blob: str | None = None      # serve other bytes under this digest
        self.redirect_to: str | None = None       # send blob GETs here (307)
        self.auth_seen: list[str | None] = []
        self.requests: list[str] = []

    def app(self, require_basic: tuple[str, str] | None = None) -> web.Application:
        app = web.Application()

        async def handle(request: web.Request) -> web.StreamResponse:
            self.requests.append(f"{request.method} {request.path}")
            self.auth_seen.append(request.headers.get("Authorization"))
            if require_basic:
                want = "Basic " + base64.b64encode(":".join(require_basic).encode()).decode()
                if request.headers.get("Authorization") != want:
                    return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="fake"'})
            tail = request.match_info["tail"]
            if tail == "":
                return web.json_response({})
            kind, _, ref = tail.removeprefix(self.repo + "/").partition("/")
            if kind == "manifests":
                if ref == "latest":
                    ref = next(iter(self.built.manifests))
                data, media = self.built.manifests[ref]
                return web.Response(body=data, headers={"Content-Type": media, "Docker-Content-Digest": ref})
            if kind == "blobs":
                data = self.built.blobs[ref]
                if self.redirect_to and ref != self.built.config_id:
                    raise web.HTTPTemporaryRedirect(f"{self.redirect_to}/v2/{tail}")
                if ref == self.corrupt_blob:
                    data = bytes(len(data))
                if ref == self.cut_blob and self.cuts_left != 0:
                    self.cuts_left -= 1
                    resp = web.StreamResponse(headers={"Content-Length": str(len(data))})
                    await resp.prepare(request)
                    await resp.write(data[: len(data) // 2])
                    request.transport.close()
                    return resp
                return web.Response(body=data, headers={"Content-Type": "application/octet-stream"})
            return web.Response(status=404)
        app.router.add_route("*", "/v2/{tail:.*}", handle)
        return app


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"127.0.0.1:{port}"


def _against(fake: Any, call: Callable[[RegistryClient, str], Awaitable[Any]]) -> Any:
    """`call(client, host)`'s result, `fake` (a registry's app()) served on 127.0.0.1 for it."""
    async def go() -> Any:
        runner, host = await _serve(fake.app())
        try:
            async with RegistryClient() as c:
                return await call(c, host)
        finally:
            await runner.cleanup()
    return asyncio.run(go())


def _leftovers(local: Local) -> list[str]:
    return sorted(os.listdir(local.root / "tmp")) + sorted(n for n in os.listdir(local.root / "layers")
                                                           if n.startswith("layer-"))


def test_interrupted_pull_leaves_no_half_image_and_retry_succeeds(local: Local) -> None:
    big = layer_tar({"big.bin": os.urandom(3 << 20)})
    built = build_image()
    gz = gzip.compress(big, compresslevel=1, mtime=0)
    # replace the first layer by a big one so the cut happens mid-stream
    cfg = json.loads(built.blobs.pop(built.config_id))
    old = built.layer_digests[0]
    del built.blobs[old]
    built.blobs[sha(gz)] = gz
    cfg["rootfs"]["diff_ids"][0] = sha(big)
    config = json.dumps(cfg).encode()
    built.blobs[sha(config)] = config
    [(md, (m, media))] = built.manifests.items()
    doc = json.loads(m)
    doc["config"] = {"mediaType": mt.OCI_CONFIG, "digest": sha(config), "size": len(config)}
    doc["layers"][0] = {"mediaType": mt.OCI_LAYER_GZIP, "digest": sha(gz), "size": len(gz)}
    m = json.dumps(doc).encode()
    built.manifests = {sha(m): (m, media)}
    fake = FakeRegistry(built, "cut/me")
    fake.cut_blob = sha(gz)

    async def pull_twice(c: RegistryClient, host: str) -> tuple[Exception | None, Any]:
        err = None
        try:
            await c.pull(f"{host}/cut/me:latest", local)
        except Exception as exc:  # noqa: BLE001
            err = exc
        assert local.store.list() == []
        assert not local.content.exists(sha(gz))
        assert _leftovers(local) == []
        fake.cut_blob = None
        return err, await c.pull(f"{host}/cut/me:latest", local)
    err, img = _against(fake, pull_twice)
    assert isinstance(err, BerthError) and f"fetching layer {sha(gz)} failed" in str(err)
    assert img.id == sha(config)
    assert local.content.exists(sha(gz)) and _leftovers(local) == []


@pytest.mark.parametrize("index", [0, 1])
def test_blob_not_matching_its_digest_is_refused(local: Local, index: int) -> None:
    """Layer 0 is unpacked while it downloads, layer 1 after: neither may publish anything."""
    built = build_image()
    fake = FakeRegistry(built, "bad/blob")
    fake.corrupt_blob = built.layer_digests[index]

    with pytest.raises(BerthError, match="does not match"):
        _against(fake, lambda c, host: c.pull(f"{host}/bad/blob:latest", local))
    assert not local.content.exists(built.layer_digests[index])
    assert local.store.list() == [] and _leftovers(local) == []
    if index == 0:
        assert local.layers.list() == []


def test_same_content_other_compression_is_refused_while_streaming(local: Local) -> None:
    """Bytes that unpack to the right diff_id but are not the announced blob: the layer that
    was being unpacked alongside the download is not published."""
    built = build_image(compressions=("gzip",))
    d = built.layer_digests[0]
    plain = gzip.decompress(built.blobs[d])
    impostor = gzip.compress(plain, compresslevel=9, mtime=12345)
    assert impostor != built.blobs[d]
    fake = FakeRegistry(built, "bad/recompressed")
    built.blobs = {**built.blobs, d: impostor}  # served under the original digest
    with pytest.raises(BerthError, match="does not match"):
        _against(fake, lambda c, host: c.pull(f"{host}/bad/recompressed:latest", local))
    assert local.layers.list() == [] and local.store.list() == [] and _leftovers(local) == []
    assert not local.content.exists(d)


def test_redirect_to_another_host_gets_no_credentials(local: Local) -> None:
    built = build_image(compressions=("gzip",))
    origin = FakeRegistry(built, "redir/img")
    storage = FakeRegistry(built, "redir/img")

    async def go() -> Any:
        r2, host2 = await _serve(storage.app())
        origin.redirect_to = f"http://{host2.replace('127.0.0.1', 'localhost')}"
        r1, host1 = await _serve(origin.app(require_basic=("u", "p")))
        try:
            async with RegistryClient() as c:
                return await c.pull(f"{host1}/redir/img:latest", local,
                                    {"username": "u", "password": "p", "serveraddress": host1})
        finally:
            await r1.cleanup()
            await r2.cleanup()
    img = asyncio.run(go())
    assert img.id == built.config_id
    assert any(r.startswith("GET /v2/redir/img/blobs/") for r in storage.requests)
    assert storage.auth_seen and all(a is None for a in storage.auth_seen), storage.auth_seen
    assert any(a and a.startswith("Basic ") for a in origin.auth_seen)


class MemoryCache:
    def __init__(self) -> None:
        self.src: dict[tuple[str, str], list[str]] = {}
        self.comp: dict[str, tuple[str, int, str]] = {}

    def remember(self, digest: str, registry: str, repo: str) -> None:
        self.src.setdefault((digest, registry), []).append(repo)

    def sources(self, digest: str, registry: str) -> list[str]:
        return list(self.src.get((digest, registry), []))

    def compressed(self, diff_id: str) -> tuple[str, int, str] | None:
        return self.comp.get(diff_id)

    def remember_compressed(self, diff_id: str, digest: str, size: int, media_type: str) -> None:
        self.comp[diff_id] = (digest, size, media_type)


@pytest.mark.parametrize("which", ["berth_registry", "distribution_registry"])
def test_push_compresses_mounts_and_skips(request: pytest.FixtureRequest, local: Local, busybox_tar: str,
                                          which: str) -> None:
    from berth.image.archive import import_rootfs_tar
    with open(busybox_tar, "rb") as f:
        img = import_rootfs_tar(f, local.layers, local.store, tags=["pushme:v1"])
    reg = request.getfixturevalue(which)
    cache = MemoryCache()
    msgs: list[dict[str, Any]] = []

    async def go() -> tuple[tuple[str, int], tuple[str, int], tuple[str, int]]:
        async with RegistryClient(cache=cache) as c:
            a = await c.push(f"{reg.host}/pc/one:v1", img, local, auth_of(reg), msgs.append)
            b = await c.push(f"{reg.host}/pc/two:v1", img, local, auth_of(reg), msgs.append)
            again = await c.push(f"{reg.host}/pc/two:v1", img, local, auth_of(reg), msgs.append)
            return a, b, again
    a, b, again = asyncio.run(go())
    statuses = [m.get("status", "") for m in msgs]
    assert "Pushed" in statuses and "Mounted from pc/one" in statuses and "Layer already exists" in statuses
    assert a[0] == b[0] == again[0]
    assert [f for f in os.listdir(local.root / "tmp")] == []
    s = requests.Session()
    s.auth = (reg.user, reg.password)
    man = s.get(f"{reg.url}/v2/pc/two/manifests/v1", headers={"Accept": mt.DOCKER_MANIFEST}).json()
    assert man["mediaType"] == mt.DOCKER_MANIFEST and man["config"]["digest"] == img.id
    layer = s.get(f"{reg.url}/v2/pc/two/blobs/{man['layers'][0]['digest']}").content
    assert gzip.decompress(layer) == Path(busybox_tar).read_bytes() or \
        sha(gzip.decompress(layer)) == json.loads(img.config_bytes)["rootfs"]["diff_ids"][0]


def test_mirror_serves_docker_io_and_a_dead_mirror_is_skipped(tmp_path: Path, local: Local) -> None:
    from fixtures.registry import start_berth_registry
    from support import free_port
    with start_berth_registry(tmp_path, token_auth=True, anonymous_pull=True) as mirror:
        built = build_image(compressions=("gzip",))
        upload_built(mirror, "library/mirrored", built)
        [(md, (m, media))] = built.manifests.items()
        tok = requests.get(f"{mirror.url}/token", params={"scope": "repository:library/mirrored:pull,push"},
                           auth=(mirror.user, mirror.password)).json()["token"]
        r = requests.put(f"{mirror.url}/v2/library/mirrored/manifests/v1", data=m,
                         headers={"Content-Type": media, "Authorization": f"Bearer {tok}"})
        assert r.status_code == 201
        dead = f"http://127.0.0.1:{free_port()}"

        async def go() -> Any:
            async with RegistryClient(mirrors=[dead, mirror.url], hub_endpoint=dead) as c:
                # docker.io credentials are not handed to mirrors: the anonymous pull works
                return await c.pull("mirrored:v1", local, {"username": "hub-user", "password": "x"})
        img = asyncio.run(go())
        assert img.id == built.config_id
        assert img.repo_tags == ["mirrored:v1"]
        assert "hub-user" not in mirror.log_text()


def test_tls_registry_insecure_by_default_on_loopback(tmp_path: Path, local: Local) -> None:
    import ssl

    from fixtures.registry import start_berth_registry
    with start_berth_registry(tmp_path, tls=True) as reg:
        built = build_image(compressions=("gzip",))
        s = requests.Session()
        s.auth = (reg.user, reg.password)
        ca = str(reg.extra["cert"])  # per request: a REQUESTS_CA_BUNDLE in the environment beats Session.verify
        for d, data in built.blobs.items():
            assert s.post(f"{reg.url}/v2/tls/img/blobs/uploads/", params={"digest": d}, data=data,
                          verify=ca).status_code == 201
        [(md, (m, media))] = built.manifests.items()
        assert s.put(f"{reg.url}/v2/tls/img/manifests/v1", data=m, headers={"Content-Type": media},
                     verify=ca).status_code == 201

        async def pull(insecure: list[str], ctx: ssl.SSLContext | None = None) -> Any:
            async with RegistryClient(insecure=insecure, ssl_context=ctx) as c:
                return await c.pull(f"{reg.host}/tls/img:v1", local, auth_of(reg))
        # 127.0.0.0/8 is insecure by default: TLS without certificate checks
        assert asyncio.run(pull(["127.0.0.0/8"])).id == built.config_id
        # not listed as insecure: the self-signed certificate is refused ...
        with pytest.raises(BerthError, match="unreachable"):
            asyncio.run(pull([]))
        # ... unless the client is given the CA
        ctx = ssl.create_default_context(cafile=str(reg.extra["cert"]))
        local.store.untag(f"{reg.host}/tls/img:v1")
        assert asyncio.run(pull([], ctx)).id == built.config_id


def test_single_platform_image_of_another_platform_is_refused_when_asked(local: Local) -> None:
    from berth.errors import NotFound
    built = build_image("amd64", compressions=("gzip",))
    fake = FakeRegistry(built, "plat/img")

    def pull(platform: str) -> Any:
        return _against(fake, lambda c, host: c.pull(f"{host}/plat/img:latest", local, platform=platform))
    with pytest.raises(NotFound, match="does not match the specified platform: wanted linux/arm64, actual: linux/amd64"):
        pull("linux/arm64")
    assert local.store.list() == []
    assert pull("linux/amd64").id == built.config_id


def test_hub_endpoint_serves_docker_io(tmp_path: Path, local: Local) -> None:
    """With `hub_endpoint` (the journeys' offline set-up) docker.io names, search and login go
    to a local registry."""
    from fixtures.registry import start_berth_registry
    with start_berth_registry(tmp_path, anonymous_pull=True) as hub:
        built = build_image(compressions=("gzip",))
        upload_built(hub, "library/hubimg", built)
        [(md, (m, media))] = built.manifests.items()
        r = requests.put(f"{hub.url}/v2/library/hubimg/manifests/latest", data=m, headers={"Content-Type": media},
                         auth=(hub.user, hub.password))
        assert r.status_code == 201

        async def go() -> tuple[Any, list[dict[str, Any]], dict[str, str]]:
            async with RegistryClient(hub_endpoint=hub.url) as c:
                img = await c.pull("hubimg", local)
                found = await c.search("hubimg", 5)
                ok = await c.login({"username": hub.user, "password": hub.password,
                                    "serveraddress": "https://index.docker.io/v1/"})
                with pytest.raises(Unauthorized):
                    await c.login({"username": hub.user, "password": "wrong", "serveraddress": ""})
                return img, found, ok
        img, found, ok = asyncio.run(go())
        assert img.repo_tags == ["hubimg:latest"]
        assert found[0]["name"] == "hubimg" and found[0]["is_official"] is True
        assert ok["Status"] == "Login Succeeded"


def test_dropped_download_is_retried(local: Local) -> None:
    built = build_image()
    fake = FakeRegistry(built, "flaky/img")
    fake.cut_blob, fake.cuts_left = built.layer_digests[0], 1   # the streamed first layer breaks once
    msgs: list[dict[str, Any]] = []

    img = _against(fake, lambda c, host: c.pull(f"{host}/flaky/img:latest", local, None, msgs.append))
    assert img.id == built.config_id
    assert any(m.get("status", "").startswith("Retrying in 1 second") for m in msgs), msgs
    assert sum(1 for r in fake.requests if r.endswith(built.layer_digests[0])) == 2
    assert _leftovers(local) == []


class FlakyPushRegistry:
    """Accepts pushes, but the first upload of a blob is cut off half way."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, bytes] = {}
        self.cut_first = True
        self.puts = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 30)

        async def handle(request: web.Request) -> web.StreamResponse:
            tail = request.match_info["tail"]
            if tail == "":
                return web.json_response({})
            if request.method == "HEAD" and "/blobs/" in tail:
                return web.Response(status=200 if tail.rsplit("/", 1)[1] in self.blobs else 404)
            if request.method == "GET" and tail.endswith("/tags/list"):
                return web.json_response({"errors": [{"code": "NAME_UNKNOWN", "message": "x"}]}, status=404)
            if request.method == "POST" and tail.endswith("/blobs/uploads/"):
                return web.Response(status=202, headers={"Location": f"/v2/{tail}{len(self.blobs)}-{self.puts}"})
            if request.method == "PUT" and "/blobs/uploads/" in tail:
                self.puts += 1
                digest = request.query["digest"]
                if self.cut_first and int(request.headers.get("Content-Length", "0")) > 100_000:
                    self.cut_first = False
                    await request.content.read(50_000)
                    request.transport.close()
                    return web.Response(status=500)
                data = await request.read()
                if sha(data) != digest:
                    return web.Response(status=400)
                self.blobs[digest] = data
                return web.Response(status=201, headers={"Location": f"/v2/x/blobs/{digest}"})
            if request.method == "PUT" and "/manifests/" in tail:
                data = await request.read()
                self.manifests[tail.rsplit("/", 1)[1]] = data
                return web.Response(status=201, headers={"Docker-Content-Digest": sha(data)})
            return web.Response(status=404)
        app.router.add_route("*", "/v2/{tail:.*}", handle)
        return app


def test_dropped_upload_is_retried(local: Local) -> None:
    from berth.image.archive import import_rootfs_tar
    plain = layer_tar({"big.bin": os.urandom(1 << 20)})
    img = import_rootfs_tar(io.BytesIO(plain), local.layers, local.store, tags=["flaky:v1"])
    fake = FlakyPushRegistry()
    msgs: list[dict[str, Any]] = []

    digest, _ = _against(fake, lambda c, host: c.push(f"{host}/flaky/push:v1", img, local, None, msgs.append))
    assert not fake.cut_first, "the upload was never cut"
    assert any(m.get("status", "").startswith("Retrying in 1 second") for m in msgs), msgs
    manifest = json.loads(fake.manifests["v1"])
    layer = fake.blobs[manifest["layers"][0]["digest"]]
    assert gzip.decompress(layer) == plain
    assert sha(fake.manifests["v1"]) == digest


@pytest.mark.parametrize("first", ["zstd", "", "gzip"])
def test_streamed_first_layer_in_every_compression(local: Local, first: str) -> None:
    built = build_image(compressions=(first, "gzip"))
    fake = FakeRegistry(built, "stream/img")

    img = _against(fake, lambda c, host: c.pull(f"{host}/stream/img:latest", local))
    layer0 = local.layers.get(img.layers[0])
    assert (Path(layer0.path) / "file0-amd64.txt").read_text() == f"layer 0 {first or 'plain'} amd64\n"
    assert layer0.blob == built.layer_digests[0]
