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
