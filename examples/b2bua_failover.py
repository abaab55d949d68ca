"""A B2BUA's outbound leg: choose the next hop of each call with RFC 3263 failover.

Each incoming call (here: a URI from the command line) is handled by its own task,
as in a B2BUA. The task walks the targets of the URI in RFC 3263 order, sends an
OPTIONS to each (standing in for the INVITE a B2BUA would send), reports the
outcome to the shared Locator, and stops at the first server that answers. A 503,
a timeout or a transport error moves on to the next target (RFC 3263 §4.3). One
Locator serves every call, so an endpoint that failed for one call is tried last
by the calls after it (while the failure is remembered).

    python examples/b2bua_failover.py --zone examples/demo.zone --ipv4 \\
        sip:alice@example.test sip:bob@example.test

Exit status 0 when every call found a server, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path

from asip_locate import (
    IpStrategy,
    LocateError,
    LocateOptions,
    Locator,
    PingOptions,
    Target,
    send_options,
    tls_context,
)
from asip_locate.testing import ZoneServer


async def route_call(locator: Locator, call: int, uri: str, options: PingOptions) -> Target | None:
    """Find the server for one call; None when every target failed."""
    context = tls_context(options)  # reused by every TLS attempt of this call
    try:
        async with locator.locate(uri) as targets:
            async for target in targets:
                attempt = await send_options(target, uri, options, context=context)
                print(f"call {call}: {target.endpoint} ({target.host}): {attempt.describe()}")
                if attempt.answered:
                    locator.report_success(target)
                    return target
                if attempt.failure_reason is not None:  # None: skipped (e.g. WebSocket)
                    locator.report_failure(
                        target, reason=attempt.failure_reason, retry_after=attempt.retry_after
                    )
    except LocateError as exc:  # no DNS data, bad URI, lookup deadline
        print(f"call {call}: {exc}")
    return None


async def b2bua(args: argparse.Namespace) -> int:
    """Route every call concurrently through one Locator."""
    options = PingOptions(
        timeout=args.timeout, t1=args.t1, verify=not args.insecure, cafile=args.ca
    )
    async with contextlib.AsyncExitStack() as stack:
        nameservers = list(args.nameserver)
        if args.zone is not None:
            zone = await stack.enter_async_context(ZoneServer(args.zone.read_text()))
            nameservers.insert(0, zone.address)
        locate_options = LocateOptions(
            nameservers=tuple(nameservers),
            transports=tuple(args.transport or ("udp", "tcp", "tls")),
            ip_strategy=IpStrategy.IPV4_ONLY if args.ipv4 else IpStrategy.PREFER_IPV6,
        )
        locator = await stack.enter_async_context(Locator(locate_options))
        async with asyncio.TaskGroup() as calls:
            tasks = [
                calls.create_task(route_call(locator, number, uri, options))
                for number, uri in enumerate(args.uri, 1)
            ]
    chosen = [task.result() for task in tasks]
    for number, (uri, target) in enumerate(zip(args.uri, chosen, strict=True), 1):
        print(f"call {number} to {uri}: {'-> ' + str(target) if target else 'no server'}")
    return 0 if all(chosen) else 1


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the calls."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("uri", nargs="+", help="one SIP URI per call")
    parser.add_argument("--zone", type=Path, help="serve this zone file on 127.0.0.1")
    parser.add_argument("--nameserver", action="append", default=[], metavar="HOST:PORT")
    parser.add_argument("--transport", action="append", choices=["udp", "tcp", "tls"])
    parser.add_argument("--ipv4", action="store_true", help="IPv4 addresses only")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds per attempt")
    parser.add_argument("--t1", type=float, default=0.5, help="RFC 3261 T1 for UDP")
    parser.add_argument("--ca", help="CA certificates (PEM) for TLS")
    parser.add_argument("--insecure", action="store_true", help="skip TLS verification")
    return asyncio.run(b2bua(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
