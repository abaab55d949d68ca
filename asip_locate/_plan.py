"""RFC 3263 §4 client procedure as a pure, I/O-free state machine.

A Resolution holds the candidate list as an ordered sequence of finished targets and
unfinished branches (NAPTR, SRV, address lookups). ``needs()`` names the queries that
may be sent now (every independent one, so callers can fan out), ``feed()`` delivers
answers in any order, and ``ready()`` releases the finished prefix, so out-of-order
answers never reorder targets. Asyncio, sockets, clocks and global randomness stay
outside this module.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from asip_locate._errors import NoTargetsError, UnsupportedTransportError
from asip_locate._model import (
    NAPTR_SERVICES,
    Answer,
    Discarded,
    Endpoint,
    IPAddress,
    NaptrRecord,
    Query,
    RType,
    SrvRecord,
    Status,
    Target,
    Transport,
)
from asip_locate._options import IpStrategy, LocateOptions, SipsPolicy
from asip_locate._order import (
    Rng,
    SrvGroup,
    address_order,
    naptr_order,
    pair_chance,
    srv_draw,
    srv_groups,
)
from asip_locate._policy import is_special_destination, literal_refusal
from asip_locate._uri import SipUri, numeric_host

log = logging.getLogger("asip_locate")

_T = TypeVar("_T")

RngFactory = Callable[[str], Rng]
"""Gives the random source for one SRV owner name, so a seeded order does not depend
on the order in which answers arrive."""


@dataclass(frozen=True, slots=True)
class _Context:
    options: LocateOptions
    rng_for: RngFactory
    secure: bool
    tls_name: str
    domain: str
    notes: list[str] = field(default_factory=list)
    """Why branches ended without targets, for NoTargetsError messages."""
    prefer: Target | None = None
    """A target to put first among its equals (stickiness); see ``plan_request``."""
    discarded: list[Discarded] = field(default_factory=list)
    """Records not used, and why (``Resolution.discarded``)."""
    demoted: Collection[Endpoint] = frozenset()
    """Endpoints held back until every other target was released (RFC 3263 §4.3
    failover memory: a frozen health snapshot, so the order is stable)."""
    uncompilable: list[str] = field(default_factory=list)
    """Why this resolution's result may not be reused (``Resolution.template``)."""

    def discard(self, query: Query, record: object, why: str) -> None:
        log.debug("%s: skipping %s (%s)", query, record, why)
        self.discarded.append(Discarded(query, str(record), why))

    def usable_address(self, query: Query, address: IPAddress) -> bool:
        """The destination policy for an address learned from DNS (see ``_policy``)."""
        if is_special_destination(address):
            self.discard(query, address, "special address (unspecified/broadcast/multicast)")
            return False
        check = self.options.address_filter
        if check is not None and not check(address):
            self.discard(query, address, "refused by address_filter")
            return False
        return True

    def in_domain(self, name: str) -> bool:
        return not self.options.stay_in_domain or (
            name == self.domain or name.endswith("." + self.domain)
        )

    def capped(self, records: Sequence[object], query: Query) -> Sequence[object]:
        limit = self.options.max_records
        if len(records) > limit:
            self.uncompilable.append("over max_records")
            log.warning("%s: using %d of %d records", query, limit, len(records))
            self.discarded.append(
                Discarded(query, f"{len(records) - limit} more record(s)", "over max_records")
            )
            return records[:limit]
        return records


def _min_ttl(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


class _Branch:
    """An unfinished part of the candidate list, expanded once its answers are in."""

    __slots__ = ("_needs", "deps", "expanded", "path", "stale", "ttl")

    def __init__(self, path: tuple[Query, ...], ttl: int | None, stale: bool = False) -> None:
        self.path = path
        self.ttl = ttl
        self.stale = stale
        """True when an answer on ``path`` was served stale (RFC 8767)."""
        self.deps = path
        """The queries whose answers bound ``ttl``: ``path`` and absorbed answers."""
        self.expanded: list[_Item] | None = None
        """What ``expand`` gave (kept for ``Resolution.template``)."""
        self._needs: tuple[Query, ...] | None = None

    def needs(self, ctx: _Context) -> tuple[Query, ...]:
        """The queries whose answers ``expand`` takes (built once: the planner asks often)."""
        needs = self._needs
        if needs is None:
            needs = self._needs = self._queries(ctx)
        return needs

    def _queries(self, ctx: _Context) -> tuple[Query, ...]:
        raise NotImplementedError

    def absorb(self, answer: Answer) -> None:
        """Count an answer that led here without being on ``path`` (a "no SRV" answer)."""
        self.ttl = _min_ttl(self.ttl, answer.ttl)
        self.stale = self.stale or answer.stale
        self.deps = (*self.deps, answer.query)

    def expand(self, answers: dict[Query, Answer], ctx: _Context) -> list[_Item]:
        raise NotImplementedError


_Item = Target | _Branch


class _Addresses(_Branch):
    """A/AAAA of one host, to be tried at one port with one transport (RFC 7984 §3.1)."""

    __slots__ = ("host", "ordered", "port", "sources", "transport")

    def __init__(
        self,
        host: str,
        port: int,
        transport: Transport,
        path: tuple[Query, ...] = (),
        ttl: int | None = None,
        stale: bool = False,
        deps: tuple[Query, ...] | None = None,
    ) -> None:
        super().__init__(path, ttl, stale)
        if deps is not None:
            self.deps = deps
        self.host = host
        self.port = port
        self.transport = transport
        self.sources: list[Answer] = []
        """The answer behind each target of ``ordered``."""
        self.ordered: list[Target] = []
        """The targets before stickiness (``expanded`` is after it)."""

    def _queries(self, ctx: _Context) -> tuple[Query, ...]:
        strategy = ctx.options.ip_strategy
        queries = []
        if strategy.wants_ipv6:
            queries.append(Query(self.host, RType.AAAA))
        if strategy.wants_ipv4:
            queries.append(Query(self.host, RType.A))
        return tuple(queries)

    def expand(self, answers: dict[Query, Answer], ctx: _Context) -> list[_Item]:
        # Each address with the answer it came from, per family, in RRset order.
        found: dict[RType, list[tuple[IPAddress, Answer]]] = {RType.AAAA: [], RType.A: []}
        for query in self.needs(ctx):
            answer = answers[query]
            family = _FAMILY[query.rtype]
            found[query.rtype] += [
                (record, answer)
                for record in ctx.capped(answer.records, query)
                # RFC 7984 §3.1: records of a family we did not ask for are unusable.
                if isinstance(record, family) and ctx.usable_address(query, record)
            ]
        ordered = address_order(
            found[RType.AAAA],
            found[RType.A],
            prefer_ipv6=ctx.options.ip_strategy is not IpStrategy.PREFER_IPV4,
        )
        self.sources = [answer for _, answer in ordered]
        tls_name = ctx.tls_name if self.transport.is_secure else None
        targets = [
            Target(
                self.transport,
                address,
                self.port,
                self.host,
                tls_name,
                _min_ttl(self.ttl, answer.ttl),
                (*self.path, answer.query),
                self.stale or answer.stale,
            )
            for address, answer in ordered
        ]
        self.ordered = targets
        return _prefer_address(targets, ctx.prefer)  # type: ignore[return-value]


_FAMILY: dict[RType, type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address]] = {
    RType.A: ipaddress.IPv4Address,
    RType.AAAA: ipaddress.IPv6Address,
}


def _prefer_address(targets: list[Target], prefer: Target | None) -> list[Target]:
    """Move the preferred address first among its host's same-family addresses.

    One family's addresses are an RRset, whose order means nothing (RFC 2181 §5).
    ``targets`` are one host's, at one port, with one transport.
    """
    if prefer is not None and targets:
        first = targets[0]
        if (prefer.transport, prefer.host, prefer.port) == (
            first.transport,
            first.host,
            first.port,
        ):
            targets = list(targets)
            _to_front_of_group(
                targets, lambda t: t.address == prefer.address, lambda t: t.address.version
            )
    return targets


class _Srv(_Branch):
    """One SRV owner for one transport (RFC 2782, RFC 3263 §4.2)."""

    __slots__ = ("drawn", "extra", "fallback", "groups", "name", "transport")

    def __init__(
        self,
        name: str,
        transport: Transport,
        path: tuple[Query, ...],
        ttl: int | None,
        fallback: _Addresses | None = None,
        stale: bool = False,
    ) -> None:
        super().__init__(path, ttl, stale)
        self.name = name
        self.transport = transport
        self.fallback = fallback
        self.groups: tuple[SrvGroup, ...] = ()
        """The usable records, arranged for the RFC 2782 draw (empty: no draw)."""
        self.drawn: list[SrvRecord] = []
        """The order drawn for this resolution (before stickiness)."""
        self.extra: tuple[Answer, ...] = ()
        """A/AAAA answers from the reply's additional section for the usable targets,
        which the Resolution takes as answered (RFC 2782 additional data)."""

    def _queries(self, ctx: _Context) -> tuple[Query, ...]:
        return (Query(self.name, RType.SRV),)

    def expand(self, answers: dict[Query, Answer], ctx: _Context) -> list[_Item]:
        (query,) = self.needs(ctx)
        answer = answers[query]
        records = [r for r in answer.records if isinstance(r, SrvRecord)]
        if not records:
            # RFC 3263 §4.2: no SRV records -> A/AAAA at the default port. DNS failures
            # (timeout, SERVFAIL) are treated like "not found" so a call can proceed.
            if self.fallback is None:
                return []
            self.fallback.absorb(answer)
            return [self.fallback]
        path = (*self.path, query)
        ttl = _min_ttl(self.ttl, answer.ttl)
        stale = self.stale or answer.stale
        if all(not r.target for r in records):
            ctx.notes.append(f"{query}: service not available (target '.')")
            ctx.discard(query, records[0], "service not available (target '.')")
            return []
        usable = []
        for record in records:
            if not record.target:
                continue  # RFC 2782: "." = decidedly not available; mixed: ignore it
            if record.port == 0:
                ctx.discard(query, record, "port 0")
            elif not ctx.in_domain(record.target):
                ctx.discard(query, record, f"outside {ctx.domain}")
            else:
                usable.append(record)
        if answer.additional and ctx.options.use_additional:
            # RFC 2782: a client may use the targets' addresses that the server sent
            # along and ask only for what is missing. The backend has kept only A/AAAA
            # owned by targets of this answer; here only usable targets' count.
            targets = {r.target for r in usable}
            self.extra = tuple(a for a in answer.additional if a.query.name in targets)
        self.groups = srv_groups(usable)
        self.drawn = srv_draw(self.groups, ctx.rng_for(self.name))
        ordered = _prefer_srv(list(self.drawn), self.transport, ctx.prefer)
        deps = (*self.deps, query)
        return [
            _Addresses(r.target, r.port, self.transport, path, ttl, stale, deps)
            for r in ctx.capped(ordered, query)
            if isinstance(r, SrvRecord)
        ]


def _prefer_srv(
    ordered: list[SrvRecord], transport: Transport, prefer: Target | None
) -> list[SrvRecord]:
    """Move the preferred target's record first within its priority.

    Records of one priority are equals: RFC 2782 orders them by weighted chance only.
    The draw has already been made, so the other records keep their seeded order.
    """
    if prefer is not None and prefer.transport is transport:
        _to_front_of_group(
            ordered,
            lambda r: (r.target, r.port) == (prefer.host, prefer.port),
            lambda r: r.priority,
        )
    return ordered


def _to_front_of_group(
    items: list[_T], match: Callable[[_T], bool], group: Callable[[_T], object]
) -> None:
    """Move the first matching item to the front of its group (groups are contiguous)."""
    for index, item in enumerate(items):
        if match(item):
            key = group(item)
            first = next(i for i, other in enumerate(items) if group(other) == key)
            items.insert(first, items.pop(index))
            return


class _IfNoSrv(_Branch):
    """The A/AAAA fallback used only when none of some SRV queries found records."""

    __slots__ = ("queries", "then")

    def __init__(self, queries: tuple[Query, ...], then: _Addresses) -> None:
        super().__init__((), None)
        self.queries = queries
        self.then = then

    def _queries(self, ctx: _Context) -> tuple[Query, ...]:
        return self.queries

    def expand(self, answers: dict[Query, Answer], ctx: _Context) -> list[_Item]:
        if any(isinstance(r, SrvRecord) for q in self.queries for r in answers[q].records):
            return []
        for query in self.queries:
            self.then.absorb(answers[query])
        return [self.then]


class _Naptr(_Branch):
    """The NAPTR step of RFC 3263 §4.1, with SRV-per-transport when it gives nothing."""

    __slots__ = ("host",)

    def __init__(self, host: str) -> None:
        super().__init__((), None)
        self.host = host

    def _queries(self, ctx: _Context) -> tuple[Query, ...]:
        return (Query(self.host, RType.NAPTR),)

    def expand(self, answers: dict[Query, Answer], ctx: _Context) -> list[_Item]:
        (query,) = self.needs(ctx)
        answer = answers[query]
        usable = naptr_order(
            (
                (record, transport)
                for record in ctx.capped(answer.records, query)
                if isinstance(record, NaptrRecord)
                and (transport := _naptr_transport(record, query, ctx)) is not None
            ),
            ctx.options.supported,
        )
        path = (query,)
        if not usable:
            # No (usable) NAPTR: SRV for every supported transport (RFC 3263 §4.1).
            return _srv_per_transport(self.host, ctx, path, answer.ttl, answer.stale)
        if not ctx.options.cross_naptr_orders:
            first = usable[0][0].order
            usable = [(r, t) for r, t in usable if r.order == first]
        return [_Srv(r.replacement, t, path, answer.ttl, stale=answer.stale) for r, t in usable]


def _naptr_transport(record: NaptrRecord, query: Query, ctx: _Context) -> Transport | None:
    """The transport of a usable NAPTR record, or None (RFC 3263 §4.1, RFC 3404 §4.3)."""
    why = None
    transport = NAPTR_SERVICES.get(record.service.upper())
    if record.flags.lower() != "s":
        why = "flags other than 's'"
    elif record.regexp:
        why = "a regexp"
    elif not record.replacement:
        why = "no replacement"
    elif transport is None:
        why = "an unknown service"
    elif transport not in ctx.options.supported:
        why = f"unsupported transport {transport}"
    elif ctx.secure and not transport.is_secure:
        why = "a non-SIPS service for a SIPS URI"
    elif not ctx.in_domain(record.replacement):
        why = f"a replacement outside {ctx.domain}"
    if why:
        ctx.discard(query, record, why)
        return None
    return transport


def _srv_per_transport(
    host: str, ctx: _Context, path: tuple[Query, ...], ttl: int | None, stale: bool = False
) -> list[_Item]:
    """RFC 3263 §4.1: SRV per supported transport, then A/AAAA if none has records."""
    branches: list[_Item] = [
        _Srv(f"{t.srv_prefix}.{host}", t, path, ttl, stale=stale) for t in _srv_transports(ctx)
    ]
    fallback_transport = _default_transport(ctx)
    fallback = _Addresses(
        host, fallback_transport.default_port, fallback_transport, path, ttl, stale
    )
    queries = tuple(q for b in branches if isinstance(b, _Branch) for q in b.needs(ctx))
    branches.append(_IfNoSrv(queries, fallback) if queries else fallback)
    return branches


def _srv_transports(ctx: _Context) -> list[Transport]:
    """The supported transports that have SRV names, SIPS-only for a SIPS URI."""
    return [t for t in ctx.options.supported if t.srv_prefix and (t.is_secure or not ctx.secure)]


def _default_transport(ctx: _Context) -> Transport:
    """UDP for SIP, TLS for SIPS (RFC 3263 §4.1), else the caller's best alternative."""
    wanted = Transport.TLS if ctx.secure else Transport.UDP
    supported = ctx.options.supported
    if wanted in supported:
        return wanted
    return next(t for t in supported if t.is_secure or not ctx.secure)


class Resolution:
    """The state of one RFC 3263 resolution: what to ask, and the targets so far.

    Every ordering decision is made here, from the answers and two inputs given at
    the start (``_Context.demoted``, ``_Context.prefer``): RFC order, stickiness,
    de-duplication of endpoints and the hold-back of demoted ones. A stream only
    sends what ``needs()`` names, feeds the answers and yields what ``ready()``
    releases. An error known before any lookup (``error``) is a Resolution too.
    """

    __slots__ = (
        "_answers",
        "_attempts",
        "_ctx",
        "_discarded",
        "_duplicates",
        "_early",
        "_guesses",
        "_held",
        "_injected",
        "_items",
        "_reason",
        "_requested",
        "_roots",
        "_seen",
        "error",
        "final",
    )

    def __init__(
        self,
        items: list[_Item],
        ctx: _Context,
        reason: str | None = None,
        *,
        error: NoTargetsError | None = None,
        early: tuple[Query, ...] = (),
    ):
        self._items = [] if error is not None else items
        self._roots = list(self._items)
        self._ctx: _Context | None = ctx
        self._answers: dict[Query, Answer] = {}
        self._requested: set[Query] = set()
        self._attempts: list[Answer] | Callable[[], tuple[Answer, ...]] = []
        self._reason = reason
        self._discarded: tuple[Discarded, ...] = ()
        self._seen: set[Endpoint] = set()
        self._held: list[Target] = []
        self._duplicates = False
        self.final = False
        """True for a resolution made ``finished`` (no plan behind it)."""
        self._early = early
        """Queries worth sending before any branch needs them (early SRV), offered
        while the NAPTR answer is awaited."""
        self._guesses: set[Query] = set()
        """Early queries handed out and not answered yet."""
        self._injected = 0
        """Answers taken from additional sections (never sent: not in the budget)."""
        self.error = error
        """The NoTargetsError to raise in place of any target (e.g. an unsupported
        transport), or None."""
        self._advance()

    @classmethod
    def finished(
        cls,
        targets: list[Target],
        *,
        attempts: Callable[[], tuple[Answer, ...]],
        discarded: tuple[Discarded, ...] = (),
        reason: str | None = None,
    ) -> Resolution:
        """A resolution already done, whose targets are final (``Template.expand``).

        ``attempts`` is called only when someone reads ``attempts``.
        """
        self = cls.__new__(cls)
        self._items = targets  # type: ignore[assignment]
        self._roots = []
        self._ctx = None
        self._answers = {}
        self._requested = set()
        self._attempts = attempts
        self._reason = reason
        self._discarded = discarded
        self._seen = set()
        self._held = []
        self._duplicates = False
        self.final = True
        self._early = ()
        self._guesses = set()
        self._injected = 0
        self.error = None
        return self

    @property
    def reason(self) -> str | None:
        """Why branches ended without targets, beyond the DNS answers themselves."""
        notes = [] if self._ctx is None else self._ctx.notes
        return "; ".join(filter(None, [self._reason, *notes])) or None

    @property
    def discarded(self) -> tuple[Discarded, ...]:
        """Records seen but not used, and why, in the order they were met."""
        return self._discarded if self._ctx is None else tuple(self._ctx.discarded)

    @property
    def done(self) -> bool:
        """True when every branch has been expanded and every target released."""
        return not self._items and not self._held

    @property
    def attempts(self) -> tuple[Answer, ...]:
        """Every answer fed so far, in arrival order."""
        attempts = self._attempts
        return attempts() if callable(attempts) else tuple(attempts)

    @property
    def outstanding(self) -> int:
        """Queries handed out by ``needs()`` and not yet answered."""
        return len(self._requested) - len(self._answers)

    def needs(self, limit: int | None = None) -> list[Query]:
        """Queries to send now, most urgent first; each is handed out once.

        Queries beyond ``options.max_queries`` are answered here with an ERROR
        answer, so their branches are dropped instead of waiting forever.
        """
        ctx = self._ctx
        if ctx is None:
            return []
        wanted: list[Query] = []
        over_budget: list[Query] = []
        budget = ctx.options.max_queries + self._injected
        requested = self._requested
        for item in self._items:
            if isinstance(item, Target):
                continue
            for query in item._needs or item.needs(ctx):  # the attribute: no call
                if query in requested:
                    continue
                if limit is not None and len(wanted) >= limit:
                    return wanted
                requested.add(query)
                if len(requested) > budget:
                    over_budget.append(query)
                else:
                    wanted.append(query)
        for query in self._early:
            # Early questions only while there is room: never at the cost of the plan's.
            if (limit is not None and len(wanted) >= limit) or len(requested) >= budget:
                break
            if query not in requested:
                requested.add(query)
                self._guesses.add(query)
                wanted.append(query)
        if over_budget:
            log.warning("query budget of %d exhausted; dropping %d", budget, len(over_budget))
            for query in over_budget:
                self._answers[query] = Answer(query, Status.ERROR, detail="query budget exhausted")
            self._advance()
            wanted += self.needs(None if limit is None else limit - len(wanted))
        return wanted

    def retry(self, queries: Iterable[Query]) -> None:
        """Offer again queries handed out but never answered (an interrupted lookup).

        ``needs()`` names them again, in RFC order, without counting them twice
        against ``max_queries``.
        """
        answers, requested = self._answers, self._requested
        for query in queries:
            if query not in answers:
                requested.discard(query)

    def feed(self, answer: Answer) -> None:
        """Deliver the answer to a query handed out by ``needs()``."""
        self.feed_all((answer,))

    def feed_all(self, answers: Iterable[Answer]) -> None:
        """Deliver several answers at once (one pass over the candidate list)."""
        requested, known, guesses = self._requested, self._answers, self._guesses
        attempts = self._attempts
        assert isinstance(attempts, list)
        for answer in answers:
            query = answer.query
            if query not in requested or query in known:
                raise ValueError(f"unexpected answer for {query}")
            attempts.append(answer)
            if guesses and query in guesses:
                guesses.discard(query)
                if answer.status.is_failure:
                    # An early question that failed (e.g. c-ares failing every query
                    # on a socket that got a malformed reply) is asked again if and
                    # when a branch needs it: asking early must never cost a branch.
                    requested.discard(query)
                    self._early = tuple(q for q in self._early if q != query)
                    continue
            known[query] = answer
        self._advance()

    def ready(self) -> list[Target]:
        """Targets now final, in order, each endpoint once; demoted ones come last.

        RFC 3263 §4.3 gains nothing from trying one (transport, address, port)
        twice, so a repeat is dropped. A demoted endpoint is held back until the
        plan is done, then released in RFC order (it is never dropped).
        """
        items = self._items
        if self.final:
            self._items = []
            return items  # type: ignore[return-value]
        count = 0
        while count < len(items) and isinstance(items[count], Target):
            count += 1
        released: list[Target] = []
        if count:
            ctx = self._ctx
            assert ctx is not None
            seen = self._seen
            before = len(seen)
            released = _release(items[:count], seen, ctx.demoted, self._held)  # type: ignore[arg-type]
            if len(seen) - before != count:
                self._duplicates = True
            del items[:count]
        if not items and self._held:
            released += self._held
            self._held = []
        return released

    @property
    def compilable(self) -> bool:
        """False when ``template`` refuses it whatever the cache holds.

        That is: an error, or records or queries dropped to a cap.
        """
        ctx = self._ctx
        return ctx is not None and self.error is None and not ctx.uncompilable

    def template(self) -> Template | None:
        """The finished result as a reusable Template, or None if it may not be reused.

        Only a resolution whose plan is fully expanded qualifies, and not one that
        dropped records or queries to a cap (what was kept depended on the draw).
        Whether its answers may be reused is the cache's decision.
        """
        ctx = self._ctx
        if ctx is None or not self.compilable:
            return None
        if any(isinstance(item, _Branch) for item in self._items):
            return None
        nodes = _compile(self._roots)
        if nodes is None:
            return None
        attempts = self._attempts
        assert isinstance(attempts, list)
        return Template(
            nodes, tuple(attempts), tuple(ctx.discarded), self.reason, not self._duplicates
        )

    def _advance(self) -> None:
        items, answers, ctx = self._items, self._answers, self._ctx
        if ctx is None:
            return
        answered = answers.__contains__
        index = 0
        while index < len(items):
            item = items[index]
            if isinstance(item, _Branch) and all(map(answered, item._needs or item.needs(ctx))):
                expanded = item.expanded = item.expand(answers, ctx)
                items[index : index + 1] = expanded
                if isinstance(item, _Naptr):
                    self._early = ()  # from now on, branches ask for what they need
                elif isinstance(item, _Srv) and item.extra:
                    self._take_additional(item.extra)
            else:
                index += 1

    def _take_additional(self, extra: tuple[Answer, ...]) -> None:
        """Take A/AAAA answers from an SRV reply's additional section as answered.

        Only questions not handed out yet: an answer already asked for comes from the
        answer section (RFC 2181 §5.4.1 ranks it higher). What is missing, e.g. the
        other family, is still asked.
        """
        requested, answers = self._requested, self._answers
        attempts = self._attempts
        assert isinstance(attempts, list)
        for answer in extra:
            query = answer.query
            if query not in requested:
                requested.add(query)
                answers[query] = answer
                attempts.append(answer)
                self._injected += 1


def _release(
    targets: list[Target], seen: set[Endpoint], demoted: Collection[Endpoint], held: list[Target]
) -> list[Target]:
    """Drop endpoints already released; move demoted ones to ``held``."""
    released = []
    add = seen.add
    for target in targets:
        # Hashed once: an address hashes in Python (ipaddress), an endpoint with it.
        endpoint = _endpoint(Endpoint, (target.transport, target.address, target.port))
        before = len(seen)
        add(endpoint)
        if len(seen) == before:
            continue  # RFC 3263 §4.3 gains nothing from retrying one endpoint
        if demoted and endpoint in demoted:
            held.append(target)
        else:
            released.append(target)
    return released


_endpoint = tuple.__new__  # Target.endpoint without the NamedTuple's Python-level __new__


# --- templates: a finished resolution, reused while its answers stay ------------------


class _THost:
    """One host's targets at one port (an expanded ``_Addresses``), RRset order."""

    __slots__ = ("deps", "expiry", "host", "port", "protos", "targets", "transport")

    def __init__(self, branch: _Addresses) -> None:
        self.transport = branch.transport
        self.host = branch.host
        self.port = branch.port
        self.protos: tuple[Target, ...] = tuple(branch.ordered)
        self.deps = tuple((*branch.deps, a.query) for a in branch.sources)
        self.expiry: tuple[float, ...] = ()
        self.targets = self.protos
        """The targets with their TTL as of the last ``Template.retime``."""


class _TSrv:
    """One SRV RRset: its groups for the draw and each record's expansion."""

    __slots__ = ("children", "drawn", "groups", "hosts", "name", "transport")

    def __init__(self, branch: _Srv, children: dict[int, list[_Node]]) -> None:
        self.name = branch.name
        self.transport = branch.transport
        self.groups = branch.groups
        self.drawn = tuple(branch.drawn)
        self.children = children
        """Keyed by ``id(record)`` of the records in ``groups``."""
        self.hosts: dict[int, _THost] | None = None
        """The same when each record gave exactly one host (the usual case)."""
        if all(len(c) == 1 and isinstance(c[0], _THost) for c in children.values()):
            self.hosts = {k: c[0] for k, c in children.items()}  # type: ignore[misc]


_Node = Target | _THost | _TSrv


def _compile(items: list[_Item]) -> list[_Node] | None:
    nodes: list[_Node] = []
    for item in items:
        if isinstance(item, Target):
            nodes.append(item)
        elif isinstance(item, _Addresses):
            nodes.append(_THost(item))
        elif item.expanded is None:
            return None
        elif isinstance(item, _Srv) and item.groups:
            children: dict[int, list[_Node]] = {}
            # The children follow the (sticky) order of the draw; match them by target.
            by_host = {
                (child.host, child.port): child
                for child in item.expanded
                if isinstance(child, _Addresses)
            }
            for record in item.drawn:
                child = by_host.get((record.target, record.port))
                if child is None:
                    return None
                compiled = _compile([child])
                if compiled is None:
                    return None
                children[id(record)] = compiled
            nodes.append(_TSrv(item, children))
        else:
            compiled = _compile(item.expanded)
            if compiled is None:
                return None
            nodes += compiled
    return nodes


class Template:
    """A finished resolution that can be replayed without DNS (a compiled locate).

    ``expand`` redoes only what must differ per locate: the RFC 2782 draw of each
    SRV priority group, stickiness and the demotion hold-back, all through the
    planner's own functions. The cache decides how long a template stays valid.
    """

    __slots__ = (
        "_program",
        "_replayed",
        "attempts",
        "discarded",
        "hosts",
        "nodes",
        "reason",
        "unique",
    )

    def __init__(
        self,
        nodes: list[_Node],
        attempts: tuple[Answer, ...],
        discarded: tuple[Discarded, ...],
        reason: str | None,
        unique: bool,
    ) -> None:
        self.nodes = nodes
        self.attempts = attempts
        """The answers the resolution used (with the TTLs they had then)."""
        self.discarded = discarded
        self.reason = reason
        self.hosts: list[_THost] = []
        _collect_hosts(nodes, self.hosts)
        self.unique = unique
        """No endpoint appears twice (whatever the draw, the same targets come out, only
        their order differs): expanding needs no de-duplication."""
        self._replayed: list[Target] | None = None
        """The replayed draw without stickiness or demotion, until the next retime."""
        self._program: list[_Step] | None = None
        """The fresh-draw expansion flattened into steps, until the next retime."""

    @property
    def size(self) -> int:
        """Prebuilt targets held (a measure of the template's memory)."""
        return sum(len(h.protos) for h in self.hosts)

    def set_expiry(self, expiry: Callable[[Query], float]) -> None:
        """Give each target the time its data expires: the earliest of its answers'."""
        for host in self.hosts:
            host.expiry = tuple(min(map(expiry, deps)) for deps in host.deps)

    def retime(self, now: float) -> float:
        """Rebuild the targets with their remaining TTL at ``now``.

        Returns the time at which some target's TTL (whole seconds, rounded down)
        changes next, so the caller knows when to call again.
        """
        changes = float("inf")
        for host in self.hosts:
            targets = []
            for proto, expires in zip(host.protos, host.expiry, strict=True):
                remaining = int(expires - now)
                changes = min(changes, expires - remaining)
                if remaining == proto.ttl and not proto.stale:
                    targets.append(proto)  # as built (the first retime, mostly)
                    continue
                targets.append(
                    Target(
                        proto.transport,
                        proto.address,
                        proto.port,
                        proto.host,
                        proto.tls_name,
                        remaining,
                        proto.path,
                    )
                )
            host.targets = tuple(targets)
        self._replayed = self._program = None
        return changes

    def expand(
        self,
        rng_for: RngFactory | None,
        prefer: Target | None = None,
        demoted: Collection[Endpoint] = frozenset(),
    ) -> list[Target]:
        """The targets of one locate, in order.

        Args:
            rng_for: The random source per SRV owner; None replays the draw made when
                the template was built (a seeded Locator draws the same every time).
            prefer: The sticky target, as for ``plan_request``.
            demoted: The demotion snapshot, as for ``plan_request``.
        """
        if rng_for is None and prefer is None and not demoted:
            # A replayed draw is the same every time: build it once per retime.
            replayed = self._replayed
            if replayed is None:
                replayed = self._replayed = self._expand(None, None, demoted)
            return list(replayed)
        if rng_for is not None and prefer is None and not demoted and self.unique:
            # The usual cached locate: only the draws differ, over prebuilt steps.
            program = self._program
            if program is None:
                program = self._program = _flatten(self.nodes)
            if program:
                out: list[Target] = []
                for step in program:
                    kind = type(step)
                    if kind is tuple:
                        out += step  # type: ignore[arg-type]
                    elif kind is _PairStep:  # inlined: the common case, once per pair
                        pair: _PairStep = step  # type: ignore[assignment]
                        chosen = rng_for(pair.name).random() < pair.chance
                        out += pair.first if chosen else pair.second
                    else:
                        out += step.draw(rng_for)  # type: ignore[union-attr]
                return out
        return self._expand(rng_for, prefer, demoted)

    def _expand(
        self, rng_for: RngFactory | None, prefer: Target | None, demoted: Collection[Endpoint]
    ) -> list[Target]:
        out: list[Target] = []
        _emit(self.nodes, out, rng_for, prefer)
        if demoted or not self.unique:
            held: list[Target] = []
            out = _release(out, set(), demoted, held)
            out += held
        return out


class _PairStep:
    """An SRV priority group of two records: one draw picks one of two prebuilt orders."""

    __slots__ = ("chance", "first", "name", "second")

    def __init__(
        self,
        name: str,
        weights: tuple[int, ...],
        first: tuple[Target, ...],
        second: tuple[Target, ...],
    ) -> None:
        self.name = name
        self.chance = pair_chance(weights)
        """The chance that the group's first record is drawn first (RFC 2782)."""
        self.first = first
        """The targets when the group's first record is drawn first."""
        self.second = second


class _GroupStep:
    """An SRV priority group of three or more records, drawn as ``srv_draw`` does."""

    __slots__ = ("groups", "name", "targets")

    def __init__(self, name: str, group: SrvGroup, targets: dict[int, tuple[Target, ...]]) -> None:
        self.name = name
        self.groups = (group,)
        self.targets = targets
        """Each record's targets, keyed by ``id(record)``."""

    def draw(self, rng_for: RngFactory) -> list[Target]:
        targets = self.targets
        out: list[Target] = []
        for record in srv_draw(self.groups, rng_for(self.name), forced_draws=False):
            out += targets[id(record)]
        return out


_Step = tuple[Target, ...] | _PairStep | _GroupStep


def _flatten(nodes: list[_Node]) -> list[_Step]:
    """``nodes`` as steps: runs of fixed targets, one draw per SRV group of 2+ records.

    Empty when some SRV record gave more than one host (then ``_emit`` is used).
    """
    steps: list[_Step] = []
    fixed: list[Target] = []
    for node in nodes:
        if isinstance(node, _THost):
            fixed += node.targets
        elif isinstance(node, _TSrv):
            hosts = node.hosts
            if hosts is None:
                return []
            for group in node.groups:
                records = group.records
                if len(records) == 1:
                    fixed += hosts[id(records[0])].targets  # a lone record: no draw
                    continue
                if fixed:
                    steps.append(tuple(fixed))
                    fixed = []
                if len(records) == 2:
                    a, b = (hosts[id(r)].targets for r in records)
                    steps.append(_PairStep(node.name, group.weights, a + b, b + a))
                else:
                    by_record = {id(r): hosts[id(r)].targets for r in records}
                    steps.append(_GroupStep(node.name, group, by_record))
        else:
            fixed.append(node)
    if fixed:
        steps.append(tuple(fixed))
    return steps


def _collect_hosts(nodes: list[_Node], hosts: list[_THost]) -> None:
    for node in nodes:
        if isinstance(node, _THost):
            hosts.append(node)
        elif isinstance(node, _TSrv):
            for children in node.children.values():
                _collect_hosts(children, hosts)


def _emit(
    nodes: list[_Node], out: list[Target], rng_for: RngFactory | None, prefer: Target | None
) -> None:
    for node in nodes:
        kind = type(node)
        if kind is _THost:
            targets = node.targets  # type: ignore[union-attr]
            out += targets if prefer is None else _prefer_address(list(targets), prefer)
        elif kind is _TSrv:
            srv: _TSrv = node  # type: ignore[assignment]
            order: Sequence[SrvRecord] = (
                srv.drawn
                if rng_for is None
                else srv_draw(srv.groups, rng_for(srv.name), forced_draws=False)
            )
            if prefer is not None:
                order = _prefer_srv(list(order), srv.transport, prefer)
            hosts = srv.hosts
            if hosts is not None and prefer is None:
                for record in order:  # each record gave one host: no recursion
                    out += hosts[id(record)].targets
            else:
                children = srv.children
                for record in order:
                    _emit(children[id(record)], out, rng_for, prefer)
        else:
            out.append(node)  # type: ignore[arg-type]


def plan_request(
    uri: SipUri,
    options: LocateOptions,
    rng_for: RngFactory,
    *,
    as_sips: bool = False,
    prefer: Target | None = None,
    demoted: Collection[Endpoint] = frozenset(),
) -> Resolution:
    """Start the RFC 3263 §4 procedure for ``uri``.

    ``prefer`` (stickiness) puts that target first among its equals, and nowhere
    else: ahead of the other SRV records of the same priority in its SRV RRset, and
    ahead of the other same-family addresses of its host. NAPTR order and
    preference, SRV priority and the address-family order are never overridden.

    ``demoted`` (a frozen health snapshot) holds those endpoints back until every
    other target was released (RFC 3263 §4.3: they are tried last, never dropped).

    A URI that needs a transport the caller lacks, or asks SIPS over UDP (RFC 3261
    §26.2.2), gives a Resolution whose ``error`` is an UnsupportedTransportError.
    """
    secure = uri.secure or as_sips
    target = uri.target
    ctx = _Context(options, rng_for, secure, uri.host, target, prefer=prefer, demoted=demoted)
    text = str(uri)
    try:
        if secure and not any(t.is_secure for t in options.supported):
            raise UnsupportedTransportError(
                text, "SIPS needs a TLS transport, and none is in LocateOptions.transports"
            )
        forced = _forced_transport(uri, secure, options, text)
    except UnsupportedTransportError as exc:
        return Resolution([], ctx, error=exc)
    address = numeric_host(target)
    if address is not None:
        transport = forced or _default_transport(ctx)
        strategy = options.ip_strategy
        if not (strategy.wants_ipv6 if address.version == 6 else strategy.wants_ipv4):
            reason = f"IPv{address.version} literal, but ip_strategy is {strategy}"
            return Resolution([], ctx, reason)
        refusal = literal_refusal(address, maddr=uri.maddr is not None, transport=transport)
        if refusal is not None:  # e.g. a multicast maddr with a transport other than UDP
            return Resolution([], ctx, refusal)
        port = uri.port or transport.default_port
        tls_name = uri.host if transport.is_secure else None
        return Resolution([Target(transport, address, port, target, tls_name)], ctx)
    items: list[_Item]
    if uri.port is not None:
        items = [_Addresses(target, uri.port, forced or _default_transport(ctx))]
    elif forced is not None:
        fallback = _Addresses(target, forced.default_port, forced)
        # RFC 7118 defines no SRV names for WebSocket: default port straight away.
        items = [
            _Srv(f"{forced.srv_prefix}.{target}", forced, (), None, fallback)
            if forced.srv_prefix
            else fallback
        ]
    elif options.use_naptr and not (secure and options.sips_policy is SipsPolicy.SRV):
        early: tuple[Query, ...] = ()
        if options.early_srv:
            # The SRV names the no-NAPTR fallback asks (RFC 3263 §4.1), which most NAPTR
            # replacements name too: asked with the NAPTR query, they cost no extra
            # round trip. Their answers are used only where a branch needs them.
            early = tuple(
                Query(f"{t.srv_prefix}.{target}", RType.SRV) for t in _srv_transports(ctx)
            )
        return Resolution([_Naptr(target)], ctx, early=early)
    else:
        items = _srv_per_transport(target, ctx, (), None)
    return Resolution(items, ctx)


def _forced_transport(
    uri: SipUri, secure: bool, options: LocateOptions, text: str
) -> Transport | None:
    """The transport a ``transport=`` parameter demands (RFC 3263 §4.1), if any."""
    if uri.transport is None:
        return None
    try:
        transport = Transport(uri.transport)
    except ValueError:
        raise UnsupportedTransportError(text, f"unknown transport {uri.transport!r}") from None
    if secure:
        if transport is Transport.UDP:
            raise UnsupportedTransportError(text, "SIPS cannot use transport=udp")
        transport = transport.secure_variant
    if transport not in options.supported:
        supported = ", ".join(options.supported)
        raise UnsupportedTransportError(
            text, f"transport {transport} is not supported (supported: {supported})"
        )
    return transport
