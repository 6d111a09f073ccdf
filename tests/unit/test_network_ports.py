import socket
from collections.abc import Iterator

import pytest

from berth.errors import BerthError, InvalidParameter
from berth.network.ports import (
    PortMapping,
    PortReservations,
    check_publishable,
    expand_bindings,
    parse_publish,
    settings_ports,
    to_port_bindings,
)


@pytest.mark.parametrize("spec,expected", [
    ("80", [PortMapping("tcp", 80)]),
    ("8080:80", [PortMapping("tcp", 80, "", 8080)]),
    ("127.0.0.1:8080:80/udp", [PortMapping("udp", 80, "127.0.0.1", 8080)]),
    ("127.0.0.1::80", [PortMapping("tcp", 80, "127.0.0.1", 0)]),
    ("8000-8001:80-81", [PortMapping("tcp", 80, "", 8000), PortMapping("tcp", 81, "", 8001)]),
    ("8000-8010:80", [PortMapping("tcp", 80, "", 8000, 8010)]),
    ("[::1]:8080:80", [PortMapping("tcp", 80, "::1", 8080)]),
    ("53/UDP", [PortMapping("udp", 53)]),
])
def test_parse_publish(spec, expected):
    assert parse_publish(spec) == expected


@pytest.mark.parametrize("bad", ["", "abc", "8080:80/xyz", "1.2.3:80:80", "0:80", "8080:70000",
                                 "8000-8002:80-81", "90-80:80", "a:b:c:d"])
def test_parse_publish_rejects(bad):
    with pytest.raises(InvalidParameter):
        parse_publish(bad)


def test_to_port_bindings_matches_engine_api_shape():
    bindings, exposed = to_port_bindings(["8080:80", "127.0.0.1:53:53/udp", "9000"])
    assert bindings == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "53"}],
                        "9000/tcp": [{"HostIp": "", "HostPort": ""}]}
    assert set(exposed) == {"80/tcp", "53/udp", "9000/tcp"}


def test_expand_bindings_with_publish_all():
    got = expand_bindings({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
                          {"80/tcp": {}, "443/tcp": {}, "53/udp": {}}, publish_all=True)
    assert got == [PortMapping("tcp", 80, "", 8080), PortMapping("tcp", 443), PortMapping("udp", 53)]
    assert expand_bindings(None, {"80/tcp": {}}) == []
    with pytest.raises(InvalidParameter):
        expand_bindings({"80/tcp": [{"HostIp": "nope", "HostPort": "1"}]})



@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback TCP port bound by somebody else for the whole test."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        yield taken.getsockname()[1]


def test_reservation_refuses_a_taken_port_and_is_all_or_nothing(res: PortReservations, taken_port: int) -> None:
    port = taken_port
    first = res.reserve("a", [PortMapping("tcp", 80, "127.0.0.1", 0)])
    assert first[0].host_port > 0
    with pytest.raises(BerthError, match=f"Bind for 127.0.0.1:{port} failed: port is already allocated"):
        res.reserve("b", [PortMapping("tcp", 81, "127.0.0.1", 0), PortMapping("tcp", 80, "127.0.0.1", port)])
    assert res.owners() == ["a"]
    # the ephemeral port of the failed reservation was given back: nothing of b is held
    with pytest.raises(BerthError, match="already allocated"):
        res.reserve("c", [PortMapping("tcp", 80, "127.0.0.1", first[0].host_port)])
    res.release("a")
    again = res.reserve("c", [PortMapping("tcp", 80, "127.0.0.1", first[0].host_port)])
    assert again[0].host_port == first[0].host_port


def test_reservation_picks_a_free_port_in_a_range(res: PortReservations, taken_port: int) -> None:
    port = taken_port
    got = res.reserve("a", [PortMapping("tcp", 80, "127.0.0.1", port, min(port + 20, 65535))])
    assert port < got[0].host_port <= port + 20


def test_settings_ports_shape():
    ports = settings_ports([PortMapping("tcp", 80, "", 8080)], {"80/tcp": {}, "443/tcp": {}})
    assert ports == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "443/tcp": None}


def test_dual_stack_reservation_holds_both_families_on_one_port(res: PortReservations) -> None:
    got = res.reserve("a", [PortMapping("tcp", 80, "", 0), PortMapping("udp", 53, "127.0.0.1", 0)],
                      dual_stack=True)
    assert [(m.proto, m.host_ip) for m in got] == [("tcp", ""), ("tcp", "::"), ("udp", "127.0.0.1")]
    assert got[0].host_port == got[1].host_port > 0
    for fam, ip in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        with socket.socket(fam) as s, pytest.raises(OSError):
            s.bind((ip, got[0].host_port))
    # [::] is proxied from [::1]: that socket listens, the others only hold their port
    listening = {m.host_ip: s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) for m, s in res.held("a")}
    assert listening == {"": 0, "::": 1, "127.0.0.1": 0}
    with pytest.raises(BerthError, match=rf"Bind for \[::\]:{got[0].host_port} failed: port is already"):
        res.reserve("b", [PortMapping("tcp", 81, "::", got[0].host_port)])


def test_ipv6_host_address_needs_a_container_with_ipv6():
    check_publishable([PortMapping("tcp", 80, "", 8080), PortMapping("tcp", 80, "127.0.0.1", 8081)], ipv6=False)
    check_publishable([PortMapping("tcp", 80, "::1", 8080)], ipv6=True)
    with pytest.raises(InvalidParameter, match=r"\[::1\]: the container has no IPv6 address"):
        check_publishable([PortMapping("tcp", 80, "::1", 8080)], ipv6=False)


def test_which_mappings_the_loopback_proxy_serves():
    assert PortMapping("tcp", 80, "::", 1).proxied and PortMapping("tcp", 80, "::1", 1).proxied
    assert PortMapping("udp", 80, "::", 1).proxied and PortMapping("udp", 80, "::1", 1).proxied
    assert not PortMapping("udp", 80, "fd00::2", 1).proxied
    assert not PortMapping("tcp", 80, "fd00::2", 1).proxied and not PortMapping("tcp", 80, "", 1).proxied
    assert settings_ports([PortMapping("tcp", 80, "", 8080), PortMapping("tcp", 80, "::", 8080)]) == {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}]}
