"""A tiny scripted UDP SIP responder for tests (what Kamailio will not do)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import cast


def reply_to(request: bytes, status: str, extra: str = "") -> bytes:
    """A response copying Via, From, To, Call-ID and CSeq from ``request``."""
    head = request.decode().split("\r\n\r\n")[0].split("\r\n")
    copied = [line for line in head[1:] if re.match(r"(Via|From|To|Call-ID|CSeq):", line)]
    return (
        f"SIP/2.0 {status}\r\n" + "".join(f"{line}\r\n" for line in copied) + extra
        + "Content-Length: 0\r\n\r\n"
    ).encode()  # fmt: skip


class Responder(asyncio.DatagramProtocol):
    """A UDP SIP server that answers each request with ``answer(request)`` datagrams."""

    def __init__(self, answer: Callable[[bytes], list[bytes]]) -> None:
        self.answer = answer
        self.received: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.received.append(data)
        assert self.transport is not None
        for datagram in self.answer(data):
            self.transport.sendto(datagram, addr)


async def udp_responder(
    answer: Callable[[bytes], list[bytes]], host: str = "127.0.0.1", port: int = 0
) -> tuple[Responder, int]:
    """Start a Responder on ``host``:``port`` (0: any free port); returns it and its port."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: Responder(answer), local_addr=(host, port)
    )
    return protocol, transport.get_extra_info("sockname")[1]
