"""System routes of berthd: /_ping, /version, /info, version negotiation, /events."""

from __future__ import annotations

import json
import time

import pytest

from berth import API_VERSION

pytestmark = pytest.mark.root


def test_ping_get_and_head(daemon):
    r = daemon.api("GET", "/_ping")
    assert r.status == 200 and r.text == "OK"
    assert r.headers["api-version"] == API_VERSION
    r = daemon.api("HEAD", "/_ping")
    assert r.status == 200 and r.headers["api-version"] == API_VERSION
    r = daemon.api("GET", "/v1.41/_ping")
    assert r.status == 200


def test_version_and_negotiation(daemon):
    v = daemon.api("GET", "/version").json()
    assert v["ApiVersion"] == API_VERSION and v["MinAPIVersion"] == "1.24" and v["Os"] == "linux"
    assert daemon.api("GET", "/v1.40/version").status == 200
    r = daemon.api("GET", "/v1.99/version")
    assert r.status == 400 and "too new" in r.json()["message"]
    r = daemon.api("GET", "/v1.12/version")
    assert r.status == 400 and "too old" in r.json()["message"]


def test_info_shape(daemon):
    info = daemon.api("GET", "/info").json()
    assert info["DockerRootDir"] == str(daemon.names.data_root)
    assert info["OSType"] == "linux" and info["NCPU"] >= 1
    for k in ("Containers", "ContainersRunning", "ContainersStopped", "Images", "ServerVersion"):
        assert k in info


def test_unknown_route_is_404_json(daemon):
    r = daemon.api("GET", "/no/such/route")
    assert r.status == 404 and "message" in r.json()


def test_events_stream_live(daemon, busybox_image):
    """A live /events stream delivers container events as they happen, filtered."""
    import socket

    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(daemon.socket)
    flt = '{"type":["container"],"event":["create","destroy"]}'
    from urllib.parse import quote
    s.sendall(f"GET /events?filters={quote(flt)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    try:
        time.sleep(0.3)
        r = daemon.api("POST", "/containers/create", json={"Image": "busybox", "Cmd": ["true"]})
        assert r.status == 201
        cid = r.json()["Id"]
        assert daemon.api("DELETE", f"/containers/{cid}").status == 204
        buf = b""
        deadline = time.time() + 15
        while b'"destroy"' not in buf and time.time() < deadline:
            buf += s.recv(65536)
    finally:
        s.close()
    events = [json.loads(line) for line in buf.split(b"\r\n") if line.startswith(b"{")]
    assert [(e["Action"], e["id"]) for e in events] == [("create", cid), ("destroy", cid)]
    assert events[0]["Actor"]["Attributes"]["image"] == "busybox"


def test_system_df(daemon, busybox_image):
    df = daemon.api("GET", "/system/df").json()
    assert any("busybox:latest" in (i.get("RepoTags") or []) for i in df["Images"])
    assert isinstance(df["Containers"], list) and "LayersSize" in df
