"""IPv6-only networks, the pure parts: the API's EnableIPv4/EnableIPv6 (and their driver
options), ports of a container without IPv4, a random MAC for an endpoint without IPv4,
no IPv4 rule for an IPv6-only network, the endpoint words, and the migration of a
database whose net_endpoints allowed one endpoint without IPv4 per network."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest

from berth.api.networks import address_families
from berth.config import DaemonConfig
from berth.engine import networks
from berth.engine.db import Database
from berth.errors import InvalidParameter
from berth.network import endpoint, firewall, ipam
from berth.network.ports import PortMapping, PortReservations, check_publishable, only_ipv6

V4_OPT, V6_OPT = "com.docker.network.enable_ipv4", "com.docker.network.enable_ipv6"


@pytest.mark.parametrize(("body", "options", "want"), [
    ({}, {}, (True, False, {})),
    ({"EnableIPv4": False, "EnableIPv6": True}, {}, (False, True, {})),
    ({"EnableIPv4": False}, {}, (False, False, {})),   # refused by the service: IPv4 or IPv6 must be enabled
    ({"EnableIPv4": None, "EnableIPv6": True}, {V4_OPT: "0"}, (False, True, {V4_OPT: "0"})),
    ({}, {V4_OPT: "False", V6_OPT: "t", "x": "y"}, (False, True, {V4_OPT: "False", V6_OPT: "t", "x": "y"})),
    # the field wins and the option of the same meaning is dropped (inspect cannot contradict it)
    ({"EnableIPv4": True, "EnableIPv6": False}, {V4_OPT: "false", V6_OPT: "true"}, (True, False, {})),
])
def test_address_families_as_dockerd_settles_them(body: dict, options: dict, want: tuple) -> None:
    assert address_families(body, options) == want


def test_address_families_refuse_an_option_that_is_not_a_go_bool() -> None:
    with pytest.raises(InvalidParameter, match=f'driver-opt "{V4_OPT}" is not a valid bool'):
        address_families({"EnableIPv6": True}, {V4_OPT: "no"})


def test_ports_of_a_container_without_ipv4() -> None:
    given = [PortMapping("tcp", 80, "", 8080), PortMapping("udp", 53, "::1", 5353)]
    check_publishable(given, ipv6=True, ipv4=False)
    assert only_ipv6(given) == [PortMapping("tcp", 80, "::", 8080), PortMapping("udp", 53, "::1", 5353)]
    assert all(m.proxied for m in only_ipv6(given))   # [::1] reaches them through the relay
    for host_ip in ("127.0.0.1", "0.0.0.0"):
        with pytest.raises(InvalidParameter, match=rf"on {host_ip}: the container has no IPv4 address"):
            check_publishable([PortMapping("tcp", 80, host_ip, 8080)], ipv6=True, ipv4=False)



def test_an_ipv6_only_container_holds_its_port_on_ipv6_alone(res: PortReservations) -> None:
    got = res.reserve("a", only_ipv6([PortMapping("tcp", 80, "", 0)]), dual_stack=False)
    assert [m.host_ip for m in got] == ["::"] and got[0].host_port > 0
    with socket.socket(socket.AF_INET6) as s, pytest.raises(OSError):
        s.bind(("::", got[0].host_port))
    with socket.socket() as s:   # IPv4's port stays free for others
        s.bind(("0.0.0.0", got[0].host_port))


def test_random_mac_is_unicast_and_locally_administered() -> None:
    macs = {ipam.random_mac() for _ in range(64)}
    assert len(macs) > 1
    for mac in macs:
        octets = [int(x, 16) for x in mac.split(":")]
        assert len(octets) == 6 and octets[0] & 1 == 0 and octets[0] & 2 == 2
        assert endpoint.parse_mac(mac) == mac   # what a veth takes


def test_an_ipv6_only_network_has_ipv6_rules_only() -> None:
    nets = [firewall.NetworkRule("br0", "172.17.0.0/16"), firewall.NetworkRule("br6", "", subnet6="fd00:6::/64")]
    ports = [firewall.PortRule("tcp", "::", 8080, "fd00:6::2", 80, "br6")]
    v4 = firewall.build("bt1", nets, ports, 4)
    assert not any("br6" in r for chain in v4.chains.values() for rules in chain.values() for r in rules)
    v6 = firewall.build("bt1", nets, ports, 6)
    post, dnat = v6.chains["nat"]["BT1-POSTROUTING"], v6.chains["nat"]["BT1-DNAT"]
    assert "-s fd00:6::/64 ! -o br6 -j MASQUERADE" in post
    assert "-p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd00:6::2]:80" in dnat
    assert not any("br0" in r for chain in v6.chains.values() for rules in chain.values() for r in rules)


def test_endpoint_addresses_on_an_ipv6_only_network() -> None:
    facts = endpoint.NetworkFacts(user_defined=True, static4=False, ipv6=True, static6=True)
    assert endpoint.errors({"IPAMConfig": {"IPv4Address": "10.1.2.3"}}, facts, "v6o") == [endpoint.NO_USER_SUBNET]
    assert endpoint.errors({"IPAMConfig": {"IPv6Address": "fd00::5"}}, facts, "v6o") == []
    assert endpoint.family_disabled(4, "10.1.2.3", "v6o") == (
        "invalid IPv4 address 10.1.2.3: network v6o does not have IPv4 enabled (create it without --ipv4=false)")
    assert endpoint.family_disabled(6, "fd00::5", "v4o").endswith("does not have IPv6 enabled (create it with --ipv6)")


def _table_sql(db: Database) -> str:
    return db.one("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'net_endpoints'")["sql"]


def _insert(db: Database, eid: str, ip: str, ip6: str = "") -> None:
    db.execute("INSERT INTO net_endpoints (id, container_id, network_id, ip, mac, host_if, ifname, ip6, ipam) "
               "VALUES (?, ?, 'n1', ?, 'm', ?, 'eth0', ?, '')", (eid, f"c-{eid}", ip, f"veth-{eid}", ip6))


def test_a_database_of_the_previous_release_is_migrated(tmp_path: Path) -> None:
    """net_endpoints as released (UNIQUE (network_id, ip), every added column, its rows)
    loses that constraint and keeps its rows, columns and the IPv6 index; real IPv4
    addresses stay unique per network, '' (no IPv4) may repeat; opening again changes nothing."""
    db = Database(tmp_path / "berth.db")
    try:
        db.ensure_schema(networks.SCHEMA)   # the tables as first released ...
        for table, column, decl in networks.ADDED_COLUMNS:   # ... and as the previous release left them
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
        db.ensure_schema("CREATE UNIQUE INDEX net_endpoints_ip6 ON net_endpoints (network_id, ip6) WHERE ip6 != '';")
        db.execute("INSERT INTO networks (id, name, driver, bridge, subnet, gateway, created, subnet6, gateway6) "
                   "VALUES ('n1', 'old', 'bridge', 'br-old', '10.9.0.0/24', '10.9.0.1', 'then', 'fd00:9::/64', "
                   "'fd00:9::1')")
        _insert(db, "e1", "10.9.0.2", "fd00:9::2")
        db.execute("UPDATE net_endpoints SET aliases = '[\"web\"]', seq = 3, ipam = '{\"IPv4Address\": \"x\"}'")
        before = [dict(r) for r in db.execute("SELECT * FROM net_endpoints")]
        assert "UNIQUE (network_id, ip)" in _table_sql(db)
        cfg = DaemonConfig(data_root=tmp_path / "data", exec_root=tmp_path / "run")
        networks.NetworkService(cfg, db)
        migrated = _table_sql(db)
        assert "UNIQUE (network_id, ip)" not in migrated and "UNIQUE (container_id, network_id)" in migrated
        assert [dict(r) for r in db.execute("SELECT * FROM net_endpoints")] == before
        networks.NetworkService(cfg, db)   # again: nothing to do
        assert _table_sql(db) == migrated
        _insert(db, "e2", "")
        _insert(db, "e3", "")   # two endpoints without IPv4 on one network
        for eid, ip, ip6 in (("e4", "10.9.0.2", ""), ("e5", "", "fd00:9::2")):
            with pytest.raises(sqlite3.IntegrityError):
                _insert(db, eid, ip, ip6)
        with pytest.raises(sqlite3.IntegrityError):   # still one endpoint per container and network
            db.execute("INSERT INTO net_endpoints (id, container_id, network_id, ip, mac, host_if, ifname) "
                       "VALUES ('e6', 'c-e1', 'n1', '10.9.0.9', 'm', 'v', 'eth1')")
    finally:
        db.close()


def test_a_new_database_allows_endpoints_without_ipv4(tmp_path: Path) -> None:
    db = Database(tmp_path / "berth.db")
    try:
        networks.NetworkService(DaemonConfig(data_root=tmp_path / "data", exec_root=tmp_path / "run"), db)
        db.execute("INSERT INTO networks (id, name, driver, bridge, created, subnet6, gateway6) "
                   "VALUES ('n1', 'v6o', 'bridge', 'br-v6o', 'now', 'fd00:6::/64', 'fd00:6::1')")
        _insert(db, "e1", "", "fd00:6::2")
        _insert(db, "e2", "", "fd00:6::3")
        assert db.one("SELECT COUNT(*) AS n FROM net_endpoints WHERE ip = ''")["n"] == 2
    finally:
        db.close()
