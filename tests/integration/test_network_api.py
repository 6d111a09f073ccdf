"""Networks and volumes through berthd with the real docker CLI (the `daemon` and
`busybox_image` session fixtures): published ports, outbound NAT, names on user networks,
isolation, internal networks, named volumes, and a host left clean."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from pathlib import Path

import pytest

from berth.network import firewall
from fixtures.daemon import DOCKER_CLI, shim_processes
from support import free_port, host_address, http_get, ok

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("each_docker_cli")]

HTTPD = "mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www"





def test_docker_cli_network_commands(daemon, cleanup) -> None:  # noqa: ANN001
    d = daemon
    cleanup += ["net:nt-a", "net:nt-b", "net:nt-dangling"]
    net_id = ok(d.docker("network", "create", "--driver", "bridge", "--subnet", "10.213.0.0/24",
                          "--gateway", "10.213.0.254", "--label", "team=net", "nt-a")).strip()
    assert len(net_id) == 64
    info = json.loads(ok(d.docker("network", "inspect", "nt-a")))[0]
    assert info["Id"] == net_id and info["Driver"] == "bridge" and info["Labels"] == {"team": "net"}
    assert info["IPAM"]["Config"] == [{"Subnet": "10.213.0.0/24", "Gateway": "10.213.0.254"}]
    names = ok(d.docker("network", "ls", "--format", "{{.Name}}")).split()
    assert {"bridge", "host", "none", "nt-a"} <= set(names)
    assert ok(d.docker("network", "ls", "-q", "--filter", "label=team=net")).split() == [net_id[:12]]
    r = d.docker("network", "create", "--subnet", "10.213.0.128/25", "nt-overlap")
    assert r.returncode != 0 and "overlaps" in r.stderr
    r = d.docker("network", "create", "--subnet", "10.213.0.7/99", "nt-bad")
    assert r.returncode != 0 and "invalid" in r.stderr.lower()
    r = d.docker("network", "create", "nt-a")
    assert r.returncode != 0 and "already exists" in r.stderr
    r = d.docker("network", "rm", "bridge")
    assert r.returncode != 0 and "pre-defined" in r.stderr
    ok(d.docker("network", "create", "--internal", "nt-b"))
    assert json.loads(ok(d.docker("network", "inspect", "nt-b")))[0]["Internal"] is True
    ok(d.docker("network", "create", "nt-dangling"))
    pruned = ok(d.docker("network", "prune", "-f", "--filter", "label=team=nobody"))
    assert "nt-dangling" not in pruned
    ok(d.docker("network", "rm", "nt-a", "nt-b"))
    r = d.docker("network", "inspect", "nt-a")
    # the 20.10 CLI words a 404 itself; newer ones print dockerd's message
    says = "No such network" if d.docker_cli == DOCKER_CLI else "network nt-a not found"
    assert r.returncode != 0 and says in r.stderr, r.stderr
    assert "nt-dangling" in ok(d.docker("network", "prune", "-f"))
    assert "nt-dangling" not in ok(d.docker("network", "ls"))


def test_docker_cli_volume_commands(daemon, cleanup) -> None:  # noqa: ANN001
    d = daemon
    cleanup += ["vol:nt-vol", "vol:nt-vol2"]
    assert ok(d.docker("volume", "create", "--label", "k=v", "nt-vol")).strip() == "nt-vol"
    info = json.loads(ok(d.docker("volume", "inspect", "nt-vol")))[0]
    assert info["Name"] == "nt-vol" and info["Driver"] == "local" and info["Labels"] == {"k": "v"}
    assert info["Mountpoint"] == str(d.names.data_root / "volumes" / "nt-vol" / "_data")
    assert "nt-vol" in ok(d.docker("volume", "ls", "-q")).split()
    assert ok(d.docker("volume", "ls", "-q", "--filter", "label=k=v")).split() == ["nt-vol"]
    ok(d.docker("volume", "create", "nt-vol2"))
    assert "nt-vol2" not in ok(d.docker("volume", "prune", "-f"))       # named: only with all=true
    r = d.api("POST", "/volumes/prune", params={"filters": {"all": ["true"], "label": ["k=v"]}})
    assert r.status == 200 and r.json()["VolumesDeleted"] == ["nt-vol"]
    ok(d.docker("volume", "rm", "nt-vol2"))
    r = d.docker("volume", "inspect", "nt-vol2")
    assert r.returncode != 0 and "no such volume" in r.stderr.lower()


def test_published_port_serves_httpd(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    d = daemon
    port = free_port()
    cleanup.append("nt-web")
    ok(d.docker("run", "-d", "--name", "nt-web", "-p", f"{port}:80", busybox_image, "sh", "-c",
                 HTTPD.format(text="published")))
    assert http_get(f"http://127.0.0.1:{port}/") == "published\n"
    assert http_get(f"http://{host_address()}:{port}/") == "published\n"
    assert f"0.0.0.0:{port}" in ok(d.docker("port", "nt-web", "80"))
    ports = json.loads(ok(d.docker("inspect", "nt-web")))[0]["NetworkSettings"]["Ports"]
    assert ports["80/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": str(port)}]
    # the same host port again: refused, the second container does not run, nothing leaks
    cleanup.append("nt-web2")
    rules = firewall.current_rules(d.names.firewall_prefix)
    netns = sorted(p.name for p in (d.names.exec_root / "netns").iterdir())
    r = d.docker("run", "-d", "--name", "nt-web2", "-p", f"{port}:80", busybox_image, "sleep", "60")
    assert r.returncode != 0
    assert f"Bind for 0.0.0.0:{port} failed: port is already allocated" in r.stderr
    state = json.loads(ok(d.docker("inspect", "nt-web2")))[0]["State"]
    assert not state["Running"]
    assert firewall.current_rules(d.names.firewall_prefix) == rules
    assert sorted(p.name for p in (d.names.exec_root / "netns").iterdir()) == netns


def test_default_network_reaches_debian_mirror_and_pypi(daemon, busybox_image) -> None:  # noqa: ANN001
    r = daemon.docker("run", "--rm", busybox_image, "sh", "-c",
                      "wget -q -O- http://deb.debian.org/debian/dists/bookworm/Release | head -n 5")
    assert "Origin: Debian" in r.stdout, (r.stdout, r.stderr)
    # what `pip download six` does: the simple index, then a wheel, over HTTPS, from the
    # container's network namespace (busybox's own TLS cannot talk to this host's proxy, so
    # the host's curl runs inside the container's netns; the lead's e2e runs pip itself)
    cid = ok(daemon.docker("run", "-d", busybox_image, "sleep", "60")).strip()
    try:
        netns = json.loads(ok(daemon.docker("inspect", cid)))[0]["NetworkSettings"]["SandboxKey"]
        assert netns.startswith(str(daemon.names.exec_root))

        def curl(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(["nsenter", f"--net={netns}", "curl", "-sSf", "--max-time", "30", *args],
                                  capture_output=True, text=True, timeout=40)
        index = curl("https://pypi.org/simple/six/")
        assert index.returncode == 0, index.stderr
        links = re.findall(r'href="(https://[^"#]*six-1\.16\.0-py2\.py3-none-any\.whl)', index.stdout)
        assert links, index.stdout[:500]
        wheel = subprocess.run(["nsenter", f"--net={netns}", "curl", "-sSf", "--max-time", "30", links[0]],
                               capture_output=True, timeout=40)
        assert wheel.returncode == 0 and wheel.stdout[:2] == b"PK" and len(wheel.stdout) > 10000
    finally:
        daemon.docker("rm", "-f", cid)


def test_user_network_names_and_isolation(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    d = daemon
    cleanup += ["net:nt-front", "net:nt-back", "nt-srv"]
    ok(d.docker("network", "create", "nt-front"))
    ok(d.docker("network", "create", "nt-back"))
    ok(d.docker("run", "-d", "--name", "nt-srv", "--network", "nt-front", "--network-alias", "www",
                 busybox_image, "sh", "-c", HTTPD.format(text="by-name")))
    srv_ip = json.loads(ok(d.docker("inspect", "nt-srv")))[0]["NetworkSettings"]["Networks"]["nt-front"]["IPAddress"]
    assert srv_ip
    script = "for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O- http://{host}/ && exit 0; sleep 0.3; done; exit 1"
    for host in ("nt-srv", "www"):
        r = d.docker("run", "--rm", "--network", "nt-front", busybox_image, "sh", "-c", script.format(host=host))
        assert r.stdout == "by-name\n", (host, r.stdout, r.stderr)
    # from another network: no name, no route
    # (wget is not the shell's last command: as PID 1 it would ignore timeout's SIGTERM)
    r = d.docker("run", "--rm", "--network", "nt-back", busybox_image, "sh", "-c",
                 f"nslookup nt-srv; timeout 3 wget -q -O- http://{srv_ip}/; echo wget=$?")
    assert srv_ip not in r.stdout.split("nt-srv", 1)[-1] and "by-name" not in r.stdout
    assert "wget=0" not in r.stdout and "wget=" in r.stdout, r.stdout
    # connect the running server to nt-back too: now reachable from there by name
    ok(d.docker("network", "connect", "nt-back", "nt-srv"))
    r = d.docker("run", "--rm", "--network", "nt-back", busybox_image, "sh", "-c", script.format(host="nt-srv"))
    assert r.stdout == "by-name\n", r.stderr
    # inspect shows the network connected while running, with the address it got
    nets = json.loads(ok(d.docker("inspect", "nt-srv")))[0]["NetworkSettings"]["Networks"]
    back = json.loads(ok(d.docker("network", "inspect", "nt-back")))[0]["Containers"]
    assert set(nets) == {"nt-front", "nt-back"}, nets
    assert [nets["nt-back"]["IPAddress"]] == [c["IPv4Address"].split("/")[0] for c in back.values()]
    r = d.docker("network", "rm", "nt-back")
    assert r.returncode != 0
    ok(d.docker("network", "disconnect", "nt-back", "nt-srv"))
    nets = json.loads(ok(d.docker("inspect", "nt-srv")))[0]["NetworkSettings"]["Networks"]
    assert set(nets) == {"nt-front"}, nets
    # the hosts and resolv.conf a container gets
    out = ok(d.docker("run", "--rm", "--network", "nt-front", "--hostname", "box", "--add-host", "extra:10.1.1.1",
                       busybox_image, "sh", "-c", "cat /etc/hostname /etc/hosts /etc/resolv.conf"))
    assert out.startswith("box\n") and "10.1.1.1\textra" in out and "nameserver 127.0.0.11" in out


def test_internal_network_has_no_way_out(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    d = daemon
    cleanup += ["net:nt-sealed"]
    ok(d.docker("network", "create", "--internal", "nt-sealed"))
    r = d.docker("run", "--rm", "--network", "nt-sealed", busybox_image, "sh", "-c",
                 "ip route; timeout 4 wget -q -O- http://deb.debian.org/ && echo LEAKED; "
                 f"ping -c1 -W2 {host_address()} && echo LEAKED; exit 0")
    assert r.returncode == 0, r.stderr
    assert "default" not in r.stdout and "LEAKED" not in r.stdout


def test_named_volume_data_survives_the_container(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    d = daemon
    cleanup += ["vol:nt-data"]
    ok(d.docker("run", "--rm", "-v", "nt-data:/data", busybox_image, "sh", "-c", "echo kept > /data/file"))
    assert ok(d.docker("run", "--rm", "-v", "nt-data:/data:ro", busybox_image, "cat", "/data/file")) == "kept\n"
    r = d.docker("run", "--rm", "-v", "nt-data:/data:ro", busybox_image, "sh", "-c", "echo x > /data/file")
    assert r.returncode != 0
    # in use -> 409; anonymous volumes go with rm -v
    cleanup.append("nt-holder")
    ok(d.docker("create", "--name", "nt-holder", "-v", "nt-data:/data", "-v", "/scratch", busybox_image, "true"))
    r = d.docker("volume", "rm", "nt-data")
    assert r.returncode != 0 and "in use" in r.stderr
    mounts = json.loads(ok(d.docker("inspect", "nt-holder")))[0]["Mounts"]
    anon = [m["Name"] for m in mounts if m["Destination"] == "/scratch"]
    assert len(anon) == 1 and len(anon[0]) == 64
    ok(d.docker("rm", "-v", "nt-holder"))
    assert anon[0] not in ok(d.docker("volume", "ls", "-q")).split()
    assert "nt-data" in ok(d.docker("volume", "ls", "-q")).split()


def test_publish_all_exposed_ports(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    d = daemon
    cleanup.append("nt-puball")
    ok(d.docker("run", "-d", "--name", "nt-puball", "-P", "--expose", "80", "--expose", "53/udp", busybox_image,
                 "sh", "-c", HTTPD.format(text="all-published")))
    ports = json.loads(ok(d.docker("inspect", "nt-puball")))[0]["NetworkSettings"]["Ports"]
    assert set(ports) == {"80/tcp", "53/udp"}
    host_port = int(ports["80/tcp"][0]["HostPort"])
    assert host_port > 0 and int(ports["53/udp"][0]["HostPort"]) > 0
    assert http_get(f"http://127.0.0.1:{host_port}/") == "all-published\n"


def test_connect_before_start_dns_flags_and_modes(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    d = daemon
    cleanup += ["net:nt-one", "net:nt-two", "nt-multi"]
    ok(d.docker("network", "create", "nt-one"))
    ok(d.docker("network", "create", "nt-two"))
    ok(d.docker("create", "--name", "nt-multi", "--network", "nt-one", busybox_image, "sleep", "300"))
    ok(d.docker("network", "connect", "--alias", "second", "nt-two", "nt-multi"))
    ok(d.docker("start", "nt-multi"))
    nets = json.loads(ok(d.docker("inspect", "nt-multi")))[0]["NetworkSettings"]["Networks"]
    assert set(nets) == {"nt-one", "nt-two"}
    assert nets["nt-two"]["Aliases"] == ["second"]
    two = json.loads(ok(d.docker("network", "inspect", "nt-two")))[0]["Containers"]
    assert len(two) == 1
    out = ok(d.docker("run", "--rm", "--network", "nt-two", busybox_image, "nslookup", "second"))
    assert list(two.values())[0]["IPv4Address"].split("/")[0] in out
    # --dns / --dns-search / --dns-option on the default bridge
    out = ok(d.docker("run", "--rm", "--dns", "192.0.2.53", "--dns-search", "corp.example",
                       "--dns-option", "ndots:3", busybox_image, "cat", "/etc/resolv.conf"))
    assert out.splitlines()[0] == "nameserver 192.0.2.53"
    assert "search corp.example" in out and "options ndots:3" in out
    # --network none: loopback only; --network host: the host's interfaces
    out = ok(d.docker("run", "--rm", "--network", "none", busybox_image, "ip", "-o", "link"))
    assert [ln.split(":")[1].strip() for ln in out.splitlines()] == ["lo"]
    out = ok(d.docker("run", "--rm", "--network", "host", busybox_image, "ip", "-o", "link"))
    assert d.names.bridge in out
    # container:<name> shares the other's network namespace
    ip = nets["nt-one"]["IPAddress"]
    out = ok(d.docker("run", "--rm", "--network", "container:nt-multi", busybox_image, "ip", "-o", "-4", "addr"))
    assert ip in out


def test_fixed_address_on_a_user_subnet(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    d = daemon
    cleanup += ["net:nt-fixed", "nt-fixed1"]
    ok(d.docker("network", "create", "--subnet", "10.214.7.0/24", "nt-fixed"))
    ok(d.docker("run", "-d", "--name", "nt-fixed1", "--network", "nt-fixed", "--ip", "10.214.7.77", busybox_image,
                 "sleep", "60"))
    nets = json.loads(ok(d.docker("inspect", "nt-fixed1")))[0]["NetworkSettings"]["Networks"]
    assert nets["nt-fixed"]["IPAddress"] == "10.214.7.77"
    r = d.docker("run", "--rm", "--network", "nt-fixed", "--ip", "10.214.7.77", busybox_image, "true")
    assert r.returncode != 0 and "in use" in r.stderr


def test_net_sysctls_may_name_the_containers_interface(daemon, busybox_image) -> None:  # noqa: ANN001
    """The runtime applies sysctls while it creates the container: with a `net.*` one,
    eth0 exists by then (the interfaces are made before the create, not beside it)."""
    r = daemon.docker("run", "--rm", "--sysctl", "net.ipv4.conf.eth0.rp_filter=2", busybox_image,
                      "cat", "/proc/sys/net/ipv4/conf/eth0/rp_filter")
    assert ok(r) == "2\n"


def _run_links(d) -> list[str]:  # noqa: ANN001
    """Names of the host's links that belong to this run (veths and bridges carry its stem)."""
    stem = d.names.firewall_prefix.lower()[:8]
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return sorted(name for ln in out.splitlines() if stem in (name := ln.split(":")[1].strip().split("@")[0]))


def test_failed_plumbing_fails_the_start_and_leaves_nothing(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    """The veths are made while the shim creates the container: when they cannot be (the
    network's bridge was deleted behind berth's back), start fails with the reason and the
    created container, its shim, netns, veths, ports and rules are all gone."""
    d = daemon
    cleanup += ["nt-unplumbed", "net:nt-nobridge"]
    ok(d.docker("network", "create", "nt-nobridge"))
    gateway = json.loads(ok(d.docker("network", "inspect", "nt-nobridge")))[0]["IPAM"]["Config"][0]["Gateway"]
    addrs = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout.splitlines()
    bridge = next(ln.split()[1] for ln in addrs if f" {gateway}/" in ln)
    subprocess.run(["ip", "link", "del", bridge], check=True)
    netns_dir = d.names.exec_root / "netns"
    netns = sorted(p.name for p in netns_dir.iterdir())
    rules = firewall.current_rules(d.names.firewall_prefix)
    links = _run_links(d)
    port = free_port()
    r = d.docker("run", "-d", "--name", "nt-unplumbed", "--network", "nt-nobridge", "-p", f"{port}:80",
                 busybox_image, "sleep", "60")
    assert r.returncode != 0 and f"bridge {bridge} does not exist" in r.stderr, r.stderr
    cid = ok(d.docker("inspect", "-f", "{{.Id}}", "nt-unplumbed")).strip()
    assert ok(d.docker("inspect", "-f", "{{.State.Running}}", "nt-unplumbed")).strip() == "false"
    assert cid not in shim_processes(d.names).values()
    assert sorted(p.name for p in netns_dir.iterdir()) == netns
    assert firewall.current_rules(d.names.firewall_prefix) == rules
    assert _run_links(d) == links
    with socket.socket() as s:   # the host port was given back
        s.bind(("0.0.0.0", port))


def test_nothing_of_ours_left_after_removal(daemon, busybox_image) -> None:  # noqa: ANN001
    """After the containers and networks of this module are gone, the host holds only the
    default bridge and its base rules: no veth, no netns mount, no DNAT, no user bridge."""
    d = daemon
    ok(d.docker("network", "create", "nt-last"))
    port = free_port()
    ok(d.docker("run", "-d", "--name", "nt-last", "--network", "nt-last", "-p", f"{port}:80", busybox_image,
                 "sleep", "300"))
    ok(d.docker("rm", "-f", "nt-last"))
    ok(d.docker("network", "rm", "nt-last"))
    mine = [c for c in ok(d.docker("ps", "-aq", "--filter", "name=nt-")).split() if c]
    assert mine == []
    netns_dir = d.names.exec_root / "netns"
    left_ns = [p.name for p in netns_dir.iterdir()] if netns_dir.exists() else []
    running = set(ok(d.docker("ps", "-q", "--no-trunc")).split())
    assert [n for n in left_ns if n not in running] == []
    assert [ln for ln in Path("/proc/mounts").read_text().splitlines()
            if str(netns_dir) in ln and not any(c in ln for c in running)] == []
    rules = firewall.current_rules(d.names.firewall_prefix)
    assert not any("DNAT --to-destination" in r for r in rules), rules
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.splitlines()
    stem = d.names.firewall_prefix.lower()[:8]
    assert [ln for ln in links if f"{stem}-" in ln] == []
    if not running:
        assert [ln for ln in links if f"master {d.names.bridge}" in ln] == []


def test_ipv4_cannot_be_disabled_without_ipv6(daemon) -> None:  # noqa: ANN001
    """EnableIPv4: false (docker 28's --ipv4=false) without IPv6: refused, no network made
    (IPv6-only networks: test_network_ipv6only.py)."""
    d = daemon
    before = ok(d.docker("network", "ls", "-q"))
    r = d.api("POST", "/networks/create", json={"Name": "nt-nov4", "EnableIPv4": False})
    assert r.status == 400 and "IPv4 or IPv6 must be enabled" in r.json()["message"], (r.status, r.json())
    assert ok(d.docker("network", "ls", "-q")) == before
