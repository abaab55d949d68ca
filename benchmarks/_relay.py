"""A latency-injecting, lossy UDP relay in front of a DNS server (run as its own process).

``python -m benchmarks._relay --listen 127.0.0.3:5300 --upstream 127.0.0.2:5301
--delay 0.02 --drop 0.3 --seed 1`` forwards each client datagram to the upstream
server ``delay`` seconds after it arrived (or drops it with probability ``drop``) and
sends replies straight back. It prints ``ready`` once bound. It also counts the
questions it received per (name, type); a datagram ``\\0STATS`` returns the counts
as JSON and ``\\0RESET`` clears them. ``--blackhole`` binds and never answers (a dead
nameserver). It runs in a process of its own so that its work does not share the
benchmark's event loop or CPU accounting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import socket
import sys
from collections import Counter
from typing import Any, cast

_TYPES = {1: "A", 28: "AAAA", 33: "SRV", 35: "NAPTR", 6: "SOA", 2: "NS"}


def question(data: bytes) -> tuple[str, str] | None:
    """(name, type) of the first question of a DNS message, or None if malformed."""
    labels = []
    pos = 12
    try:
        while True:
            length = data[pos]
            if length == 0 or length >= 0xC0:
                break
            labels.append(data[pos + 1 : pos + 1 + length].decode("ascii", "replace").lower())
            pos += 1 + length
        qtype = int.from_bytes(data[pos + 1 : pos + 3], "big")
    except IndexError:
        return None
    return ".".join(labels), _TYPES.get(qtype, str(qtype))


def _big_buffer(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)


def parse_addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


class _Upstream(asyncio.DatagramProtocol):
    """One upstream socket per client address: replies go back to that client."""

    def __init__(self, relay: _Relay, client: tuple[str, int]) -> None:
        self.relay = relay
        self.client = client

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.relay.transport is not None:
            self.relay.transport.sendto(data, self.client)


class _Relay(asyncio.DatagramProtocol):
    def __init__(self, upstream: tuple[str, int], delay: float, drop: float, seed: int, blackhole: bool) -> None:
        self.upstream = upstream
        self.delay = delay
        self.drop = drop
        self.blackhole = blackhole
        self.random = random.Random(seed)
        self.transport: asyncio.DatagramTransport | None = None
        self.counts: Counter[tuple[str, str]] = Counter()
        self.dropped = 0
        self.forwarded = 0
        self._up: dict[tuple[str, int], asyncio.DatagramTransport] = {}
        self._connecting: set[tuple[str, int]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if data.startswith(b"\0"):
            self._control(data, addr)
            return
        q = question(data)
        if q is not None:
            self.counts[q] += 1
        if self.blackhole:
            return
        if self.drop and self.random.random() < self.drop:
            self.dropped += 1
            return
        loop = asyncio.get_running_loop()
        if self.delay:
            loop.call_later(self.delay, self._forward, data, addr)
        else:
            self._forward(data, addr)

    def _forward(self, data: bytes, client: tuple[str, int]) -> None:
        up = self._up.get(client)
        if up is not None:
            self.forwarded += 1
            up.sendto(data)
            return
        if client not in self._connecting:
            self._connecting.add(client)
            loop = asyncio.get_running_loop()
            future = asyncio.ensure_future(
                loop.create_datagram_endpoint(
                    lambda: _Upstream(self, client), remote_addr=self.upstream
                )
            )
            future.add_done_callback(lambda f: self._connected(client, f))
        # Still connecting: retry once it is up (a few hundred microseconds).
        asyncio.get_running_loop().call_later(0.0005, self._forward, data, client)

    def _connected(self, client: tuple[str, int], future: asyncio.Future[Any]) -> None:
        transport, _protocol = future.result()
        _big_buffer(transport)
        self._up[client] = transport

    def _control(self, data: bytes, addr: Any) -> None:
        assert self.transport is not None
        if data == b"\0STATS":
            body = {
                "counts": [[n, t, c] for (n, t), c in self.counts.items()],
                "dropped": self.dropped,
                "forwarded": self.forwarded,
            }
            self.transport.sendto(json.dumps(body).encode(), addr)
        elif data == b"\0RESET":
            self.counts.clear()
            self.dropped = self.forwarded = 0
            self.transport.sendto(b"{}", addr)


async def _main(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    relay = _Relay(parse_addr(args.upstream), args.delay, args.drop, args.seed, args.blackhole)
    transport, _ = await loop.create_datagram_endpoint(lambda: relay, local_addr=parse_addr(args.listen))
    _big_buffer(transport)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print("ready", flush=True)
    # Bounded: the parent stops us; never outlive it by more than an hour.
    try:
        await asyncio.wait_for(stop.wait(), timeout=3600)
    except TimeoutError:
        pass
    transport.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--upstream", default="127.0.0.1:1")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--drop", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--blackhole", action="store_true")
    asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
