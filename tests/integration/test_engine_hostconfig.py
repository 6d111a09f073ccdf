"""HostConfig fields berth used to accept and drop: devices, device cgroup rules, --init,
--volumes-from, runtimes, annotations, masked/read-only paths, user namespaces, storage
options, block I/O. Through berthd with the real docker CLI (and the API where the CLI
cannot say it), compared with Debian's dockerd where that is cheap."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from support import container_names, create_refused

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("each_docker_cli")]

OPEN_FUSE = "exec 3<>/dev/fuse && echo opened"


def _ls_fields(line: str) -> list[str]:
    """`ls -l` of a device without its date and name: mode, links, owner, group, major, minor."""
    return line.split()[:6]


def test_device_node_opens_as_on_docker(daemon, busybox_image, dockerd):
    res = daemon.docker("run", "--rm", "--device", "/dev/fuse", "busybox", "sh", "-c",
                        f"ls -l /dev/fuse; {OPEN_FUSE}")
    assert res.returncode == 0, res.stderr
    line, opened = res.stdout.splitlines()
    assert _ls_fields(line) == ["crw-------", "1", "root", "root", "10,", "229"] and opened == "opened"
    ours = daemon.cli("run", "--rm", "--device", "/dev/fuse", "busybox", "ls", "-l", "/dev/fuse")
    assert ours.returncode == 0 and _ls_fields(ours.stdout.strip()) == _ls_fields(line), ours.stderr
    ref = dockerd.docker("run", "--rm", "--device", "/dev/fuse", "busybox", "ls", "-l", "/dev/fuse")
    assert ref.returncode == 0, ref.stderr
    assert _ls_fields(ref.stdout.strip()) == _ls_fields(line)


def test_device_path_in_container_and_permissions(daemon, busybox_image):
    res = daemon.docker("run", "--rm", "--device", "/dev/fuse:/dev/myfuse:r", "busybox", "sh", "-c",
                        "ls /dev/fuse 2>/dev/null || echo no-fuse; exec 3</dev/myfuse && echo read-ok; "
                        "(exec 4<>/dev/myfuse) 2>/dev/null || echo rw-refused")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["no-fuse", "read-ok", "rw-refused"]


def test_device_directory_adds_every_node(daemon, busybox_image, tmp_path):
    (tmp_path / "sub").mkdir()
    for path, mode, minor in ((tmp_path / "null2", 0o620, 3), (tmp_path / "sub/zero2", 0o640, 5)):
        os.mknod(path, stat.S_IFCHR, os.makedev(1, minor))
        os.chmod(path, mode)   # not through mknod: the umask would take bits away
    (tmp_path / "plain").write_text("not a device")
    res = daemon.docker("run", "--rm", "--device", f"{tmp_path}:/dev/extra", "busybox", "sh", "-c",
                        "ls -l /dev/extra/null2 /dev/extra/sub/zero2; ls /dev/extra/plain 2>/dev/null || echo no-plain;"
                        " head -c 3 /dev/extra/sub/zero2 | wc -c")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert _ls_fields(lines[0]) == ["crw--w----", "1", "root", "root", "1,", "3"]
    assert _ls_fields(lines[1]) == ["crw-r-----", "1", "root", "root", "1,", "5"]
    assert lines[2:] == ["no-plain", "3"]


def test_without_device_open_is_refused_and_a_cgroup_rule_allows_it(daemon, busybox_image):
    mknod = "mknod /dev/fuse c 10 229 && "
    res = daemon.docker("run", "--rm", "busybox", "sh", "-c", f"ls /dev/fuse 2>/dev/null; {mknod}{OPEN_FUSE}")
    assert res.returncode != 0 and "opened" not in res.stdout
    assert "Operation not permitted" in res.stderr
    res = daemon.docker("run", "--rm", "--device-cgroup-rule", "c 10:229 rwm", "busybox", "sh", "-c",
                        f"{mknod}{OPEN_FUSE}")
    assert res.returncode == 0 and res.stdout.strip() == "opened", res.stderr
    # a wildcard minor, read only
    res = daemon.docker("run", "--rm", "--device-cgroup-rule", "c 10:* r", "busybox", "sh", "-c",
                        f"{mknod}exec 3</dev/fuse && echo read-ok; (exec 4<>/dev/fuse) 2>/dev/null || echo rw-refused")
    assert res.returncode == 0 and res.stdout.split() == ["read-ok", "rw-refused"], res.stderr


def test_bad_devices_and_rules_are_refused_with_nothing_left(daemon, busybox_image):
    name = "hc-bad-device"
    res = daemon.docker("run", "--name", name, "--device", "/dev/nope", "busybox", "true")
    assert res.returncode != 0
    assert ('error gathering device information while adding custom device "/dev/nope": '
            'no such file or directory') in res.stderr
    assert f"/{name}" not in container_names(daemon)
    assert "not a device node" in create_refused(
        daemon, {"Devices": [{"PathOnHost": "/etc/hostname", "PathInContainer": "/dev/x",
                              "CgroupPermissions": "rwm"}]}, name)
    assert create_refused(daemon, {"Devices": [{"PathOnHost": "/dev/fuse", "CgroupPermissions": "rwx"}]},
                           name) == "invalid device mode: rwx"
    assert create_refused(daemon, {"DeviceCgroupRules": ["c 10:229"]}, name) == \
        "invalid device cgroup rule format: 'c 10:229'"


def _processes(daemon, cid: str, until, tries: int = 100) -> list[str]:
    """`ps -o stat,comm` lines in the container, polled (0.1 s apart) until `until(lines)`."""
    lines: list[str] = []
    for _ in range(tries):
        lines = daemon.docker("exec", cid, "ps", "-o", "stat,comm").stdout.splitlines()[1:]
        if until(lines):
            break
        time.sleep(0.1)
    return lines


def test_init_is_pid1_and_passes_exit_codes_and_signals(daemon, busybox_image):
    res = daemon.docker("run", "--rm", "--init", "busybox", "sh", "-c", "tr '\\0' ' ' </proc/1/cmdline; exit 3")
    assert res.returncode == 3, res.stderr
    assert res.stdout.strip() == "/sbin/docker-init -- sh -c tr '\\0' ' ' </proc/1/cmdline; exit 3"
    cid = daemon.docker("run", "-d", "--init", "busybox", "sleep", "300").stdout.strip()
    try:
        info = json.loads(daemon.docker("inspect", cid).stdout)[0]
        assert (info["Path"], info["Args"], info["HostConfig"]["Init"]) == ("sleep", ["300"], True)
        # once the init has started its child it forwards signals: sleep as PID 1 would
        # ignore SIGTERM, under the init it dies of it
        assert any(ln.endswith("sleep") for ln in _processes(daemon, cid, lambda ls: any("sleep" in ln for ln in ls)))
        assert daemon.docker("kill", "-s", "TERM", cid).returncode == 0
        assert daemon.docker("wait", cid).stdout.strip() == "143"
    finally:
        daemon.docker("rm", "-f", cid)


@pytest.mark.parametrize("init", [True, False])
def test_init_reaps_orphans(daemon, busybox_image, init):
    # the subshell leaves its short sleep to PID 1; the main process then becomes a long
    # sleep, which never waits: only an init reaps the orphan
    flags = ["--init"] if init else []
    cid = daemon.docker("run", "-d", *flags, "busybox", "sh", "-c", "(sleep 0.2 &); exec sleep 300").stdout.strip()
    try:
        # until the orphan is no longer running (reaped, or a zombie)
        lines = _processes(daemon, cid, lambda ls: sum(ln.endswith("sleep") and not ln.startswith("Z")
                                                       for ln in ls) == 1)
        zombies = [ln for ln in lines if ln.startswith("Z")]
        assert zombies == ([] if init else ["Z    sleep"]), lines
    finally:
        daemon.docker("rm", "-f", cid)


def test_info_names_init_and_runtimes(daemon):
    info = daemon.api("GET", "/info").json()
    assert info["InitBinary"] == "docker-init"
    assert {"berth", "runc"} <= set(info["Runtimes"]) and info["DefaultRuntime"] in info["Runtimes"]


def test_runtime_names(daemon, busybox_image):
    for runtime in ("berth", "runc"):
        res = daemon.docker("run", "--rm", "--runtime", runtime, "busybox", "echo", runtime)
        assert res.returncode == 0 and res.stdout.strip() == runtime, res.stderr
    name = "hc-bad-runtime"
    res = daemon.docker("run", "--name", name, "--runtime", "nope", "busybox", "true")
    assert res.returncode != 0 and "unknown or invalid runtime name: nope" in res.stderr
    assert f"/{name}" not in container_names(daemon)
    cid = daemon.docker("create", "busybox", "true").stdout.strip()
    try:
        assert daemon.docker("inspect", "-f", "{{.HostConfig.Runtime}}", cid).stdout.strip() == "berth"
    finally:
        daemon.docker("rm", cid)


def test_volumes_from(daemon, busybox_image, tmp_path):
    vol = "hc-vf-named"
    bind = tmp_path / "bind"
    bind.mkdir()
    src = daemon.docker("run", "--name", "hc-vf-src", "-v", "/anon", "-v", f"{vol}:/named",
                        "-v", f"{bind}:/bind", "busybox", "sh", "-c",
                        "echo a > /anon/f && echo n > /named/f && echo b > /bind/f")
    made = ["hc-vf-src"]
    try:
        assert src.returncode == 0, src.stderr
        res = daemon.docker("run", "--name", "hc-vf-rw", "--volumes-from", "hc-vf-src", "busybox", "sh", "-c",
                            "cat /anon/f /named/f /bind/f && echo more >> /anon/f && echo more >> /bind/f")
        made.append("hc-vf-rw")
        assert res.returncode == 0 and res.stdout.split() == ["a", "n", "b"], res.stderr
        assert (bind / "f").read_text() == "b\nmore\n"
        mounts = {m["Destination"]: m for m in json.loads(daemon.docker("inspect", "hc-vf-src").stdout)[0]["Mounts"]}
        theirs = {m["Destination"]: m for m in json.loads(daemon.docker("inspect", "hc-vf-rw").stdout)[0]["Mounts"]}
        assert {d: (m["Type"], m.get("Name"), m["Source"]) for d, m in theirs.items()} == \
            {d: (m["Type"], m.get("Name"), m["Source"]) for d, m in mounts.items()}
        res = daemon.docker("run", "--rm", "--volumes-from", "hc-vf-src:ro", "busybox", "sh", "-c",
                            "cat /anon/f; echo x >> /anon/f || echo refused; echo x >> /bind/f || echo refused")
        assert res.stdout.split() == ["a", "more", "refused", "refused"]
        assert res.stderr.count("Read-only file system") == 2
        # the new container's own mount at the same destination wins
        own = tmp_path / "own"
        own.mkdir()
        (own / "f").write_text("own\n")
        res = daemon.docker("run", "--rm", "--volumes-from", "hc-vf-src", "-v", f"{own}:/anon", "busybox",
                            "cat", "/anon/f", "/named/f")
        assert res.returncode == 0 and res.stdout.split() == ["own", "n"], res.stderr
        # the volumes stay in use while a container that took them exists
        assert daemon.docker("rm", "-v", "hc-vf-src").returncode == 0
        made.remove("hc-vf-src")
        assert daemon.docker("volume", "rm", vol).returncode != 0
        name = "hc-vf-missing"
        res = daemon.docker("run", "--name", name, "--volumes-from", "nope", "busybox", "true")
        assert res.returncode != 0 and "No such container: nope" in res.stderr
        assert f"/{name}" not in container_names(daemon)
        assert "No such container: nope" in create_refused(daemon, {"VolumesFrom": ["nope:ro"]}, name)
        assert create_refused(daemon, {"VolumesFrom": ["hc-vf-rw:rshared"]}, name) == "invalid mode: rshared"
    finally:
        for c in made:
            daemon.docker("rm", "-f", "-v", c)
        daemon.docker("volume", "rm", vol)


def _run_api(daemon, host_config: dict, cmd: str) -> tuple[str, str, dict]:
    """Create and run `sh -c cmd` through the API; (output, container id, bundle config.json)."""
    body = {"Image": "busybox", "Cmd": ["sh", "-c", cmd], "HostConfig": host_config}
    r = daemon.api("POST", "/containers/create", json=body)
    assert r.status == 201, r.text
    cid = r.json()["Id"]
    try:
        assert daemon.api("POST", f"/containers/{cid}/start").status == 204
        assert daemon.api("POST", f"/containers/{cid}/wait").json()["StatusCode"] == 0
        out = daemon.docker("logs", cid).stdout
        spec = json.loads((daemon.names.data_root / "containers" / cid / "config.json").read_text())
        inspect = daemon.api("GET", f"/containers/{cid}/json").json()
        return out, spec, inspect
    finally:
        daemon.api("DELETE", f"/containers/{cid}", params={"force": 1})


SYSTEM_MOUNTS = "grep -cE ' /proc/(sys|timer_list|acpi|kcore) ' /proc/mounts || true"


def test_annotations_and_system_paths(daemon, busybox_image):
    out, spec, inspect = _run_api(daemon, {"Annotations": {"org.example.a": "1", "b": ""}}, SYSTEM_MOUNTS)
    assert spec["annotations"] == {"org.example.a": "1", "b": ""}
    assert inspect["HostConfig"]["Annotations"] == {"org.example.a": "1", "b": ""}
    assert int(out) >= 2 and "/proc/kcore" in inspect["HostConfig"]["MaskedPaths"]
    assert inspect["HostConfig"]["ReadonlyPaths"] == spec["linux"]["readonlyPaths"]
    # empty lists: nothing masked or read-only (docker's --security-opt systempaths=unconfined)
    out, spec, _ = _run_api(daemon, {"MaskedPaths": [], "ReadonlyPaths": []},
                            f"{SYSTEM_MOUNTS}; touch /proc/sys/kernel/x 2>&1 | grep -c Read-only || true")
    assert out.split() == ["0", "0"]
    assert spec["linux"]["maskedPaths"] == [] and spec["linux"]["readonlyPaths"] == []
    res = daemon.docker("run", "--rm", "--security-opt", "systempaths=unconfined", "busybox", "sh", "-c",
                        SYSTEM_MOUNTS)
    assert res.stdout.strip() == "0", res.stderr
    # a set of one's own replaces the defaults
    out, spec, _ = _run_api(daemon, {"MaskedPaths": ["/etc/hostname"], "ReadonlyPaths": ["/tmp"]},
                            f"wc -c < /etc/hostname; {SYSTEM_MOUNTS}; touch /tmp/x 2>&1 | grep -c Read-only")
    assert out.split() == ["0", "0", "1"]
    assert spec["linux"]["maskedPaths"] == ["/etc/hostname"] and spec["linux"]["readonlyPaths"] == ["/tmp"]
    assert create_refused(daemon, {"Annotations": {"": "x"}}, "hc-bad-annotation") == \
        "invalid Annotations: the empty string is not permitted as an annotation key"


def test_userns_storage_opt_and_gpus_are_refused(daemon, busybox_image):
    name = "hc-refused"
    assert "berth has no user namespace remapping" in create_refused(daemon, {"UsernsMode": "private"}, name)
    res = daemon.docker("run", "--name", name, "--storage-opt", "size=1G", "busybox", "true")
    assert res.returncode != 0
    assert "--storage-opt is supported only for overlay over xfs with 'pquota' mount option" in res.stderr
    assert f"/{name}" not in container_names(daemon)
    res = daemon.docker("run", "--rm", "--userns", "host", "busybox", "true")
    assert res.returncode == 0, res.stderr
    res = daemon.docker("run", "--name", name, "--gpus", "all", "busybox", "true")
    assert res.returncode != 0
    assert 'could not select device driver "" with capabilities: [[gpu]]' in res.stderr
    assert f"/{name}" not in container_names(daemon)


def _block_device() -> str | None:
    for entry in sorted(os.scandir("/dev"), key=lambda e: e.name):
        if stat.S_ISBLK(os.stat(entry.path).st_mode):
            return entry.path
    return None


def test_blkio_throttles_reach_the_cgroup(daemon, busybox_image):
    dev = _block_device()
    if dev is None or not Path("/sys/fs/cgroup/blkio/blkio.throttle.read_bps_device").exists():
        pytest.skip("no block device or no v1 blkio throttling here")
    st = os.stat(dev)
    majmin = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    cid = daemon.docker("run", "-d", "--device-read-bps", f"{dev}:1mb", "--device-write-iops", f"{dev}:77",
                        "busybox", "sleep", "300").stdout.strip()
    try:
        assert cid
        cg = Path("/sys/fs/cgroup/blkio") / daemon.names.cgroup_parent / cid
        assert (cg / "blkio.throttle.read_bps_device").read_text().split() == [majmin, str(1 << 20)]
        assert (cg / "blkio.throttle.write_iops_device").read_text().split() == [majmin, "77"]
        hc = json.loads(daemon.docker("inspect", cid).stdout)[0]["HostConfig"]
        assert hc["BlkioDeviceReadBps"] == [{"Path": dev, "Rate": 1 << 20}]
    finally:
        daemon.docker("rm", "-f", cid)
    name = "hc-bad-blkio"
    assert "no such file or directory" in create_refused(
        daemon, {"BlkioDeviceReadBps": [{"Path": "/dev/nope", "Rate": 1}]}, name)
    assert "is not a block device" in create_refused(
        daemon, {"BlkioDeviceWriteBps": [{"Path": "/dev/fuse", "Rate": 1}]}, name)


def test_blkio_weight_as_dockerd(daemon, busybox_image, dockerd):
    """A weight the kernel cannot apply is dropped (Docker warns); one it can is range-checked."""
    weight_file = any(Path("/sys/fs/cgroup/blkio", n).exists() for n in ("blkio.weight", "blkio.bfq.weight"))
    for weight in ("5", "300"):
        ours = daemon.docker("create", "--blkio-weight", weight, "busybox", "true")
        ref = dockerd.docker("create", "--blkio-weight", weight, "busybox", "true")
        try:
            assert (ours.returncode == 0) == (ref.returncode == 0), (ours.stderr, ref.stderr)
            if not weight_file:
                assert ours.returncode == 0 and "Block I/O weight" in ref.stderr
                stored = daemon.docker("inspect", "-f", "{{.HostConfig.BlkioWeight}}", ours.stdout.strip())
                assert stored.stdout.strip() == "0"
            elif weight == "5":
                assert "Range of blkio weight is from 10 to 1000" in ours.stderr
        finally:
            for h, res in ((daemon, ours), (dockerd, ref)):
                if res.returncode == 0:
                    h.docker("rm", res.stdout.strip().splitlines()[-1])


def test_cpu_realtime_checks(daemon, busybox_image):
    msg = create_refused(daemon, {"CpuRealtimePeriod": 1000, "CpuRealtimeRuntime": 2000}, "hc-rt")
    assert msg == "cpu real-time runtime cannot be higher than cpu real-time period"
    if not Path("/sys/fs/cgroup/cpu/cpu.rt_runtime_us").exists():
        return
    # the berth cgroup parent has no real-time budget (as Docker's without --cpu-rt-runtime):
    # the kernel refuses the container's share, and the start says so
    cid = daemon.docker("create", "--cpu-rt-runtime", "1000", "busybox", "true").stdout.strip()
    try:
        res = daemon.docker("start", cid)
        assert res.returncode != 0 and "cpu.rt_runtime_us" in res.stderr
    finally:
        daemon.docker("rm", "-f", cid)


def test_berth_runtime_under_dockerd_makes_devices_and_rules(dockerd):
    """Docker's own spec for --device, --device-cgroup-rule and --init, run by berth-runtime."""
    res = dockerd.docker("run", "--rm", "--runtime", "berth", "--init", "--device", "/dev/fuse:/dev/f2:rw",
                         "--device-cgroup-rule", "c 1:3 rwm", "busybox", "sh", "-c",
                         "ls -l /dev/f2; exec 3<>/dev/f2 && echo opened; head -c1 /proc/1/cmdline; echo;"
                         " mknod /tmp/n c 1 3 && echo x > /tmp/n && echo null-ok")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert _ls_fields(lines[0]) == ["crw-------", "1", "root", "root", "10,", "229"]
    assert lines[1:] == ["opened", "/", "null-ok"]
