"""specgen, names, humanize, events, shim protocol: pure logic (no root needed)."""

from __future__ import annotations

import json
import os
import time

import pytest

from berth.engine import hostconfig, specgen
from berth.engine.events import Event
from berth.engine.humanize import human_duration, status_string
from berth.engine.names import random_name, validate
from berth.errors import InvalidParameter
from berth.shim.protocol import ShimConfig, frame, rfc3339_nano
from berth.shim.server import LogWriter

IMAGE = {"config": {"Env": ["PATH=/usr/bin:/bin", "LANG=C"], "Cmd": ["sh"], "WorkingDir": "/srv",
                    "Labels": {"a": "1"}, "StopSignal": "SIGQUIT", "ExposedPorts": {"80/tcp": {}}}}


def test_merge_config_fills_from_image():
    c = specgen.merge_config({"Env": ["LANG=en", "X=1"], "Labels": {"b": "2"}}, IMAGE)
    assert c["Env"] == ["PATH=/usr/bin:/bin", "LANG=en", "X=1"]
    assert c["Cmd"] == ["sh"] and c["Entrypoint"] is None and c["WorkingDir"] == "/srv"
    assert c["Labels"] == {"a": "1", "b": "2"} and c["StopSignal"] == "SIGQUIT"
    c = specgen.merge_config({"Entrypoint": ["echo"]}, IMAGE)
    assert c["Entrypoint"] == ["echo"] and c["Cmd"] is None   # a new entrypoint drops the image Cmd
    c = specgen.merge_config({"Cmd": ["ls"]}, {"config": {}})
    assert c["Env"][0].startswith("PATH=/usr/local/sbin")


@pytest.mark.parametrize("hc,msg", [
    ({"Memory": 1000}, "Minimum memory limit allowed is 6MB"),
    ({"Memory": 10 << 20, "MemorySwap": 5 << 20}, "Minimum memoryswap limit"),
    ({"NanoCpus": 10**15}, "Range of CPUs is from 0.01"),
    ({"CpusetCpus": "0-999"}, "Requested CPUs are not available"),
    ({"RestartPolicy": {"Name": "bogus"}}, "invalid restart policy"),
    ({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}}, "maximum retry count"),
    ({"AutoRemove": True, "RestartPolicy": {"Name": "always"}}, "AutoRemove"),
    ({"CapAdd": ["NOT_A_CAP"]}, "unknown capability"),
])
def test_validate_host_config_messages(hc, msg):
    with pytest.raises(InvalidParameter, match=msg):
        hostconfig.validate_host_config(hc, ncpu=2)


def test_resolve_user(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
    (tmp_path / "etc/group").write_text("root:x:0:\napp:x:1000:\nextra:x:2000:app\n")
    u = specgen.resolve_user(str(tmp_path), "app")
    assert (u.uid, u.gid, u.additional_gids, u.home) == (1000, 1000, [2000], "/home/app")
    u = specgen.resolve_user(str(tmp_path), "app:root")
    assert (u.uid, u.gid) == (1000, 0)
    assert specgen.resolve_user(str(tmp_path), "4242").uid == 4242
    with pytest.raises(InvalidParameter, match="unable to find user nobody"):
        specgen.resolve_user(str(tmp_path), "nobody")


def test_generate_docker_defaults(tmp_path):
    cfg = specgen.merge_config({"Cmd": ["true"], "Tty": True}, IMAGE)
    hc = {"Memory": 64 << 20, "NanoCpus": 1_500_000_000, "PidsLimit": 20, "CpuShares": 256,
          "ReadonlyRootfs": True, "CapDrop": ["KILL"]}
    spec = specgen.generate(specgen.SpecInputs(
        id="c" * 64, rootfs=str(tmp_path), config=cfg, host_config=hc, cgroup_parent="berth",
        hostname="h1", files={"/etc/hosts": "/x/hosts"}))
    p = spec["process"]
    assert p["args"] == ["true"] and p["terminal"] is True and p["cwd"] == "/srv"
    assert "HOSTNAME=h1" in p["env"] and "TERM=xterm" in p["env"]
    assert "CAP_KILL" not in p["capabilities"]["effective"] and "CAP_CHOWN" in p["capabilities"]["bounding"]
    assert spec["root"] == {"path": str(tmp_path), "readonly": True}
    lin = spec["linux"]
    assert lin["cgroupsPath"] == "/berth/" + "c" * 64
    assert lin["resources"]["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    assert lin["resources"]["cpu"] == {"shares": 256, "period": 100000, "quota": 150000}
    assert lin["resources"]["pids"] == {"limit": 20}
    assert "/proc/kcore" in lin["maskedPaths"] and "/proc/sys" in lin["readonlyPaths"]
    assert {n["type"] for n in lin["namespaces"]} == {"pid", "ipc", "uts", "mount", "network"}
    dests = [m["destination"] for m in spec["mounts"]]
    for d in ("/proc", "/dev", "/dev/pts", "/sys", "/dev/shm", "/dev/mqueue", "/etc/hosts"):
        assert d in dests
    host = specgen.generate(specgen.SpecInputs(
        id="d" * 64, rootfs=str(tmp_path), config=cfg, host_config={"Privileged": True}, cgroup_parent="b",
        hostname="h", share_host_network=True))
    assert "network" not in {n["type"] for n in host["linux"]["namespaces"]}
    assert host["linux"]["maskedPaths"] == [] and host["linux"]["resources"]["devices"][0]["allow"] is True
    with pytest.raises(InvalidParameter, match="No command specified"):
        specgen.process_args({"Cmd": None, "Entrypoint": None})


def test_names_and_humanize():
    assert validate("/web-1") == "web-1"
    with pytest.raises(InvalidParameter, match="Invalid container name"):
        validate("-bad")
    assert "_" in random_name()
    assert human_duration(0.3) == "Less than a second"
    assert human_duration(45) == "45 seconds"
    assert human_duration(60) == "About a minute"
    assert human_duration(3 * 3600) == "3 hours"
    now = time.time()
    st = {"Status": "exited", "ExitCode": 3, "FinishedAt": rfc3339_nano(int((now - 120) * 1e9)),
          "StartedAt": rfc3339_nano(int((now - 130) * 1e9))}
    assert status_string(st, now) == "Exited (3) 2 minutes ago"
    assert status_string({"Status": "created"}) == "Created"
    st = {"Status": "running", "StartedAt": rfc3339_nano(int((now - 5) * 1e9))}
    assert status_string(st, now) == "Up 5 seconds"


def test_event_filters_and_shape():
    e = Event("container", "start", "abc" * 21 + "d", {"name": "web", "image": "busybox", "tier": "x"})
    d = e.to_json()
    assert d["Type"] == "container" and d["status"] == "start" and d["from"] == "busybox"
    assert e.matches({"container": ["web"], "event": ["start"]})
    assert not e.matches({"type": ["image"]})
    assert e.matches({"label": ["tier=x"]}) and not e.matches({"label": ["tier=y"]})


def test_frames_logwriter_and_config(tmp_path):
    assert frame(2, b"ab") == b"\x02\x00\x00\x00\x00\x00\x00\x02ab"
    lw = LogWriter(str(tmp_path / "log.json"))
    lw.write(1, b"one\ntw")
    lw.write(1, b"o\n")
    lw.write(2, b"partial")
    lw.flush()
    recs = [json.loads(line) for line in (tmp_path / "log.json").read_text().splitlines()]
    assert [(r["stream"], r["log"]) for r in recs] == [("stdout", "one\n"), ("stdout", "two\n"),
                                                         ("stderr", "partial")]
    assert recs[0]["time"].endswith("Z") and len(recs[0]["time"]) == 30
    cfg = ShimConfig(id="x", bundle="/b", runtime_root="/r", socket="/s", log_path="/l", exit_path="/e", tty=True)
    assert ShimConfig.from_json(cfg.to_json()) == cfg


def test_logwriter_max_size_alone_starts_a_fresh_file(tmp_path):
    """max-size without max-file: a full log is replaced by a new, empty file (never grown past
    max-size, no other file left), so a reader holding the old one can finish it."""
    path = tmp_path / "log.json"
    lw = LogWriter(str(path), max_size=1024)
    lw.write(1, b"first\n")
    reader = open(path, "rb")
    first_ino = os.fstat(reader.fileno()).st_ino
    for i in range(100):
        lw.write(1, b"line %03d\n" % i)
    assert os.stat(path).st_ino != first_ino and os.path.getsize(path) <= 1024
    assert sorted(os.listdir(tmp_path)) == ["log.json"]
    old = [json.loads(ln)["log"] for ln in reader.read().splitlines()]
    reader.close()
    new = [json.loads(ln)["log"] for ln in path.read_text().splitlines()]
    # the old file kept its records whole, the current one holds the newest run of them
    assert old[0] == "first\n" and [int(x.split()[1]) for x in old[1:]] == list(range(len(old) - 1))
    nums = [int(x.split()[1]) for x in new]
    assert nums == list(range(nums[0], 100)) and nums[0] > len(old)
