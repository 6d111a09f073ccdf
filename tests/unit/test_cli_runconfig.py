"""run/create flags -> ContainerCreate JSON (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from berth.cli.flags import Spec, UsageError, parse
from berth.cli.flagvalues import (
    duration_ns,
    parse_mount,
    parse_publish,
    parse_restart,
    parse_volume,
    ram_in_bytes,
)
from berth.cli.runconfig import CONTAINER_FLAGS, RUN_ONLY_FLAGS, create_body

RUN = Spec("run", "[OPTIONS] IMAGE [COMMAND] [ARG...]", CONTAINER_FLAGS + RUN_ONLY_FLAGS,
           min_args=1, interspersed=False)


def body(*argv: str, detach: bool = False) -> dict:
    p = parse(RUN, list(argv))
    return create_body(p, p.args[0], p.args[1:], detach=detach)


def test_minimal_foreground_run() -> None:
    b = body("busybox", "echo", "hi")
    assert b["Image"] == "busybox" and b["Cmd"] == ["echo", "hi"]
    assert b["AttachStdout"] and b["AttachStderr"] and not b["AttachStdin"]
    assert not b["Tty"] and not b["OpenStdin"]
    assert b["HostConfig"]["NetworkMode"] == "default"
    assert b["HostConfig"]["AutoRemove"] is False


def test_interactive_tty() -> None:
    b = body("-it", "busybox", "sh")
    assert b["Tty"] and b["OpenStdin"] and b["AttachStdin"] and b["StdinOnce"]


def test_rm_uses_daemon_autoremove() -> None:
    b = body("-d", "--rm", "busybox", detach=True)
    assert b["HostConfig"]["AutoRemove"] is True
    assert not b["AttachStdout"]
    assert body("--rm", "busybox")["HostConfig"]["AutoRemove"] is True


def test_resources_and_security() -> None:
    b = body("-m", "32m", "--memory-swap", "-1", "--cpus", "1.5", "--cpu-shares", "512",
             "--cpuset-cpus", "0", "--pids-limit", "20", "--cap-add", "NET_ADMIN", "--cap-drop", "ALL",
             "--read-only", "--privileged", "--restart", "on-failure:3", "--init",
             "--stop-timeout", "4", "--stop-signal", "SIGINT", "busybox")
    hc = b["HostConfig"]
    assert hc["Memory"] == 32 * 1024 * 1024 and hc["MemorySwap"] == -1
    assert hc["NanoCpus"] == 1_500_000_000 and hc["CpuShares"] == 512 and hc["CpusetCpus"] == "0"
    assert hc["PidsLimit"] == 20 and hc["CapAdd"] == ["CAP_NET_ADMIN"] and hc["CapDrop"] == ["ALL"]
    assert hc["ReadonlyRootfs"] and hc["Privileged"] and hc["Init"] is True
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert b["StopTimeout"] == 4 and b["StopSignal"] == "SIGINT"


def test_env_labels_workdir_user_entrypoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    envf = tmp_path / "env"
    envf.write_text("# comment\nFROM_FILE=1\n\nPASSED\n")
    monkeypatch.setenv("PASSED", "yes")
    monkeypatch.delenv("UNSET_VAR", raising=False)
    b = body("--env-file", str(envf), "-e", "A=1", "-e", "UNSET_VAR", "-l", "k=v", "--label", "flag",
             "-w", "/app", "-u", "1000:1000", "--entrypoint", "", "-h", "box", "busybox")
    assert b["Env"] == ["FROM_FILE=1", "PASSED=yes", "A=1"]
    assert b["Labels"] == {"k": "v", "flag": ""}
    assert b["WorkingDir"] == "/app" and b["User"] == "1000:1000" and b["Hostname"] == "box"
    assert b["Entrypoint"] == [""]


def test_ports_network_dns_hosts() -> None:
    b = body("-p", "8001:80", "-p", "127.0.0.1:5353:53/udp", "-p", "9000", "-P", "--expose", "7000-7001",
             "--network", "mynet", "--network-alias", "web", "--dns", "1.1.1.1", "--add-host", "db:10.0.0.2",
             "busybox")
    assert b["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "9000/tcp": {}, "7000/tcp": {}, "7001/tcp": {}}
    pb = b["HostConfig"]["PortBindings"]
    assert pb["80/tcp"] == [{"HostIp": "", "HostPort": "8001"}]
    assert pb["53/udp"] == [{"HostIp": "127.0.0.1", "HostPort": "5353"}]
    assert pb["9000/tcp"] == [{"HostIp": "", "HostPort": ""}]
    assert b["HostConfig"]["PublishAllPorts"]
    assert b["HostConfig"]["NetworkMode"] == "mynet"
    assert b["NetworkingConfig"]["EndpointsConfig"]["mynet"]["Aliases"] == ["web"]
    assert b["HostConfig"]["Dns"] == ["1.1.1.1"] and b["HostConfig"]["ExtraHosts"] == ["db:10.0.0.2"]


def test_volumes_mounts_tmpfs() -> None:
    b = body("-v", "data:/data", "-v", "/host:/in:ro", "-v", "/anon", "--tmpfs", "/run:size=64m",
             "--mount", "type=bind,source=/etc,target=/hostetc,readonly", "busybox")
    assert b["HostConfig"]["Binds"] == ["data:/data", "/host:/in:ro"]
    assert b["Volumes"] == {"/anon": {}}
    assert b["HostConfig"]["Tmpfs"] == {"/run": "size=64m"}
    assert b["HostConfig"]["Mounts"] == [{"Type": "bind", "Source": "/etc", "Target": "/hostetc", "ReadOnly": True}]


@pytest.mark.parametrize("argv, message", [
    (["-m", "lots", "busybox"], "invalid size: 'lots'"),
    (["-m", "1k", "busybox"], "Minimum memory limit allowed is 6MB"),
    (["--restart", "sometimes", "busybox"], "invalid restart policy 'sometimes'"),
    (["--rm", "--restart", "always", "busybox"], "conflicting options: cannot specify both --restart and --rm"),
    (["-p", "80:80:80:80", "busybox"], "invalid port format"),
    (["-p", "99999:80", "busybox"], "invalid host port"),
    (["-v", "data:relative", "busybox"], "mount path must be absolute"),
    (["-w", "relative", "busybox"], "needs to be an absolute path"),
    (["--mount", "type=bind,target=/x", "busybox"], "source is required"),
    (["--network-alias", "a", "busybox"], "only supported for user-defined networks"),
])
def test_invalid_flags(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as ei:
        body(*argv)
    assert message in str(ei.value)


def test_helpers() -> None:
    assert ram_in_bytes("32m") == 32 << 20 and ram_in_bytes("1g") == 1 << 30
    assert ram_in_bytes("512") == 512 and ram_in_bytes("1.5GB") == int(1.5 * (1 << 30))
    assert duration_ns("1m30s", "--x") == 90 * 10**9 and duration_ns("500ms", "--x") == 5 * 10**8
    assert parse_restart("always") == {"Name": "always", "MaximumRetryCount": 0}
    assert [b.host_port for b in parse_publish("8000-8001:80-81")] == ["8000", "8001"]
    assert parse_publish("[::1]:8080:80")[0].host_ip == "::1"
    assert parse_volume("./rel:/x")[0].startswith("/")
    assert parse_mount("type=tmpfs,target=/t,tmpfs-size=1m")["TmpfsOptions"] == {"SizeBytes": 1 << 20}
