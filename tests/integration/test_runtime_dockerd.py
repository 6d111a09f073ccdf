"""The runc contract: Debian's dockerd (with its containerd and runc shim) drives
berth-runtime as `--runtime berth`."""

from __future__ import annotations

import time

import pytest

from support import Terminal

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


def test_docker_oom_pids_readonly_privileged(dockerd):
    res = dockerd.docker("run", "--name", "oomer", "--runtime", "berth", "-m", "32m", "--memory-swap", "32m",
                         "busybox", "sh", "-c", "tail /dev/zero")
    try:
        assert res.returncode == 137, res.stderr
        # containerd's shim sends the OOM event (from memory.oom_control) apart from the exit
        # event; dockerd may record it just after `docker run` returned, as with runc
        for _ in range(50):
            if dockerd.docker("inspect", "-f", "{{.State.OOMKilled}}", "oomer").stdout.strip() == "true":
                break
            time.sleep(0.1)
        assert dockerd.docker("inspect", "-f", "{{.State.OOMKilled}}", "oomer").stdout.strip() == "true"
    finally:
        dockerd.docker("rm", "-f", "oomer")
    res = dockerd.docker("run", "--rm", "--runtime", "berth", "--pids-limit", "20", "busybox", "sh", "-c",
                         "i=0; while [ $i -lt 100 ]; do sleep 5 & i=$((i+1)); echo $i; done")
    assert res.returncode == 2 and "can't fork" in res.stderr
    assert int(res.stdout.split()[-1]) < 20
    res = dockerd.docker("run", "--rm", "--runtime", "berth", "--read-only", "busybox", "sh", "-c",
                         "touch /x || echo RO")
    assert res.stdout.strip() == "RO"
    res = dockerd.docker("run", "--rm", "--runtime", "berth", "--privileged", "busybox", "sh", "-c",
                         "grep CapEff /proc/self/status; grep Seccomp: /proc/self/status; ls /dev | wc -l;"
                         " mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && echo MOUNTED")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.split("\n")
    capeff = int(lines[0].split()[1], 16)
    # every capability Docker knows and this host grants (CAP_SYS_RESOURCE is not granted here)
    assert capeff & (1 << 21) and bin(capeff).count("1") >= 37
    assert lines[1].split()[1] == "0" and int(lines[2]) > 10 and "MOUNTED" in lines


def test_docker_pause_top_update_stats(dockerd):
    cid = dockerd.docker("run", "-d", "--runtime", "berth", "-m", "64m", "busybox", "sleep", "300").stdout.strip()
    try:
        assert dockerd.docker("pause", cid).returncode == 0
        assert dockerd.docker("inspect", "-f", "{{.State.Status}}", cid).stdout.strip() == "paused"
        assert dockerd.docker("unpause", cid).returncode == 0
        top = dockerd.docker("top", cid)
        assert top.returncode == 0 and "sleep 300" in top.stdout, top.stderr
        upd = dockerd.docker("update", "-m", "48m", "--memory-swap", "96m", cid)
        assert upd.returncode == 0, upd.stderr
        assert dockerd.docker("inspect", "-f", "{{.HostConfig.Memory}}", cid).stdout.strip() == str(48 << 20)
        stats = dockerd.docker("stats", "--no-stream", "--format", "{{.MemUsage}}", cid)
        assert stats.returncode == 0 and "48MiB" in stats.stdout, stats
    finally:
        dockerd.docker("rm", "-f", cid)


def _shell_in_pty(dockerd, argv: list[str], line: bytes) -> tuple[int, bytes]:
    """Run the docker CLI on a real pty, type `line` at the shell's prompt; (exit code, output)."""
    with Terminal(["/usr/bin/docker", *argv], dockerd.env) as term:
        term.read_until(b"# ", 30)
        term.write(line)
        return term.wait(30), term.out


def test_docker_run_tty(dockerd):
    code, out = _shell_in_pty(dockerd, ["run", "--rm", "-it", "--runtime", "berth", "busybox", "sh"],
                              b"tty; echo $((6*7)); exit 4\r")
    assert code == 4, out
    assert b"42" in out and b"/dev/pts/0" in out, out


def test_docker_exec_tty(dockerd):
    cid = dockerd.docker("run", "-d", "--runtime", "berth", "busybox", "sleep", "300").stdout.strip()
    try:
        code, out = _shell_in_pty(dockerd, ["exec", "-it", cid, "sh"], b"tty; echo $((7*6)); exit 6\r")
        assert code == 6, out
        assert b"42" in out and b"/dev/pts/" in out, out
    finally:
        dockerd.docker("rm", "-f", cid)
