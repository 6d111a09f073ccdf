"""berth beside Debian's dockerd (the `dockerd` fixture): berth's containers still reach the
network and publish ports.

The fixture's dockerd runs with --iptables=false (so parallel runs never share Docker's
global chains); what a default dockerd does to the host firewall that matters to berth is
setting the FORWARD policy to DROP, so this test applies exactly that for its duration
(restoring the previous policy after) while dockerd is up and running a container."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from support import free_port, host_address, http_get

pytestmark = [pytest.mark.root, pytest.mark.peer]


@contextmanager
def forward_policy_drop() -> Iterator[None]:
    first = subprocess.run(["iptables", "-w", "-S", "FORWARD"], capture_output=True, text=True,
                           check=True).stdout.splitlines()[0]
    before = first.split()[-1]          # "-P FORWARD ACCEPT"
    subprocess.run(["iptables", "-w", "-P", "FORWARD", "DROP"], check=True)
    try:
        yield
    finally:
        subprocess.run(["iptables", "-w", "-P", "FORWARD", before], check=True)


def test_berth_works_beside_dockerd(daemon, busybox_image, dockerd) -> None:  # noqa: ANN001
    d = daemon
    r = dockerd.docker("run", "-d", "--name", "nt-docker-side", "busybox", "sleep", "60")
    assert r.returncode == 0, r.stderr
    port = free_port()
    try:
        with forward_policy_drop():
            r = d.docker("run", "-d", "--name", "nt-beside", "-p", f"{port}:80", busybox_image, "sh", "-c",
                         "mkdir -p /www && echo beside > /www/index.html && exec httpd -f -p 80 -h /www")
            assert r.returncode == 0, r.stderr
            assert http_get(f"http://127.0.0.1:{port}/") == "beside\n"
            assert http_get(f"http://{host_address()}:{port}/") == "beside\n"
            r = d.docker("run", "--rm", busybox_image, "sh", "-c",
                         "wget -q -O- http://deb.debian.org/debian/dists/bookworm/Release | head -n 3")
            assert "Origin: Debian" in r.stdout, r.stderr
            # dockerd is unaffected and still running its container
            assert dockerd.docker("inspect", "-f", "{{.State.Running}}", "nt-docker-side").stdout.strip() == "true"
    finally:
        d.docker("rm", "-f", "nt-beside")
        dockerd.docker("rm", "-f", "nt-docker-side")
