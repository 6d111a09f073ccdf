"""HostConfig settings berth used to accept and drop, second round: the create answer's
Warnings, PidMode/IpcMode (container:X, shareable, none, host), legacy links, SecurityOpt
(seccomp profiles, label/apparmor, systempaths), log drivers, KernelMemoryTCP, Cgroup and
VolumeDriver. Through berthd with the real docker CLI (the API where the CLI cannot say it);
the expected wording is dockerd's, as observed with the isolated dockerd fixture."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from fixtures.daemon import DOCKER_CLI
from support import container_names, create_refused

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("each_docker_cli")]


@contextmanager
def _containers(daemon, *names: str) -> Iterator[None]:
    try:
        yield
    finally:
        for name in names:
            daemon.docker("rm", "-f", "-v", name)


def _hc(daemon, name: str) -> dict:
    return json.loads(daemon.docker("inspect", name).stdout)[0]["HostConfig"]


def test_create_warnings_reach_the_docker_cli(daemon, busybox_image):
    name = "hc2-warn"
    with _containers(daemon, name):
        res = daemon.docker("create", "--name", name, "--kernel-memory", "16m", "--log-opt", "tag=x",
                            "busybox", "true")
        assert res.returncode == 0, res.stderr
        want = ["WARNING: berth's json-file log driver does not apply log opt 'tag'. Option discarded."]
        if daemon.docker_cli == DOCKER_CLI:   # docker 25+ CLIs no longer send --kernel-memory
            want.append("WARNING: berth-runtime does not apply kernel memory limits (KernelMemory). "
                        "Limitation discarded.")
        assert res.stderr.splitlines() == want
        assert _hc(daemon, name).get("KernelMemory", 0) == 0
        r = daemon.api("POST", "/containers/create",
                       json={"Image": "busybox", "Cmd": ["true"],
                             "HostConfig": {"KernelMemoryTCP": 1 << 20, "Cgroup": "container:x"}})
        assert r.status == 201, r.text
        try:
            assert len(r.json()["Warnings"]) == 2
            assert "KernelMemoryTCP" in r.json()["Warnings"][0] and "Cgroup" in r.json()["Warnings"][1]
            hc = daemon.api("GET", f"/containers/{r.json()['Id']}/json").json()["HostConfig"]
            assert hc["KernelMemoryTCP"] == 0 and hc["Cgroup"] == ""
        finally:
            daemon.api("DELETE", f"/containers/{r.json()['Id']}", params={"force": 1})


def test_pid_and_ipc_of_another_container(daemon, busybox_image):
    with _containers(daemon, "hc2-donor", "hc2-private", "hc2-stopped"):
        res = daemon.docker("run", "-d", "--name", "hc2-donor", "--ipc", "shareable", "busybox", "sh", "-c",
                            "echo shared > /dev/shm/f; exec sleep 300")
        assert res.returncode == 0, res.stderr
        donor_id = res.stdout.strip()
        res = daemon.docker("run", "--rm", "--pid", "container:hc2-donor", "busybox", "ps", "-o", "comm")
        assert res.returncode == 0, res.stderr
        assert "sleep" in res.stdout.split()
        ns = daemon.docker("exec", "hc2-donor", "readlink", "/proc/self/ns/ipc").stdout.strip()
        res = daemon.docker("run", "--rm", "--ipc", "container:hc2-donor", "busybox", "sh", "-c",
                            "readlink /proc/self/ns/ipc; cat /dev/shm/f")
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == [ns, "shared"]
        name = "hc2-joiner"
        with _containers(daemon, name):
            assert daemon.docker("create", "--name", name, "--pid", "container:hc2-donor", "busybox",
                                 "true").returncode == 0
            assert _hc(daemon, name)["PidMode"] == f"container:{donor_id}"
            assert _hc(daemon, name)["IpcMode"] == "private"
        # a donor that is not shareable, or not running; an unknown one
        assert daemon.docker("run", "-d", "--name", "hc2-private", "busybox", "sleep", "300").returncode == 0
        res = daemon.docker("run", "--rm", "--ipc", "container:hc2-private", "busybox", "true")
        assert res.returncode == 125 and "non-shareable IPC" in res.stderr
        stopped = daemon.docker("create", "--name", "hc2-stopped", "--ipc", "shareable", "busybox", "true")
        sid = stopped.stdout.strip()
        for flag in ("--pid", "--ipc"):
            res = daemon.docker("run", "--rm", flag, "container:hc2-stopped", "busybox", "true")
            assert res.returncode == 125 and f"container {sid} is not running" in res.stderr, res.stderr
        for key in ("PidMode", "IpcMode"):
            msg = create_refused(daemon, {key: "container:hc2-nosuch"}, "hc2-refused")
            assert msg == "No such container: hc2-nosuch"
        assert create_refused(daemon, {"IpcMode": "bogus"}, "hc2-refused") == "invalid IPC mode: bogus"
        assert create_refused(daemon, {"PidMode": "bogus"}, "hc2-refused") == "invalid PID mode: bogus"


def test_ipc_none_and_host_and_uts_host(daemon, busybox_image):
    res = daemon.docker("run", "--rm", "--ipc", "none", "busybox", "sh", "-c", "ls /dev/shm || echo no-shm")
    assert res.stdout.split() == ["no-shm"]
    host_ipc = os.readlink("/proc/self/ns/ipc")
    res = daemon.docker("run", "--rm", "--ipc", "host", "busybox", "readlink", "/proc/self/ns/ipc")
    assert res.stdout.strip() == host_ipc
    res = daemon.docker("run", "--rm", "--uts", "host", "busybox", "hostname")
    assert res.returncode == 0 and res.stdout.strip() == os.uname().nodename


def test_links_on_the_default_bridge(daemon, busybox_image):
    with _containers(daemon, "hc2-target", "hc2-linker", "hc2-down"):
        res = daemon.docker("run", "-d", "--name", "hc2-target", "-e", "FOO=bar", "--expose", "80",
                            "--expose", "53/udp", "busybox", "sleep", "300")
        assert res.returncode == 0, res.stderr
        tid = res.stdout.strip()
        ip = json.loads(daemon.docker("inspect", "hc2-target").stdout)[0]["NetworkSettings"]["IPAddress"]
        res = daemon.docker("run", "--name", "hc2-linker", "--link", "hc2-target:my-al", "busybox", "sh", "-c",
                            "grep -v localhost /etc/hosts; env")
        assert res.returncode == 0, res.stderr
        hosts = {name: line.split()[0] for line in res.stdout.splitlines() if "\t" in line
                 for name in line.split()[1:]}   # one line per link: IP ALIAS HOSTNAME NAME
        assert all(hosts.get(n) == ip for n in ("my-al", tid[:12], "hc2-target")), res.stdout
        env = set(res.stdout.splitlines())
        want = {"MY_AL_NAME=/hc2-linker/my-al", "MY_AL_ENV_FOO=bar", f"MY_AL_PORT=udp://{ip}:53",
                f"MY_AL_PORT_80_TCP=tcp://{ip}:80", f"MY_AL_PORT_80_TCP_ADDR={ip}", "MY_AL_PORT_80_TCP_PORT=80",
                "MY_AL_PORT_80_TCP_PROTO=tcp", f"MY_AL_PORT_53_UDP=udp://{ip}:53"}
        assert want <= env, sorted(env)
        assert _hc(daemon, "hc2-linker")["Links"] == ["/hc2-target:/hc2-linker/my-al"]
        # a target that is not running; an unknown one (nothing made)
        assert daemon.docker("create", "--name", "hc2-down", "busybox", "true").returncode == 0
        res = daemon.docker("run", "--rm", "--link", "hc2-down:d", "busybox", "true")
        assert res.returncode == 125 and "Cannot link to a non running container: /hc2-down AS" in res.stderr
        msg = create_refused(daemon, {"Links": ["hc2-nosuch:al"]}, "hc2-refused")
        assert msg == "could not get container for hc2-nosuch: No such container: hc2-nosuch"
        msg = create_refused(daemon, {"Links": ["hc2-target:al"], "NetworkMode": "host"}, "hc2-refused")
        assert msg.startswith("conflicting options: host type networking can't be used with links")


def test_link_alias_on_a_user_network(daemon, busybox_image):
    net = "hc2-net"
    assert daemon.docker("network", "create", net).returncode == 0
    try:
        with _containers(daemon, "hc2-utarget"):
            res = daemon.docker("run", "-d", "--name", "hc2-utarget", "--network", net, "busybox", "sleep", "300")
            assert res.returncode == 0, res.stderr
            res = daemon.docker("run", "--rm", "--network", net, "--link", "hc2-utarget:uu", "busybox",
                                "nslookup", "uu", "127.0.0.11")
            assert res.returncode == 0 and "Name:\tuu" in res.stdout, res.stdout + res.stderr
            res = daemon.docker("run", "--rm", "--network", net, "busybox", "nslookup", "uu", "127.0.0.11")
            assert res.returncode != 0 or "Name:\tuu" not in res.stdout
    finally:
        daemon.docker("network", "rm", net)


SECCOMP_NO_MKDIR = {"defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}


def test_seccomp_profile_file(daemon, busybox_image, tmp_path):
    prof = tmp_path / "profile.json"
    prof.write_text(json.dumps(SECCOMP_NO_MKDIR))
    res = daemon.docker("run", "--rm", "--security-opt", f"seccomp={prof}", "busybox", "sh", "-c",
                        "mkdir /tmp/x && echo made || echo refused")
    assert res.stdout.strip() == "refused", res.stderr
    assert "Operation not permitted" in res.stderr
    res = daemon.docker("run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "grep", "Seccomp:",
                        "/proc/self/status")
    assert res.stdout.split() == ["Seccomp:", "0"]
    bad = json.dumps({"defaultAction": "SCMP_ACT_BOGUS"})
    assert "SCMP_ACT_BOGUS" in create_refused(daemon, {"SecurityOpt": [f"seccomp={bad}"]}, "hc2-refused")
    msg = create_refused(daemon, {"SecurityOpt": ["seccomp={bad"]}, "hc2-refused")
    assert msg.startswith("Decoding seccomp profile failed: ")


def test_security_opts_as_dockerd(daemon, busybox_image):
    # no AppArmor/SELinux on this host: dockerd accepts and ignores label= and apparmor=
    for opt in ("label=disable", "label=type:foo", "apparmor=unconfined", "no-new-privileges:false"):
        res = daemon.docker("run", "--rm", "--security-opt", opt, "busybox", "true")
        assert res.returncode == 0, (opt, res.stderr)
    res = daemon.docker("run", "--rm", "--security-opt", "no-new-privileges", "busybox", "grep", "NoNewPrivs",
                        "/proc/self/status")
    assert res.stdout.split() == ["NoNewPrivs:", "1"]
    res = daemon.docker("run", "--rm", "--security-opt", "systempaths=unconfined", "busybox", "sh", "-c",
                        "grep -c ' /proc/sys ' /proc/mounts || true")
    assert res.stdout.strip() == "0"
    assert create_refused(daemon, {"SecurityOpt": ["bogus=1"]}, "hc2-refused") == \
        'invalid --security-opt 2: "bogus=1"'
    assert create_refused(daemon, {"SecurityOpt": ["no-new-privileges:maybe"]}, "hc2-refused") == \
        'invalid --security-opt 2: "no-new-privileges:maybe"'
    assert create_refused(daemon, {"SecurityOpt": ["bogus"]}, "hc2-refused") == 'invalid --security-opt 1: "bogus"'


def test_log_drivers(daemon, busybox_image):
    name = "hc2-nolog"
    with _containers(daemon, name):
        res = daemon.docker("run", "--name", name, "--log-driver", "none", "busybox", "echo", "hi")
        assert res.returncode == 0 and res.stdout == "hi\n", res.stderr
        res = daemon.docker("logs", name)
        assert res.returncode == 1
        assert "configured logging driver does not support reading" in res.stderr
        assert daemon.api("GET", f"/containers/{name}/logs", params={"stdout": 1}).status == 501
        inspect = json.loads(daemon.docker("inspect", name).stdout)[0]
        assert inspect["LogPath"] == "" and inspect["HostConfig"]["LogConfig"]["Type"] == "none"
    res = daemon.docker("run", "--rm", "--name", "hc2-bogus", "--log-driver", "bogus", "busybox", "true")
    assert res.returncode == 125
    assert 'error looking up logging plugin bogus: plugin "bogus" not found' in res.stderr
    assert "/hc2-bogus" not in container_names(daemon)
    msg = create_refused(daemon, {"LogConfig": {"Type": "syslog"}}, "hc2-refused")
    assert msg.startswith('logging driver "syslog" is not supported by berth')
    msg = create_refused(daemon, {"LogConfig": {"Type": "json-file", "Config": {"x": "1"}}}, "hc2-refused")
    assert msg == "unknown log opt 'x' for json-file log driver"


def test_volume_driver(daemon, busybox_image):
    name = "hc2-vd"
    with _containers(daemon, name):
        assert daemon.docker("create", "--name", name, "--volume-driver", "local", "-v", "/data", "busybox",
                             "true").returncode == 0
    msg = create_refused(daemon, {"VolumeDriver": "foo", "Binds": ["hc2-vv:/x"]}, "hc2-refused")
    assert msg == 'create hc2-vv: error looking up volume plugin foo: plugin "foo" not found'
    assert daemon.docker("volume", "inspect", "hc2-vv").returncode != 0
