"""Live restore: kill -9 the daemon while containers run; they keep running, and a restarted
daemon lists them, streams their logs, learns exits it missed and stops them."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from fixtures.daemon import private_daemon, run_cgroups
from support import new_run_names

pytestmark = pytest.mark.root


@pytest.fixture
def own_daemon(busybox_tar: str):
    with private_daemon(new_run_names(), busybox_tar) as h:
        yield h


def _frames(data: bytes) -> bytes:
    out = b""
    while len(data) >= 8:
        n = int.from_bytes(data[4:8], "big")
        out += data[8:8 + n]
        data = data[8 + n:]
    return out


def test_kill9_daemon_containers_survive(own_daemon):
    d = own_daemon
    ids = {}
    for name, cmd in (("ticker", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"),
                      ("shortlived", "sleep 1.5; exit 4")):
        r = d.api("POST", "/containers/create", params={"name": name},
                  json={"Image": "busybox", "Cmd": ["sh", "-c", cmd]})
        assert r.status == 201, r.text
        ids[name] = r.json()["Id"]
        assert d.api("POST", f"/containers/{ids[name]}/start").status == 204
    pid = d.api("GET", f"/containers/{ids['ticker']}/json").json()["State"]["Pid"]
    short_pid = d.api("GET", f"/containers/{ids['shortlived']}/json").json()["State"]["Pid"]
    assert pid > 0 and short_pid > 0

    d.kill9()
    deadline = time.time() + 20   # "shortlived" exits while the daemon is down
    while time.time() < deadline:
        try:
            os.kill(short_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    time.sleep(0.3)   # its shim records exit.json
    os.kill(pid, 0)   # the other container's init is still alive
    d.start()

    running = d.api("GET", "/containers/json").json()
    assert [c["Id"] for c in running] == [ids["ticker"]]
    st = d.api("GET", f"/containers/{ids['shortlived']}/json").json()["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 4
    st = d.api("GET", f"/containers/{ids['ticker']}/json").json()["State"]
    assert st["Running"] and st["Pid"] == pid

    # logs written while the daemon was away, and new lines keep arriving with follow
    r = d.api("GET", f"/containers/{ids['ticker']}/logs", params={"stdout": 1, "tail": "all"})
    before = _frames(r.body).decode()
    assert "tick 0\n" in before and before.count("tick") >= 8
    r = d.api("GET", f"/containers/{ids['ticker']}/logs",
              params={"stdout": 1, "follow": 1, "tail": 0, "until": f"{time.time() + 1.2:.3f}"}, timeout=20)
    assert "tick" in _frames(r.body).decode()

    # exec and stop still work through the re-found shim
    eid = d.api("POST", f"/containers/{ids['ticker']}/exec", json={"Cmd": ["echo", "still here"],
                                                                   "AttachStdout": True}).json()["Id"]
    r = d.api("POST", f"/exec/{eid}/start", json={"Detach": False})
    assert _frames(r.body) == b"still here\n"
    r = d.api("POST", f"/containers/{ids['ticker']}/stop", params={"t": 1}, timeout=30)
    assert r.status == 204
    st = d.api("GET", f"/containers/{ids['ticker']}/json").json()["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 137
    for cid in ids.values():
        assert d.api("DELETE", f"/containers/{cid}").status == 204
    assert run_cgroups(d.names) == []
    d.stop()   # no container left: the daemon removes its cgroup parent too
    assert not [c for c in Path("/sys/fs/cgroup").iterdir() if (c / d.names.cgroup_parent).exists()]


def test_shim_killed_while_daemon_down(own_daemon):
    """A shim that died with the daemon away: the restarted daemon marks the container
    exited, and starting it again clears the stale runtime state first."""
    d = own_daemon
    from fixtures.daemon import shim_processes
    r = d.api("POST", "/containers/create", params={"name": "orphan"},
              json={"Image": "busybox", "Cmd": ["sleep", "300"]})
    cid = r.json()["Id"]
    assert d.api("POST", f"/containers/{cid}/start").status == 204
    init_pid = d.api("GET", f"/containers/{cid}/json").json()["State"]["Pid"]
    d.kill9()
    for pid, owner in shim_processes(d.names).items():
        if owner == cid:
            os.kill(pid, 9)
    time.sleep(0.3)
    d.start()
    st = d.api("GET", f"/containers/{cid}/json").json()["State"]
    assert st["Status"] == "exited" and not st["Running"] and st["ExitCode"] == 255
    with pytest.raises(ProcessLookupError):   # the orphaned init was ended at restore
        for _ in range(50):
            os.kill(init_pid, 0)
            time.sleep(0.1)
    assert d.api("POST", f"/containers/{cid}/start").status == 204
    st = d.api("GET", f"/containers/{cid}/json").json()["State"]
    assert st["Running"] and st["Pid"] != init_pid
    assert d.api("DELETE", f"/containers/{cid}", params={"force": 1}).status == 204
    assert run_cgroups(d.names) == []


def test_restart_policies_at_daemon_start(own_daemon):
    """At start-up the daemon runs `always` containers again (even stopped by hand) and
    `unless-stopped` ones that were not stopped by hand; `no` stays down."""
    d = own_daemon
    ids = {}
    for policy in ("always", "unless-stopped", "no"):
        r = d.api("POST", "/containers/create", json={"Image": "busybox", "Cmd": ["sleep", "300"],
                                                      "HostConfig": {"RestartPolicy": {"Name": policy}}})
        ids[policy] = r.json()["Id"]
        assert d.api("POST", f"/containers/{ids[policy]}/start").status == 204
        assert d.api("POST", f"/containers/{ids[policy]}/stop", params={"t": 0}).status == 204
    r = d.api("POST", "/containers/create", json={"Image": "busybox", "Cmd": ["sleep", "300"],
                                                  "HostConfig": {"RestartPolicy": {"Name": "unless-stopped"}}})
    ids["unless-stopped-running"] = r.json()["Id"]
    assert d.api("POST", f"/containers/{ids['unless-stopped-running']}/start").status == 204
    d.stop()
    d.start()
    running = {c["Id"] for c in d.api("GET", "/containers/json").json()}
    assert ids["always"] in running and ids["unless-stopped-running"] in running
    assert ids["unless-stopped"] not in running and ids["no"] not in running
