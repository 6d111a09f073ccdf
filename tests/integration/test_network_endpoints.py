"""Per-endpoint settings through berthd (the `daemon` fixture) with the real docker CLIs:
--mac-address (Config.MacAddress from the 20.10 CLI, EndpointsConfig[..].MacAddress from
CLI 28, keyed `default` without --network), --ip/--ip6 refused where dockerd refuses them,
--link-local-ip on the interface, and the same on a live `network connect`. A refused
create leaves no container.

The 20.10 CLI sends no EndpointsConfig at all without --network (its --ip and
--link-local-ip are then dropped by the client), so the `default` key is exercised with
CLI 28 when installed and always through the API."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable

import pytest

from support import container_names, ok, venv_exe

pytestmark = [pytest.mark.root]

DOCKER28 = "/usr/local/bin/docker"   # API >= 1.44: MAC in EndpointsConfig (fixture's is 20.10)
MAC = "02:42:ac:11:00:99"





def _clients(daemon) -> list[Callable[..., subprocess.CompletedProcess]]:  # noqa: ANN001
    """The fixture's docker CLI (20.10) and, when installed, docker 28."""
    out = [daemon.docker]
    if os.path.exists(DOCKER28):
        out.append(lambda *a: subprocess.run([DOCKER28, *a], capture_output=True, text=True, env=daemon.env,
                                             timeout=120))
    return out


def _create(daemon, name: str, key: str, settings: dict, image: str) -> tuple[int, str]:  # noqa: ANN001
    """POST /containers/create with one EndpointsConfig entry: (status, message)."""
    r = daemon.api("POST", f"/containers/create?name={name}", json={
        "Image": image, "Cmd": ["true"], "NetworkingConfig": {"EndpointsConfig": {key: settings}}})
    return r.status, r.json().get("message", "")



def test_mac_address_on_the_default_bridge_and_a_user_network(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    d = daemon
    cleanup += ["net:ep-mac", "ep-mac-a", "ep-mac-b"]
    ok(d.docker("network", "create", "ep-mac"))
    for n, docker in enumerate(_clients(d)):
        mac = f"02:42:ac:11:00:{0x90 + n:02x}"
        assert ok(docker("run", "--rm", "--mac-address", mac, busybox_image,
                          "cat", "/sys/class/net/eth0/address")).strip() == mac, docker
        assert ok(docker("run", "--rm", "--network", "ep-mac", "--mac-address", mac.upper(), busybox_image,
                          "cat", "/sys/class/net/eth0/address")).strip() == mac, docker
    ok(d.docker("run", "-d", "--name", "ep-mac-a", "--mac-address", MAC, busybox_image, "sleep", "300"))
    info = json.loads(ok(d.docker("inspect", "ep-mac-a")))[0]
    ns = info["NetworkSettings"]
    assert ns["Networks"]["bridge"]["MacAddress"] == ns["MacAddress"] == info["Config"]["MacAddress"] == MAC
    assert list(ns["Networks"]) == ["bridge"]   # the `default` key reached the default bridge
    # the same MAC again, on a user network: dockerd takes it (it checks no uniqueness)
    ok(d.docker("run", "-d", "--name", "ep-mac-b", "--network", "ep-mac", "--mac-address", MAC, busybox_image,
                 "sleep", "300"))
    info = json.loads(ok(d.docker("inspect", "ep-mac-b")))[0]
    assert info["NetworkSettings"]["Networks"]["ep-mac"]["MacAddress"] == info["Config"]["MacAddress"] == MAC
    assert info["NetworkSettings"]["MacAddress"] == ""   # legacy field: the default bridge only


def test_malformed_mac_or_link_local_refused_leaving_nothing(daemon, busybox_image) -> None:  # noqa: ANN001
    d = daemon
    before = container_names(d)
    # the docker CLI checks a MAC itself; the API (and berth's CLI) reach the daemon
    assert _create(d, "ep-badmac", "default", {"MacAddress": "zz:42:ac:11:00:99"}, busybox_image) == \
        (400, "invalid config for network bridge: invalid MAC address zz:42:ac:11:00:99")   # re-keyed, as dockerd 25+
    r = d.cli("run", "--rm", "--name", "ep-badmac", "--mac-address", "02:42:ac:11:00", busybox_image, "true")
    assert r.returncode != 0 and "invalid MAC address 02:42:ac:11:00" in r.stderr
    assert _create(d, "ep-badll", "default", {"IPAMConfig": {"LinkLocalIPs": ["bogus"]}}, busybox_image) == \
        (400, "invalid config for network bridge: invalid endpoint settings:\ninvalid link-local IP address: bogus")
    for docker in _clients(d):
        r = docker("run", "--rm", "--name", "ep-badll", "--network", "bridge", "--link-local-ip", "10.9.9.9",
                   busybox_image, "true")
        assert r.returncode != 0 and "invalid link local IP address: 10.9.9.9" in r.stderr
    r = d.docker("run", "--rm", "--name", "ep-badmode", "--network", "none", "--mac-address", MAC, busybox_image,
                 "true")
    assert r.returncode != 0 and "conflicting options: mac-address and the network mode" in r.stderr
    assert container_names(d) == before


def test_fixed_addresses_only_on_user_subnets(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    d = daemon
    cleanup += ["net:ep-auto"]
    ok(d.docker("network", "create", "ep-auto"))
    gateway = json.loads(ok(d.docker("network", "inspect", "ep-auto")))[0]["IPAM"]["Config"][0]["Gateway"]
    before = container_names(d)
    for key in ("default", "bridge"):
        assert _create(d, "ep-fixed", key, {"IPAMConfig": {"IPv4Address": "172.17.0.50"}}, busybox_image) == \
            (400, "invalid config for network bridge: invalid endpoint settings:\n"   # `default` is re-keyed
                  "user specified IP address is supported on user defined networks only")
    for n, docker in enumerate(_clients(d)):
        nets = [["--network", "bridge"]] + ([[]] if n else [])   # the 20.10 CLI (first): see above
        for net in nets:
            r = docker("run", "--rm", "--name", "ep-fixed", *net, "--ip", "172.17.0.50", busybox_image, "true")
            key = "bridge"   # given, or the 20.10 CLI's `default` entry re-keyed (dockerd 25+)
            assert r.returncode != 0, r.stdout
            assert (f"invalid config for network {key}: invalid endpoint settings:\n"
                    "user specified IP address is supported on user defined networks only") in r.stderr
            r = docker("run", "--rm", "--name", "ep-fixed", *net, "--ip6", "fd00::50", busybox_image, "true")
            assert r.returncode != 0 and "supported on user defined networks only" in r.stderr
        r = docker("run", "--rm", "--name", "ep-fixed", "--network", "ep-auto", "--ip",
                   gateway.rpartition(".")[0] + ".50", busybox_image, "true")
        assert r.returncode != 0 and ("invalid config for network ep-auto: invalid endpoint settings:\nuser "
                                      "specified IP address is supported only when connecting to networks with "
                                      "user configured subnets") in r.stderr
    assert container_names(d) == before


def test_link_local_addresses_on_the_interface(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    d = daemon
    cleanup += ["net:ep-ll", "ep-ll"]
    ok(d.docker("network", "create", "ep-ll"))
    for docker in _clients(d):
        out = ok(docker("run", "--rm", "--network", "bridge", "--link-local-ip", "169.254.7.7", busybox_image,
                         "ip", "-4", "-o", "addr", "show", "eth0"))
        assert "inet 169.254.7.7/16" in out
    ok(d.docker("run", "-d", "--name", "ep-ll", "--network", "ep-ll", "--link-local-ip", "169.254.8.8",
                 busybox_image, "sleep", "300"))
    assert "inet 169.254.8.8/16" in ok(d.docker("exec", "ep-ll", "ip", "-4", "-o", "addr", "show", "eth0"))
    net = json.loads(ok(d.docker("inspect", "ep-ll")))[0]["NetworkSettings"]["Networks"]["ep-ll"]
    assert net["IPAMConfig"] == {"LinkLocalIPs": ["169.254.8.8"]}


def test_live_connect_with_mac_and_link_local(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    d = daemon
    cleanup += ["net:ep-live", "net:ep-live-auto", "ep-live"]
    ok(d.docker("network", "create", "--subnet", "10.217.3.0/24", "ep-live"))
    ok(d.docker("network", "create", "ep-live-auto"))
    ok(d.docker("run", "-d", "--name", "ep-live", busybox_image, "sleep", "300"))
    cid = ok(d.docker("inspect", "-f", "{{.Id}}", "ep-live")).strip()
    # dockerd's refusals on connect: a fixed address on the default bridge or an automatic subnet
    r = d.docker("network", "connect", "--ip", "172.17.0.9", "bridge", "ep-live")
    assert r.returncode != 0 and "user specified IP address is supported on user defined networks only" in r.stderr
    r = d.docker("network", "connect", "--ip", "10.217.3.9", "ep-live-auto", "ep-live")
    assert r.returncode != 0 and "supported only when connecting to networks with user configured subnets" in r.stderr
    r = d.api("POST", "/networks/ep-live/connect", json={"Container": cid, "EndpointConfig": {"MacAddress": "x"}})
    assert r.status == 400 and r.json()["message"] == "invalid MAC address x"
    # the docker CLI has no connect --mac-address: the API carries it
    r = d.api("POST", "/networks/ep-live/connect", json={"Container": cid, "EndpointConfig": {
        "MacAddress": MAC, "Aliases": ["live"],
        "IPAMConfig": {"IPv4Address": "10.217.3.9", "LinkLocalIPs": ["169.254.9.9"]}}})
    assert r.status == 200, r.text
    out = ok(d.docker("exec", "ep-live", "sh", "-c", "cat /sys/class/net/eth1/address; ip -4 -o addr show eth1"))
    assert out.startswith(MAC + "\n") and "inet 10.217.3.9/24" in out and "inet 169.254.9.9/16" in out
    nets = json.loads(ok(d.docker("inspect", "ep-live")))[0]["NetworkSettings"]["Networks"]
    assert nets["ep-live"]["MacAddress"] == MAC
    assert nets["ep-live"]["IPAMConfig"] == {"IPv4Address": "10.217.3.9", "LinkLocalIPs": ["169.254.9.9"]}
    assert set(nets) == {"bridge", "ep-live"}
    ok(d.docker("network", "disconnect", "ep-live", "ep-live"))


def test_create_on_several_networks_joins_them_all_at_start(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    """API 1.44's several EndpointsConfig entries at create (docker 28's `--network a
    --network b`): the container starts on every one, with the settings given for each."""
    d = daemon
    cleanup += ["net:ep-one", "net:ep-two", "ep-multi", "ep-multi28"]
    ok(d.docker("network", "create", "--subnet", "10.231.1.0/24", "ep-one"))
    ok(d.docker("network", "create", "--subnet", "10.231.2.0/24", "ep-two"))
    r = d.api("POST", "/containers/create?name=ep-multi", json={
        "Image": busybox_image, "Cmd": ["sleep", "300"], "HostConfig": {"NetworkMode": "ep-one"},
        "NetworkingConfig": {"EndpointsConfig": {
            "ep-one": {}, "ep-two": {"Aliases": ["second"], "IPAMConfig": {"IPv4Address": "10.231.2.50"}}}}})
    assert r.status == 201, r.json()
    ok(d.docker("start", "ep-multi"))
    addrs = ok(d.docker("exec", "ep-multi", "ip", "-o", "-4", "addr"))
    assert "10.231.1." in addrs and "10.231.2.50/24" in addrs, addrs
    nets = json.loads(ok(d.docker("inspect", "ep-multi")))[0]["NetworkSettings"]["Networks"]
    assert set(nets) == {"ep-one", "ep-two"} and nets["ep-two"]["IPAddress"] == "10.231.2.50"
    out = ok(d.docker("run", "--rm", "--network", "ep-two", busybox_image, "nslookup", "second"))
    assert "10.231.2.50" in out
    # the berth CLI, as docker 28's: repeated --network, the advanced form for the second
    cleanup.append("ep-multi-cli")
    r = subprocess.run([venv_exe("berth"), "run", "-d", "--name", "ep-multi-cli", "--network", "ep-one",
                        "--network", "name=ep-two,alias=third,ip=10.231.2.60", busybox_image, "sleep", "300"],
                       capture_output=True, text=True, env=d.env, timeout=120)
    assert r.returncode == 0, r.stderr
    nets = json.loads(ok(d.docker("inspect", "ep-multi-cli")))[0]["NetworkSettings"]["Networks"]
    assert set(nets) == {"ep-one", "ep-two"} and nets["ep-two"]["IPAddress"] == "10.231.2.60", nets
    assert "third" in nets["ep-two"]["Aliases"]
    if os.path.exists(DOCKER28):
        r = subprocess.run([DOCKER28, "run", "-d", "--name", "ep-multi28", "--network", "ep-one",
                            "--network", "ep-two", busybox_image, "sleep", "300"],
                           capture_output=True, text=True, env=d.env, timeout=120)
        assert r.returncode == 0, r.stderr
        nets = json.loads(ok(d.docker("inspect", "ep-multi28")))[0]["NetworkSettings"]["Networks"]
        assert set(nets) == {"ep-one", "ep-two"}, nets


def test_create_on_several_networks_refused_leaves_nothing(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    d = daemon
    cleanup += ["net:ep-three", "ep-bad"]
    ok(d.docker("network", "create", "ep-three"))
    before = container_names(d)
    for mode, other, status in (("ep-three", "ep-nowhere", 404), ("host", "ep-three", 400),
                                ("none", "ep-three", 400)):
        r = d.api("POST", "/containers/create?name=ep-bad", json={
            "Image": busybox_image, "Cmd": ["true"], "HostConfig": {"NetworkMode": mode},
            "NetworkingConfig": {"EndpointsConfig": {mode: {}, other: {}}}})
        assert r.status == status, (mode, other, r.status, r.json())
        assert container_names(d) == before
    # nothing recorded for a container that does not exist: the network can go
    ok(d.docker("network", "rm", "ep-three"))
    cleanup.remove("net:ep-three")
