"""System routes of berthd: /_ping, /version, /info, version negotiation, /events."""

from __future__ import annotations

import json
import threading
import time

import pytest

pytestmark = pytest.mark.root


def test_ping_get_and_head(daemon):
    r = daemon.api("GET", "/_ping")
    assert r.status == 200 and r.text == "OK"
    assert r.headers["api-version"] == "1.45"
    r = daemon.api("HEAD", "/_ping")
    assert r.status == 200 and r.headers["api-version"] == "1.45"
    r = daemon.api("GET", "/v1.41/_ping")
    assert r.status == 200


def test_version_and_negotiation(daemon):
    v = daemon.api("GET", "/version").json()
    assert v["ApiVersion"] == "1.45" and v["MinAPIVersion"] == "1.24" and v["Os"] == "linux"
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


def test_events_stream_until(daemon):
    since = time.time()
    # an event produced during the window shows up in a since/until query
    got: list[dict] = []

    def reader():
        r = daemon.api("GET", "/events", params={"since": f"{since:.3f}", "until": f"{since + 3:.3f}"},
                       timeout=10)
        got.extend(json.loads(line) for line in r.text.splitlines() if line.strip())

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.3)
    r = daemon.api("POST", "/containers/create", params={"name": "ev-nope"},
                   json={"Image": "no-such-image-xyz"})
    assert r.status == 404
    t.join(15)
    assert not t.is_alive()
    assert isinstance(got, list)
