import pytest

from berth.errors import InvalidParameter
from berth.network import files


def test_hosts_file_layout():
    text = files.hosts_file("web", "example.org", ["172.17.0.2"], [("db", "10.0.0.5")])
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert "::1\tlocalhost ip6-localhost ip6-loopback" in lines
    assert lines.index("10.0.0.5\tdb") < lines.index("172.17.0.2\tweb.example.org web")
    assert files.hosts_file("h", "", [], []).count("\th\n") == 0


def test_extra_hosts():
    assert files.parse_extra_host("db:10.0.0.5") == ("db", "10.0.0.5")
    assert files.parse_extra_host("db=10.0.0.5") == ("db", "10.0.0.5")
    assert files.parse_extra_host("v6:::1") == ("v6", "::1")
    assert files.parse_extra_host("gw:host-gateway", "172.17.0.1") == ("gw", "172.17.0.1")
    for bad in ("db", "db:notanip", ":1.2.3.4"):
        with pytest.raises(InvalidParameter):
            files.parse_extra_host(bad)


HOST = "# comment\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nsearch corp.example\noptions edns0\n"


def test_resolv_conf_default_bridge_drops_loopback_servers():
    rc = files.parse_resolv_conf(HOST)
    assert rc.nameservers == ["127.0.0.53", "10.255.255.53"]
    out = files.resolv_conf(rc, [], [])
    assert "nameserver 10.255.255.53" in out and "127.0.0.53" not in out
    assert "search corp.example" in out and "options edns0" in out


def test_resolv_conf_only_loopback_gets_defaults():
    rc = files.parse_resolv_conf("nameserver 127.0.0.53\n")
    out = files.resolv_conf(rc, [], [])
    assert out.splitlines()[:2] == ["nameserver 8.8.8.8", "nameserver 8.8.4.4"]


def test_resolv_conf_explicit_dns_and_search():
    rc = files.parse_resolv_conf(HOST)
    out = files.resolv_conf(rc, ["1.1.1.1"], ["a.example", "b.example"], ["ndots:2"])
    assert out == "nameserver 1.1.1.1\nsearch a.example b.example\noptions ndots:2\n"


def test_resolv_conf_user_network_uses_embedded_dns():
    rc = files.parse_resolv_conf(HOST)
    out = files.resolv_conf(rc, [], [], embedded=True)
    servers = [ln for ln in out.splitlines() if ln.startswith("nameserver")]
    assert servers == ["nameserver 127.0.0.11"]
    assert "ndots:0" in out
    # the external servers the embedded resolver forwards to: the host's (a loopback one works
    # from the daemon's namespace) or --dns
    assert files.upstream_servers(rc, []) == ["127.0.0.53", "10.255.255.53"]
    assert files.upstream_servers(rc, ["9.9.9.9"]) == ["9.9.9.9"]


def test_hostname_check():
    files.check_hostname("web-1.example")
    for bad in ("", "-x", "a b", "x" * 300):
        with pytest.raises(InvalidParameter):
            files.check_hostname(bad)
