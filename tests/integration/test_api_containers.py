"""Container routes of the Engine API: shapes, status codes, streams, filters, policies."""

from __future__ import annotations

import json
import socket
import struct
import time

import pytest

pytestmark = pytest.mark.root


def frames(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    while len(data) >= 8:
        stream, n = struct.unpack(">BxxxI", data[:8])
        out.append((stream, data[8:8 + n]))
        data = data[8 + n:]
    assert data == b""
    return out


def create(daemon, cmd, name=None, host_config=None, **cfg):
    r = daemon.api("POST", "/containers/create", params={"name": name} if name else None,
                   json={"Image": "busybox", "Cmd": cmd, "HostConfig": host_config or {}, **cfg})
    assert r.status == 201, r.text
    return r.json()["Id"]


@pytest.fixture
def cleanup(daemon):
    made: list[str] = []
    yield made
    for cid in made:
        daemon.api("DELETE", f"/containers/{cid}", params={"force": 1, "v": 1})


def test_create_errors(daemon, busybox_image, cleanup):
    r = daemon.api("POST", "/containers/create", json={"Image": "no-such-image-zz"})
    assert r.status == 404 and r.json()["message"] == "No such image: no-such-image-zz:latest"
    assert r.headers["content-type"] == "application/json"
    r = daemon.api("POST", "/containers/create", params={"name": "bad name!"}, json={"Image": "busybox"})
    assert r.status == 400 and "Invalid container name" in r.json()["message"]
    r = daemon.api("POST", "/containers/create", json={"Image": "busybox", "Cmd": ["true"],
                                                       "HostConfig": {"Memory": 1024}})
    assert r.status == 400 and "Minimum memory limit allowed is 6MB" in r.json()["message"]
    r = daemon.api("POST", "/containers/create", json={"Image": "busybox", "Cmd": ["true"],
                                                       "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}})
    assert r.status == 400 and "invalid restart policy" in r.json()["message"]
    r = daemon.api("POST", "/containers/create", json={"Image": "busybox", "Cmd": ["true"],
                                                       "HostConfig": {"CpusetCpus": "99"}})
    assert r.status == 400
    name = f"n-{daemon.names.run_id}"
    cleanup.append(create(daemon, ["true"], name=name))
    r = daemon.api("POST", "/containers/create", params={"name": name}, json={"Image": "busybox", "Cmd": ["true"]})
    assert r.status == 409 and f'"/{name}" is already in use' in r.json()["message"]
    assert daemon.api("GET", "/containers/nosuchcontainer/json").status == 404
    r = daemon.api("POST", "/containers/nosuchcontainer/start")
    assert r.status == 404 and r.json()["message"] == "No such container: nosuchcontainer"


def test_inspect_shape_and_list(daemon, busybox_image, cleanup):
    name = f"insp-{daemon.names.run_id}"
    cid = create(daemon, ["sleep", "30"], name=name, Labels={"tier": "web", "x": "1"}, Env=["A=1"])
    cleanup.append(cid)
    info = daemon.api("GET", f"/containers/{name}/json").json()
    assert info["Id"] == cid and info["Name"] == f"/{name}"
    assert info["State"]["Status"] == "created" and info["Config"]["Labels"]["tier"] == "web"
    assert "A=1" in info["Config"]["Env"] and any(e.startswith("PATH=") for e in info["Config"]["Env"])
    assert info["Path"] == "sleep" and info["Args"] == ["30"]
    assert info["Image"].startswith("sha256:")
    for k in ("HostConfig", "GraphDriver", "Mounts", "NetworkSettings", "LogPath", "HostsPath"):
        assert k in info
    assert daemon.api("GET", f"/containers/{cid[:10]}/json").json()["Id"] == cid
    assert cid not in [c["Id"] for c in daemon.api("GET", "/containers/json").json()]
    listed = daemon.api("GET", "/containers/json", params={"all": 1, "filters": {"label": ["tier=web"]}}).json()
    assert [c["Id"] for c in listed] == [cid]
    c = listed[0]
    assert c["Names"] == [f"/{name}"] and c["State"] == "created" and c["Status"] == "Created"
    assert c["Command"] == "sleep 30" and c["Image"] == "busybox"
    assert daemon.api("POST", f"/containers/{cid}/start").status == 204
    assert daemon.api("POST", f"/containers/{cid}/start").status == 304
    running = daemon.api("GET", "/containers/json", params={"filters": {"status": ["running"], "name": [name]}}).json()
    assert [x["Id"] for x in running] == [cid] and running[0]["Status"].startswith("Up ")
    assert daemon.api("GET", "/containers/json", params={"all": 1, "filters": {"status": ["exited"],
                                                                                "id": [cid[:12]]}}).json() == []
    anc = daemon.api("GET", "/containers/json", params={"filters": {"ancestor": ["busybox"], "id": [cid]}}).json()
    assert len(anc) == 1
    r = daemon.api("DELETE", f"/containers/{cid}")
    assert r.status == 409 and "cannot remove a running container" in r.json()["message"]


def test_wait_conditions_and_exit_code(daemon, busybox_image, cleanup):
    cid = create(daemon, ["sh", "-c", "sleep 0.5; exit 42"])
    cleanup.append(cid)
    assert daemon.api("POST", f"/containers/{cid}/start").status == 204
    r = daemon.api("POST", f"/containers/{cid}/wait", params={"condition": "not-running"})
    assert r.json() == {"StatusCode": 42, "Error": None}
    # not-running on a stopped container answers at once
    r = daemon.api("POST", f"/containers/{cid}/wait")
    assert r.json()["StatusCode"] == 42
    st = daemon.api("GET", f"/containers/{cid}/json").json()["State"]
    assert st["ExitCode"] == 42 and st["FinishedAt"] > st["StartedAt"]


def test_logs_options(daemon, busybox_image, cleanup):
    cid = create(daemon, ["sh", "-c", "echo one; echo two >&2; echo three; printf partial"])
    cleanup.append(cid)
    daemon.api("POST", f"/containers/{cid}/start")
    daemon.api("POST", f"/containers/{cid}/wait")
    r = daemon.api("GET", f"/containers/{cid}/logs", params={"stdout": 1, "stderr": 1})
    assert r.headers["content-type"] == "application/vnd.docker.multiplexed-stream"
    got = frames(r.body)   # order across the two pipes is not defined, within each it is
    assert [d for s, d in got if s == 1] == [b"one\n", b"three\n", b"partial"]
    assert [d for s, d in got if s == 2] == [b"two\n"]
    r = daemon.api("GET", f"/containers/{cid}/logs", params={"stdout": 1})
    assert [d for _, d in frames(r.body)] == [b"one\n", b"three\n", b"partial"]
    r = daemon.api("GET", f"/containers/{cid}/logs", params={"stdout": 1, "stderr": 1, "tail": 1})
    assert frames(r.body) == [(1, b"partial")]
    r = daemon.api("GET", f"/containers/{cid}/logs", params={"stdout": 1, "stderr": 1, "tail": 0})
    assert frames(r.body) == []
    r = daemon.api("GET", f"/containers/{cid}/logs", params={"stderr": 1, "timestamps": 1})
    (s, d), = frames(r.body)
    ts, _, text = d.partition(b" ")
    assert s == 2 and text == b"two\n" and ts.endswith(b"Z") and len(ts) == 30
    r = daemon.api("GET", f"/containers/{cid}/logs")
    assert r.status == 400
    future = time.time() + 3600
    r = daemon.api("GET", f"/containers/{cid}/logs", params={"stdout": 1, "since": f"{future:.0f}"})
    assert frames(r.body) == []
    logfile = daemon.api("GET", f"/containers/{cid}/json").json()["LogPath"]
    first = json.loads(open(logfile).readline())
    assert set(first) == {"log", "stream", "time"} and first["log"] == "one\n"


def test_logs_follow_and_tty(daemon, busybox_image, cleanup):
    cid = create(daemon, ["sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.3; done"], Tty=True)
    cleanup.append(cid)
    daemon.api("POST", f"/containers/{cid}/start")
    r = daemon.api("GET", f"/containers/{cid}/logs", params={"stdout": 1, "follow": 1}, timeout=30)
    assert r.headers["content-type"] == "application/vnd.docker.raw-stream"
    assert r.body == b"line1\r\nline2\r\nline3\r\n"


def _hijack(daemon, path: str, body: bytes = b"") -> tuple[socket.socket, bytes]:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(daemon.socket)
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
              f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        assert chunk, head
        head += chunk
    return s, head


def _read_all(s: socket.socket) -> bytes:
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return out
        out += chunk


def test_attach_hijack_stdin_and_frames(daemon, busybox_image, cleanup):
    cid = create(daemon, ["sh", "-c", "read x; echo got:$x; echo err >&2"], OpenStdin=True, StdinOnce=True,
                 AttachStdin=True, AttachStdout=True, AttachStderr=True)
    cleanup.append(cid)
    s, head = _hijack(daemon, f"/v1.45/containers/{cid}/attach?stream=1&stdin=1&stdout=1&stderr=1")
    try:
        assert head.startswith(b"HTTP/1.1 101") and b"application/vnd.docker.multiplexed-stream" in head
        assert daemon.api("POST", f"/containers/{cid}/start").status == 204
        s.sendall(b"hello\n")
        s.shutdown(socket.SHUT_WR)   # stdin EOF, output keeps coming
        out = frames(_read_all(s))
    finally:
        s.close()
    assert (1, b"got:hello\n") in out and (2, b"err\n") in out
    assert daemon.api("POST", f"/containers/{cid}/wait").json()["StatusCode"] == 0


def test_exec_create_start_inspect(daemon, busybox_image, cleanup):
    cid = create(daemon, ["sleep", "30"])
    cleanup.append(cid)
    r = daemon.api("POST", f"/containers/{cid}/exec", json={"Cmd": ["true"]})
    assert r.status == 409
    daemon.api("POST", f"/containers/{cid}/start")
    eid = daemon.api("POST", f"/containers/{cid}/exec", json={
        "Cmd": ["sh", "-c", "cat; echo E >&2; exit 3"], "AttachStdin": True, "AttachStdout": True,
        "AttachStderr": True, "Env": ["V=1"]}).json()["Id"]
    s, head = _hijack(daemon, f"/exec/{eid}/start", json.dumps({"Detach": False, "Tty": False}).encode())
    try:
        assert head.startswith(b"HTTP/1.1 101")
        s.sendall(b"piped\n")
        s.shutdown(socket.SHUT_WR)
        out = frames(_read_all(s))
    finally:
        s.close()
    assert out == [(1, b"piped\n"), (2, b"E\n")]
    info = daemon.api("GET", f"/exec/{eid}/json").json()
    assert info["ExitCode"] == 3 and info["Running"] is False and info["ContainerID"] == cid
    # detached exec, then not found / permission errors
    eid = daemon.api("POST", f"/containers/{cid}/exec", json={"Cmd": ["sh", "-c", "sleep 0.2; exit 6"]}).json()["Id"]
    assert daemon.api("POST", f"/exec/{eid}/start", json={"Detach": True}).status == 200
    time.sleep(0.8)
    assert daemon.api("GET", f"/exec/{eid}/json").json()["ExitCode"] == 6
    eid = daemon.api("POST", f"/containers/{cid}/exec", json={"Cmd": ["nosuchcmd"], "AttachStdout": True}).json()["Id"]
    r = daemon.api("POST", f"/exec/{eid}/start", json={})
    assert "executable file not found" in r.text
    assert daemon.api("GET", "/exec/nosuchexec/json").status == 404


def test_rename_pause_top_stats_kill(daemon, busybox_image, cleanup):
    a, b = f"ren-a-{daemon.names.run_id}", f"ren-b-{daemon.names.run_id}"
    cid = create(daemon, ["sh", "-c", "while true; do sleep 0.1; done"], name=a)
    cleanup.append(cid)
    daemon.api("POST", f"/containers/{cid}/start")
    assert daemon.api("POST", f"/containers/{cid}/rename", params={"name": b}).status == 204
    assert daemon.api("GET", f"/containers/{b}/json").json()["Name"] == f"/{b}"
    assert daemon.api("GET", f"/containers/{a}/json").status == 404
    top = daemon.api("GET", f"/containers/{cid}/top").json()
    assert "PID" in top["Titles"] and any("sh -c" in " ".join(p) for p in top["Processes"])
    st = daemon.api("GET", f"/containers/{cid}/stats", params={"stream": 0}).json()
    assert st["memory_stats"]["usage"] > 0 and st["pids_stats"]["current"] >= 1
    assert st["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert daemon.api("POST", f"/containers/{cid}/pause").status == 204
    info = daemon.api("GET", f"/containers/{cid}/json").json()
    assert info["State"]["Status"] == "paused" and info["State"]["Paused"] is True
    assert daemon.api("POST", f"/containers/{cid}/pause").status == 409
    assert daemon.api("POST", f"/containers/{cid}/unpause").status == 204
    assert daemon.api("POST", f"/containers/{cid}/kill", params={"signal": "NOPE"}).status == 400
    assert daemon.api("POST", f"/containers/{cid}/kill", params={"signal": "SIGKILL"}).status == 204
    assert daemon.api("POST", f"/containers/{cid}/wait").json()["StatusCode"] == 137
    r = daemon.api("POST", f"/containers/{cid}/kill")
    assert r.status == 409 and "is not running" in r.json()["message"]


def test_stats_read_the_limits_and_usage_the_runtime_applies(daemon, busybox_image, cleanup):
    """A CPU-bound container with -m 64m --cpus 0.5: stats show the memory limit, user-mode
    CPU time and CFS throttling (read through the runtime's cgroup manager)."""
    cid = create(daemon, ["sh", "-c", "while :; do :; done"],
                 host_config={"Memory": 64 << 20, "NanoCpus": 500_000_000, "PidsLimit": 50})
    cleanup.append(cid)
    assert daemon.api("POST", f"/containers/{cid}/start").status == 204
    deadline = time.monotonic() + 20
    while True:  # wait (not a timing assertion) until the quota has bitten at least once
        st = daemon.api("GET", f"/containers/{cid}/stats", params={"stream": 0}).json()
        if st["cpu_stats"]["throttling_data"]["throttled_periods"] > 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert st["memory_stats"]["limit"] == 64 << 20
    assert st["pids_stats"]["limit"] == 50 and st["pids_stats"]["current"] >= 1
    usage = st["cpu_stats"]["cpu_usage"]
    assert usage["usage_in_usermode"] > 0 and usage["total_usage"] > 0
    throttling = st["cpu_stats"]["throttling_data"]
    assert throttling["periods"] > 0 and throttling["throttled_periods"] > 0
    assert daemon.api("POST", f"/containers/{cid}/kill").status == 204
    daemon.api("POST", f"/containers/{cid}/wait")
    stopped = daemon.api("GET", f"/containers/{cid}/stats", params={"stream": 0}).json()
    assert stopped["memory_stats"] == {} and stopped["pids_stats"] == {"current": 0}


def test_restart_policies(daemon, busybox_image, cleanup):
    cid = create(daemon, ["sh", "-c", "exit 1"], host_config={"RestartPolicy": {"Name": "on-failure",
                                                                                  "MaximumRetryCount": 2}})
    cleanup.append(cid)
    daemon.api("POST", f"/containers/{cid}/start")
    deadline = time.time() + 20
    while time.time() < deadline:
        info = daemon.api("GET", f"/containers/{cid}/json").json()
        if info["RestartCount"] == 2 and info["State"]["Status"] == "exited":
            break
        time.sleep(0.2)
    assert info["RestartCount"] == 2 and info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 1
    cid = create(daemon, ["sh", "-c", "sleep 0.2"], host_config={"RestartPolicy": {"Name": "always"}})
    cleanup.append(cid)
    daemon.api("POST", f"/containers/{cid}/start")
    deadline = time.time() + 20
    while time.time() < deadline:
        info = daemon.api("GET", f"/containers/{cid}/json").json()
        if info["RestartCount"] >= 2:
            break
        time.sleep(0.2)
    assert info["RestartCount"] >= 2
    assert daemon.api("POST", f"/containers/{cid}/stop", params={"t": 1}).status in (204, 304)
    time.sleep(1.0)
    info = daemon.api("GET", f"/containers/{cid}/json").json()
    assert info["State"]["Status"] == "exited"
    n = info["RestartCount"]
    time.sleep(1.0)
    assert daemon.api("GET", f"/containers/{cid}/json").json()["RestartCount"] == n


def test_restart_and_autoremove_and_prune(daemon, busybox_image, cleanup):
    cid = create(daemon, ["sleep", "30"])
    cleanup.append(cid)
    daemon.api("POST", f"/containers/{cid}/start")
    pid1 = daemon.api("GET", f"/containers/{cid}/json").json()["State"]["Pid"]
    assert daemon.api("POST", f"/containers/{cid}/restart", params={"t": 0}).status == 204
    st = daemon.api("GET", f"/containers/{cid}/json").json()["State"]
    assert st["Running"] and st["Pid"] != pid1
    auto = create(daemon, ["true"], host_config={"AutoRemove": True})
    r = daemon.api("POST", f"/containers/{auto}/wait", params={"condition": "next-exit"}, timeout=1) \
        if False else None
    daemon.api("POST", f"/containers/{auto}/start")
    deadline = time.time() + 10
    while time.time() < deadline and daemon.api("GET", f"/containers/{auto}/json").status != 404:
        time.sleep(0.1)
    assert daemon.api("GET", f"/containers/{auto}/json").status == 404
    dead = create(daemon, ["true"], Labels={"prune-me": "yes"})
    daemon.api("POST", f"/containers/{dead}/start")
    daemon.api("POST", f"/containers/{dead}/wait")
    r = daemon.api("POST", "/containers/prune", params={"filters": {"label": ["prune-me=yes"]}})
    assert r.status == 200 and r.json()["ContainersDeleted"] == [dead]
    assert r is not None


def test_network_modes_without_network_service_or_with(daemon, busybox_image, cleanup):
    cid = create(daemon, ["sh", "-c", "ls /sys/class/net"], host_config={"NetworkMode": "none"})
    cleanup.append(cid)
    daemon.api("POST", f"/containers/{cid}/start")
    daemon.api("POST", f"/containers/{cid}/wait")
    out = b"".join(d for _, d in frames(daemon.api("GET", f"/containers/{cid}/logs", params={"stdout": 1}).body))
    assert out.split() == [b"lo"]
    cid = create(daemon, ["sh", "-c", "hostname; ls /sys/class/net | wc -l"], host_config={"NetworkMode": "host"})
    cleanup.append(cid)
    daemon.api("POST", f"/containers/{cid}/start")
    daemon.api("POST", f"/containers/{cid}/wait")
    out = b"".join(d for _, d in frames(daemon.api("GET", f"/containers/{cid}/logs", params={"stdout": 1}).body))
    host_links = len(__import__("os").listdir("/sys/class/net"))
    lines = out.decode().split()
    assert lines[0] == socket.gethostname() and abs(int(lines[1]) - host_links) <= 3


def test_events_for_container_lifecycle(daemon, busybox_image, cleanup):
    since = time.time()
    cid = create(daemon, ["true"])
    cleanup.append(cid)
    daemon.api("POST", f"/containers/{cid}/start")
    daemon.api("POST", f"/containers/{cid}/wait")
    r = daemon.api("GET", "/events", params={"since": f"{since:.3f}", "until": f"{time.time() + 0.5:.3f}",
                                             "filters": {"container": [cid]}}, timeout=10)
    actions = [json.loads(ln)["Action"] for ln in r.text.splitlines() if ln.strip()]
    assert actions[:3] == ["create", "start", "die"]


def test_concurrent_starts(daemon, busybox_image, cleanup):
    """Several containers created and started at once all run and exit cleanly."""
    import concurrent.futures

    ids = [create(daemon, ["sh", "-c", f"echo n{i}"]) for i in range(6)]
    cleanup.extend(ids)
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda cid: daemon.api("POST", f"/containers/{cid}/start").status, ids))
    assert codes == [204] * 6
    for i, cid in enumerate(ids):
        assert daemon.api("POST", f"/containers/{cid}/wait").json()["StatusCode"] == 0
        out = frames(daemon.api("GET", f"/containers/{cid}/logs", params={"stdout": 1}).body)
        assert out == [(1, f"n{i}\n".encode())]


def test_update_resources_live(daemon, busybox_image, cleanup):
    from pathlib import Path
    cid = create(daemon, ["sleep", "30"], host_config={"Memory": 64 << 20})
    cleanup.append(cid)
    daemon.api("POST", f"/containers/{cid}/start")
    r = daemon.api("POST", f"/containers/{cid}/update", json={"Memory": 96 << 20, "MemorySwap": -1,
                                                               "PidsLimit": 33,
                                                               "RestartPolicy": {"Name": "on-failure",
                                                                                 "MaximumRetryCount": 2}})
    assert r.status == 200, r.text
    base = Path("/sys/fs/cgroup")
    par = daemon.names.cgroup_parent
    assert (base / "memory" / par / cid / "memory.limit_in_bytes").read_text().strip() == str(96 << 20)
    assert (base / "pids" / par / cid / "pids.max").read_text().strip() == "33"
    hc = daemon.api("GET", f"/containers/{cid}/json").json()["HostConfig"]
    assert hc["Memory"] == 96 << 20 and hc["RestartPolicy"]["Name"] == "on-failure"
    r = daemon.api("POST", f"/containers/{cid}/update", json={"Memory": 1000})
    assert r.status == 400 and "Minimum memory limit" in r.json()["message"]


def test_healthcheck(daemon, busybox_image, cleanup):
    ms = 1_000_000
    cid = create(daemon, ["sleep", "60"], Healthcheck={"Test": ["CMD-SHELL", "test -f /tmp/ok && echo fine"],
                                                       "Interval": 200 * ms, "Timeout": 2000 * ms, "Retries": 2})
    cleanup.append(cid)
    daemon.api("POST", f"/containers/{cid}/start")

    def health():
        return daemon.api("GET", f"/containers/{cid}/json").json()["State"].get("Health", {})

    assert health()["Status"] == "starting"
    deadline = time.time() + 15
    while health()["Status"] != "unhealthy" and time.time() < deadline:
        time.sleep(0.1)
    h = health()
    assert h["Status"] == "unhealthy" and h["FailingStreak"] >= 2 and h["Log"][-1]["ExitCode"] == 1
    eid = daemon.api("POST", f"/containers/{cid}/exec", json={"Cmd": ["touch", "/tmp/ok"]}).json()["Id"]
    daemon.api("POST", f"/exec/{eid}/start", json={"Detach": True})
    deadline = time.time() + 15
    while health()["Status"] != "healthy" and time.time() < deadline:
        time.sleep(0.1)
    h = health()
    assert h["Status"] == "healthy" and h["Log"][-1]["Output"] == "fine\n"
    listed = daemon.api("GET", "/containers/json", params={"filters": {"health": ["healthy"], "id": [cid]}}).json()
    assert len(listed) == 1 and listed[0]["Status"].endswith("(healthy)")
