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
import contextlib
import json
import random
import selectors
import signal
import socket
import sys
from collections import Counter
from typing import Any, cast

_CONTROL = (b"\0STATS", b"\0RESET")
_TYPES = {1: "A", 28: "AAAA", 33: "SRV", 35: "NAPTR", 6: "SOA", 2: "NS"}


def _question_end(data: bytes) -> int:
    """Offset just past the first question (name, type, class); 0 if malformed."""
    pos = 12
    while pos < len(data):
        length = data[pos]
        if length == 0:
            return pos + 5 if pos + 5 <= len(data) else 0
        if length >= 0xC0:
            return 0
        pos += 1 + length
    return 0


def question(data: bytes) -> tuple[str, str] | None:
    """(name, type) of the first question of a DNS message, or None if malformed."""
    end = _question_end(data)
    if not end:
        return None
    labels = []
    pos = 12
    while data[pos]:
        labels.append(data[pos + 1 : pos + 1 + data[pos]].decode("ascii", "replace").lower())
        pos += 1 + data[pos]
    qtype = int.from_bytes(data[end - 4 : end - 2], "big")
    return ".".join(labels), _TYPES.get(qtype, str(qtype))


def _key(data: bytes) -> bytes:
    """ID + question: what a reply shares with its query."""
    return data[:2] + data[12 : _question_end(data)]


def _big_buffer(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)


def parse_addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


class _Upstream(asyncio.DatagramProtocol):
    """The one socket towards the server; replies go back to whoever asked."""

    def __init__(self, relay: _Relay) -> None:
        self.relay = relay

    def datagram_received(self, data: bytes, addr: Any) -> None:
        client = self.relay.pending.pop(_key(data), None)
        if client is not None and self.relay.transport is not None:
            self.relay.transport.sendto(data, client)


class _Relay(asyncio.DatagramProtocol):
    def __init__(self, delay: float, drop: float, seed: int, blackhole: bool) -> None:
        self.delay = delay
        self.drop = drop
        self.blackhole = blackhole
        self.random = random.Random(seed)
        self.transport: asyncio.DatagramTransport | None = None
        self.upstream: asyncio.DatagramTransport | None = None
        self.counts: Counter[tuple[str, str]] = Counter()
        self.clients: set[tuple[str, int]] = set()
        self.pending: dict[bytes, tuple[str, int]] = {}
        self.dropped = 0
        self.forwarded = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if data in _CONTROL:  # never a DNS message: those are at least 12 bytes
            self._control(data, addr)
            return
        q = question(data)
        if q is None:
            return
        self.counts[q] += 1
        self.clients.add(addr)
        if self.blackhole:
            return
        if self.drop and self.random.random() < self.drop:
            self.dropped += 1
            return
        if len(self.pending) > 1_000_000:  # bounded: forget queries never answered
            self.pending.clear()
        self.pending[_key(data)] = addr
        if self.delay:
            asyncio.get_running_loop().call_later(self.delay, self._forward, data)
        else:
            self._forward(data)

    def _forward(self, data: bytes) -> None:
        assert self.upstream is not None
        self.forwarded += 1
        self.upstream.sendto(data)

    def _control(self, data: bytes, addr: Any) -> None:
        assert self.transport is not None
        if data == b"\0STATS":
            body = {
                "counts": [[n, t, c] for (n, t), c in self.counts.items()],
                "dropped": self.dropped,
                "forwarded": self.forwarded,
                "client_sockets": len(self.clients),
            }
            self.transport.sendto(json.dumps(body).encode(), addr)
        elif data == b"\0RESET":
            self.counts.clear()
            self.dropped = self.forwarded = 0
            self.transport.sendto(b"{}", addr)


async def _main(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    relay = _Relay(args.delay, args.drop, args.seed, args.blackhole)
    transport, _ = await loop.create_datagram_endpoint(
        lambda: relay, local_addr=parse_addr(args.listen)
    )
    relay.upstream, _ = await loop.create_datagram_endpoint(
        lambda: _Upstream(relay), remote_addr=parse_addr(args.upstream)
    )
    _big_buffer(relay.upstream)
    _big_buffer(transport)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print("ready", flush=True)
    # Bounded: the parent stops us; never outlive it by more than an hour.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=3600)
    transport.close()
    relay.upstream.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--upstream", default="127.0.0.1:1")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--drop", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--blackhole", action="store_true")
    # select() takes microsecond timeouts; epoll/poll round the timers' wake-ups up to
    # whole milliseconds, which would add up to 1 ms to every injected delay.
    loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
    try:
        loop.run_until_complete(_main(parser.parse_args(argv)))
    finally:
        loop.close()


if __name__ == "__main__":
    main(sys.argv[1:])
