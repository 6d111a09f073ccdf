import pytest

from berth.errors import BerthError
from berth.network import firewall
from berth.network.firewall import NetworkRule, PortRule

NETS = [NetworkRule("br0", "172.17.0.0/16"), NetworkRule("br1", "172.18.0.0/16"),
        NetworkRule("br2", "172.19.0.0/16", internal=True)]
PORTS = [PortRule("tcp", "", 8080, "172.17.0.2", 80, "br0"),
         PortRule("udp", "127.0.0.1", 5353, "172.18.0.2", 53, "br1"),
         PortRule("tcp", "", 9000, "172.19.0.2", 80, "br2")]


def test_rules_live_in_our_chains_only():
    rs = firewall.build("bt1", NETS, PORTS)
    assert set(rs.chains) == {"filter", "nat"}
    assert set(rs.chains["filter"]) == {"BT1-FORWARD", "BT1-ISOLATION"}
    assert set(rs.chains["nat"]) == {"BT1-DNAT", "BT1-POSTROUTING"}
    jumps = [j for t in rs.jumps.values() for j in t]
    assert sorted(c for c, _ in jumps) == ["FORWARD", "OUTPUT", "POSTROUTING", "PREROUTING"]
    assert all(r.split()[-1].startswith("BT1-") for _, r in jumps)


def test_forward_isolation_and_masquerade():
    rs = firewall.build("bt1", NETS, PORTS)
    fwd, iso = rs.chains["filter"]["BT1-FORWARD"], rs.chains["filter"]["BT1-ISOLATION"]
    assert fwd[0] == "-j BT1-ISOLATION"
    assert "-i br0 ! -o br0 -j ACCEPT" in fwd
    assert "-i br2 ! -o br2 -j ACCEPT" not in fwd          # internal: no way out
    assert "-i br2 ! -o br2 -j DROP" in iso and "! -i br2 -o br2 -j DROP" in iso
    assert "-i br0 -o br1 -j DROP" in iso and "-i br1 -o br0 -j DROP" in iso
    post = rs.chains["nat"]["BT1-POSTROUTING"]
    assert "-s 172.17.0.0/16 ! -o br0 -j MASQUERADE" in post
    assert not any(r.startswith("-s 172.19.0.0/16 ! -o") for r in post)
    assert "-o br0 -m addrtype --src-type LOCAL -j MASQUERADE" in post


def test_published_ports():
    rs = firewall.build("bt1", NETS, PORTS)
    dnat = rs.chains["nat"]["BT1-DNAT"]
    assert "-p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80" in dnat
    assert "-d 127.0.0.1/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 172.18.0.2:53" in dnat
    assert not any("9000" in r for r in dnat)               # internal networks publish nothing
    assert "-d 172.17.0.2/32 -o br0 -p tcp -m tcp --dport 80 -j ACCEPT" in rs.chains["filter"]["BT1-FORWARD"]


SAVED = """*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:BT1-FORWARD - [0:0]
:BT1-ISOLATION - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -j BT1-FORWARD
-A FORWARD -j BT1-FORWARD
-A FORWARD -i br9 -j BT1-ISOLATION
-A BT1-FORWARD -j ACCEPT
COMMIT
"""


def test_restore_payload_dedups_jumps_and_never_touches_others():
    rs = firewall.build("bt1", NETS[:1], [])
    ours = set(firewall.chain_names("bt1")["filter"])
    text = firewall.restore_payload("filter", SAVED, rs.chains["filter"], rs.jumps["filter"], ours)
    lines = text.splitlines()
    assert lines[0] == "*filter" and lines[-1] == "COMMIT"
    assert ":BT1-FORWARD - [0:0]" in lines and ":BT1-ISOLATION - [0:0]" in lines
    assert lines.count("-D FORWARD -j BT1-FORWARD") == 1           # the double goes
    assert "-D FORWARD -i br9 -j BT1-ISOLATION" in lines            # a stale jump goes
    assert not any(ln.startswith("-I FORWARD") for ln in lines)      # one is already there
    assert not any("DOCKER" in ln for ln in lines)
    assert not any(ln.startswith(("-F", "-X")) for ln in lines)


def test_restore_payload_removal_and_fresh_install():
    ours = set(firewall.chain_names("bt1")["filter"])
    text = firewall.restore_payload("filter", SAVED, {}, [], ours)
    lines = text.splitlines()
    assert lines.count("-D FORWARD -j BT1-FORWARD") == 2
    assert "-F BT1-FORWARD" in lines and "-X BT1-FORWARD" in lines and "-X BT1-ISOLATION" in lines
    assert not any("DOCKER" in ln for ln in lines)
    rs = firewall.build("bt1", NETS[:1], [])
    fresh = firewall.restore_payload("filter", "*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n",
                                     rs.chains["filter"], rs.jumps["filter"], ours)
    assert "-I FORWARD 1 -j BT1-FORWARD" in fresh.splitlines()


NETS6 = [NetworkRule("br0", "172.17.0.0/16"),                                   # the default bridge: IPv4 only
         NetworkRule("br1", "172.18.0.0/16", subnet6="fd12:3456:789a:1::/64"),
         NetworkRule("br2", "172.19.0.0/16", internal=True, subnet6="fd12:3456:789a:2::/64"),
         NetworkRule("br3", "172.20.0.0/16", subnet6="fd12:3456:789a:3::/64")]
PORTS6 = [PortRule("tcp", "", 8080, "172.18.0.2", 80, "br1"),
          PortRule("tcp", "::", 8080, "fd12:3456:789a:1::2", 80, "br1"),
          PortRule("tcp", "::1", 8081, "fd12:3456:789a:1::2", 80, "br1"),
          PortRule("udp", "fd00::2", 5353, "fd12:3456:789a:3::2", 53, "br3"),
          PortRule("tcp", "::", 9000, "fd12:3456:789a:2::2", 80, "br2")]


def test_ipv6_rules_mirror_ipv4_for_ipv6_networks_only():
    rs = firewall.build("bt1", NETS6, PORTS6, version=6)
    assert set(rs.chains["filter"]) == {"BT1-FORWARD", "BT1-ISOLATION"}
    assert rs.jumps == firewall.build("bt1", NETS6, PORTS6, version=4).jumps    # same chains, same jumps
    fwd, iso = rs.chains["filter"]["BT1-FORWARD"], rs.chains["filter"]["BT1-ISOLATION"]
    assert fwd[0] == "-j BT1-ISOLATION"
    assert "-i br1 ! -o br1 -j ACCEPT" in fwd and "-i br3 ! -o br3 -j ACCEPT" in fwd
    assert not any("br0" in r for r in fwd + iso)                  # no IPv6 on the default bridge
    assert "-i br2 ! -o br2 -j ACCEPT" not in fwd                  # internal: no way out
    assert "-i br2 ! -o br2 -j DROP" in iso and "-i br1 -o br3 -j DROP" in iso
    assert "-d fd12:3456:789a:1::2/128 -o br1 -p tcp -m tcp --dport 80 -j ACCEPT" in fwd
    post = rs.chains["nat"]["BT1-POSTROUTING"]
    assert "-s fd12:3456:789a:1::/64 ! -o br1 -j MASQUERADE" in post
    assert not any(r.startswith("-s fd12:3456:789a:2::/64 ! -o") for r in post)
    assert "-s fd12:3456:789a:3::/64 -o br3 -m conntrack --ctstate DNAT -j MASQUERADE" in post
    assert not any("172." in r for t in rs.chains.values() for c in t.values() for r in c)


def test_ipv6_published_ports_leave_loopback_to_the_proxy():
    dnat = firewall.build("bt1", NETS6, PORTS6, version=6).chains["nat"]["BT1-DNAT"]
    assert dnat[0] == "-d ::1/128 -j RETURN"
    assert "-p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd12:3456:789a:1::2]:80" in dnat
    assert "-d fd00::2/128 -p udp -m udp --dport 5353 -j DNAT --to-destination [fd12:3456:789a:3::2]:53" in dnat
    assert not any("8081" in r or "9000" in r for r in dnat)       # [::1] only; internal network
    dnat4 = firewall.build("bt1", NETS6, PORTS6, version=4).chains["nat"]["BT1-DNAT"]
    assert dnat4 == ["-p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.18.0.2:80"]


def test_no_ipv6_network_means_no_ipv6_chains():
    rs = firewall.build("bt1", NETS, PORTS, version=6)
    assert rs.chains == {"filter": {}, "nat": {}} and rs.jumps == {"filter": [], "nat": []}
    text = firewall.restore_payload("filter", SAVED, rs.chains["filter"], rs.jumps["filter"],
                                    set(firewall.chain_names("bt1")["filter"]))
    assert "-X BT1-FORWARD" in text.splitlines() and "-X BT1-ISOLATION" in text.splitlines()


def test_a_table_already_as_wanted_needs_no_restore():
    rs = firewall.build("bt1", NETS[:1], [])
    ours = set(firewall.chain_names("bt1")["filter"])
    rules = [f"-A {c} {r}" for c, rs_ in rs.chains["filter"].items() for r in rs_]
    same = "\n".join(["*filter", ":FORWARD ACCEPT [0:0]", ":BT1-FORWARD - [0:0]", ":BT1-ISOLATION - [0:0]",
                      "-A FORWARD -j BT1-FORWARD", *rules, "COMMIT"])
    assert firewall._in_place(same, rs.chains["filter"], rs.jumps["filter"], ours)
    assert not firewall._in_place(same.replace("-A FORWARD -j BT1-FORWARD", ""), rs.chains["filter"],
                                  rs.jumps["filter"], ours)                        # a jump missing
    assert not firewall._in_place(same + "\n-A FORWARD -j BT1-FORWARD", rs.chains["filter"],
                                  rs.jumps["filter"], ours)                        # a jump doubled
    assert not firewall._in_place(same, {**rs.chains["filter"], "BT1-FORWARD": rs.chains["filter"]["BT1-FORWARD"][:-1]},
                                  rs.jumps["filter"], ours)                        # a rule differs
    assert firewall._in_place("*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT", {}, [], ours)   # nothing, nothing wanted
    assert not firewall._in_place(same, {}, [], ours)                              # ours to remove


def test_a_host_without_ip6tables_runs_ipv4_networks_only(monkeypatch):
    monkeypatch.setitem(firewall.TOOLS, 6, ("berth-no-such-ip6tables-save", "berth-no-such-ip6tables-restore"))
    firewall._install("bt1", firewall.empty_ruleset(), 6)                  # nothing wanted: fine
    with pytest.raises(BerthError, match="not installed"):
        firewall._install("bt1", firewall.build("bt1", NETS6, [], version=6), 6)
