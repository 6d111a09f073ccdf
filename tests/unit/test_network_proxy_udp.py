"""The loopback proxy's UDP relay, on the host's own [::1]: each client's datagrams reach the
target and the target's replies come back to that client; close() gives the port back."""

from __future__ import annotations

import asyncio
import socket

import pytest

from berth.network import proxy


class _Echo(asyncio.DatagramProtocol):
    """Stands in for the container: answers each datagram with its sender's port."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.transport.sendto(data + f"|{addr[1]}".encode(), addr)  # type: ignore[attr-defined]


async def _ask(port: int, text: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    got: asyncio.Future[bytes] = loop.create_future()

    class _Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple) -> None:
            if not got.done():
                got.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(_Client, remote_addr=("::1", port), family=socket.AF_INET6)
    try:
        transport.sendto(text)
        return await asyncio.wait_for(got, 5)
    finally:
        transport.close()


def _bound_udp6() -> socket.socket:
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind(("::1", 0))
    return s


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 in this Python")
def test_udp_relay_answers_each_client_and_closes() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        echo_t, _ = await loop.create_datagram_endpoint(_Echo, local_addr=("::1", 0), family=socket.AF_INET6)
        target = echo_t.get_extra_info("sockname")[:2]
        sock = _bound_udp6()
        port = sock.getsockname()[1]
        lp = proxy.LoopbackProxy()
        try:
            await lp.serve_udp(sock, target)
            one, two = await asyncio.gather(_ask(port, b"one"), _ask(port, b"two"))
            # each reply is its own client's, sent through a flow of its own towards the target
            assert one.startswith(b"one|") and two.startswith(b"two|")
            assert one.split(b"|")[1] != two.split(b"|")[1]
            again = await _ask(port, b"three")
            assert again.startswith(b"three|")
        finally:
            lp.close()
            echo_t.close()
        await asyncio.sleep(0)
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", port))   # the relay's socket is closed: the port is free again

    asyncio.run(main())
