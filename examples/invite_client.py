"""An INVITE client with RFC 3263 failover, over UDP, written against the public API.

The client walks the targets of a URI in RFC 3263 order and runs one RFC 3261 INVITE
client transaction (§17.1.1) per target, each a new transaction with a new branch
(RFC 3263 §4.3):

* Timer A retransmits the INVITE (T1, doubling); **Timer B** (64*T1) ends the attempt
  with a timeout: the target is reported (``FailureReason.TIMEOUT``) and the next one
  is tried. An ICMP error is a transport failure: reported, next target.
* A **1xx** stops the retransmissions and **ends failover**: some server has the call,
  so the client waits for its final response and tries no other target.
* A **non-2xx final response** is acknowledged by the transaction (ACK with the INVITE's
  branch, §17.1.1.3). A 503 is reported with its Retry-After and the next target is
  tried, unless a 1xx came first; any other status ends the call attempt.
* A **2xx** is acknowledged by the client (ACK in a new transaction, §13.2.2.4). The ACK
  goes to the same target: this example keeps no dialog state (Contact, Record-Route),
  and it does not hang up.

UDP only, to stay short: TCP and TLS would frame messages and skip retransmissions.

    python examples/invite_client.py --zone examples/demo.zone --ipv4 sip:alice@example.test

Exit status 0 when a 2xx came, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from asip_locate import (
    FailureReason,
    IpStrategy,
    LocateError,
    LocateOptions,
    Locator,
    Target,
)


@dataclass
class Response:
    """The parts of a SIP response this client needs."""

    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)  # lower-case name: first value

    @classmethod
    def parse(cls, data: bytes) -> Response | None:
        """A response, or None for anything else (requests, garbage)."""
        head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace").split("\r\n")
        parts = head[0].split(" ", 2)
        if len(parts) < 2 or parts[0] != "SIP/2.0" or not parts[1].isdigit():
            return None
        response = cls(int(parts[1]), parts[2] if len(parts) > 2 else "")
        for line in head[1:]:
            name, colon, value = line.partition(":")
            if colon:
                response.headers.setdefault(name.strip().lower(), value.strip())
        return response

    def retry_after(self) -> float | None:
        """Retry-After in seconds (RFC 3261 §20.33), if present and well formed."""
        value = self.headers.get("retry-after", "").split("(")[0].split(";")[0].strip()
        return float(value) if value.isdigit() else None

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"


class _Transaction(asyncio.DatagramProtocol):
    """The UDP socket of one INVITE client transaction: responses and ICMP errors."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes | Exception] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.received.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        self.received.put_nowait(exc)


@dataclass
class Call:
    """One call: the request's fixed parts."""

    uri: str
    call_id: str = field(default_factory=lambda: secrets.token_hex(8))
    from_tag: str = field(default_factory=lambda: secrets.token_hex(4))
    cseq: int = 1

    def request(self, method: str, branch: str, local: str, to: str | None = None) -> bytes:
        """INVITE or ACK (same CSeq number, RFC 3261 §17.1.1.3 and §13.2.2.4)."""
        body = "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
        content = ("Content-Type: application/sdp\r\n", body) if method == "INVITE" else ("", "")
        return (
            f"{method} {self.uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {local};branch={branch};rport\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <sip:example@invalid>;tag={self.from_tag}\r\n"
            f"To: {to or f'<{self.uri}>'}\r\n"
            f"Call-ID: {self.call_id}\r\n"
            f"CSeq: {self.cseq} {method}\r\n"
            f"Contact: <sip:example@{local}>\r\n"
            f"{content[0]}Content-Length: {len(content[1])}\r\n\r\n{content[1]}"
        ).encode()


def _ours(response: Response, branch: str) -> bool:
    """RFC 3261 §17.1.3: the top Via's branch and the CSeq method must match."""
    via = response.headers.get("via", "")
    return f"branch={branch}" in via and response.headers.get("cseq", "").endswith(" INVITE")


async def invite(
    target: Target, call: Call, *, t1: float, ring_timeout: float
) -> tuple[Response | None, bool, str]:
    """One INVITE transaction to ``target``.

    Returns (final response or None, whether a 1xx came, what went wrong if nothing came).
    """
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        _Transaction, remote_addr=(str(target.address), target.port)
    )
    try:
        host, port = transport.get_extra_info("sockname")[:2]
        local = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        branch = "z9hG4bK" + secrets.token_hex(8)
        transport.sendto(call.request("INVITE", branch, local))
        provisional = False
        interval = t1  # Timer A: T1, then doubling (no T2 cap for INVITE)
        next_send = loop.time() + interval
        timer_b = loop.time() + 64 * t1
        ring_until = 0.0
        while True:
            deadline = ring_until if provisional else min(next_send, timer_b)
            try:
                async with asyncio.timeout_at(deadline):
                    item = await protocol.received.get()
            except TimeoutError:
                if provisional:
                    return None, True, f"no final response within {ring_timeout:g} s"
                if loop.time() >= timer_b:
                    return None, False, f"Timer B: no response within 64*T1 = {64 * t1:g} s"
                transport.sendto(call.request("INVITE", branch, local))  # Timer A fired
                interval *= 2
                next_send = loop.time() + interval
                continue
            if isinstance(item, Exception):  # an ICMP error, e.g. port unreachable
                if provisional:
                    continue  # the server has the call; an ICMP error now changes nothing
                return None, False, f"transport: {getattr(item, 'strerror', None) or item}"
            response = Response.parse(item)
            if response is None or not _ours(response, branch):
                continue
            if response.status < 200:
                print(f"   {response}")
                if not provisional:
                    provisional = True
                    ring_until = loop.time() + ring_timeout
                continue
            to = response.headers.get("to")
            # Non-2xx: the transaction's ACK (same branch). 2xx: the client's (new branch).
            ack_branch = branch if response.status >= 300 else "z9hG4bK" + secrets.token_hex(8)
            transport.sendto(call.request("ACK", ack_branch, local, to=to))
            return response, provisional, ""
    finally:
        transport.close()


async def place_call(locator: Locator, uri: str, *, t1: float, ring_timeout: float) -> int:
    """Try the targets of ``uri`` until one takes the call; 0 on a 2xx."""
    call = Call(uri)
    try:
        async with locator.locate(uri) as targets:
            async for target in targets:
                print(f"-> {target}: INVITE")
                response, provisional, problem = await invite(
                    target, call, t1=t1, ring_timeout=ring_timeout
                )
                if response is None:
                    print(f"   {problem}")
                    if provisional:
                        return 1  # a 1xx came: no failover (RFC 3263 §4.3)
                    reason = FailureReason.TRANSPORT if problem.startswith("transport") else None
                    locator.report_failure(target, reason=reason or FailureReason.TIMEOUT)
                    continue
                if response.status == 503 and not provisional:
                    retry = response.retry_after()
                    print(f"   {response}: ACK sent, trying the next target")
                    locator.report_failure(target, reason="503", retry_after=retry)
                    continue
                locator.report_success(target)  # the server answered
                if response.status < 300:
                    print(f"   {response}: call established, ACK sent")
                    return 0
                print(f"   {response}: ACK sent, call failed")
                return 1
    except LocateError as exc:  # no DNS data, bad URI, lookup deadline
        print(f"{uri}: {exc}")
        return 1
    print(f"{uri}: no target took the call")
    return 1


async def run(args: argparse.Namespace) -> int:
    """One Locator (UDP targets only) and one call."""
    async with contextlib.AsyncExitStack() as stack:
        nameservers = list(args.nameserver)
        if args.zone is not None:
            from asip_locate.testing import ZoneServer  # pip install 'asip-locate[testing]'

            zone = await stack.enter_async_context(ZoneServer(args.zone.read_text()))
            nameservers.insert(0, zone.address)
        options = LocateOptions(
            nameservers=tuple(nameservers),
            transports=("udp",),
            ip_strategy=IpStrategy.IPV4_ONLY if args.ipv4 else IpStrategy.PREFER_IPV6,
        )
        locator = await stack.enter_async_context(Locator(options))
        return await place_call(locator, args.uri, t1=args.t1, ring_timeout=args.ring_timeout)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and place the call."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("uri", help="the SIP URI to call")
    parser.add_argument("--zone", type=Path, help="serve this zone file on 127.0.0.1")
    parser.add_argument("--nameserver", action="append", default=[], metavar="HOST:PORT")
    parser.add_argument("--ipv4", action="store_true", help="IPv4 addresses only")
    parser.add_argument("--t1", type=float, default=0.5, help="RFC 3261 T1 (Timer B = 64*T1)")
    parser.add_argument(
        "--ring-timeout", type=float, default=60.0, help="seconds to wait after a 1xx"
    )
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
