"""asip-locate: show where a SIP URI leads (RFC 3263), from the command line.

``asip-locate lookup URI`` (or just ``asip-locate URI``) prints the targets in RFC 3263
order; ``asip-locate ping URI`` sends OPTIONS to them until a server answers. See
``docs/cli.md`` for the options, the exit statuses and the ``--json`` schema.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import sys
from collections.abc import AsyncIterator, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TextIO

from asip_locate import __version__
from asip_locate._errors import InvalidUriError, LocateError, LocateTimeoutError, NoTargetsError
from asip_locate._health import EndpointHealth
from asip_locate._locator import Locator
from asip_locate._model import (
    Answer,
    Discarded,
    NaptrRecord,
    Query,
    RType,
    SrvRecord,
    Status,
    Target,
    Transport,
)
from asip_locate._options import IpStrategy, LocateOptions, parse_nameserver
from asip_locate._ping import Attempt, PingOptions, ping

EXIT_FOUND, EXIT_NONE, EXIT_USAGE = 0, 1, 2
JSON_VERSION = 1
"""The ``--json`` schema version (the envelope's ``"version"``); see docs/cli.md."""
TESTING_HINT = "pip install 'asip-locate[testing]'"


# --- option values ----------------------------------------------------------------------


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds greater than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be finite and greater than 0, not {text!r}")
    return value


def nameserver(text: str) -> str:
    """An argparse type: ``ip``, ``ip:port`` or ``[ipv6]:port`` (``parse_nameserver``)."""
    try:
        address, port = parse_nameserver(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad {exc}") from None
    if port is None:
        return address
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def zone_file(text: str) -> Path:
    """An argparse type: an existing zone file."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text!r}")
    return path


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (and exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --- parsers ----------------------------------------------------------------------------


def add_lookup_options(parser: argparse.ArgumentParser) -> None:
    """The DNS and transport options shared by every asip-locate command."""
    parser.add_argument(
        "--nameserver",
        action="append",
        default=[],
        type=nameserver,
        metavar="HOST:PORT",
        help="DNS server to ask: ip, ip:port or [ipv6]:port (repeatable; default: the system's)",
    )
    parser.add_argument(
        "--zone",
        type=zone_file,
        metavar="FILE",
        help="serve this zone file on 127.0.0.1 and resolve against it (offline demo;"
        f" needs {TESTING_HINT})",
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
        "--timeout", type=seconds, default=2.0, metavar="S", help="seconds per DNS try (default 2)"
    )
    parser.add_argument(
        "--deadline",
        type=seconds,
        default=10.0,
        metavar="S",
        help="seconds for the whole lookup (default 10)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help=f"print one JSON object (schema version {JSON_VERSION}, see docs/cli.md)",
    )
    parser.add_argument(
        "--sips", action="store_true", help="resolve as SIPS (the Request-URI is SIPS)"
    )


def _top_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="asip-locate",
        description="Where does a SIP request go? RFC 3263 (NAPTR, SRV, A/AAAA) over c-ares.",
        epilog="'asip-locate URI' is short for 'asip-locate lookup URI' (to look up a host"
        " named like a command, write sip:lookup or sip:ping).",
    )
    parser.add_argument("--version", action="version", version=f"asip-locate {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    commands.add_parser(
        "lookup",
        help="print the targets of URI in RFC 3263 order (or, with --via, of a response)",
        add_help=False,
    )
    commands.add_parser(
        "ping", help="send OPTIONS to each target of URI until a server answers", add_help=False
    )
    return parser


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="asip-locate lookup",
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
    parser.add_argument(
        "--explain",
        action="store_true",
        help="show how each target was found, and what produced nothing, as a tree"
        ' (with --json: an "explain" key)',
    )
    add_lookup_options(parser)
    return parser


def _ping_parser() -> argparse.ArgumentParser:
    # "resolve": this command's --timeout is per SIP attempt; DNS's becomes --dns-timeout.
    parser = _Parser(
        prog="asip-locate ping",
        description="Send SIP OPTIONS to each target of URI in RFC 3263 order until a "
        "server answers (a final response other than 503).",
        epilog="Exit status: 0 a server answered, 1 none did, 2 bad usage or bad URI.",
        conflict_handler="resolve",
    )
    parser.add_argument("uri", help="SIP/SIPS URI, or host[:port]")
    add_lookup_options(parser)
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=2.0,
        metavar="S",
        help="seconds per OPTIONS attempt, connecting included (default 2)",
    )
    parser.add_argument(
        "--dns-timeout", type=seconds, default=2.0, metavar="S", help="seconds per DNS try"
    )
    parser.add_argument(
        "--t1",
        type=seconds,
        default=0.5,
        metavar="S",
        help="RFC 3261 T1: first UDP retransmission interval (default 0.5)",
    )
    parser.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
    parser.add_argument(
        "--ca", type=Path, metavar="FILE", help="PEM file of CA certificates to trust for TLS"
    )
    return parser


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


class UsageError(ValueError):
    """A problem with the command line found after parsing (exit status 2)."""


@contextlib.asynccontextmanager
async def lookup_locator(args: argparse.Namespace) -> AsyncIterator[Locator]:
    """A Locator for the parsed options, serving ``--zone`` on loopback if given."""
    nameservers = list(args.nameserver)
    async with contextlib.AsyncExitStack() as stack:
        if args.zone is not None:
            try:
                from asip_locate.testing import ZoneServer
            except ModuleNotFoundError as exc:
                if exc.name != "dnslib":
                    raise
                raise UsageError(f"--zone needs dnslib: {TESTING_HINT}") from None

            server = await stack.enter_async_context(ZoneServer(args.zone.read_text()))
            nameservers.insert(0, server.address)
        locator = await stack.enter_async_context(Locator(options_from(args, nameservers)))
        yield locator


# --- output -----------------------------------------------------------------------------


def _endpoint_text(target: Target) -> str:
    address = f"[{target.address}]" if target.address.version == 6 else str(target.address)
    return f"{address}:{target.port}"


def print_targets(targets: Sequence[Target], out: TextIO) -> None:
    """One readable line per target, numbered in the order to try them."""
    for number, target in enumerate(targets, 1):
        line = f"{number:>2}. {target.transport:<8} {_endpoint_text(target):<24} {target.host}"
        if target.tls_name:
            line += f"  tls_name={target.tls_name}"
        if target.ttl is not None:
            line += f"  ttl={target.ttl}"
        if target.stale:
            line += "  stale"
        out.write(line + "\n")


def query_json(query: Query) -> dict[str, Any]:
    """The --json form of one DNS question."""
    return {"name": query.name, "type": query.rtype.value}


def target_json(target: Target) -> dict[str, Any]:
    """The --json form of one target."""
    return {
        "transport": target.transport.value,
        "address": str(target.address),
        "port": target.port,
        "host": target.host,
        "tls_name": target.tls_name,
        "ttl": target.ttl,
        "stale": target.stale,
        "path": [query_json(query) for query in target.path],
    }


def answer_json(answer: Answer) -> dict[str, Any]:
    """The --json form of one DNS answer (negative and failed ones included)."""
    return {
        **query_json(answer.query),
        "status": answer.status.value,
        "records": [str(record) for record in answer.records],
        "ttl": answer.ttl,
        "cnames": list(answer.cnames),
        "stale": answer.stale,
        "detail": answer.detail,
    }


def discarded_json(item: Discarded) -> dict[str, Any]:
    """The --json form of one record the planner did not use."""
    return {**query_json(item.query), "record": item.record, "why": item.why}


def health_json(entry: EndpointHealth) -> dict[str, Any]:
    """The --json form of one demoted endpoint."""
    return {
        "transport": entry.endpoint.transport.value,
        "address": str(entry.endpoint.address),
        "port": entry.endpoint.port,
        "reason": str(entry.reason),
        "failures": entry.failures,
        "retry_after": entry.retry_after,
    }


def attempt_json(attempt: Attempt) -> dict[str, Any]:
    """The --json form of one OPTIONS attempt."""
    return {
        "target": target_json(attempt.target),
        "outcome": attempt.outcome.value,
        "status": attempt.status,
        "reason": None if attempt.response is None else attempt.response.reason,
        "retry_after": attempt.retry_after,
        "rtt": attempt.rtt,
        "elapsed": attempt.elapsed,
        "sends": attempt.sends,
        "detail": attempt.detail,
    }


def write_json(document: dict[str, Any], out: TextIO) -> None:
    """Write one JSON document and a newline."""
    json.dump(document, out, indent=2)
    out.write("\n")


@dataclass
class _Node:
    label: str
    children: list[_Node] = field(default_factory=list)


def _target_label(target: Target, number: int, demoted: dict[Any, EndpointHealth]) -> str:
    label = f"#{number} {target.endpoint}"
    if target.stale:
        label += "  (stale)"
    entry = demoted.get(target.endpoint)
    if entry is not None:
        label += f"  [demoted: {entry.reason}, {entry.failures} failure(s)"
        if entry.retry_after is not None:
            label += f", retry-after {entry.retry_after:g}s"
        label += "]"
    return label


def _answer_label(answer: Answer) -> str:
    if answer.status is Status.UNREACHABLE:
        detail = f" ({answer.detail})" if answer.detail else ""
        return f"{answer.query}: unreachable nameserver{detail}"
    label = str(answer)
    if answer.status is Status.NOERROR and answer.ttl is not None:
        label += f", ttl {answer.ttl}"
    return label + ("  (stale)" if answer.stale else "")


class _Tree:
    """Builds the --explain tree from the answers, the targets and the discarded records."""

    def __init__(
        self,
        targets: Sequence[Target],
        attempts: Iterable[Answer],
        discarded: Iterable[Discarded],
        health: Iterable[EndpointHealth],
    ) -> None:
        self.answers: dict[Query, Answer] = {answer.query: answer for answer in attempts}
        self.additional: set[Query] = set()
        for answer in list(self.answers.values()):
            for extra in answer.additional:  # A/AAAA from an SRV reply's additional section
                if extra.query not in self.answers:
                    self.answers[extra.query] = extra
                    self.additional.add(extra.query)
        self.why: dict[tuple[Query, str], str] = {}
        self.loose: dict[Query, list[Discarded]] = {}
        for item in discarded:
            self.why.setdefault((item.query, item.record), item.why)
            self.loose.setdefault(item.query, []).append(item)
        demoted = {entry.endpoint: entry for entry in health}
        self.labels = {
            id(target): _target_label(target, number, demoted)
            for number, target in enumerate(targets, 1)
        }
        self.targets = targets
        self.placed: set[int] = set()

    def _children_queries(self, answer: Answer) -> list[tuple[str, list[Query]]]:
        """(record line, queries it led to) for each record of a positive answer."""
        rows: list[tuple[str, list[Query]]] = []
        for record in answer.records:
            queries: list[Query] = []
            if isinstance(record, NaptrRecord):
                queries = [Query(record.replacement, RType.SRV)]
            elif isinstance(record, SrvRecord) and record.target:
                queries = [Query(record.target, RType.AAAA), Query(record.target, RType.A)]
            rows.append((str(record), [q for q in queries if q in self.answers]))
        return rows

    def referenced(self) -> set[Query]:
        """Queries some answer's records led to (the others are roots)."""
        seen: set[Query] = set()
        for answer in self.answers.values():
            for _, queries in self._children_queries(answer):
                seen.update(queries)
        return seen

    def node(self, query: Query, path: tuple[Query, ...]) -> _Node:
        answer = self.answers[query]
        path = (*path, query)
        node = _Node(_answer_label(answer))
        if query in self.additional:
            node.label += "  (additional section)"
        used: set[str] = set()
        for text, queries in self._children_queries(answer):
            used.add(text)
            child = _Node(f"{answer.query.rtype} {text}")
            why = self.why.get((query, text))
            if why is not None:
                child.label += f"  (not used: {why})"
            child.children = [self.node(q, path) for q in queries]
            if query.rtype in (RType.A, RType.AAAA):
                for target in self.targets:
                    if target.path == path and str(target.address) == text:
                        child.children.append(_Node(self.labels[id(target)]))
                        self.placed.add(id(target))
                if not child.children and why is None:
                    child.label += "  (no new target: an endpoint already listed)"
            elif not queries and why is None:
                child.label += "  (not queried)"
            node.children.append(child)
        for item in self.loose.get(query, []):
            if item.record not in used:
                node.children.append(_Node(f"{item.record}  (not used: {item.why})"))
        return node

    def build(self, root: str | None) -> list[_Node]:
        referenced = self.referenced()
        nodes = [self.node(q, ()) for q in self.answers if q not in referenced]
        # Targets no answer accounts for (literals, or answers not given): by their path.
        for target in self.targets:
            if id(target) in self.placed:
                continue
            level = nodes
            for query in target.path:
                label = str(query)
                found = next((n for n in level if n.label == label), None)
                if found is None:
                    found = _Node(label)
                    level.append(found)
                level = found.children
            level.append(_Node(self.labels[id(target)]))
        return [_Node(root, nodes)] if root is not None else nodes


def explain(
    targets: Sequence[Target],
    out: TextIO,
    *,
    health: Iterable[EndpointHealth] = (),
    root: str | None = None,
    attempts: Iterable[Answer] = (),
    discarded: Iterable[Discarded] = (),
) -> None:
    """Print the targets as a tree of the DNS queries that found them.

    With ``attempts`` (a stream's DNS answers) the tree shows every branch, those that
    produced nothing included, and with ``discarded`` why a record was not used.
    ``root`` (e.g. the URI) heads the tree. ``health`` (e.g. ``locator.health()``)
    marks the targets demoted by reported failures; their numbers show they are
    tried after the healthy ones.
    """

    def walk(nodes: list[_Node], prefix: str) -> None:
        for index, node in enumerate(nodes):
            last = index == len(nodes) - 1
            out.write(f"{prefix}{'└─ ' if last else '├─ '}{node.label}\n")
            walk(node.children, prefix + ("   " if last else "│  "))

    tree = _Tree(targets, attempts, discarded, health).build(root)
    if root is not None:
        out.write(f"{tree[0].label}\n")
        walk(tree[0].children, "")
    else:
        walk(tree, "")


# --- commands ---------------------------------------------------------------------------


def _subject(args: argparse.Namespace) -> dict[str, Any]:
    """The envelope's head: version and what was asked."""
    head: dict[str, Any] = {"version": JSON_VERSION, "uri": args.uri}
    if getattr(args, "via", None) is not None:
        head["via"] = args.via
    return head


async def _run(args: argparse.Namespace, out: TextIO) -> int:
    targets: list[Target] = []
    async with lookup_locator(args) as locator:
        if args.via is not None:
            stream = locator.locate_response(args.via)
        else:
            stream = locator.locate(args.uri, as_sips=args.sips)
        failure: NoTargetsError | None = None
        async with stream:
            try:
                targets = [target async for target in stream]
            except NoTargetsError as exc:
                if not args.explain:
                    raise
                failure = exc
        health = locator.health()
    try:
        attempts, discarded = stream.attempts, stream.discarded
    except AttributeError:  # a stream that failed before any lookup (e.g. sips + udp)
        attempts, discarded = (failure.attempts if failure else ()), ()
    if args.json:
        document = {
            **_subject(args),
            "targets": [target_json(t) for t in targets],
            "attempts": [answer_json(a) for a in attempts],
        }
        if args.explain:
            document["explain"] = {
                "discarded": [discarded_json(d) for d in discarded],
                "demoted": [health_json(h) for h in health],
            }
        if failure is not None:
            document["error"] = _error_json(failure)
        write_json(document, out)
    elif args.explain:
        explain(
            targets,
            out,
            health=health,
            root=args.uri if args.via is None else f"Via: {args.via}",
            attempts=attempts,
            discarded=discarded,
        )
    else:
        print_targets(targets, out)
    if failure is not None:
        out.flush()
        print(f"asip-locate: {failure}", file=sys.stderr)
        return EXIT_NONE
    return EXIT_FOUND


def print_attempt(number: int, attempt: Attempt, out: TextIO) -> None:
    """One line per OPTIONS attempt: target, transport, outcome, timing."""
    target = attempt.target
    out.write(
        f"{number:>2}. {target.transport:<8} {_endpoint_text(target):<24} {target.host:<20} "
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
        raise UsageError(f"--ca {args.ca}: no such file")
    lookup = argparse.Namespace(**vars(args))
    lookup.timeout = args.dns_timeout
    counter = itertools.count(1)

    def show(attempt: Attempt) -> None:
        if not args.json:
            print_attempt(next(counter), attempt, out)

    async with lookup_locator(lookup) as locator:
        attempts = await ping(locator, args.uri, options, as_sips=args.sips, on_attempt=show)
    answered = bool(attempts) and attempts[-1].answered
    if args.json:
        write_json(
            {
                **_subject(args),
                "answered": answered,
                "targets": [target_json(a.target) for a in attempts],
                "attempts": [attempt_json(a) for a in attempts],
            },
            out,
        )
    elif not answered:
        out.write(f"no server answered for {args.uri}\n")
    return EXIT_FOUND if answered else EXIT_NONE


def _error_json(exc: BaseException) -> dict[str, Any]:
    return {"type": type(exc).__name__, "message": str(exc)}


def run_command(command: Coroutine[Any, Any, int], args: argparse.Namespace | None = None) -> int:
    """Run a command coroutine, turning library errors into exit codes.

    With ``args.json`` the error is a JSON envelope on stdout instead of a line on stderr.
    """

    def fail(exc: BaseException, code: int) -> int:
        if args is not None and args.json:
            document = {**_subject(args), "error": _error_json(exc)}
            if isinstance(exc, NoTargetsError | LocateTimeoutError):
                document["attempts"] = [answer_json(a) for a in exc.attempts]
            write_json(document, sys.stdout)
        else:
            print(f"asip-locate: {exc}", file=sys.stderr)
        return code

    try:
        return int(asyncio.run(command))
    except InvalidUriError as exc:
        return fail(exc, EXIT_USAGE)
    except LocateError as exc:  # NoTargetsError, LocateTimeoutError, ...
        return fail(exc, EXIT_NONE)
    except BrokenPipeError:
        raise  # main() handles it
    except (OSError, ValueError) as exc:
        return fail(exc, EXIT_USAGE)
    except KeyboardInterrupt:
        return 130


def _quiet_on_closed_pipe() -> None:
    """The reader of stdout went away: send what is left to /dev/null, quietly."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError, ValueError):
        os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def lookup_main(argv: Sequence[str]) -> int:
    """``asip-locate lookup (URI | --via VIA)``: print the targets."""
    parser = _parser()
    args = parser.parse_args(list(argv))
    if (args.uri is None) == (args.via is None):
        parser.error("give exactly one of URI or --via")
    if args.via is not None and args.sips:
        parser.error("--sips applies to a URI, not to --via")
    return run_command(_run(args, sys.stdout), args)


def ping_main(argv: Sequence[str]) -> int:
    """``asip-locate ping URI``: OPTIONS each target until one answers."""
    args = _ping_parser().parse_args(list(argv))
    if args.insecure:
        print(
            "asip-locate: warning: --insecure: TLS certificates and server identity"
            " are not verified",
            file=sys.stderr,
        )
    return run_command(_run_ping(args, sys.stdout), args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (usage errors exit with 2)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            if argv[:1] == ["ping"]:
                return ping_main(argv[1:])
            if argv[:1] == ["lookup"]:
                return lookup_main(argv[1:])
            if argv[:1] in (["-h"], ["--help"], ["--version"]):
                _top_parser().parse_args(argv)
            return lookup_main(argv)
        finally:
            sys.stdout.flush()  # here, not at exit, where a closed pipe cannot be caught
    except BrokenPipeError:
        _quiet_on_closed_pipe()
        return EXIT_FOUND


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
