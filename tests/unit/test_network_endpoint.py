"""berth.network.endpoint: an endpoint's settings checked with dockerd's words."""

from __future__ import annotations

import pytest

from berth.errors import InvalidParameter
from berth.network import endpoint as ep

USER = ep.NetworkFacts(user_defined=True)
AUTO_SUBNET = ep.NetworkFacts(user_defined=True, static4=False)
BRIDGE = ep.NetworkFacts(user_defined=False)


def _refused(settings: dict, net: ep.NetworkFacts | None, name: str, prefix: str = "") -> str:
    with pytest.raises(InvalidParameter) as exc:
        ep.check(settings, net, name, prefix)
    return str(exc.value)


def test_mac_addresses_in_go_spellings_normalised() -> None:
    for spelling in ("02:42:AC:11:00:99", "02-42-ac-11-00-99", "0242.ac11.0099"):
        assert ep.parse_mac(spelling) == "02:42:ac:11:00:99"
    for bad in ("zz:42:ac:11:00:99", "02:42:ac:11:00", "02:42:ac:11:00:99:01", "02:42-ac:11:00:99", "",
                "03:42:ac:11:00:99"):   # the last one is multicast: no interface takes it
        with pytest.raises(InvalidParameter, match=f"^invalid MAC address {bad}$"):
            ep.parse_mac(bad)


def test_addresses_on_predefined_networks_refused() -> None:
    for key in ("default", "bridge"):
        msg = _refused({"IPAMConfig": {"IPv4Address": "172.17.0.50"}}, None, key,
                       f"invalid config for network {key}: ")
        assert msg == (f"invalid config for network {key}: invalid endpoint settings:\n"
                       "user specified IP address is supported on user defined networks only")
    # an IPv6 one on the default bridge: dockerd's reason and berth's (no IPv6 there)
    msg = _refused({"IPAMConfig": {"IPv6Address": "fd00::5"}}, BRIDGE, "bridge")
    assert msg.startswith("invalid endpoint settings:\n* user specified IP address is supported on user "
                          "defined networks only\n* invalid IPv6 address fd00::5: network bridge does not have IPv6")
    assert ep.errors({"Aliases": ["a"]}, BRIDGE, "bridge") == [ep.ALIAS_USER_NETWORKS_ONLY]


def test_addresses_need_a_configured_subnet() -> None:
    settings = {"IPAMConfig": {"IPv4Address": "10.1.2.3"}}
    assert _refused(settings, AUTO_SUBNET, "auto") == f"invalid endpoint settings:\n{ep.NO_USER_SUBNET}"
    ep.check(settings, USER, "given")
    ep.check(settings, None, "not-yet")   # a network made after the container: not known at create
    v6 = {"IPAMConfig": {"IPv6Address": "fd00::5"}}
    assert ep.errors(v6, ep.NetworkFacts(user_defined=True, ipv6=True, static6=False), "n") == [ep.NO_USER_SUBNET]
    assert ep.errors(v6, ep.NetworkFacts(user_defined=True, ipv6=True), "n") == []


def test_malformed_addresses_and_mac() -> None:
    settings = {"IPAMConfig": {"IPv4Address": "fd00::1", "IPv6Address": "10.0.0.1", "LinkLocalIPs": ["bogus"]}}
    dual = ep.NetworkFacts(user_defined=True, ipv6=True)
    assert ep.errors(settings, dual, "n") == ["invalid IPv4 address: fd00::1", "invalid IPv6 address: 10.0.0.1",
                                              "invalid link-local IP address: bogus"]
    # a bad MAC is answered on its own, before the other errors (as dockerd)
    settings["MacAddress"] = "nope"
    assert _refused(settings, dual, "n", "invalid config for network n: ") == \
        "invalid config for network n: invalid MAC address nope"


def test_link_local_addresses() -> None:
    assert ep.link_local_addresses(["169.254.1.1", "fe80::1:2"]) == [("169.254.1.1", 16), ("fe80::1:2", 64)]
    for outside in ("10.9.9.9", "fd00::1"):
        assert _refused({"IPAMConfig": {"LinkLocalIPs": [outside]}}, USER, "n") == \
            f"invalid link local IP address: {outside}"


def test_requested_and_join() -> None:
    assert ep.requested(None) == ([], "", "", "", [])
    assert ep.requested({"Aliases": ["a"], "MacAddress": "02:42:00:00:00:01",
                         "IPAMConfig": {"IPv4Address": "10.0.0.2", "LinkLocalIPs": ["169.254.0.9"]}}) == \
        (["a"], "10.0.0.2", "", "02:42:00:00:00:01", ["169.254.0.9"])
    assert ep.join(["one "]) == "one"
    assert ep.join(["a\nb", "c"]) == "* a\n\tb\n* c"
