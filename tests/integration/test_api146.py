"""The API 1.46 items through berthd (the `daemon` fixture), as dockerd 27 has them:

- per-endpoint sysctls (`DriverOpts["com.docker.network.endpoint.sysctls"]`, IFNAME standing
  for the interface) set on that endpoint's interface, at every start, checked at create;
- `--sysctl net.X.Y.eth0.Z` moved onto the network mode's endpoint with a warning, at every
  API version (dockerd 27 migrates them; 28 refuses them from API 1.48, which berth does not
  serve); another ethN refused;
- `HostConfig.Mounts[].TmpfsOptions.Options` (exec / noexec only);
- NetworkMode "" / "default" recorded as "bridge" (dockerd 25+, ungated; 20.10 kept "default").

Each test removes what it made (the `cleanup` fixture)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator

import pytest
from test_network_service import Env, network_service

from berth.errors import InvalidParameter
from support import RunNames, container_names, ok

pytestmark = [pytest.mark.root]

DOCKER28 = "/usr/local/bin/docker"
SYSCTLS = "com.docker.network.endpoint.sysctls"
MARTIANS = "/proc/sys/net/ipv4/conf/{}/log_martians"


def _create(daemon, name: str, image: str, cmd: list[str], version: str = "", host_config: dict | None = None,  # noqa: ANN001
            endpoints: dict | None = None) -> tuple[int, dict]:
    """POST /containers/create: (status, answer)."""
    body: dict = {"Image": image, "Cmd": cmd}
    if host_config is not None:
        body["HostConfig"] = host_config
    if endpoints is not None:
        body["NetworkingConfig"] = {"EndpointsConfig": endpoints}
    r = daemon.api("POST", f"{version}/containers/create?name={name}", json=body)
    return r.status, r.json()


def _run(daemon, name: str, image: str, cmd: list[str], **kw) -> tuple[dict, str]:  # noqa: ANN001
    """Create (API), start and wait for a container: (create answer, its output)."""
    status, answer = _create(daemon, name, image, cmd, **kw)
    assert status == 201, answer
    ok(daemon.docker("start", name))
    ok(daemon.docker("wait", name))
    return answer, ok(daemon.docker("logs", name))


def _inspect(daemon, name: str) -> dict:  # noqa: ANN001
    return json.loads(ok(daemon.docker("inspect", name)))[0]



def test_endpoint_sysctls_on_each_interface(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    d = daemon
    cleanup += ["net:a146-one", "net:a146-two", "a146-eps"]
    ok(d.docker("network", "create", "a146-one"))
    ok(d.docker("network", "create", "a146-two"))
    # IFNAME or the docker CLI's lower-cased ifname; the second network's only on eth1
    script = "; ".join(f"cat {MARTIANS.format(i)} /proc/sys/net/ipv4/conf/{i}/arp_notify" for i in ("eth0", "eth1"))
    eps = {"a146-one": {"DriverOpts": {SYSCTLS: "net.ipv4.conf.IFNAME.log_martians=1,net.ipv4.conf.ifname.arp_notify=1"}},
           "a146-two": {"DriverOpts": {SYSCTLS: "net.ipv4.conf.IFNAME.arp_notify=1"}}}
    _, out = _run(d, "a146-eps", busybox_image, ["sh", "-c", script], host_config={"NetworkMode": "a146-one"},
                  endpoints=eps)
    assert out.split() == ["1", "1", "0", "1"]
    nets = _inspect(d, "a146-eps")["NetworkSettings"]["Networks"]
    assert {n: nets[n]["DriverOpts"] for n in nets} == {n: eps[n]["DriverOpts"] for n in eps}
    # set again at every start (the interfaces are new)
    ok(d.docker("start", "a146-eps"))
    ok(d.docker("wait", "a146-eps"))
    assert ok(d.docker("logs", "a146-eps")).split() == ["1", "1", "0", "1"] * 2


@pytest.mark.skipif(not os.path.exists(DOCKER28), reason="docker 28's --network driver-opt")
def test_endpoint_sysctls_from_docker28(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    d = daemon
    cleanup += ["net:a146-cli"]
    ok(d.docker("network", "create", "a146-cli"))
    for net in ("a146-cli", "bridge"):
        out = ok(subprocess.run([DOCKER28, "run", "--rm", "--network",
                                 f"name={net},driver-opt={SYSCTLS}=net.ipv4.conf.IFNAME.log_martians=1",
                                 busybox_image, "cat", MARTIANS.format("eth0")],
                                capture_output=True, text=True, env=d.env, timeout=120))
        assert out.strip() == "1", net


def test_network_connect_driver_opt_reaches_the_interface(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    """`docker network connect --driver-opt` (the connect route's EndpointConfig.DriverOpts)
    sets the endpoint sysctls on the new interface of a running container."""
    d = daemon
    cleanup += ["net:a146-conn", "a146-connected"]
    ok(d.docker("network", "create", "a146-conn"))
    ok(d.docker("run", "-d", "--name", "a146-connected", busybox_image, "sleep", "300"))
    ok(d.docker("network", "connect", "--driver-opt", f"{SYSCTLS}=net.ipv4.conf.IFNAME.log_martians=1",
                "a146-conn", "a146-connected"))
    assert ok(d.docker("exec", "a146-connected", "cat", MARTIANS.format("eth1"))).strip() == "1"
    assert ok(d.docker("exec", "a146-connected", "cat", MARTIANS.format("eth0"))).strip() == "0"
    eps = _inspect(d, "a146-connected")["NetworkSettings"]["Networks"]
    assert eps["a146-conn"]["DriverOpts"] == {SYSCTLS: "net.ipv4.conf.IFNAME.log_martians=1"}


def test_endpoint_sysctls_refused_at_create_or_failing_the_start(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    d = daemon
    cleanup += ["net:a146-bad", "a146-nosuch"]
    ok(d.docker("network", "create", "a146-bad"))
    before = container_names(d)
    status, answer = _create(d, "a146-refused", busybox_image, ["true"], host_config={"NetworkMode": "a146-bad"},
                             endpoints={"a146-bad": {"DriverOpts": {SYSCTLS: "net.ipv4.conf.eth0.log_martians=1,"
                                                                              "kernel.x.y.IFNAME.z=1"}}})
    word = "; represent 'net.X.Y.ethN.Z=V' as 'net.X.Y.IFNAME.Z=V', 'X' must be 'ipv4', 'ipv6' or 'mpls'"
    assert (status, answer["message"]) == (400, (
        "invalid config for network a146-bad: invalid endpoint settings:\n"
        f"* unrecognised network interface sysctl 'net.ipv4.conf.eth0.log_martians=1'{word}\n"
        f"* unrecognised network interface sysctl 'kernel.x.y.IFNAME.z=1'{word}"))
    assert container_names(d) == before
    # well formed, but no such sysctl: the start fails as dockerd's, leaving no interface
    status, answer = _create(d, "a146-nosuch", busybox_image, ["true"], host_config={"NetworkMode": "a146-bad"},
                             endpoints={"a146-bad": {"DriverOpts": {SYSCTLS: "net.ipv4.conf.IFNAME.nosuch=1"}}})
    assert status == 201, answer
    r = d.api("POST", "/containers/a146-nosuch/start")
    assert r.status == 500
    assert r.json()["message"].endswith("to sandbox: /proc/sys/net/ipv4/conf/eth0/nosuch is not a sysctl file")
    assert _inspect(d, "a146-nosuch")["State"]["Status"] == "created"
    veth = r.json()["message"].split()[3]
    assert not os.path.exists(f"/sys/class/net/{veth}")


@pytest.mark.parametrize("version", ["/v1.41", "/v1.47"])
def test_interface_sysctls_migrate_to_the_endpoint(daemon, busybox_image, cleanup, version: str) -> None:  # noqa: ANN001
    d = daemon
    name = f"a146-mig{version[-2:]}"
    cleanup += ["net:a146-mig", name]
    ok(d.docker("network", "create", "a146-mig"))
    sysctls = {"net.ipv4.conf.eth0.log_martians": "1", "net.ipv4.conf.all.arp_notify": "1"}
    eps = {"a146-mig": {"DriverOpts": {SYSCTLS: "net.ipv4.conf.IFNAME.arp_notify=1"}}}
    answer, out = _run(d, name, busybox_image, ["cat", MARTIANS.format("eth0"), "/proc/sys/net/ipv4/conf/all/arp_notify"],
                       version=version, host_config={"NetworkMode": "a146-mig", "Sysctls": sysctls}, endpoints=eps)
    assert out.split() == ["1", "1"]
    assert answer["Warnings"] == [f'Migrated sysctl "net.ipv4.conf.eth0.log_martians" to DriverOpts{{"{SYSCTLS}":'
                                  '"net.ipv4.conf.IFNAME.log_martians=1"}.']
    info = _inspect(d, name)
    assert info["HostConfig"]["Sysctls"] == {"net.ipv4.conf.all.arp_notify": "1"}
    assert info["NetworkSettings"]["Networks"]["a146-mig"]["DriverOpts"] == {
        SYSCTLS: "net.ipv4.conf.IFNAME.log_martians=1,net.ipv4.conf.IFNAME.arp_notify=1"}


def _clients(daemon) -> list[Callable[..., subprocess.CompletedProcess]]:  # noqa: ANN001
    """The fixture's docker CLI (20.10, API 1.41) and, when installed, docker 28 (1.47)."""
    out = [daemon.docker]
    if os.path.exists(DOCKER28):
        out.append(lambda *a: subprocess.run([DOCKER28, *a], capture_output=True, text=True, env=daemon.env,
                                             timeout=120))
    return out


def test_interface_sysctls_from_both_clis(daemon, busybox_image) -> None:  # noqa: ANN001
    for docker in _clients(daemon):
        r = docker("run", "--rm", "--sysctl", "net.ipv4.conf.eth0.log_martians=1", busybox_image,
                   "cat", MARTIANS.format("eth0"))
        assert r.returncode == 0 and r.stdout.strip() == "1", r.stderr
        assert 'WARNING: Migrated sysctl "net.ipv4.conf.eth0.log_martians"' in r.stderr
        before = container_names(daemon)
        r = docker("run", "--rm", "--sysctl", "net.ipv4.conf.eth1.log_martians=1", busybox_image, "true")
        assert r.returncode != 0
        assert ("unable to determine network endpoint for sysctl net.ipv4.conf.eth1.log_martians, use driver "
                f"option '{SYSCTLS}' to set per-interface sysctls") in r.stderr
        assert container_names(daemon) == before


def test_migration_needs_the_mode_endpoint(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    d = daemon
    cleanup += ["net:a146-key"]
    ok(d.docker("network", "create", "a146-key"))
    net_id = json.loads(ok(d.docker("network", "inspect", "a146-key")))[0]["Id"]
    before = container_names(d)
    # keyed by the network's id while NetworkMode names it: ambiguous from API 1.44
    status, answer = _create(d, "a146-key", busybox_image, ["true"],
                             host_config={"NetworkMode": "a146-key",
                                          "Sysctls": {"net.ipv4.conf.eth0.log_martians": "1"}},
                             endpoints={net_id[:12]: {}})
    assert (status, answer["message"]) == (400, (
        "unable to find a network for sysctl net.ipv4.conf.eth0.log_martians: HostConfig.NetworkMode must match "
        "the identity of a network in NetworkSettings.Networks"))
    assert container_names(d) == before


def test_host_mode_keeps_its_sysctls(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    d = daemon
    cleanup += ["a146-host"]
    status, answer = _create(d, "a146-host", busybox_image, ["true"],
                             host_config={"NetworkMode": "host", "Sysctls": {"net.ipv4.conf.eth0.log_martians": "1"}})
    assert status == 201 and answer["Warnings"] == []
    info = _inspect(d, "a146-host")
    assert info["HostConfig"]["Sysctls"] == {"net.ipv4.conf.eth0.log_martians": "1"}



@pytest.fixture
def netsvc(run_names: RunNames) -> Iterator[Env]:
    """A NetworkService of the test's own (test_network_service's), to drive `connect` with
    DriverOpts directly (the API route's test is test_network_connect_driver_opt_...)."""
    with network_service(run_names) as e:
        yield e


def test_live_connect_with_driver_opts(netsvc: Env) -> None:
    env = netsvc
    cid = "a1" + os.urandom(31).hex()
    env.run(env.svc.create("a146-live"))
    sb = env.run(env.svc.setup_container(cid, "bridge", "live", "", [], {}, [], [], [], name="/live",
                                         exposed_ports={}))
    with pytest.raises(InvalidParameter, match="^invalid endpoint settings:\nunrecognised network interface "
                                               "sysctl 'net.ipv4.conf.eth1.log_martians=1'"):
        env.run(env.svc.connect("a146-live", cid, name="live",
                                driver_opts={SYSCTLS: "net.ipv4.conf.eth1.log_martians=1"}))
    opts = {SYSCTLS: "net.ipv4.conf.IFNAME.log_martians=1"}
    env.run(env.svc.connect("a146-live", cid, name="live", driver_opts=opts))
    r = env.sh(sb.netns, f"cat {MARTIANS.format('eth0')} {MARTIANS.format('eth1')}")
    assert r.stdout.split() == ["0", "1"], r.stderr
    nets = env.svc.settings(cid)["Networks"]
    assert (nets["bridge"]["DriverOpts"], nets["a146-live"]["DriverOpts"]) == (None, opts)
    # kept for the next start
    env.run(env.svc.teardown_container(cid))
    sb = env.run(env.svc.setup_container(cid, "bridge", "live", "", [], {}, [], [], [], name="/live",
                                         exposed_ports={}))
    assert env.sh(sb.netns, f"cat {MARTIANS.format('eth1')}").stdout.strip() == "1"
    env.run(env.svc.forget_container(cid))


def _tmpfs(options: list, target: str = "/scratch") -> dict:
    return {"Mounts": [{"Type": "tmpfs", "Target": target, "TmpfsOptions": {"Options": options}}]}


@pytest.mark.parametrize("version", ["/v1.41", "/v1.47"])   # dockerd 27 takes them at every version
def test_tmpfs_mount_options(daemon, busybox_image, cleanup, version: str) -> None:  # noqa: ANN001
    d = daemon
    script = ("grep ' /scratch ' /proc/mounts; printf '#!/bin/sh\\necho ran\\n' > /scratch/x; chmod +x /scratch/x; "
              "/scratch/x || echo refused")
    for opt, noexec, result in (("exec", False, "ran"), ("noexec", True, "refused")):
        name = f"a146-tmpfs-{opt}{version[-2:]}"
        cleanup.append(name)
        _, out = _run(d, name, busybox_image, ["sh", "-c", script], version=version, host_config=_tmpfs([[opt]]))
        mount_line, last = out.splitlines()[0], out.splitlines()[-1]
        assert ("noexec" in mount_line.split()[3].split(",")) == noexec, mount_line
        assert last == result
        assert _inspect(d, name)["HostConfig"]["Mounts"][0]["TmpfsOptions"] == {"Options": [[opt]]}


def test_tmpfs_mount_options_refused(daemon, busybox_image) -> None:  # noqa: ANN001
    d = daemon
    before = container_names(d)
    for options, why in (([["uid", "0"]], "invalid option: uid"), ([[]], "invalid option array length"),
                         ([["exec", "1", "2"]], "invalid option array length")):
        status, answer = _create(d, "a146-tmpfs-bad", busybox_image, ["true"], host_config=_tmpfs(options))
        assert (status, answer["message"]) == (400, f'invalid mount config for type "tmpfs": {why}')
    assert container_names(d) == before


@pytest.mark.parametrize("version", ["/v1.41", "/v1.47"])
def test_default_network_mode_recorded_as_bridge(daemon, busybox_image, cleanup, version: str) -> None:  # noqa: ANN001
    d = daemon
    for n, hc in enumerate((None, {}, {"NetworkMode": ""}, {"NetworkMode": "default"})):
        name = f"a146-mode{n}{version[-2:]}"
        cleanup.append(name)
        status, answer = _create(d, name, busybox_image, ["true"], version=version, host_config=hc)
        assert status == 201, answer
        assert _inspect(d, name)["HostConfig"]["NetworkMode"] == "bridge"
    ps = d.api("GET", f"{version}/containers/json", params={"all": True, "filters": {"name": ["a146-mode"]}}).json()
    assert {c["HostConfig"]["NetworkMode"] for c in ps} == {"bridge"}
    # the docker CLI's `default` entry is the bridge's endpoint: migrated sysctls go there too
    name = f"a146-modeep{version[-2:]}"
    cleanup.append(name)
    # (before 1.44 dockerd ignores an endpoint's MAC address: another setting there)
    settings = {"MacAddress": "02:42:ac:11:00:97"} if version == "/v1.47" else {"DriverOpts": {"org.example": "1"}}
    _, out = _run(d, name, busybox_image, ["cat", "/sys/class/net/eth0/address", MARTIANS.format("eth0")],
                  version=version, host_config={"Sysctls": {"net.ipv4.conf.eth0.log_martians": "1"}},
                  endpoints={"default": settings})
    assert out.split()[1] == "1" and out.split()[0] == settings.get("MacAddress", out.split()[0])


def test_default_network_mode_from_the_cli(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    d = daemon
    cleanup += ["a146-cli-mode"]
    ok(d.docker("create", "--name", "a146-cli-mode", busybox_image, "true"))
    assert _inspect(d, "a146-cli-mode")["HostConfig"]["NetworkMode"] == "bridge"
    ok(d.docker("start", "-a", "a146-cli-mode"))
    assert list(_inspect(d, "a146-cli-mode")["NetworkSettings"]["Networks"]) == ["bridge"]


def test_disabling_ipv6_releases_the_address(daemon, busybox_image, cleanup) -> None:  # noqa: ANN001
    """An endpoint sysctl turning IPv6 off takes the interface's IPv6 address away: as
    libnetwork, the address is released (no route, not in inspect nor /etc/hosts)."""
    d = daemon
    cleanup += ["net:a146-v6", "a146-v6"]
    ok(d.docker("network", "create", "--ipv6", "a146-v6"))
    status, answer = _create(d, "a146-v6", busybox_image, ["sleep", "300"], host_config={"NetworkMode": "a146-v6"},
                             endpoints={"a146-v6": {"DriverOpts": {SYSCTLS: "net.ipv6.conf.IFNAME.disable_ipv6=1"}}})
    assert status == 201, answer
    ok(d.docker("start", "a146-v6"))
    ep = _inspect(d, "a146-v6")["NetworkSettings"]["Networks"]["a146-v6"]
    assert (ep["GlobalIPv6Address"], ep["IPv6Gateway"]) == ("", "") and ep["IPAddress"]
    out = ok(d.docker("exec", "a146-v6", "sh", "-c", "ip -6 addr show eth0; ip -6 route; cat /etc/hosts"))
    assert ep["IPAddress"] in out and "inet6" not in out and "default" not in out
