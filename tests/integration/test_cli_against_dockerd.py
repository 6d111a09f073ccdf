"""The berth CLI is a plain Engine API client: pointed at Debian's real dockerd it works too."""

from __future__ import annotations

import secrets
import subprocess

import pytest

from support import venv_exe

pytestmark = [pytest.mark.root, pytest.mark.peer]


def berth(dockerd, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return subprocess.run([venv_exe("berth"), "-H", dockerd.host, *args], capture_output=True, text=True,
                          input=input, timeout=120)


def test_berth_drives_dockerd(daemon, dockerd) -> None:  # type: ignore[no-untyped-def]
    # `daemon` is requested first only so that the session berthd is set up before dockerd
    # and torn down after it: its leftover check would otherwise see dockerd still running.
    r = berth(dockerd, "run", "--rm", "busybox", "sh", "-c", "echo hi; exit 3")
    assert r.returncode == 3, r.stderr
    assert r.stdout == "hi\n"
    r = berth(dockerd, "run", "--rm", "-i", "busybox", "cat", input="through dockerd\n")
    assert r.stdout == "through dockerd\n"
    name = f"cli-dockerd-{secrets.token_hex(3)}"
    assert berth(dockerd, "run", "-d", "--name", name, "busybox", "sh", "-c", "echo up; sleep 60").returncode == 0
    try:
        assert berth(dockerd, "exec", name, "echo", "exec ok").stdout == "exec ok\n"
        for args in (["ps"], ["images"], ["inspect", "-f", "{{.State.Status}}", name]):
            # docker before and after berth: an age ticking over ("14 seconds ago" ->
            # "15 seconds ago") between two calls must not count as a difference
            # Lines are compared as sets: dockerd lists images created in the same second in
            # no fixed order (a sort on Created only, over a map), so even two docker calls differ
            before = dockerd.docker(*args).stdout
            b = berth(dockerd, *args).stdout
            after = dockerd.docker(*args).stdout
            assert sorted(b.splitlines()) in (sorted(before.splitlines()), sorted(after.splitlines())), \
                (args, b, before)
        logs = berth(dockerd, "logs", name)
        assert logs.stdout == "up\n"
        assert berth(dockerd, "stop", "-t", "1", name).stdout == f"{name}\n"
    finally:
        berth(dockerd, "rm", "-f", name)
    r = berth(dockerd, "run", "--rm", "busybox", "no-such-command")
    assert r.returncode == 127
