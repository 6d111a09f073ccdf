"""IPv6-only bridge networks through berthd (`docker network create --ipv4=false --ipv6`,
API `EnableIPv4: false`), with docker 28's CLI and the berth CLI: the network and its
bridge have no IPv4, a container on it only an IPv6 address (and loopback) with its route
via the bridge's IPv6 gateway, names answered with AAAA, no IPv4 rule, ports published on
[::] (and [::1] through the daemon's relay), inspect as dockerd 28 shows it; dockerd's
refusals with nothing made; a dual-stack network connected later brings the IPv4 route;
all of it survives a daemon restart.

IPv6 subnets are derived from the run id (fdRR:RRRR:RR6<n>::/64), so concurrent runs and
test_network_ipv6 (which uses <n> below 0x10) never collide."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import subprocess

import pytest

from berth.network import firewall
from fixtures.daemon import DOCKER_CLI, private_daemon
from support import RunNames, free_port, host_ipv6, host_links, http_get, ok, private_names, ula_subnet

pytestmark = [pytest.mark.root]

DOCKER28 = "/usr/local/bin/docker"   # --ipv4 (EnableIPv4) is docker 28's; Debian's 20.10 CLI has none
HTTPD = "mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www"
RETRY = "(for i in 1 2 3 4 5 6 7 8 9 10; do {cmd} && exit 0; sleep 0.3; done; exit 1)"


@pytest.fixture
def d(daemon):  # noqa: ANN001, ANN201
    """The session daemon, driven by docker 28's CLI."""
    if not os.path.exists(DOCKER28):
        pytest.skip("docker 28 CLI not installed")
    daemon.docker_cli = DOCKER28
    yield daemon
    daemon.docker_cli = DOCKER_CLI




def _inspect(d, kind: str, name: str) -> dict:  # noqa: ANN001
    return json.loads(ok(d.docker(kind, "inspect", name)))[0]


def _addresses(dev: str, family: str) -> list[str]:
    """`ip -4|-6 addr` of a host device, global scope (CIDR strings)."""
    out = subprocess.run(["ip", family, "-o", "addr", "show", "dev", dev, "scope", "global"],
                         capture_output=True, text=True).stdout
    return [ln.split()[3] for ln in out.splitlines()]




def _bridge_of(d, net: str) -> str:  # noqa: ANN001
    """The host bridge of a network (berth names it <stem>-<id prefix>)."""
    net_id = _inspect(d, "network", net)["Id"]
    stem = re.sub(r"[^a-z0-9]", "", d.names.firewall_prefix.lower())[:8]
    return next(ln for ln in host_links() if ln.startswith(f"{stem}-") and net_id.startswith(ln.partition("-")[2]))


def test_ipv6_only_network_container_names_and_inspect(d, busybox_image, cleanup) -> None:  # noqa: ANN001
    sub6 = ula_subnet(d.names, 0x60 + 1)
    gw6 = str(sub6.network_address + 1)
    cleanup += ["net:v6o-auto", "net:v6o", "v6o-srv"]
    # no subnet given (docker 28's CLI): one ULA /64 of the daemon's, nothing of IPv4
    ok(d.docker("network", "create", "--ipv4=false", "--ipv6", "v6o-auto"))
    auto = _inspect(d, "network", "v6o-auto")
    assert (auto["EnableIPv4"], auto["EnableIPv6"]) == (False, True)
    assert [ipaddress.ip_network(c["Subnet"]).version for c in auto["IPAM"]["Config"]] == [6]
    # a given subnet (berth's CLI this time); the bridge holds the IPv6 gateway and no IPv4 address
    ok(d.cli("network", "create", "--ipv4=false", "--ipv6", "--subnet", str(sub6), "v6o"))
    net = _inspect(d, "network", "v6o")
    assert net["IPAM"]["Config"] == [{"Subnet": str(sub6), "Gateway": gw6}]
    bridge = _bridge_of(d, "v6o")
    assert _addresses(bridge, "-4") == [] and _addresses(bridge, "-6") == [f"{gw6}/64"]
    listed = ok(d.docker("network", "ls", "--filter", "name=v6o", "--format", "{{.Name}} {{.IPv4}} {{.IPv6}}"))
    assert sorted(listed.splitlines()) == ["v6o false true", "v6o-auto false true"]
    assert "IPV4" in ok(d.cli("network", "ls", "--format", "table {{.Name}}\t{{.IPv4}}"))
    assert _inspect(d, "network", "bridge")["EnableIPv4"] is True   # the default bridge keeps IPv4

    ok(d.docker("run", "-d", "--name", "v6o-srv", "--network", "v6o", "--network-alias", "web6", busybox_image,
                 "sh", "-c", HTTPD.format(text="v6-only")))
    settings = _inspect(d, "container", "v6o-srv")["NetworkSettings"]
    ep = settings["Networks"]["v6o"]
    srv6 = str(sub6.network_address + 2)
    assert (ep["IPAddress"], ep["IPPrefixLen"], ep["Gateway"]) == ("", 0, "")
    assert (ep["GlobalIPv6Address"], ep["GlobalIPv6PrefixLen"], ep["IPv6Gateway"]) == (srv6, 64, gw6)
    assert settings["IPAddress"] == "" and settings["GlobalIPv6Address"] == ""   # legacy: default bridge only
    first = int(ep["MacAddress"].split(":")[0], 16)   # random, unicast and locally administered (dockerd 28)
    assert first & 1 == 0 and first & 2 == 2 and not ep["MacAddress"].startswith("02:42:")
    members = _inspect(d, "network", "v6o")["Containers"]
    assert [(m["IPv4Address"], m["IPv6Address"]) for m in members.values()] == [("", f"{srv6}/64")]
    # in the container: only the IPv6 address, its route via the gateway, the embedded DNS
    out = ok(d.docker("exec", "v6o-srv", "sh", "-c",
                       "ip -4 addr show eth0; echo ---; ip -4 route; echo ---; ip -6 addr show eth0; "
                       "ip -6 route; cat /etc/hosts /etc/resolv.conf"))
    v4addr, v4route, rest = out.split("---\n")
    assert "inet " not in v4addr and v4route.strip() == ""
    assert f"inet6 {srv6}/64" in rest and f"default via {gw6}" in rest
    assert f"{srv6}\t" in rest and "nameserver 127.0.0.11" in rest
    # another container finds it by name and alias with AAAA (no A) and reaches it over IPv6
    script = " && ".join([RETRY.format(cmd="nslookup -type=AAAA web6 127.0.0.11 >/dev/null"),
                          "nslookup -type=AAAA v6o-srv 127.0.0.11", "echo ===",
                          "(nslookup -type=A v6o-srv 127.0.0.11; true)", "echo ===",
                          "wget -q -O- http://v6o-srv/"])
    aaaa, a, page = ok(d.docker("run", "--rm", "--network", "v6o", busybox_image, "sh", "-c", script)).split(
        "===\n")
    assert srv6 in aaaa and page == "v6-only\n", (aaaa, page)
    assert not re.search(r"Address: \d+\.\d+\.\d+\.\d+", a.split("v6o-srv", 1)[-1]), a   # no A record
    assert http_get(f"http://[{srv6}]:80/") == "v6-only\n"   # the host, through the bridge
    # no IPv4 rule names the bridge; the IPv6 chains masquerade its subnet
    assert not any(bridge in r for r in firewall.current_rules(d.names.firewall_prefix))
    rules6 = firewall.current_rules(d.names.firewall_prefix, version=6)
    assert any(f"-s {sub6} ! -o {bridge} -j MASQUERADE" in r for r in rules6), rules6


def test_published_ports_answer_on_ipv6_only(d, busybox_image, cleanup) -> None:  # noqa: ANN001
    cleanup += ["net:v6o-pub", "v6o-web"]
    ok(d.docker("network", "create", "--ipv4=false", "--ipv6", "--subnet", str(ula_subnet(d.names, 0x60 + 2)), "v6o-pub"))
    port = free_port()
    ok(d.docker("run", "-d", "--name", "v6o-web", "--network", "v6o-pub", "-p", f"{port}:80", busybox_image,
                 "sh", "-c", HTTPD.format(text="published")))
    ports = _inspect(d, "container", "v6o-web")["NetworkSettings"]["Ports"]["80/tcp"]
    assert ports == [{"HostIp": "::", "HostPort": str(port)}]   # no 0.0.0.0 binding without IPv4 (dockerd 28)
    assert http_get(f"http://[::1]:{port}/") == "published\n"   # berthd's [::1] relay
    host6 = host_ipv6()
    if host6:
        assert http_get(f"http://[{host6}]:{port}/") == "published\n"
    with socket.socket() as s:   # IPv4 has nothing there
        assert s.connect_ex(("127.0.0.1", port)) != 0
    srv6 = _inspect(d, "container", "v6o-web")["NetworkSettings"]["Networks"]["v6o-pub"]["GlobalIPv6Address"]
    assert any(f"--to-destination [{srv6}]:80" in r
               for r in firewall.current_rules(d.names.firewall_prefix, version=6))
    assert not any(f"--dport {port} " in r for r in firewall.current_rules(d.names.firewall_prefix))
    # an IPv4 host address for it: refused, nothing made
    before = (ok(d.docker("ps", "-aq")), firewall.current_rules(d.names.firewall_prefix))
    r = d.docker("run", "-d", "--name", "v6o-v4pub", "--network", "v6o-pub", "-p", f"127.0.0.1:{free_port()}:80",
                 busybox_image, "sleep", "30")
    d.docker("rm", "-f", "v6o-v4pub")
    assert r.returncode != 0 and "has no IPv4 address" in r.stderr, r.stderr
    assert (ok(d.docker("ps", "-aq")), firewall.current_rules(d.names.firewall_prefix)) == before
    ok(d.docker("rm", "-f", "v6o-web"))
    with socket.socket(socket.AF_INET6) as s:   # the port was given back
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::", port))


def test_a_dual_stack_network_connected_later_brings_ipv4(d, busybox_image, cleanup) -> None:  # noqa: ANN001
    cleanup += ["net:v6o-first", "net:v6o-dual", "v6o-two"]
    ok(d.docker("network", "create", "--ipv4=false", "--ipv6", "--subnet", str(ula_subnet(d.names, 0x60 + 3)),
                 "v6o-first"))
    ok(d.docker("network", "create", "--ipv6", "--subnet", str(ula_subnet(d.names, 0x60 + 4)), "v6o-dual"))
    ok(d.docker("run", "-d", "--name", "v6o-two", "--network", "v6o-first", busybox_image, "sleep", "300"))
    assert ok(d.docker("exec", "v6o-two", "ip", "-4", "route")).strip() == ""
    ok(d.docker("network", "connect", "v6o-dual", "v6o-two"))
    nets = _inspect(d, "container", "v6o-two")["NetworkSettings"]["Networks"]
    assert nets["v6o-first"]["IPAddress"] == "" and nets["v6o-dual"]["IPAddress"]
    gw4 = _inspect(d, "network", "v6o-dual")["IPAM"]["Config"]
    gw4 = next(c["Gateway"] for c in gw4 if ipaddress.ip_network(c["Subnet"]).version == 4)
    out = ok(d.docker("exec", "v6o-two", "sh", "-c", "ip -4 route; ip -6 route"))
    first_gw6 = str(ula_subnet(d.names, 0x60 + 3).network_address + 1)
    # IPv4's default route through the network that has IPv4; IPv6's stays with the first network
    assert f"default via {gw4}" in out and f"default via {first_gw6}" in out, out


def test_refusals_as_dockerd_with_nothing_made(d, busybox_image, cleanup) -> None:  # noqa: ANN001
    sub6 = ula_subnet(d.names, 0x60 + 5)
    cleanup += ["net:v6o-plain", "net:v6o-opt"]
    before = (ok(d.docker("network", "ls", "-q")), host_links(), firewall.current_rules(d.names.firewall_prefix))
    for body, status, says in (
            ({"EnableIPv4": False}, 400, "IPv4 or IPv6 must be enabled"),
            ({"EnableIPv4": False, "EnableIPv6": False}, 400, "IPv4 or IPv6 must be enabled"),
            ({"EnableIPv4": False, "EnableIPv6": True, "IPAM": {"Config": [{"Subnet": "10.231.77.0/24"}]}}, 400,
             "IPv4 subnet or gateway 10.231.77.0/24 given to a network without IPv4"),
            ({"EnableIPv6": True, "Options": {"com.docker.network.enable_ipv4": "maybe"}}, 400,
             'driver-opt "com.docker.network.enable_ipv4" is not a valid bool'),
            ({"Name": "bridge", "EnableIPv4": False, "EnableIPv6": True}, 403,
             "operation is not permitted on predefined bridge network")):
        r = d.api("POST", "/networks/create", json={"Name": "v6o-bad", **body})
        assert (r.status, says in r.json()["message"]) == (status, True), (body, r.status, r.text)
    r = d.docker("network", "create", "--ipv4=false", "v6o-bad")   # the CLI's way
    assert r.returncode != 0 and "IPv4 or IPv6 must be enabled" in r.stderr, r.stderr
    r = d.docker("network", "create", "--ipv4=false", "--ipv6", "bridge")
    assert r.returncode != 0 and "predefined bridge network" in r.stderr, r.stderr
    assert (ok(d.docker("network", "ls", "-q")), host_links(), firewall.current_rules(d.names.firewall_prefix)) == before
    # --ip on an IPv6-only network: it has no user-configured IPv4 subnet (dockerd's words)
    ok(d.docker("network", "create", "--ipv4=false", "--ipv6", "--subnet", str(sub6), "v6o-plain"))
    r = d.docker("run", "--rm", "--network", "v6o-plain", "--ip", "10.231.78.5", busybox_image, "true")
    assert r.returncode != 0 and "user configured subnets" in r.stderr, r.stderr
    # the driver option stands for EnableIPv4 when that is not given (and is kept in Options)
    r = d.api("POST", "/networks/create", json={"Name": "v6o-opt", "EnableIPv6": True,
                                                "Options": {"com.docker.network.enable_ipv4": "false"}})
    assert r.status == 201, r.text
    opt = _inspect(d, "network", "v6o-opt")
    assert opt["EnableIPv4"] is False and opt["Options"] == {"com.docker.network.enable_ipv4": "false"}


@pytest.mark.slow
def test_daemon_restart_keeps_an_ipv6_only_network(run_names: RunNames, busybox_tar: str) -> None:
    """Live restore and the start-up path: the bridge comes back without IPv4, the port
    answers on [::1] and the name with AAAA; once all is removed nothing is left."""
    if not os.path.exists(DOCKER28):
        pytest.skip("docker 28 CLI not installed")
    names = private_names(run_names, "r6o")
    with private_daemon(names, busybox_tar) as h:
        h.docker_cli = DOCKER28
        port = free_port()
        ok(h.docker("network", "create", "--ipv4=false", "--ipv6", "--subnet", str(ula_subnet(run_names, 0x60 + 6)),
                     "r6o-net"))
        ok(h.docker("run", "-d", "--name", "r6o-web", "--network", "r6o-net", "-p", f"{port}:80", "busybox",
                     "sh", "-c", HTTPD.format(text="restored")))
        srv6 = _inspect(h, "container", "r6o-web")["NetworkSettings"]["Networks"]["r6o-net"]["GlobalIPv6Address"]
        bridge = _bridge_of(h, "r6o-net")
        h.stop(timeout=90)
        h.start()
        assert _addresses(bridge, "-4") == [] and _addresses(bridge, "-6")
        assert http_get(f"http://[::1]:{port}/") == "restored\n"
        out = ok(h.docker("run", "--rm", "--network", "r6o-net", "busybox", "sh", "-c",
                           RETRY.format(cmd="nslookup -type=AAAA r6o-web 127.0.0.11")))
        assert srv6 in out, out
        ok(h.docker("rm", "-f", "r6o-web"))
        ok(h.docker("network", "rm", "r6o-net"))
        h.stop(timeout=90)
    assert bridge not in host_links()
    saved = subprocess.run(["ip6tables-save"], capture_output=True, text=True, check=True).stdout
    assert names.firewall_prefix.upper() not in saved
