"""A published UDP port (`-p HOST:CONTAINER/udp`) through berthd with the real docker CLI:
datagrams sent to 127.0.0.1 and to the host's own address reach a listener in the container's
network namespace and its replies come back; the rules go with the container.

Debian's busybox has no UDP server applet (its nc lacks -u), so the listener is the host's
Python, started inside the container's network namespace with nsenter: the same namespace,
address and port the container's own process would have."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from berth.network import firewall
from support import host_address, ok

pytestmark = [pytest.mark.root]

ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5000))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(b"echo:" + data, peer)
"""



def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def _ask(addr: str, port: int, text: bytes) -> bytes:
    """Send `text` until an answer arrives (at most ~10 s); b'' when none did."""
    with socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            s.sendto(text, (addr, port))
            try:
                return s.recvfrom(2048)[0]
            except TimeoutError:
                continue
    return b""


def test_published_udp_port_answers_on_loopback_and_host_address(daemon, busybox_image) -> None:  # noqa: ANN001
    d = daemon
    port = _free_udp_port()
    name = "nt-udp"
    rules_before = firewall.current_rules(d.names.firewall_prefix)
    listener = None
    try:
        ok(d.docker("run", "-d", "--name", name, "-p", f"{port}:5000/udp", busybox_image, "sleep", "120"))
        info = json.loads(ok(d.docker("inspect", name)))[0]["NetworkSettings"]
        assert info["Ports"]["5000/udp"] == [{"HostIp": "0.0.0.0", "HostPort": str(port)}]
        listener = subprocess.Popen(["nsenter", f"--net={info['SandboxKey']}", sys.executable, "-c", ECHO],
                                    stdout=subprocess.PIPE, text=True)
        assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
        for addr in ("127.0.0.1", host_address()):
            text = f"datagram to {addr}:{port}".encode()
            assert _ask(addr, port, text) == b"echo:" + text, addr
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        d.docker("rm", "-f", name)
    assert firewall.current_rules(d.names.firewall_prefix) == rules_before


ECHO6 = ECHO.replace("socket.AF_INET,", "socket.AF_INET6,").replace('("0.0.0.0", 5000)', '("::", 5000)')



def test_published_udp_port_answers_on_ipv6_loopback(daemon, busybox_image) -> None:  # noqa: ANN001
    """On an IPv6 network a published UDP port answers on [::1] too (through the daemon's
    relay: the kernel cannot DNAT ::1 into a bridge), each client getting its own replies."""
    d = daemon
    port = _free_udp_port()
    name, net = "nt-udp6", "nt-udp6-net"
    listener = None
    try:
        ok(d.docker("network", "create", "--ipv6", net))
        ok(d.docker("run", "-d", "--name", name, "--network", net, "-p", f"{port}:5000/udp", busybox_image,
                     "sleep", "120"))
        info = json.loads(ok(d.docker("inspect", name)))[0]["NetworkSettings"]
        assert {"HostIp": "::", "HostPort": str(port)} in info["Ports"]["5000/udp"]
        listener = subprocess.Popen(["nsenter", f"--net={info['SandboxKey']}", sys.executable, "-c", ECHO6],
                                    stdout=subprocess.PIPE, text=True)
        assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
        for text in (b"first client", b"second client"):
            assert _ask("::1", port, text) == b"echo:" + text
        assert _ask("127.0.0.1", port, b"and v4") == b"echo:and v4"
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        d.docker("rm", "-f", name)
        d.docker("network", "rm", net)
