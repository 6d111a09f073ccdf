import asyncio

from dnslib import QTYPE, RCODE, DNSRecord

from berth.network.dns import Resolver

NAMES = {"web": ["172.18.0.2"], "db": ["172.18.0.3", "172.18.0.4"], "v6": ["172.19.0.2", "fd12:3456:789a:1::2"]}
REVERSE = {"172.18.0.2": "web.net", "fd12:3456:789a:1::2": "v6.net6"}


def make(upstreams=()):
    return Resolver(lambda n: NAMES.get(n), REVERSE.get, lambda: list(upstreams))


def ask(resolver, name, qtype="A"):
    q = DNSRecord.question(name, qtype)
    raw = asyncio.run(resolver.resolve(q.pack()))
    return DNSRecord.parse(raw)


def test_local_names_answered():
    r = ask(make(), "web")
    assert [str(a.rdata) for a in r.rr] == ["172.18.0.2"]
    r = ask(make(), "DB.")
    assert sorted(str(a.rdata) for a in r.rr) == ["172.18.0.3", "172.18.0.4"]
    r = ask(make(), "web", "AAAA")
    assert r.header.rcode == RCODE.NOERROR and not r.rr


def test_reverse_lookup():
    r = ask(make(), "2.0.18.172.in-addr.arpa", "PTR")
    assert r.rr[0].rtype == QTYPE.PTR and str(r.rr[0].rdata) == "web.net."


def test_ipv6_names_answered_with_aaaa():
    assert [str(a.rdata) for a in ask(make(), "v6", "AAAA").rr] == ["fd12:3456:789a:1::2"]
    assert [str(a.rdata) for a in ask(make(), "v6").rr] == ["172.19.0.2"]
    assert sorted(QTYPE[a.rtype] for a in ask(make(), "v6", "ANY").rr) == ["A", "AAAA"]


def test_ipv6_reverse_lookup():
    name = ".".join(reversed("fd123456789a00010000000000000002")) + ".ip6.arpa"
    r = ask(make(), name, "PTR")
    assert r.rr[0].rtype == QTYPE.PTR and str(r.rr[0].rdata) == "v6.net6."
    assert ask(make(), "2.0.0.0.ip6.arpa", "PTR").header.rcode == RCODE.REFUSED   # partial: not ours


def test_unknown_names_refused_without_upstreams():
    assert ask(make(), "pypi.org").header.rcode == RCODE.REFUSED


def test_unknown_names_forwarded_to_upstream():
    async def run():
        # a fake upstream on loopback answering everything with 1.2.3.4
        class Up(asyncio.DatagramProtocol):
            def connection_made(self, t):
                self.t = t

            def datagram_received(self, data, addr):
                q = DNSRecord.parse(data)
                a = q.reply()
                a.add_answer(*__import__("dnslib").RR.fromZone(f"{q.q.qname} 60 A 1.2.3.4"))
                self.t.sendto(a.pack(), addr)
        loop = asyncio.get_running_loop()
        t, _ = await loop.create_datagram_endpoint(Up, local_addr=("127.0.0.1", 0))
        port = t.get_extra_info("sockname")[1]
        import berth.network.dns as dns
        orig = dns._forward_udp

        async def fwd(data, server):
            # same code path, the test upstream listens on a high port
            loop = asyncio.get_running_loop()
            fut = loop.create_future()
            tr, _ = await loop.create_datagram_endpoint(lambda: dns._UpstreamProtocol(fut, data[:2]),
                                                        remote_addr=(server, port))
            try:
                tr.sendto(data)
                return await asyncio.wait_for(fut, 2)
            finally:
                tr.close()
        dns._forward_udp = fwd
        try:
            raw = await make(["127.0.0.1"]).resolve(DNSRecord.question("pypi.org").pack())
        finally:
            dns._forward_udp = orig
            t.close()
        return DNSRecord.parse(raw)
    r = asyncio.run(run())
    assert [str(a.rdata) for a in r.rr] == ["1.2.3.4"]
