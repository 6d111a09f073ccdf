"""Dual-stack user-defined bridge networks through berthd (`--ipv6`), with the real docker
CLI and the berth CLI: ULA subnets chosen by the daemon or given, addresses and default
routes in the container, names answered with AAAA, `--ip6`, published ports on the host's
IPv6 addresses and [::1], bad input refused with nothing made, ip6tables chains that go
with the last IPv6 network, and live restore of all of it.

Every IPv6 subnet a test names is derived from the run id (fdRR:RRRR:RR<n>::/64), so
concurrent runs never collide."""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess

import pytest

from berth.network import firewall, ipam
from fixtures.daemon import private_daemon
from support import RunNames, free_port, host_ipv6, host_links, http_get, ok, private_names, ula_subnet

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("each_docker_cli")]

HTTPD = "mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www"
RETRY = "(for i in 1 2 3 4 5 6 7 8 9 10; do {cmd} && exit 0; sleep 0.3; done; exit 1)"




def _v6_rules(prefix: str) -> list[str]:
    return firewall.current_rules(prefix, version=6)



def _addresses_in(net: ipaddress.IPv6Network) -> list[str]:
    """Addresses of the host (any link) inside `net`."""
    out = subprocess.run(["ip", "-6", "-o", "addr"], capture_output=True, text=True).stdout
    return [w for ln in out.splitlines() for w in ln.split() if "/" in w and ":" in w
            and ipaddress.ip_address(w.split("/")[0]) in net]





def test_dual_stack_network_inspect_names_and_fixed_address(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    d = daemon
    sub6 = ula_subnet(d.names, 1)
    gw6 = str(sub6.network_address + 0xfe)
    cleanup += ["net:v6-auto", "net:v6-given", "v6-srv", "v6-fixed"]
    # no subnet given: a ULA /64 of the daemon's own /48
    ok(d.docker("network", "create", "--ipv6", "v6-auto"))
    auto = json.loads(ok(d.docker("network", "inspect", "v6-auto")))[0]
    assert auto["EnableIPv6"] is True
    cfg = {ipaddress.ip_network(c["Subnet"]).version: c for c in auto["IPAM"]["Config"]}
    assert set(cfg) == {4, 6}
    auto6 = ipaddress.IPv6Network(cfg[6]["Subnet"])
    assert auto6.prefixlen == 64 and auto6.subnet_of(ipaddress.IPv6Network("fd00::/8"))
    assert cfg[6]["Gateway"] == str(auto6.network_address + 1)
    # given subnet and gateway (berth's CLI this time); the bridge holds the gateway
    ok(d.cli("network", "create", "--ipv6", "--subnet", str(sub6), "--gateway", gw6, "v6-given"))
    net = json.loads(ok(d.docker("network", "inspect", "v6-given")))[0]
    assert {"Subnet": str(sub6), "Gateway": gw6} in net["IPAM"]["Config"] and len(net["IPAM"]["Config"]) == 2
    assert _addresses_in(sub6) == [f"{gw6}/64"]
    assert "true" in ok(d.docker("network", "ls", "--filter", "name=v6-given", "--format", "{{.IPv6}}"))

    ok(d.docker("run", "-d", "--name", "v6-srv", "--network", "v6-given", "--network-alias", "web6",
                 busybox_image, "sh", "-c", HTTPD.format(text="over-v6")))
    info = json.loads(ok(d.docker("inspect", "v6-srv")))[0]["NetworkSettings"]
    ep = info["Networks"]["v6-given"]
    srv6 = str(sub6.network_address + 1)   # the lowest free address: the gateway is ::fe
    assert (ep["GlobalIPv6Address"], ep["GlobalIPv6PrefixLen"], ep["IPv6Gateway"]) == (srv6, 64, gw6)
    assert ep["IPAddress"] and ep["Gateway"]   # dual stack: IPv4 as before
    assert info["GlobalIPv6Address"] == "" and info["IPAddress"] == ""   # legacy fields: default bridge only
    members = json.loads(ok(d.docker("network", "inspect", "v6-given")))[0]["Containers"]
    assert [m["IPv6Address"] for m in members.values()] == [f"{srv6}/64"]
    # in the container: the address, the default route, /etc/hosts
    out = ok(d.docker("exec", "v6-srv", "sh", "-c", "ip -6 addr show eth0; ip -6 route; cat /etc/hosts"))
    assert f"inet6 {srv6}/64" in out and f"default via {gw6}" in out and f"{srv6}\t" in out
    # another container reaches it by name and alias over IPv6 (AAAA from the embedded DNS)
    script = " && ".join([RETRY.format(cmd="ping -6 -c1 -W2 v6-srv >/dev/null"),
                          "nslookup -type=AAAA web6 127.0.0.11",
                          f"wget -q -O- http://[{srv6}]:80/"])
    out = ok(d.docker("run", "--rm", "--network", "v6-given", busybox_image, "sh", "-c", script))
    assert srv6 in out and out.endswith("over-v6\n"), out
    # the host reaches it through the bridge
    assert http_get(f"http://[{srv6}]:80/") == "over-v6\n"

    # --ip6: honoured; taken, outside the subnet or on a network without IPv6: refused
    fixed = str(sub6.network_address + 0x77)
    ok(d.docker("run", "-d", "--name", "v6-fixed", "--network", "v6-given", "--ip6", fixed, busybox_image,
                 "sleep", "300"))
    assert json.loads(ok(d.docker("inspect", "v6-fixed")))[0]["NetworkSettings"]["Networks"]["v6-given"][
        "GlobalIPv6Address"] == fixed
    netns = sorted(p.name for p in (d.names.exec_root / "netns").iterdir())
    links = host_links()
    for net_name, addr, why in (("v6-given", fixed, "in use"), ("v6-given", "fd00:dead::5", "not in subnet"),
                                ("bridge", fixed, "does not have IPv6 enabled")):
        r = d.docker("run", "--rm", "--network", net_name, "--ip6", addr, busybox_image, "true")
        assert r.returncode != 0 and why in r.stderr, (net_name, addr, r.stderr)
    assert sorted(p.name for p in (d.names.exec_root / "netns").iterdir()) == netns
    assert host_links() == links
    # connected live with --ip6: the address, and the IPv6 default route (its first IPv6 network)
    cleanup.append("v6-late")
    ok(d.docker("run", "-d", "--name", "v6-late", busybox_image, "sleep", "300"))
    late = str(sub6.network_address + 0x88)
    ok(d.docker("network", "connect", "--ip6", late, "v6-given", "v6-late"))
    late_id = ok(d.docker("inspect", "-f", "{{.Id}}", "v6-late")).strip()
    members = json.loads(ok(d.docker("network", "inspect", "v6-given")))[0]["Containers"]
    assert members[late_id]["IPv6Address"] == f"{late}/64"
    out = ok(d.docker("exec", "v6-late", "sh", "-c", f"ip -6 route; ping -6 -c1 -W2 {srv6} >/dev/null && echo up"))
    assert f"default via {gw6}" in out and out.endswith("up\n"), out


def test_published_ports_answer_on_ipv6_and_loopback(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    d = daemon
    cleanup += ["net:v6-pub", "v6-web", "v6-nov6"]
    ok(d.docker("network", "create", "--ipv6", "--subnet", str(ula_subnet(d.names, 2)), "v6-pub"))
    both, loop6 = free_port(), free_port()
    ok(d.docker("run", "-d", "--name", "v6-web", "--network", "v6-pub", "-p", f"{both}:80",
                 "-p", f"[::1]:{loop6}:80", busybox_image, "sh", "-c", HTTPD.format(text="published6")))
    ports = json.loads(ok(d.docker("inspect", "v6-web")))[0]["NetworkSettings"]["Ports"]["80/tcp"]
    assert sorted((p["HostIp"], p["HostPort"]) for p in ports) == sorted(
        [("0.0.0.0", str(both)), ("::", str(both)), ("::1", str(loop6))])
    assert http_get(f"http://127.0.0.1:{both}/") == "published6\n"
    assert http_get(f"http://[::1]:{both}/") == "published6\n"
    assert http_get(f"http://[::1]:{loop6}/") == "published6\n"
    host6 = host_ipv6()
    if host6:
        assert http_get(f"http://[{host6}]:{both}/") == "published6\n"
    with socket.socket() as s:   # [::1]:loop6 only: IPv4 has nothing there
        assert s.connect_ex(("127.0.0.1", loop6)) != 0
    srv6 = json.loads(ok(d.docker("inspect", "v6-web")))[0]["NetworkSettings"]["Networks"]["v6-pub"][
        "GlobalIPv6Address"]
    assert any(f"--to-destination [{srv6}]:80" in r for r in _v6_rules(d.names.firewall_prefix))
    # the host ports are held on both families: a second container cannot take them
    r = d.docker("run", "-d", "--name", "v6-thief", "--network", "v6-pub", "-p", f"[::]:{both}:80",
                 busybox_image, "true")
    assert r.returncode != 0 and "port is already allocated" in r.stderr, r.stderr
    d.docker("rm", "-f", "v6-thief")
    # an IPv6 host address for a container without IPv6: a clear error, nothing made
    rules4, rules6 = firewall.current_rules(d.names.firewall_prefix), _v6_rules(d.names.firewall_prefix)
    r = d.docker("run", "-d", "--name", "v6-nov6", "-p", f"[::1]:{free_port()}:80", busybox_image, "sleep", "30")
    assert r.returncode != 0 and "has no IPv6 address" in r.stderr, r.stderr
    assert firewall.current_rules(d.names.firewall_prefix) == rules4
    assert _v6_rules(d.names.firewall_prefix) == rules6
    ok(d.docker("rm", "-f", "v6-web"))
    assert not any("--to-destination" in r for r in _v6_rules(d.names.firewall_prefix))
    with socket.socket(socket.AF_INET6) as s:   # the port was given back (the proxied
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # connection is in TIME_WAIT)
        s.bind(("::1", loop6))
        s.listen()


def test_bad_input_is_refused_and_makes_nothing(daemon, cleanup) -> None:  # noqa: ANN001
    d = daemon
    sub6 = ula_subnet(d.names, 3)
    cleanup += ["net:v6-first"]
    ok(d.docker("network", "create", "--ipv6", "--subnet", str(sub6), "v6-first"))
    before = (sorted(n["Name"] for n in d.api("GET", "/networks").json()), host_links(),
              firewall.current_rules(d.names.firewall_prefix), _v6_rules(d.names.firewall_prefix))
    host_route = next((str(r) for r in ipam.host_routes(version=6) if r.prefixlen <= 64), None)
    cases = [
        ({"Name": "v6-bad1", "IPAM": {"Config": [{"Subnet": "fd00:1:2:3::/64"}]}}, 400, "without IPv6"),
        ({"Name": "v6-bad2", "EnableIPv6": True, "IPAM": {"Config": [{"Subnet": "fd00::zz/64"}]}}, 400, "invalid"),
        ({"Name": "v6-bad3", "EnableIPv6": True, "IPAM": {"Config": [{"Subnet": "fd00:1:2:3::1/64"}]}}, 400,
         "host bits"),
        ({"Name": "v6-bad4", "EnableIPv6": True, "IPAM": {"Config": [{"Subnet": str(sub6)}]}}, 409, "overlaps"),
        ({"Name": "v6-bad5", "EnableIPv6": True, "IPAM": {"Config": [
            {"Subnet": str(ula_subnet(d.names, 4)), "Gateway": str(sub6.network_address + 1)}]}}, 400, "gateway"),
        ({"Name": "v6-bad6", "EnableIPv6": True, "IPAM": {"Config": [{"Subnet": "fe80::/64"}]}}, 400, "link-local"),
    ]
    if host_route:
        cases.append(({"Name": "v6-bad7", "EnableIPv6": True, "IPAM": {"Config": [{"Subnet": host_route}]}}, 409,
                      "host route"))
    for body, status, words in cases:
        r = d.api("POST", "/networks/create", json=body)
        assert (r.status, words in r.json()["message"]) == (status, True), (body, r.status, r.text)
    r = d.docker("network", "create", "--subnet", "fd00:1:2:3::/64", "v6-bad8")   # the CLI's way: no --ipv6
    assert r.returncode != 0 and "IPv6" in r.stderr
    after = (sorted(n["Name"] for n in d.api("GET", "/networks").json()), host_links(),
             firewall.current_rules(d.names.firewall_prefix), _v6_rules(d.names.firewall_prefix))
    assert after == before


def test_removing_the_last_ipv6_network_removes_bridge_addresses_and_chains(daemon, busybox_image) -> None:  # noqa: ANN001
    d = daemon
    sub6 = ula_subnet(d.names, 5)
    net_id = ok(d.docker("network", "create", "--ipv6", "--subnet", str(sub6), "v6-gone")).strip()
    try:
        ok(d.docker("run", "--rm", "--network", "v6-gone", busybox_image, "ip", "-6", "addr"))
        gw6 = f"{sub6.network_address + 1}/64"
        out = subprocess.run(["ip", "-6", "-o", "addr"], capture_output=True, text=True).stdout
        bridge = next(ln.split()[1] for ln in out.splitlines() if f" {gw6} " in ln)
        assert net_id.startswith(bridge.rpartition("-")[2]) and _addresses_in(sub6) == [gw6]
        assert any(f"-s {sub6} ! -o {bridge} -j MASQUERADE" in r for r in _v6_rules(d.names.firewall_prefix))
    finally:
        ok(d.docker("network", "rm", "v6-gone"))
    assert bridge not in host_links() and _addresses_in(sub6) == []
    if not any(n["EnableIPv6"] for n in d.api("GET", "/networks").json()):
        saved = subprocess.run(["ip6tables-save"], capture_output=True, text=True, check=True).stdout
        assert d.names.firewall_prefix.upper() not in saved


@pytest.mark.slow
def test_daemon_restart_keeps_ipv6(run_names: RunNames, busybox_tar: str) -> None:
    """Live restore: addresses, the published port on [::1] and over the host's IPv6
    address, names and rules survive a stop and a kill -9 of the daemon; once all is
    removed and the daemon stopped, no ip6tables chain of its prefix is left."""
    names = private_names(run_names, "r6")
    token = names.firewall_prefix   # also its bridge
    with private_daemon(names, busybox_tar) as d:
        port = free_port()
        ok(d.docker("network", "create", "--ipv6", "--subnet", str(ula_subnet(run_names, 6)), "r6-net"))
        ok(d.docker("run", "-d", "--name", "r6-web", "--network", "r6-net", "-p", f"{port}:80", "busybox",
                     "sh", "-c", HTTPD.format(text="restored6")))
        srv6 = json.loads(ok(d.docker("inspect", "r6-web")))[0]["NetworkSettings"]["Networks"]["r6-net"][
            "GlobalIPv6Address"]
        rules = sorted(_v6_rules(token))
        host6 = host_ipv6()
        for how in ("stop", "kill -9"):
            if how == "kill -9":
                d.kill9()
            else:
                d.stop(timeout=90)
            assert sorted(_v6_rules(token)) == rules, how        # the plumbing stays
            d.start()
            assert sorted(_v6_rules(token)) == rules, how        # reconciled, not doubled
            assert http_get(f"http://[::1]:{port}/") == "restored6\n", how
            if host6:
                assert http_get(f"http://[{host6}]:{port}/") == "restored6\n", how
            out = ok(d.docker("run", "--rm", "--network", "r6-net", "busybox", "sh", "-c",
                               RETRY.format(cmd="nslookup -type=AAAA r6-web 127.0.0.11")))
            assert srv6 in out, (how, out)
        ok(d.docker("rm", "-f", "r6-web"))
        ok(d.docker("network", "rm", "r6-net"))
        d.stop(timeout=90)
        saved = subprocess.run(["ip6tables-save"], capture_output=True, text=True, check=True).stdout
        assert token.upper() not in saved

