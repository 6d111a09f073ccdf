"""The rules of the API 1.46 items, as dockerd 27 has them (pure; no root, no services):
the create route's NetworkMode default and sysctl migration (dockerd's router), the
endpoint sysctl checks (validateEndpointSettings) and their application (libnetwork's
setSysctls, error paths only: a real write would change this host), and
TmpfsOptions.Options (validateTmpfsOptions). The route itself runs with a fake daemon."""

from __future__ import annotations

import asyncio
import copy
import json
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from berth.api.app import build_app
from berth.api.containers import create_request
from berth.errors import BerthError, InvalidParameter
from berth.network import endpoint
from berth.network.bridge import set_interface_sysctls
from berth.volume import mounts

SYSCTLS = "com.docker.network.endpoint.sysctls"
MODERN, LEGACY = (1, 47), (1, 41)


def _body(hc: dict | None = None, endpoints: dict | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"Image": "busybox"}
    if hc is not None:
        body["HostConfig"] = hc
    if endpoints is not None:
        body["NetworkingConfig"] = {"EndpointsConfig": endpoints}
    return body


@pytest.mark.parametrize("hc", [None, {}, {"NetworkMode": ""}, {"NetworkMode": "default"}])
@pytest.mark.parametrize("version", [LEGACY, MODERN])
def test_default_network_mode_is_bridge(hc: dict | None, version: tuple[int, ...]) -> None:
    body = _body(copy.deepcopy(hc), {"default": {"MacAddress": "02:42:ac:11:00:09"}})
    assert create_request(body, version) == []
    assert body["HostConfig"]["NetworkMode"] == "bridge"
    # the docker CLI's `default` entry is re-keyed `bridge`; an endpoint MAC predates 1.44
    mac = "02:42:ac:11:00:09" if version >= (1, 44) else ""
    assert body["NetworkingConfig"]["EndpointsConfig"] == {"bridge": {"MacAddress": mac}}


def test_migration_into_the_default_entry() -> None:
    """dockerd re-keys `default` as `bridge` (replacing a `bridge` entry) before migrating:
    the sysctls go where it would put them."""
    for endpoints in ({"default": {"MacAddress": "m"}}, {"default": {"MacAddress": "m"}, "bridge": {}}):
        body = _body({"NetworkMode": "default", "Sysctls": {"net.ipv4.conf.eth0.forwarding": "0"}}, endpoints)
        assert len(create_request(body, MODERN)) == 1
        assert body["NetworkingConfig"]["EndpointsConfig"] == {"bridge": {
            "MacAddress": "m", "DriverOpts": {SYSCTLS: "net.ipv4.conf.IFNAME.forwarding=0"}}}
    # NetworkMode "bridge" itself is not re-keyed: its entry must be `bridge`
    body = _body({"NetworkMode": "bridge", "Sysctls": {"net.ipv4.conf.eth0.forwarding": "0"}}, {"default": {}})
    with pytest.raises(InvalidParameter, match="^unable to find a network for sysctl"):
        create_request(body, MODERN)


@pytest.mark.parametrize("mode", ["bridge", "host", "none", "mynet", "container:abc"])
def test_other_network_modes_stay(mode: str) -> None:
    body = _body({"NetworkMode": mode}, {"default": {}})
    create_request(body, MODERN)
    assert body["HostConfig"]["NetworkMode"] == mode
    assert list(body["NetworkingConfig"]["EndpointsConfig"]) == ["default"]


@pytest.mark.parametrize("version", [LEGACY, MODERN])
def test_eth0_sysctls_move_to_the_mode_endpoint(version: tuple[int, ...]) -> None:
    sysctls = {"net.ipv4.conf.eth0.log_martians": "1", "net.ipv4.ip_forward": "1",
               "net.ipv6.conf.eth0.accept_ra": "2", "net.ipv4.conf.all.arp_notify": "1"}
    body = _body({"NetworkMode": "mynet", "Sysctls": dict(sysctls)},
                 {"mynet": {"DriverOpts": {SYSCTLS: "net.ipv6.conf.IFNAME.accept_ra=0", "other": "x"}}})
    warnings = create_request(body, version)
    moved = "net.ipv4.conf.IFNAME.log_martians=1,net.ipv6.conf.IFNAME.accept_ra=2"
    assert warnings == [f'Migrated sysctl "net.ipv4.conf.eth0.log_martians,net.ipv6.conf.eth0.accept_ra" to '
                        f'DriverOpts{{"{SYSCTLS}":"{moved}"}}.']
    assert body["HostConfig"]["Sysctls"] == {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.arp_notify": "1"}
    # the endpoint's own settings after the migrated ones (set last, they win)
    assert body["NetworkingConfig"]["EndpointsConfig"] == {
        "mynet": {"DriverOpts": {SYSCTLS: moved + ",net.ipv6.conf.IFNAME.accept_ra=0", "other": "x"}}}


def test_migration_makes_the_endpoint_and_drops_emptied_sysctls() -> None:
    body = _body({"Sysctls": {"net.ipv4.conf.eth0.forwarding": "0"}})
    assert len(create_request(body, MODERN)) == 1
    assert "Sysctls" not in body["HostConfig"]   # dockerd's omitempty
    assert body["NetworkingConfig"]["EndpointsConfig"] == {
        "bridge": {"DriverOpts": {SYSCTLS: "net.ipv4.conf.IFNAME.forwarding=0"}}}
    none = _body({"NetworkMode": "none", "Sysctls": {"net.ipv4.conf.eth0.forwarding": "0"}})
    create_request(none, MODERN)   # dockerd's IsPrivate: none migrates too (to nothing)
    assert list(none["NetworkingConfig"]["EndpointsConfig"]) == ["none"]


@pytest.mark.parametrize("mode", ["host", "container:abc"])
def test_shared_namespaces_keep_their_sysctls(mode: str) -> None:
    body = _body({"NetworkMode": mode, "Sysctls": {"net.ipv4.conf.eth1.forwarding": "0"}})
    assert create_request(body, MODERN) == []
    assert body["HostConfig"]["Sysctls"] == {"net.ipv4.conf.eth1.forwarding": "0"}
    assert body["NetworkingConfig"]["EndpointsConfig"] == {}


def test_another_interface_is_refused_as_dockerd() -> None:
    body = _body({"Sysctls": {"net.ipv4.conf.eth1.forwarding": "0"}})
    with pytest.raises(BerthError) as err:
        create_request(body, MODERN)
    assert err.value.status == 500 and str(err.value) == (
        f"unable to determine network endpoint for sysctl net.ipv4.conf.eth1.forwarding, use driver option "
        f"'{SYSCTLS}' to set per-interface sysctls")


def test_the_endpoint_must_be_keyed_as_the_mode_from_144() -> None:
    hc = {"NetworkMode": "mynet", "Sysctls": {"net.ipv4.conf.eth0.forwarding": "0"}}
    with pytest.raises(InvalidParameter, match=r"^unable to find a network for sysctl "
                       r"net\.ipv4\.conf\.eth0\.forwarding: HostConfig.NetworkMode must match the identity"):
        create_request(_body(copy.deepcopy(hc), {"0123456789ab": {}}), MODERN)
    # before 1.44 there is one entry at most, whatever its key
    body = _body(copy.deepcopy(hc), {"0123456789ab": {}})
    create_request(body, (1, 43))
    assert body["NetworkingConfig"]["EndpointsConfig"] == {
        "0123456789ab": {"DriverOpts": {SYSCTLS: "net.ipv4.conf.IFNAME.forwarding=0"}}}


def test_sysctl_driver_option_checked_as_dockerd() -> None:
    good = {"DriverOpts": {SYSCTLS: "net.ipv4.conf.IFNAME.log_martians=1,net.mpls.conf.ifname.input=1"}}
    assert endpoint.errors(good, None, "mynet") == []
    assert endpoint.endpoint_sysctls(good["DriverOpts"]) == good["DriverOpts"][SYSCTLS].split(",")
    assert endpoint.endpoint_sysctls({"other": "x"}) == []
    bad = {"DriverOpts": {SYSCTLS: "net.ipv4.conf.eth0.x=1,net.ipx.conf.IFNAME.x=1,net.ipv4.IFNAME"}}
    word = "; represent 'net.X.Y.ethN.Z=V' as 'net.X.Y.IFNAME.Z=V', 'X' must be 'ipv4', 'ipv6' or 'mpls'"
    with pytest.raises(InvalidParameter) as err:
        endpoint.check(bad, None, "mynet", "invalid config for network mynet: ")
    assert str(err.value) == "invalid config for network mynet: invalid endpoint settings:\n" + "\n".join(
        f"* unrecognised network interface sysctl '{s}'{word}" for s in bad["DriverOpts"][SYSCTLS].split(","))
    # an empty option is one empty sysctl
    assert endpoint.errors({"DriverOpts": {SYSCTLS: ""}}, None, "mynet") == [
        f"unrecognised network interface sysctl ''{word}"]


@pytest.mark.parametrize("sysctl, message", [
    ("net.ipv4.conf.IFNAME.log_martians", "expected sysctl 'net.ipv4.conf.IFNAME.log_martians' to have format "
                                          "name=value"),
    ("net.ipv4.conf.IFNAME.a.b=1", "expected sysctl 'net.ipv4.conf.IFNAME.a.b=1' to have format net.X.Y.IFNAME.Z"),
    ("net.ipv4.conf.IFNAME.nosuch=1", "/proc/sys/net/ipv4/conf/berth-none0/nosuch is not a sysctl file"),
    # an absolute part does not restart the path (Go's filepath.Join), nor does it leave /proc/sys/net
    ("/etc/hostname.ipv4.conf.IFNAME.x=1", "/proc/sys/etc/hostname/ipv4/conf/berth-none0/x is not a sysctl file"),
])
def test_interface_sysctl_errors(sysctl: str, message: str) -> None:
    with pytest.raises(BerthError) as err:
        set_interface_sysctls("berth-none0", [sysctl])
    assert str(err.value) == message


def test_tmpfs_options() -> None:
    m = mounts.from_api_mount({"Type": "tmpfs", "Target": "/t",
                               "TmpfsOptions": {"SizeBytes": 4096, "Options": [["exec"]]}})
    assert m.tmpfs_options == ["size=4096", "exec"]
    assert "noexec" not in mounts.oci_options(m)   # dockerd merges them after its noexec default
    m = mounts.from_api_mount({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"Options": [["noexec"]]}})
    assert mounts.oci_options(m).count("noexec") == 1
    assert mounts.tmpfs_option(["exec", "1"]) == "exec=1"


@pytest.mark.parametrize("option, why", [(["uid", "0"], "invalid option: uid"), (["nosuid"], "invalid option: nosuid"),
                                         ([], "invalid option array length"),
                                         (["exec", "a", "b"], "invalid option array length")])
def test_tmpfs_options_refused(option: list[str], why: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        mounts.from_api_mount({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"Options": [option]}})
    assert str(err.value) == f'invalid mount config for type "tmpfs": {why}'


class _Containers:
    """The container service's create, remembering the body the route passed on."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    async def create(self, name: str | None, body: dict[str, Any], warnings: list[str]) -> str:
        self.bodies.append(copy.deepcopy(body))
        warnings.append("the daemon's warning")
        return "c" * 64


def _post(path: str, body: dict[str, Any]) -> tuple[int, dict, _Containers]:
    containers = _Containers()
    daemon = SimpleNamespace(containers=containers, images=None, registry=None, networks=None, volumes=None)

    async def go() -> tuple[int, dict]:
        async with TestClient(TestServer(build_app(daemon))) as client:
            resp = await client.post(path, data=json.dumps(body), headers={"Content-Type": "application/json"})
            return resp.status, json.loads(await resp.text())
    status, answer = asyncio.run(go())
    return status, answer, containers


@pytest.mark.parametrize("version", ["/v1.24", "/v1.41", "/v1.46", ""])
def test_create_route_at_every_version(version: str) -> None:
    status, answer, containers = _post(f"{version}/containers/create", _body(
        {"Sysctls": {"net.ipv4.conf.eth0.forwarding": "0"}}))
    assert status == 201
    # the router's warnings come after the daemon's, as dockerd appends them
    assert answer["Warnings"][0] == "the daemon's warning" and answer["Warnings"][1].startswith("Migrated sysctl")
    passed = containers.bodies[0]
    assert passed["HostConfig"] == {"NetworkMode": "bridge"}
    assert passed["NetworkingConfig"]["EndpointsConfig"]["bridge"]["DriverOpts"] == {
        SYSCTLS: "net.ipv4.conf.IFNAME.forwarding=0"}


def test_create_route_refusal_is_a_500() -> None:
    status, answer, containers = _post("/containers/create", _body({"Sysctls": {"net.ipv4.conf.eth2.x": "1"}}))
    assert status == 500 and answer["message"].startswith("unable to determine network endpoint for sysctl")
    assert containers.bodies == []
