"""berth prints what the real docker CLI prints, both talking to the same berthd."""

from __future__ import annotations

import secrets
import subprocess

import pytest

from support import venv_exe

pytestmark = pytest.mark.root

DOCKER = "/usr/bin/docker"


def _rows_sorted(text: str) -> str:
    """The header, then the rows in sorted order. docker's `images` prints the repositories of
    one image in Go map order, which is random from one call to the next."""
    lines = text.splitlines()
    return "\n".join(lines[:1] + sorted(lines[1:]))


def both(daemon, *args: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """(docker's output, berth's output); tries twice so an age ticking over
    ("1 second ago" -> "2 seconds ago") between the two calls does not count."""
    d = b = ""
    for _ in range(2):
        d = subprocess.run([DOCKER, *args], env=daemon.env, capture_output=True, text=True, timeout=60).stdout
        b = subprocess.run([venv_exe("berth"), *args], env=daemon.env, capture_output=True, text=True,
                           timeout=60).stdout
        if args[0] == "images":
            d, b = _rows_sorted(d), _rows_sorted(b)
        if d == b:
            break
    return d, b


@pytest.fixture(scope="module")
def subject(daemon, busybox_image):  # type: ignore[no-untyped-def]
    from support import free_port

    name = f"parity-{secrets.token_hex(3)}"
    vol = f"parityvol{secrets.token_hex(3)}"
    net = f"paritynet{secrets.token_hex(3)}"
    port = free_port()
    subprocess.run([venv_exe("berth"), "network", "create", net], env=daemon.env, check=True,
                   capture_output=True)
    r = subprocess.run([venv_exe("berth"), "run", "-d", "--name", name, "--network", net, "-v", f"{vol}:/data",
                        "-p", f"127.0.0.1:{port}:80", "-l", "tier=web", "busybox", "sh", "-c",
                        "echo started; sleep 600"], env=daemon.env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    try:
        yield name, vol, net
    finally:
        subprocess.run([venv_exe("berth"), "rm", "-f", "-v", name], env=daemon.env, capture_output=True)
        subprocess.run([venv_exe("berth"), "volume", "rm", vol], env=daemon.env, capture_output=True)
        subprocess.run([venv_exe("berth"), "network", "rm", net], env=daemon.env, capture_output=True)


@pytest.mark.parametrize("args", [
    ["ps"], ["ps", "-a", "--no-trunc"], ["ps", "-q"], ["ps", "--filter", "label=tier=web"],
    ["ps", "--format", "table {{.Names}}\\t{{.Ports}}\\t{{.Label \"tier\"}}"],
    ["images"], ["images", "-q"], ["images", "--digests"], ["history", "busybox"],
    ["network", "ls"], ["volume", "ls"], ["volume", "ls", "-q"],
])
def test_listings_match(daemon, subject, args) -> None:  # type: ignore[no-untyped-def]
    d, b = both(daemon, *args)
    assert d and b == d


def test_per_container_commands_match(daemon, subject) -> None:  # type: ignore[no-untyped-def]
    name, vol, net = subject
    for args in (["port", name], ["logs", name], ["inspect", "-f", "{{.State.Status}} {{.Config.Labels}}", name],
                 ["inspect", "--format", "{{json .Mounts}}", name], ["volume", "inspect", "-f", "{{.Name}}", vol],
                 ["network", "inspect", "-f", "{{.Name}} {{.Driver}}", net], ["wait", "no-such-container-x"]):
        d, b = both(daemon, *args)
        assert b == d, args
