"""Resource limits and signals through the Engine API: OOM, pids limit, stop timeouts,
isolation as Docker sets it up."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.root


def run(daemon, cmd, host_config=None, name=None, **cfg):
    body = {"Image": "busybox", "Cmd": cmd, "HostConfig": host_config or {}, **cfg}
    r = daemon.api("POST", "/containers/create", params={"name": name} if name else None, json=body)
    assert r.status == 201, r.text
    cid = r.json()["Id"]
    r = daemon.api("POST", f"/containers/{cid}/start")
    assert r.status == 204, r.text
    return cid


def wait(daemon, cid, timeout=60):
    r = daemon.api("POST", f"/containers/{cid}/wait", timeout=timeout)
    assert r.status == 200, r.text
    return r.json()["StatusCode"]


def logs(daemon, cid):
    r = daemon.api("GET", f"/containers/{cid}/logs", params={"stdout": 1, "stderr": 1})
    out, data = b"", r.body
    while len(data) >= 8:
        n = int.from_bytes(data[4:8], "big")
        out += data[8:8 + n]
        data = data[8 + n:]
    return out.decode()


def rm(daemon, cid):
    daemon.api("DELETE", f"/containers/{cid}", params={"force": 1})


def test_memory_hog_is_oom_killed(daemon, busybox_image):
    cid = run(daemon, ["sh", "-c", "tail /dev/zero"], {"Memory": 32 * 1024 * 1024})
    try:
        assert wait(daemon, cid) == 137
        st = daemon.api("GET", f"/containers/{cid}/json").json()["State"]
        assert st["OOMKilled"] is True and st["ExitCode"] == 137
    finally:
        rm(daemon, cid)


def test_pids_limit_contains_fork_bomb(daemon, busybox_image):
    # PID 1 forks nothing, so the container outlives the bomb whatever the bomb's timing
    cid = run(daemon, ["sleep", "60"], {"PidsLimit": 20})
    try:
        r = daemon.api("POST", f"/containers/{cid}/exec",
                       json={"Cmd": ["sh", "-c", "f() { f | f & }; f"], "AttachStdout": False})
        assert r.status == 201, r.text
        r = daemon.api("POST", f"/exec/{r.json()['Id']}/start", json={"Detach": True})
        assert r.status in (200, 204), r.text
        cgdir = Path("/sys/fs/cgroup/pids") / daemon.names.cgroup_parent / cid
        assert (cgdir / "pids.max").read_text().strip() == "20"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "max 0" in (cgdir / "pids.events").read_text():
            time.sleep(0.1)
        assert "max 0" not in (cgdir / "pids.events").read_text(), "the bomb never reached the limit"
        pids = daemon.api("GET", f"/containers/{cid}/stats", params={"stream": 0, "one-shot": 1}).json()
        assert 1 < pids["pids_stats"]["current"] <= 20
        assert daemon.api("GET", f"/containers/{cid}/json").json()["State"]["Running"] is True
        # the host is unaffected: it still forks
        assert subprocess.run(["true"]).returncode == 0
    finally:
        r = daemon.api("DELETE", f"/containers/{cid}", params={"force": 1}, timeout=60)
        assert r.status == 204, r.text


def test_stop_sigterm_then_sigkill_after_timeout(daemon, busybox_image):
    cid = run(daemon, ["sh", "-c", "trap 'echo ignoring' TERM; while true; do sleep 0.1; done"])
    try:
        time.sleep(0.3)
        t0 = time.monotonic()
        r = daemon.api("POST", f"/containers/{cid}/stop", params={"t": 2}, timeout=30)
        took = time.monotonic() - t0
        assert r.status == 204
        assert 1.8 <= took < 8
        st = daemon.api("GET", f"/containers/{cid}/json").json()["State"]
        assert st["ExitCode"] == 137 and st["Status"] == "exited"
        assert "ignoring" in logs(daemon, cid)
        assert daemon.api("POST", f"/containers/{cid}/stop").status == 304
    finally:
        rm(daemon, cid)


def test_stop_signal_from_config(daemon, busybox_image):
    cid = run(daemon, ["sh", "-c", "trap 'echo got-usr1; exit 9' USR1; while true; do sleep 0.1; done"],
              StopSignal="SIGUSR1")
    try:
        time.sleep(0.3)
        assert daemon.api("POST", f"/containers/{cid}/stop", params={"t": 10}).status == 204
        assert daemon.api("GET", f"/containers/{cid}/json").json()["State"]["ExitCode"] == 9
        assert "got-usr1" in logs(daemon, cid)
    finally:
        rm(daemon, cid)


def test_isolation_defaults(daemon, busybox_image):
    script = ("echo pid=$$; echo host=$(hostname); grep CapEff /proc/self/status; "
              "head -c 10 /proc/kcore | wc -c; (echo x > /sys/kernel/uevent_helper) 2>/dev/null "
              "&& echo sys-writable || echo sys-ro; ps | wc -l")
    cid = run(daemon, ["sh", "-c", script], Hostname="boxy")
    try:
        assert wait(daemon, cid) == 0
        out = logs(daemon, cid)
        assert "pid=1\n" in out
        assert "host=boxy\n" in out
        assert "CapEff:\t00000000a80425fb" in out
        assert "\n0\n" in out          # /proc/kcore is masked (empty)
        assert "sys-ro" in out
        assert int(out.strip().splitlines()[-1]) <= 5   # host processes are invisible
    finally:
        rm(daemon, cid)


def test_cap_add_drop_privileged_readonly(daemon, busybox_image):
    cid = run(daemon, ["sh", "-c", "grep CapEff /proc/self/status; touch /x 2>/dev/null || echo ro"],
              {"CapDrop": ["ALL"], "CapAdd": ["NET_ADMIN"], "ReadonlyRootfs": True})
    try:
        wait(daemon, cid)
        out = logs(daemon, cid)
        assert "CapEff:\t0000000000001000" in out
        assert "ro\n" in out
    finally:
        rm(daemon, cid)
    cid = run(daemon, ["sh", "-c", "grep CapEff /proc/self/status"], {"Privileged": True})
    try:
        wait(daemon, cid)
        bnd = next(ln.split()[1] for ln in open("/proc/self/status") if ln.startswith("CapBnd:"))
        assert f"CapEff:\t{bnd}" in logs(daemon, cid)
    finally:
        rm(daemon, cid)


def test_user_and_workdir_and_env(daemon, busybox_image):
    cid = run(daemon, ["sh", "-c", "id -u; id -g; pwd; echo $FOO; echo $PATH"], User="nobody",
              WorkingDir="/work/dir", Env=["FOO=bar"])
    try:
        assert wait(daemon, cid) == 0
        out = logs(daemon, cid).splitlines()
        assert out[:4] == ["65534", "65534", "/work/dir", "bar"]
        assert out[4].startswith("/usr/local/sbin")
    finally:
        rm(daemon, cid)
    r = daemon.api("POST", "/containers/create", json={"Image": "busybox", "Cmd": ["true"], "User": "nosuchuser"})
    assert r.status == 400 and "unable to find user nosuchuser" in r.json()["message"]


def test_cpu_and_memory_limits_in_cgroup(daemon, busybox_image):
    cid = run(daemon, ["sleep", "30"], {"Memory": 64 * 1024 * 1024, "NanoCpus": 500_000_000,
                                        "CpuShares": 512, "CpusetCpus": "0"})
    try:
        base = Path("/sys/fs/cgroup")
        par = daemon.names.cgroup_parent
        assert (base / "memory" / par / cid / "memory.limit_in_bytes").read_text().strip() == str(64 * 1024 * 1024)
        cpu = base / "cpu,cpuacct" / par / cid
        if not cpu.exists():
            cpu = base / "cpu" / par / cid
        assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "50000"
        assert (cpu / "cpu.shares").read_text().strip() == "512"
        assert (base / "cpuset" / par / cid / "cpuset.cpus").read_text().strip() == "0"
    finally:
        rm(daemon, cid)
