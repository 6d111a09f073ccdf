"""A pull interrupted by killing berthd (SIGKILL, mid-layer) leaves no half image, no
half blob and no temp files once berthd is back, and the same pull then succeeds."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import os
import tarfile
import threading
import time
from collections.abc import Iterator

import pytest
from aiohttp import web

from fixtures.daemon import DaemonHandle, private_daemon
from support import RunNames, private_names

pytestmark = [pytest.mark.root, pytest.mark.slow]


def sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


class StallingRegistry:
    """Serves one image; while `stall` is set, its big layer stops half way and hangs."""

    def __init__(self) -> None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            for name, data in (("bin/x", b"x"), ("big.bin", os.urandom(6 << 20))):
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
        plain = buf.getvalue()
        self.layer = gzip.compress(plain, compresslevel=1, mtime=0)
        self.config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/x"]},
                                  "rootfs": {"type": "layers", "diff_ids": [sha(plain)]}}).encode()
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(self.config),
                       "size": len(self.config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(self.layer),
                        "size": len(self.layer)}]}).encode()
        self.stall = threading.Event()
        self.stall.set()
        self.stalled = threading.Event()
        self.host = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"]
        if tail == "":
            return web.json_response({})
        if tail.endswith("/manifests/v1") or tail.endswith(f"/manifests/{sha(self.manifest)}"):
            return web.Response(body=self.manifest, headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        if tail.endswith(sha(self.config)):
            return web.Response(body=self.config)
        if tail.endswith(sha(self.layer)):
            resp = web.StreamResponse(headers={"Content-Length": str(len(self.layer))})
            await resp.prepare(request)
            if self.stall.is_set():
                await resp.write(self.layer[: len(self.layer) // 2])
                self.stalled.set()
                for _ in range(1200):  # hang (at most 2 minutes) until released
                    if not self.stall.is_set():
                        break
                    await asyncio.sleep(0.1)
                request.transport.close()
                return resp
            await resp.write(self.layer)
            return resp
        return web.Response(status=404)

    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_route("*", "/v2/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.host = f"127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert ready.wait(10)

    def stop(self) -> None:
        self.stall.clear()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


@pytest.fixture
def own_daemon(run_names: RunNames) -> Iterator[DaemonHandle]:
    with private_daemon(private_names(run_names, "bk")) as d:
        yield d


def test_pull_killed_midway_leaves_nothing_and_retry_succeeds(own_daemon: DaemonHandle) -> None:
    reg = StallingRegistry()
    reg.start()
    try:
        d = own_daemon
        ref = f"{reg.host}/stall/img:v1"
        result: dict[str, object] = {}

        def pull() -> None:
            try:
                result["r"] = d.api("POST", "/images/create", params={"fromImage": f"{reg.host}/stall/img",
                                                                       "tag": "v1"}, timeout=60)
            except Exception as exc:  # noqa: BLE001 - the daemon dies under it: any error will do
                result["r"] = exc
        t = threading.Thread(target=pull)
        t.start()
        assert reg.stalled.wait(30), "berthd never started downloading the layer"
        time.sleep(0.3)
        d.kill9()
        t.join(30)
        data = d.names.data_root
        d.start()
        assert d.api("GET", f"/images/{ref}/json").status == 404
        assert not (data / "blobs" / "sha256" / sha(reg.layer).split(":")[1]).exists()
        assert [p.name for p in (data / "tmp").iterdir()] == []
        assert not [p for p in (data / "layers").iterdir() if p.name.startswith("layer-")]
        reg.stall.clear()
        r = d.api("POST", "/images/create", params={"fromImage": f"{reg.host}/stall/img", "tag": "v1"}, timeout=120)
        assert r.status == 200 and '"error"' not in r.text, r.text
        info = d.api("GET", f"/images/{ref}/json").json()
        assert info["Id"] == sha(reg.config)
        assert (data / "blobs" / "sha256" / sha(reg.layer).split(":")[1]).exists()
        assert [p.name for p in (data / "tmp").iterdir()] == []
    finally:
        reg.stop()
