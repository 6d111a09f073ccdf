"""The runc contract: Debian's dockerd (with its containerd and runc shim) drives
berth-runtime as `--runtime berth`."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.root, pytest.mark.peer, pytest.mark.slow]


def test_docker_run_echo(dockerd):
    res = dockerd.docker("run", "--rm", "--runtime", "berth", "busybox", "echo", "hi")
    assert (res.returncode, res.stdout) == (0, "hi\n"), res.stderr


def test_docker_run_exit_codes(dockerd):
    assert dockerd.docker("run", "--rm", "--runtime", "berth", "busybox", "sh", "-c", "exit 3").returncode == 3
    res = dockerd.docker("run", "--rm", "--runtime", "berth", "busybox", "no-such-command")
    assert res.returncode == 127, res.stderr


def test_docker_isolation_under_berth(dockerd):
    res = dockerd.docker("run", "--rm", "--runtime", "berth", "--hostname", "dbox", "busybox", "sh", "-c",
                         "echo $$; hostname; grep -E '^(CapEff|Seccomp):' /proc/self/status; unshare -U true"
                         " || echo UNSHARE-DENIED")
    assert res.returncode == 0, res.stderr
    pid, host, capeff, seccomp_mode, denied = res.stdout.splitlines()
    assert (pid, host) == ("1", "dbox")
    assert capeff.split()[1] == "00000000a80425fb"
    assert seccomp_mode.split()[1] == "2"  # Docker's default profile, loaded by berth-runtime
    assert denied == "UNSHARE-DENIED"


def test_docker_exec_and_stop(dockerd):
    cid = dockerd.docker("run", "-d", "--runtime", "berth", "busybox", "sleep", "300").stdout.strip()
    try:
        res = dockerd.docker("exec", cid, "sh", "-c", "echo in-exec; ps | wc -l")
        assert res.returncode == 0, res.stderr
        assert res.stdout.splitlines()[0] == "in-exec"
        assert dockerd.docker("exec", cid, "no-such-command").returncode in (126, 127)
        assert dockerd.docker("inspect", "-f", "{{.HostConfig.Runtime}}", cid).stdout.strip() == "berth"
        assert dockerd.docker("stop", "-t", "1", cid).returncode == 0
        assert dockerd.docker("inspect", "-f", "{{.State.ExitCode}}", cid).stdout.strip() == "137"
    finally:
        dockerd.docker("rm", "-f", cid)
