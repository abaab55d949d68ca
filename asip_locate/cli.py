"""asip-locate: show where a SIP URI leads (RFC 3263), from the command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import sys
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from asip_locate._errors import (
    InvalidUriError,
    LocateError,
)
from asip_locate._health import EndpointHealth
from asip_locate._locator import Locator
from asip_locate._model import Query, Target, Transport
from asip_locate._options import IpStrategy, LocateOptions
from asip_locate._ping import Attempt, PingOptions, ping

EXIT_FOUND, EXIT_NONE, EXIT_USAGE = 0, 1, 2


def add_lookup_options(parser: argparse.ArgumentParser) -> None:
    """The DNS and transport options shared by every asip-locate command."""
    parser.add_argument(
        "--nameserver",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="DNS server to ask (repeatable; default: the system's)",
    )
    parser.add_argument(
        "--zone",
        type=Path,
        metavar="FILE",
        help="serve this zone file on 127.0.0.1 and resolve against it (offline demo)",
    )
    parser.add_argument(
        "--transport",
        action="append",
        default=[],
        choices=[t.value for t in Transport],
        help="a transport you support, most preferred first (default: udp tcp tls)",
    )
    family = parser.add_mutually_exclusive_group()
    family.add_argument("--ipv4", action="store_true", help="IPv4 addresses only")
    family.add_argument("--ipv6", action="store_true", help="IPv6 addresses only")
    parser.add_argument("--no-naptr", action="store_true", help="skip the NAPTR step")
    parser.add_argument("--seed", type=int, help="seed for SRV weighted ordering")
    parser.add_argument(
        "--timeout", type=float, default=2.0, help="seconds per DNS try (default 2)"
    )
    parser.add_argument("--deadline", type=float, default=10.0, help="seconds for the whole lookup")


def options_from(args: argparse.Namespace, nameservers: Sequence[str]) -> LocateOptions:
    """LocateOptions from parsed lookup options."""
    strategy = IpStrategy.PREFER_IPV6
    if args.ipv4:
        strategy = IpStrategy.IPV4_ONLY
    elif args.ipv6:
        strategy = IpStrategy.IPV6_ONLY
    extra: dict[str, Any] = {}
    if args.transport:
        extra["transports"] = tuple(args.transport)
    return LocateOptions(
        nameservers=tuple(nameservers),
        ip_strategy=strategy,
        use_naptr=not args.no_naptr,
        seed=args.seed,
        timeout=args.timeout,
        deadline=args.deadline,
        **extra,
    )


@contextlib.asynccontextmanager
async def lookup_locator(args: argparse.Namespace) -> AsyncIterator[Locator]:
    """A Locator for the parsed options, serving ``--zone`` on loopback if given."""
    nameservers = list(args.nameserver)
    async with contextlib.AsyncExitStack() as stack:
        if args.zone is not None:
            from asip_locate.testing import ZoneServer

            server = await stack.enter_async_context(ZoneServer(args.zone.read_text()))
            nameservers.insert(0, server.address)
        locator = await stack.enter_async_context(Locator(options_from(args, nameservers)))
        yield locator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asip-locate",
        description="Show where a SIP request for URI goes (RFC 3263: NAPTR, SRV, A/AAAA),"
        " or with --via where a response goes (RFC 3263 §5, RFC 3261 §18.2.2, RFC 3581).",
        epilog="Exit status: 0 targets found, 1 none found, 2 bad usage, bad URI or bad Via.",
    )
    parser.add_argument("uri", nargs="?", help="SIP/SIPS URI, or host[:port]")
    parser.add_argument(
        "--via",
        metavar="VIA",
        help="instead of a URI: the top Via of a request ('SIP/2.0/UDP host;received=...');"
        " prints where its response goes",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON array")
    parser.add_argument(
        "--explain", action="store_true", help="show how each target was found, as a tree"
    )
    parser.add_argument(
        "--sips", action="store_true", help="resolve as SIPS (the Request-URI is SIPS)"
    )
    add_lookup_options(parser)
    return parser


def target_json(target: Target) -> dict[str, Any]:
    """The --json form of one target."""
    return {
        "transport": target.transport.value,
        "address": str(target.address),
        "port": target.port,
        "host": target.host,
        "tls_name": target.tls_name,
        "ttl": target.ttl,
    }


def print_targets(targets: Sequence[Target], out: TextIO) -> None:
    """One readable line per target, numbered in the order to try them."""
    for number, target in enumerate(targets, 1):
        address = f"[{target.address}]" if target.address.version == 6 else target.address
        endpoint = f"{address}:{target.port}"
        line = f"{number:>2}. {target.transport:<8} {endpoint:<24} {target.host}"
        if target.tls_name:
            line += f"  tls_name={target.tls_name}"
        if target.ttl is not None:
            line += f"  ttl={target.ttl}"
        out.write(line + "\n")


def explain(
    targets: Sequence[Target], out: TextIO, *, health: Iterable[EndpointHealth] = ()
) -> None:
    """Print the targets as a tree of the DNS queries that found them.

    ``health`` (e.g. ``locator.health()``) marks the targets demoted by reported
    failures; their numbers show they are tried after the healthy ones.
    """
    demoted = {entry.endpoint: entry for entry in health}
    tree: dict[Query | str, Any] = {}
    for number, target in enumerate(targets, 1):
        node = tree
        for query in target.path:
            node = node.setdefault(query, {})
        label = f"#{number} {target.endpoint}"
        entry = demoted.get(target.endpoint)
        if entry is not None:
            label += f"  [demoted: {entry.reason}, {entry.failures} failure(s)"
            if entry.retry_after is not None:
                label += f", retry-after {entry.retry_after:g}s"
            label += "]"
        node[label] = {}

    def walk(node: dict[Query | str, Any], prefix: str) -> None:
        items = list(node.items())
        for index, (key, child) in enumerate(items):
            last = index == len(items) - 1
            out.write(f"{prefix}{'└─ ' if last else '├─ '}{key}\n")
            walk(child, prefix + ("   " if last else "│  "))

    walk(tree, "")


async def _run(args: argparse.Namespace, out: TextIO) -> int:
    async with lookup_locator(args) as locator:
        if args.via is not None:
            targets = await locator.resolve_response(args.via)
        else:
            targets = await locator.resolve(args.uri, as_sips=args.sips)
        health = locator.health()
    if args.json:
        json.dump([target_json(t) for t in targets], out, indent=2)
        out.write("\n")
    elif args.explain:
        explain(targets, out, health=health)
    else:
        print_targets(targets, out)
    return EXIT_FOUND


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["ping"]:
        return ping_main(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if (args.uri is None) == (args.via is None):
        parser.error("give exactly one of URI or --via")
    if args.via is not None and args.sips:
        parser.error("--sips applies to a URI, not to --via")
    return run_command(_run(args, sys.stdout))


def _ping_parser() -> argparse.ArgumentParser:
    # "resolve": this command's --timeout is per SIP attempt; DNS's becomes --dns-timeout.
    parser = argparse.ArgumentParser(
        prog="asip-locate ping",
        description="Send SIP OPTIONS to each target of URI in RFC 3263 order until a "
        "server answers (a final response other than 503).",
        epilog="Exit status: 0 a server answered, 1 none did, 2 bad usage or bad URI.",
        conflict_handler="resolve",
    )
    parser.add_argument("uri", help="SIP/SIPS URI, or host[:port]")
    parser.add_argument(
        "--sips", action="store_true", help="resolve as SIPS (the Request-URI is SIPS)"
    )
    add_lookup_options(parser)
    parser.add_argument(
        "--timeout",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds per OPTIONS attempt, connecting included (default 2)",
    )
    parser.add_argument(
        "--dns-timeout",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds per DNS try (default 2)",
    )
    parser.add_argument(
        "--t1",
        type=float,
        default=0.5,
        metavar="S",
        help="RFC 3261 T1: first UDP retransmission interval (default 0.5)",
    )
    parser.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
    parser.add_argument(
        "--ca", type=Path, metavar="FILE", help="PEM file of CA certificates to trust for TLS"
    )
    return parser


def print_attempt(number: int, attempt: Attempt, out: TextIO) -> None:
    """One line per OPTIONS attempt: target, transport, outcome, timing."""
    target = attempt.target
    address = f"[{target.address}]" if target.address.version == 6 else target.address
    endpoint = f"{address}:{target.port}"
    out.write(
        f"{number:>2}. {target.transport:<8} {endpoint:<24} {target.host:<20} "
        f"{attempt.describe()}\n"
    )
    out.flush()


async def _run_ping(args: argparse.Namespace, out: TextIO) -> int:
    options = PingOptions(
        timeout=args.timeout,
        t1=args.t1,
        t2=max(4.0, args.t1),
        verify=not args.insecure,
        cafile=str(args.ca) if args.ca is not None else None,
    )
    if args.ca is not None and not args.ca.is_file():
        raise ValueError(f"--ca {args.ca}: no such file")
    lookup = argparse.Namespace(**vars(args))
    lookup.timeout = args.dns_timeout
    counter = itertools.count(1)
    async with lookup_locator(lookup) as locator:
        attempts = await ping(
            locator,
            args.uri,
            options,
            as_sips=args.sips,
            on_attempt=lambda attempt: print_attempt(next(counter), attempt, out),
        )
    if attempts and attempts[-1].answered:
        return EXIT_FOUND
    out.write(f"no server answered for {args.uri}\n")
    return EXIT_NONE


def ping_main(argv: Sequence[str]) -> int:
    """``asip-locate ping URI``: OPTIONS each target until one answers."""
    args = _ping_parser().parse_args(list(argv))
    return run_command(_run_ping(args, sys.stdout))


def run_command(command: Any) -> int:
    """Run a command coroutine, turning library errors into exit codes."""
    try:
        return int(asyncio.run(command))
    except InvalidUriError as exc:
        print(f"asip-locate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LocateError as exc:  # NoTargetsError, LocateTimeoutError, ...
        print(f"asip-locate: {exc}", file=sys.stderr)
        return EXIT_NONE
    except (OSError, ValueError) as exc:
        print(f"asip-locate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
