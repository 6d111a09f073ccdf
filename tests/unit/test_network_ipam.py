import ipaddress

import pytest

from berth.errors import Conflict, InvalidParameter
from berth.network import ipam

ROUTE_TABLE = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
"""


def test_route_table_parsing_skips_default_and_excluded():
    nets = ipam.parse_route_table(ROUTE_TABLE)
    assert nets == [ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("172.17.0.0/16")]
    assert ipam.parse_route_table(ROUTE_TABLE, exclude_ifaces=["docker0"]) == [ipaddress.ip_network("192.0.2.0/24")]


def test_choose_subnet_avoids_routes_and_networks():
    used = ipam.parse_route_table(ROUTE_TABLE) + [ipaddress.ip_network("172.18.0.0/16")]
    assert str(ipam.choose_subnet(used)) == "172.19.0.0/16"
    assert str(ipam.choose_subnet([])) == "172.17.0.0/16"


def test_choose_subnet_falls_back_to_192_168_pools():
    used = [ipaddress.ip_network("172.16.0.0/12")]
    assert str(ipam.choose_subnet(used)) == "192.168.0.0/20"


@pytest.mark.parametrize("bad", ["10.1.2.3/24", "nonsense", "10.0.0.0/31", "fd00::/64", "10.0.0.0/33"])
def test_parse_subnet_rejects_bad_input(bad):
    with pytest.raises(InvalidParameter):
        ipam.parse_subnet(bad)


def test_check_free_names_the_overlap():
    net = ipam.parse_subnet("10.5.0.0/16")
    with pytest.raises(Conflict, match="net1"):
        ipam.check_free(net, [("net1", ipaddress.ip_network("10.5.3.0/24"))], [])
    with pytest.raises(Conflict, match="host route"):
        ipam.check_free(net, [], [ipaddress.ip_network("10.0.0.0/8")])
    ipam.check_free(net, [("x", ipaddress.ip_network("10.6.0.0/16"))], [ipaddress.ip_network("192.0.2.0/24")])


def test_gateway_and_allocation():
    net = ipam.parse_subnet("10.9.0.0/29")
    gw = ipam.default_gateway(net)
    assert str(gw) == "10.9.0.1"
    taken: list[str] = []
    got = []
    for _ in range(5):
        a = ipam.allocate(net, gw, taken)
        taken.append(str(a))
        got.append(str(a))
    assert got == ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"]
    with pytest.raises(Conflict, match="no available"):
        ipam.allocate(net, gw, taken)
    # a released address is handed out again
    taken.remove("10.9.0.4")
    assert str(ipam.allocate(net, gw, taken)) == "10.9.0.4"


def test_allocation_of_a_preferred_address():
    net = ipam.parse_subnet("10.9.0.0/24")
    gw = ipam.default_gateway(net)
    assert str(ipam.allocate(net, gw, [], "10.9.0.77")) == "10.9.0.77"
    with pytest.raises(Conflict):
        ipam.allocate(net, gw, ["10.9.0.77"], "10.9.0.77")
    with pytest.raises(InvalidParameter):
        ipam.allocate(net, gw, [], "10.8.0.77")


def test_gateway_must_be_usable():
    net = ipam.parse_subnet("10.9.0.0/24")
    ipam.check_gateway(net, ipam.parse_address("10.9.0.254"))
    for bad in ("10.9.0.0", "10.9.0.255", "10.10.0.1"):
        with pytest.raises(InvalidParameter):
            ipam.check_gateway(net, ipam.parse_address(bad))


def test_mac_follows_docker_scheme():
    assert ipam.mac_for(ipaddress.ip_address("172.17.0.2")) == "02:42:ac:11:00:02"


IPV6_ROUTE_TABLE = """\
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth0
ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000004 00000000 00000001     eth0
fd123456789a00010000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     br6
"""


def test_ipv6_route_table_keeps_only_routes_a_subnet_can_collide_with():
    nets = ipam.parse_ipv6_route_table(IPV6_ROUTE_TABLE)
    assert nets == [ipaddress.ip_network("fd00::/64"), ipaddress.ip_network("fd12:3456:789a:1::/64")]
    assert ipam.parse_ipv6_route_table(IPV6_ROUTE_TABLE, exclude_ifaces=["br6"]) == [ipaddress.ip_network("fd00::/64")]


@pytest.mark.parametrize("bad", ["fd00::1/64", "fd00::/127", "fd00::/8", "fe80::/64", "ff02::/16", "::1/128",
                                 "10.0.0.0/24", "fd00::zz/64", "nonsense"])
def test_parse_ipv6_subnet_rejects_bad_input(bad):
    with pytest.raises(InvalidParameter):
        ipam.parse_subnet(bad, version=6)


def test_ipv6_subnets_and_gateways():
    net = ipam.parse_subnet("fd12:3456:789a:1::/64", version=6)
    assert str(ipam.default_gateway(net)) == "fd12:3456:789a:1::1"
    ipam.check_gateway(net, ipam.parse_address("fd12:3456:789a:1:ffff:ffff:ffff:ffff", version=6))  # no broadcast
    for bad in ("fd12:3456:789a:1::", "fd12:3456:789a:2::1"):
        with pytest.raises(InvalidParameter):
            ipam.check_gateway(net, ipam.parse_address(bad, version=6))
    with pytest.raises(InvalidParameter, match="not an IPv6 address"):
        ipam.parse_address("10.0.0.1", "gateway", version=6)


def test_ula_pool_is_rfc4193_and_chosen_subnets_avoid_what_is_used():
    base, size = ipam.ula_pool(0x123456789A)
    assert (base, size) == ("fd12:3456:789a::/48", 64)
    gid = ipam.new_ula_global_id()
    assert 0 <= gid < 1 << 40
    assert ipaddress.ip_network(ipam.ula_pool(gid)[0]).subnet_of(ipaddress.ip_network("fd00::/8"))
    used = [ipaddress.ip_network("fd12:3456:789a::/64"), ipaddress.ip_network("fd12:3456:789a:1::/64"),
            ipaddress.ip_network("fd12:3456:789a:2::/63"),
            ipaddress.ip_network("10.0.0.0/8")]
    assert str(ipam.choose_subnet(used, [(base, size)])) == "fd12:3456:789a:4::/64"
    with pytest.raises(Conflict, match="IPv6"):
        ipam.choose_subnet([ipaddress.ip_network("fd12:3456:789a::/48")], [(base, size)])
    with pytest.raises(ValueError):
        ipam.ula_pool(1 << 40)


def test_ipv6_allocation_lowest_free_and_preferred():
    net = ipam.parse_subnet("fd12:3456:789a:1::/64", version=6)
    gw = ipam.default_gateway(net)
    assert str(ipam.allocate(net, gw, [])) == "fd12:3456:789a:1::2"
    assert str(ipam.allocate(net, gw, ["fd12:3456:789a:1::2", "fd12:3456:789a:1::3"])) == "fd12:3456:789a:1::4"
    assert str(ipam.allocate(net, gw, [], "fd12:3456:789a:1::77")) == "fd12:3456:789a:1::77"
    with pytest.raises(Conflict, match="in use"):
        ipam.allocate(net, gw, ["fd12:3456:789a:1::77"], "fd12:3456:789a:1::77")
    for bad in ("fd12:3456:789a:2::1", "fd12:3456:789a:1::", "10.0.0.7"):
        with pytest.raises(InvalidParameter):
            ipam.allocate(net, gw, [], bad)
