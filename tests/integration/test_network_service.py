"""NetworkService against the real kernel, without a daemon: namespaces made by the
service, processes placed in them with nsenter running busybox (httpd, wget, nslookup).

Uses its own bridge/prefix names (derived from the run id, distinct from the session
daemon's) so it never collides with the `daemon` fixture of the same run."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.config import DaemonConfig
from berth.engine.db import Database
from berth.engine.networks import NetworkService
from berth.errors import BerthError, Conflict, Forbidden, InvalidParameter
from berth.network import firewall
from support import BUSYBOX, RunNames, free_port, free_subnet, host_address, host_state

pytestmark = [pytest.mark.root]


class Env:
    def __init__(self, names: RunNames) -> None:
        self.token = f"bn{names.run_id}"
        self.root = names.root / "netsvc"
        self.cfg = DaemonConfig(data_root=self.root / "data", exec_root=self.root / "run",
                                bridge=self.token, bridge_subnet=free_subnet(),
                                firewall_prefix=self.token)
        self.cfg.ensure_dirs()
        # the service lives on an event loop in its own thread, as in the daemon, so the
        # embedded DNS answers while the test blocks on a subprocess
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.db = Database(self.cfg.db_path)
        self.svc = self.run(self._make())
        self.procs: list[subprocess.Popen] = []

    def run(self, coro):  # noqa: ANN001, ANN201
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(120)

    async def _make(self) -> NetworkService:
        return NetworkService(self.cfg, self.db)

    def sh(self, netns: str, cmd: str, timeout: float = 20) -> subprocess.CompletedProcess:
        return subprocess.run(["nsenter", f"--net={netns}", BUSYBOX, "sh", "-c", cmd],
                              capture_output=True, text=True, timeout=timeout)

    def httpd(self, netns: str, text: str, port: int = 80) -> None:
        www = self.root / f"www-{len(self.procs)}"
        www.mkdir(parents=True, exist_ok=True)
        (www / "index.html").write_text(text)
        p = subprocess.Popen(["nsenter", f"--net={netns}", BUSYBOX, "httpd", "-f", "-p", str(port),
                              "-h", str(www)])
        self.procs.append(p)
        for _ in range(50):
            if self.sh(netns, f"wget -q -O /dev/null http://127.0.0.1:{port}/").returncode == 0:
                return
            time.sleep(0.05)
        raise AssertionError("httpd did not come up")

    def close(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()
        try:
            for row in self.db.execute("SELECT container_id FROM net_sandboxes"):
                self.run(self.svc.teardown_container(row["container_id"]))
            for row in self.db.execute("SELECT name FROM networks WHERE builtin = 0"):
                self.run(self.svc.remove(row["name"]))
            self.run(self.svc.stop())
        finally:
            self.db.close()
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@contextlib.contextmanager
def network_service(run_names: RunNames) -> Iterator[Env]:
    """A started NetworkService of the test's own; afterwards nothing of it may be left on
    the host (mounts, links, firewall rules, processes)."""
    e = Env(run_names)
    try:
        e.run(e.svc.start())
        yield e
    finally:
        e.close()
        left = host_state(e.token)
        assert (left.mounts, left.links, left.firewall, left.processes) == ([], [], [], []), left
        assert [ln for ln in Path("/proc/mounts").read_text().splitlines() if str(e.root) in ln] == []


@pytest.fixture(scope="module")
def env(run_names: RunNames) -> Iterator[Env]:
    with network_service(run_names) as e:
        yield e


def _cid(n: int) -> str:
    return f"{n:02d}" + os.urandom(31).hex()


def test_default_bridge_reaches_outside_and_publishes_a_port(env: Env) -> None:
    cid = _cid(1)
    port = free_port()
    sb = env.run(env.svc.setup_container(cid, "bridge", "web1", "", [], {"80/tcp": [{"HostPort": str(port)}]},
                                         [], [], ["db:10.1.2.3"], name="/web1",
                                         exposed_ports={"80/tcp": {}, "443/tcp": {}}))
    try:
        assert sb.netns and Path(sb.netns).exists() and not sb.share_host
        s = sb.settings
        assert s["IPAddress"] and s["Networks"]["bridge"]["IPAddress"] == s["IPAddress"]
        assert s["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}], "443/tcp": None}
        hosts = Path(sb.files["/etc/hosts"]).read_text()
        assert f"{s['IPAddress']}\tweb1" in hosts and "10.1.2.3\tdb" in hosts
        assert Path(sb.files["/etc/hostname"]).read_text() == "web1\n"
        assert "127.0.0.11" not in Path(sb.files["/etc/resolv.conf"]).read_text()
        # outbound through the masquerade: Debian's mirror over http
        r = env.sh(sb.netns, "wget -q -O- http://deb.debian.org/debian/dists/bookworm/Release | head -n 3")
        assert "Origin: Debian" in r.stdout, r.stderr
        # and PyPI over HTTPS (the host's curl run inside the container's network namespace:
        # busybox has no pip; the lead's e2e runs pip in a python image)
        r = subprocess.run(["nsenter", f"--net={sb.netns}", "curl", "-sS", "--max-time", "20",
                            "https://pypi.org/simple/pip/"], capture_output=True, text=True, timeout=30)
        assert "pip-" in r.stdout and ".whl" in r.stdout, r.stderr
        # published: 127.0.0.1 (OUTPUT DNAT + route_localnet) and the host's own address
        env.httpd(sb.netns, "hello from berth\n")
        for addr in ("127.0.0.1", host_address()):
            r = subprocess.run([BUSYBOX, "wget", "-q", "-O-", f"http://{addr}:{port}/"], capture_output=True,
                               text=True, timeout=20)
            assert r.stdout == "hello from berth\n", (addr, r.stderr)
        # hairpin: the container reaches itself through the host's published port
        r = env.sh(sb.netns, f"wget -q -O- http://{host_address()}:{port}/")
        assert r.stdout == "hello from berth\n", r.stderr
        # the host port is held: a second container cannot take it
        with pytest.raises(BerthError, match=f"Bind for 0.0.0.0:{port} failed: port is already allocated"):
            env.run(env.svc.setup_container(_cid(2), "bridge", "", "", [], {"80/tcp": [{"HostPort": str(port)}]},
                                            [], [], []))
        assert not (env.cfg.netns_dir / _cid(2)).exists()
    finally:
        env.run(env.svc.teardown_container(cid))
    assert not Path(sb.netns).exists()
    assert not any(str(port) in r for r in firewall.current_rules(env.token))
    # the port is free again
    s2 = socket.socket()
    s2.bind(("0.0.0.0", port))
    s2.close()


def test_taken_port_leaves_nothing(env: Env) -> None:
    taken = socket.socket()
    taken.bind(("0.0.0.0", 0))
    port = taken.getsockname()[1]
    before = firewall.current_rules(env.token)
    links_before = host_state(env.token).links
    cid = _cid(3)
    try:
        with pytest.raises(BerthError, match="port is already allocated"):
            env.run(env.svc.setup_container(cid, "bridge", "", "", [],
                                            {"80/tcp": [{"HostPort": ""}], "81/tcp": [{"HostPort": str(port)}]},
                                            [], [], []))
    finally:
        taken.close()
    assert not (env.cfg.netns_dir / cid).exists()
    assert env.db.one("SELECT 1 FROM net_sandboxes WHERE container_id = ?", (cid,)) is None
    assert env.db.one("SELECT 1 FROM net_endpoints WHERE container_id = ?", (cid,)) is None
    assert firewall.current_rules(env.token) == before
    assert host_state(env.token).links == links_before


def test_user_networks_names_and_isolation(env: Env) -> None:
    env.run(env.svc.create("appnet"))
    env.run(env.svc.create("othernet", labels={"purpose": "test"}))
    a, b, c = _cid(4), _cid(5), _cid(6)
    try:
        sa = env.run(env.svc.setup_container(a, "appnet", "", "", [], None, [], [], [], name="alpha"))
        sb = env.run(env.svc.setup_container(b, "appnet", "", "", ["web"], None, [], [], [], name="beta"))
        sc = env.run(env.svc.setup_container(c, "othernet", "", "", [], None, [], [], [], name="gamma"))
        assert "nameserver 127.0.0.11" in Path(sa.files["/etc/resolv.conf"]).read_text()
        ip_b = sb.settings["Networks"]["appnet"]["IPAddress"]
        assert sb.settings["Networks"]["appnet"]["Aliases"] == ["web"]
        env.httpd(sb.netns, "beta page\n")
        for name in ("beta", "web", b[:12]):
            r = env.sh(sa.netns, f"nslookup {name} 127.0.0.11")
            assert ip_b in r.stdout, (name, r.stdout, r.stderr)
        r = env.sh(sa.netns, f"wget -q -O- http://{ip_b}/")
        assert r.stdout == "beta page\n"
        # outside names are forwarded to the host's servers
        r = env.sh(sa.netns, "nslookup deb.debian.org 127.0.0.11")
        assert "Address" in r.stdout.split("deb.debian.org", 1)[-1], r.stdout
        # another network: neither the name nor the address
        r = env.sh(sc.netns, "nslookup beta 127.0.0.11")
        assert ip_b not in r.stdout
        r = env.sh(sc.netns, f"timeout 2 wget -q -O- http://{ip_b}/")
        assert r.returncode != 0 and "beta page" not in r.stdout
        # network inspect / list / rm while in use
        info = env.run(env.svc.inspect("appnet"))
        assert set(info["Containers"]) == {a, b} and info["Containers"][b]["Name"] == "beta"
        assert [n["Name"] for n in env.run(env.svc.list({"label": ["purpose=test"]}))] == ["othernet"]
        with pytest.raises(Forbidden, match="active endpoints"):
            env.run(env.svc.remove("appnet"))
        with pytest.raises(Forbidden, match="pre-defined"):
            env.run(env.svc.remove("bridge"))
        # connect gamma to appnet live: now it resolves and reaches beta; disconnect undoes it
        env.run(env.svc.connect("appnet", c, name="gamma"))
        assert "appnet" in env.svc.settings(c)["Networks"]
        r = env.sh(sc.netns, "nslookup beta 127.0.0.11")
        assert ip_b in r.stdout
        t0 = time.time()
        r = env.sh(sc.netns, f"timeout 3 wget -q -O- http://{ip_b}/")
        assert r.stdout == "beta page\n", (r.stdout, r.stderr, time.time() - t0)
        env.run(env.svc.disconnect("appnet", c))
        assert "appnet" not in env.svc.settings(c)["Networks"]
        r = env.sh(sc.netns, "ip -o -4 addr")
        assert r.stdout.count("inet ") == 2   # lo and eth0 only
    finally:
        for cid in (a, b, c):
            env.run(env.svc.forget_container(cid))
        env.run(env.svc.remove("appnet"))
        env.run(env.svc.remove("othernet"))


def test_internal_network_has_no_way_out(env: Env) -> None:
    env.run(env.svc.create("sealed", internal=True))
    a, b = _cid(7), _cid(8)
    try:
        sa = env.run(env.svc.setup_container(a, "sealed", "", "", [], None, [], [], [], name="in1"))
        sb = env.run(env.svc.setup_container(b, "sealed", "", "", [], None, [], [], [], name="in2"))
        assert sa.settings["Networks"]["sealed"]["Gateway"] == ""
        r = env.sh(sa.netns, "ip route")
        assert "default" not in r.stdout
        for cmd in ("timeout 3 wget -q -O- http://deb.debian.org/", "ping -c1 -W2 192.0.2.1",
                    f"ping -c1 -W2 {host_address()}"):
            r = env.sh(sa.netns, cmd)
            assert r.returncode != 0, (cmd, r.stdout)
        r = env.sh(sa.netns, "nslookup deb.debian.org 127.0.0.11")
        assert "203." not in r.stdout and "Address: " not in r.stdout.split("deb.debian.org", 1)[-1]
        # inside the network they still talk
        env.httpd(sb.netns, "inside\n")
        r = env.sh(sa.netns, "timeout 3 wget -q -O- http://in2/ 2>/dev/null || timeout 3 wget -q -O- "
                   f"http://{sb.settings['Networks']['sealed']['IPAddress']}/")
        assert r.stdout == "inside\n"
    finally:
        for cid in (a, b):
            env.run(env.svc.forget_container(cid))
        env.run(env.svc.remove("sealed"))


def test_bad_networks_leave_nothing(env: Env) -> None:
    env.run(env.svc.create("first", subnet="10.231.0.0/24") if not _routed("10.231.0.0/24")
            else env.svc.create("first"))
    first = env.run(env.svc.inspect("first"))["IPAM"]["Config"][0]["Subnet"]
    try:
        links = host_state(env.token).links
        rules = firewall.current_rules(env.token)
        with pytest.raises(Conflict, match="overlaps"):
            env.run(env.svc.create("second", subnet=first))
        with pytest.raises(InvalidParameter):
            env.run(env.svc.create("third", subnet="10.0.0.1/33"))
        with pytest.raises(InvalidParameter):
            env.run(env.svc.create("fourth", subnet="10.232.0.0/24", gateway="10.233.0.1"))
        with pytest.raises(Conflict, match="already exists"):
            env.run(env.svc.create("first"))
        assert host_state(env.token).links == links
        assert firewall.current_rules(env.token) == rules
        assert [n["Name"] for n in env.run(env.svc.list({"type": ["custom"]}))] == ["first"]
    finally:
        env.run(env.svc.remove("first"))


def _routed(subnet: str) -> bool:
    out = subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    return subnet.rsplit(".", 1)[0] in out


def test_restart_keeps_live_plumbing_and_reconciles_rules(env: Env) -> None:
    cid = _cid(9)
    port = free_port()
    sb = env.run(env.svc.setup_container(cid, "bridge", "", "", [], {"80/tcp": [{"HostPort": str(port)}]},
                                         [], [], [], name="survivor"))
    try:
        env.httpd(sb.netns, "still here\n")
        rules = sorted(firewall.current_rules(env.token))
        env.run(env.svc.stop())                       # daemon stops: the container lives on
        assert Path(sb.netns).exists()
        assert sorted(firewall.current_rules(env.token)) == rules
        # a rule of ours doubled and one stale by hand: the restart reconciles both
        subprocess.run(["iptables", "-I", "FORWARD", "1", "-j", f"{env.token.upper()}-FORWARD"], check=True)
        subprocess.run(["iptables", "-t", "nat", "-A", f"{env.token.upper()}-DNAT", "-p", "tcp", "--dport", "1",
                        "-j", "DNAT", "--to-destination", "10.0.0.1:1"], check=True)
        svc2 = env.run(env._make())
        env.run(svc2.start())
        env.svc = svc2
        assert sorted(firewall.current_rules(env.token)) == rules
        r = subprocess.run([BUSYBOX, "wget", "-q", "-O-", f"http://127.0.0.1:{port}/"], capture_output=True,
                           text=True, timeout=20)
        assert r.stdout == "still here\n"
        # the restarted service holds the port again
        with pytest.raises(BerthError, match="already allocated"):
            env.run(env.svc.setup_container(_cid(10), "bridge", "", "", [],
                                            {"80/tcp": [{"HostPort": str(port)}]}, [], [], []))
    finally:
        env.run(env.svc.teardown_container(cid))


def test_host_none_and_container_modes(env: Env) -> None:
    h, n, a, j = _cid(11), _cid(12), _cid(13), _cid(14)
    try:
        sh = env.run(env.svc.setup_container(h, "host", "", "", [], None, [], [], ["x:1.2.3.4"]))
        assert sh.share_host and sh.netns is None
        assert "1.2.3.4\tx" in Path(sh.files["/etc/hosts"]).read_text()
        assert "host" in sh.settings["Networks"]
        sn = env.run(env.svc.setup_container(n, "none", "quiet", "", [], None, ["9.9.9.9"], [], []))
        assert sn.netns is None and not sn.share_host
        assert Path(sn.files["/etc/resolv.conf"]).read_text().startswith("nameserver 9.9.9.9")
        assert "none" in sn.settings["Networks"]
        sa = env.run(env.svc.setup_container(a, "bridge", "", "", [], None, [], [], [], name="owner"))
        sj = env.run(env.svc.setup_container(j, "container:owner", "", "", [], None, [], [], []))
        assert sj.netns == sa.netns and sj.files == sa.files
        with pytest.raises(Conflict):
            env.run(env.svc.setup_container(_cid(15), "container:nobody", "", "", [], None, [], [], []))
    finally:
        for cid in (j, a, n, h):
            env.run(env.svc.forget_container(cid))


def test_delete_link_returns_with_the_link_gone_and_its_deletion_is_seen() -> None:
    """delete_link returns at the kernel's RTM_DELLINK notification: the link is gone from the
    host's view by then; the notification parser finds the deleted link's index."""
    from berth.network.bridge import _deleted_links, delete_link

    name = f"bz{os.getpid() % 100000}"
    watch = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    try:
        watch.bind((0, 1))  # RTMGRP_LINK
        subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"], check=True)
        index = int(Path(f"/sys/class/net/{name}/ifindex").read_text())
        delete_link(name)
        assert not Path(f"/sys/class/net/{name}").exists()
        assert not Path(f"/sys/class/net/{name}p").exists()
        seen: set[int] = set()
        watch.settimeout(5)
        while index not in seen:
            seen |= _deleted_links(watch.recv(65536))
    finally:
        watch.close()
        subprocess.run(["ip", "link", "del", name], capture_output=True)
