"""CachingBackend: a TTL-respecting DNS answer cache layered over any DnsBackend."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass, replace
from typing import Any

from cachetools import Cache, LRUCache

from asip_locate._backend import DnsBackend, FutureLookup, PendingAnswer
from asip_locate._model import Answer, Endpoint, Query, Status, Target
from asip_locate._options import LocateOptions
from asip_locate._plan import Resolution, RngFactory, Template

log = logging.getLogger("asip_locate")

# RFC 8767 §4: stale data is handed out with a TTL of 30 seconds.
STALE_ANSWER_TTL = 30
# RFC 8767 §5 ("failure recheck timer"): after a refresh failed, serve the stale data
# without asking again for this long, so a dead server does not slow every locate.
STALE_RECHECK = 30.0

_CANDIDATES = 256
"""Locations remembered for compiling on second use: one must be located again
within the next 256 cold locates (of other locations) to be compiled. Each keeps
only how to plan it again, not the resolution it had: keeping those alive would
move every cold locate's objects into the garbage collector's oldest generation."""

_COMPILE_ROUNDS = 64
"""Rounds of answers fed when a location is planned again from the cache (a plan
needs a handful: NAPTR, SRV, A/AAAA, fallbacks; ``max_queries`` bounds it too)."""

_Key = Query | str
"""A Query, or a bare name for an NXDOMAIN that covers every type of it (RFC 2308 §5)."""


@dataclass(frozen=True, slots=True)
class CacheInfo:
    """A snapshot of a cache's counters.

    Attributes:
        hits: Lookups answered from fresh cached data.
        misses: Lookups that started a query.
        coalesced: Lookups that joined a query already in flight.
        stale_served: Lookups answered with expired data (RFC 8767).
        size: Entries held now (expired entries kept for serve-stale included).
        maxsize: The most entries kept (``LocateOptions.cache_size``).
        compiled: Compiled resolutions held (one per location key).
        compiled_targets: Prebuilt targets those hold (their memory, about 0.8 KB
            per target).
        compiled_maxsize: The most compiled resolutions kept (``cache_size // 8``,
            at least 1).
        compiled_hits: Locates answered from a compiled resolution (each also
            counts its answers in ``hits``).
    """

    hits: int = 0
    misses: int = 0
    coalesced: int = 0
    stale_served: int = 0
    size: int = 0
    maxsize: int = 0
    compiled: int = 0
    compiled_targets: int = 0
    compiled_maxsize: int = 0
    compiled_hits: int = 0


class _Entry:
    """One cached answer and its timers (absolute times on the cache's clock)."""

    __slots__ = (
        "additional",
        "answer",
        "dependents",
        "evict_at",
        "fresh_until",
        "recheck_at",
        "refresh_at",
        "view",
    )

    def __init__(self, answer: Answer, now: float, lifetime: int, options: LocateOptions):
        self.answer = answer
        self.fresh_until = now + lifetime
        self.evict_at = self.fresh_until + options.stale_ttl
        ahead = options.refresh_ahead
        self.refresh_at = self.fresh_until - ahead * lifetime if ahead > 0 else math.inf
        self.recheck_at = -math.inf
        self.view = answer
        """The answer with its remaining TTL, rebuilt when that changes."""
        self.dependents: list[Compiled] | None = None
        """Compiled resolutions built from this answer (ended when it goes); None
        until there is one (most answers never have one: no list to allocate)."""
        self.additional = False
        """Learned from an SRV reply's additional section: lower rank (RFC 2181
        §5.4.1), never served stale, replaced by any answer-section data."""

    def invalidate(self) -> None:
        """This entry is replaced, flushed or evicted: end what was built from it."""
        if self.dependents:
            for compiled in self.dependents:
                compiled.valid = False
            self.dependents = None

    def fresh(self, query: Query, now: float) -> Answer:
        remaining = int(self.fresh_until - now)  # floor: fresh_until > now
        view = self.view
        if view.ttl != remaining or view.query != query:
            a = self.answer
            view = self.view = Answer(query, a.status, a.records, remaining, a.cnames, a.detail)
        return view

    def stale(self, query: Query, now: float) -> Answer:
        # RFC 8767 §4: a stale TTL is > 0; it is 30 s unless the stale window ends sooner.
        ttl = max(1, min(STALE_ANSWER_TTL, int(self.evict_at - now)))
        a = self.answer
        return Answer(query, a.status, a.records, ttl, a.cnames, a.detail, stale=True)


def _as_future(lookup: PendingAnswer) -> asyncio.Future[Answer]:
    """An asyncio future that completes as ``lookup`` (a backend's own future type)."""
    future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()

    def copy(done: PendingAnswer) -> None:
        if future.done():
            return
        if done.cancelled():
            future.cancel()
        elif done.exception() is not None:
            future.set_exception(done.exception())  # type: ignore[arg-type]
        else:
            future.set_result(done.result())

    lookup.add_done_callback(copy)
    return future


def _as_landed(answer: Answer) -> Answer:
    """A closed cache's settle callback: the answer as it came, stored nowhere."""
    return answer


def _srv_domain(owner: str) -> str:
    """The domain of an SRV owner name: without its leading ``_service._proto`` labels."""
    labels = owner.split(".")
    index = 0
    while index < len(labels) - 1 and labels[index].startswith("_"):
        index += 1
    return ".".join(labels[index:])


class _Entries(LRUCache[_Key, _Entry]):
    """The entries, least recently used dropped first, each with its own expiry.

    Every entry carries its timers (``evict_at`` ends it): a read finds no entry past
    it, and a sweep every ``maxsize`` stores drops those nobody read. (TLRUCache keeps
    per-entry expiry in a heap instead: with the cache full, each store then costs
    about 5 us of heap upkeep, against 1 us here.)
    """

    names = 0
    """Entries keyed by a bare name (NXDOMAIN for every type): while there are none,
    a miss is one look-up, not two."""

    def popitem(self) -> tuple[_Key, _Entry]:
        key, entry = LRUCache.popitem(self)
        if entry.dependents:
            entry.invalidate()  # dropped for room: what was compiled from it ends
        if key.__class__ is str:
            self.names -= 1
        return key, entry

    def sweep(self, now: float) -> list[_Key]:
        """The keys of entries past their ``evict_at`` (read without reordering)."""
        peek = Cache.__getitem__
        return [key for key in list(self) if now >= peek(self, key).evict_at]


class Compiled:
    """A compiled resolution: a Template and how long it stays valid.

    Valid until the earliest expiry (or refresh-ahead point) of the answers it was
    built from, and until any of them is replaced, flushed or evicted (each answer
    knows its dependents: per-dependency invalidation).
    """

    __slots__ = (
        "entries",
        "lookups",
        "replay",
        "template",
        "valid",
        "valid_until",
        "views_until",
    )

    def __init__(self, template: Template, entries: dict[Query, _Entry], now: float) -> None:
        self.template = template
        self.entries = entries
        self.lookups = len(entries)
        self.valid = True
        self.valid_until = min(min(e.fresh_until, e.refresh_at) for e in entries.values())
        template.set_expiry(lambda query: entries[query].fresh_until)
        self.views_until = template.retime(now)
        self.replay: Resolution | None = None
        """The finished Resolution its streams share (``CachingBackend.replay``)."""

    def attempts(self, now: float) -> tuple[Answer, ...]:
        """The answers behind it, with their remaining TTL at ``now``."""
        return tuple(
            e.fresh(a.query, now) for a in self.template.attempts for e in (self.entries[a.query],)
        )


class CachingBackend:
    """A DnsBackend that caches the answers of another one (a decorator layer).

    * Positive answers live their TTL (the minimum of the records used, CNAMEs
      included), clamped to ``[min_ttl, max_ttl]``; a TTL of 0 is never cached
      (RFC 8767 §4 restating RFC 1035).
    * NXDOMAIN and NODATA live ``negative_ttl``, or less when the backend reports a
      lower SOA-derived TTL (RFC 2308 §5). An NXDOMAIN reached without CNAMEs covers
      every type of the name (RFC 2308 §5).
    * Failures (TIMEOUT, SERVFAIL, REFUSED, ERROR) are never cached.
    * Identical concurrent queries share one backend query, owned by the cache, so a
      cancelled caller never cancels it for the others.
    * Serve-stale (RFC 8767): when a refresh fails, an answer expired less than
      ``stale_ttl`` ago is returned with ``stale=True`` and is then served without
      asking again for 30 s (§5 failure recheck).
    * Refresh-ahead: a hit in the last ``refresh_ahead`` fraction of an entry's
      lifetime refreshes it in the background (once per entry).

    ``cached`` answers synchronously from memory. Answers carry their remaining TTL
    in whole seconds. The cache holds at most ``cache_size`` entries (least recently
    used dropped first).

    Args:
        backend: The backend to ask on a miss; ``aclose`` closes it too.
        options: Cache settings (``cache_size``, ``min_ttl``, ``max_ttl``,
            ``negative_ttl``, ``stale_ttl``, ``refresh_ahead``).
        clock: Monotonic seconds; inject a fake clock in tests.
    """

    def __init__(
        self,
        backend: DnsBackend,
        options: LocateOptions | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.options = options = options or LocateOptions()
        if options.cache_size < 1:
            raise ValueError("CachingBackend needs LocateOptions.cache_size >= 1")
        self._clock = clock
        self._entries = _Entries(options.cache_size)
        self._stores_to_sweep = options.cache_size
        self._inflight: dict[Query, PendingAnswer] = {}
        self._submit = backend.submit if isinstance(backend, FutureLookup) else None
        self._on_landed: Callable[[Answer], Answer] = self._landed  # bound once, no partial
        self._hits = self._misses = self._coalesced = self._stale_served = 0
        self._compiled: OrderedDict[Hashable, Compiled] = OrderedDict()
        self._compiled_size = max(1, options.cache_size // 8)
        self._candidates: dict[Hashable, Callable[[], Resolution]] = {}
        """How to plan again each location located once (compiled on second use)."""
        self._compiled_hits = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"<CachingBackend {self.info()} inflight={len(self._inflight)} {self.backend!r}>"

    def cached(self, query: Query) -> Answer | None:
        """The answer from memory, or None when ``query`` must be asked."""
        entries = self._entries
        if query not in entries and not entries.names:
            return None  # the usual miss, without _find
        now = self._clock()
        entry = self._find(query, now)
        if entry is None:
            return None
        if now < entry.fresh_until:
            self._hits += 1
            if now >= entry.refresh_at:
                entry.refresh_at = math.inf  # one refresh per entry
                self._refresh(query)
            return entry.fresh(query, now)
        if now < entry.recheck_at:
            self._stale_served += 1
            return entry.stale(query, now)
        return None

    async def query(self, query: Query) -> Answer:
        """Answer from memory, else join or start the shared query for ``query``."""
        answer = self.cached(query)
        if answer is not None:
            return answer
        lookup = self.shared(query)
        if not isinstance(lookup, asyncio.Future):
            lookup = _as_future(lookup)
        # The lookup belongs to the cache: cancelling this caller must not cancel it.
        return await asyncio.shield(lookup)

    def shared(self, query: Query) -> PendingAnswer:
        """Join (or start) the cache's own query for ``query``, which is not cached.

        The future belongs to the cache: wait for it (``asyncio.wait`` does not cancel
        what it waits for), never cancel it. This spares a waiter the task and shield
        that ``query`` costs, which matters when thousands of locates wait on one name.
        """
        task = self._inflight.get(query)
        if task is not None and not task.done():  # done: its answer is stored
            self._coalesced += 1
            return task
        self._misses += 1
        submit = self._submit
        if submit is None:
            return self._start(query)
        # _start's FutureLookup case, inline: every cold query comes this way.
        lookup = self._inflight[query] = submit(query, self._on_landed)
        return lookup

    def in_flight(self, query: Query) -> bool:
        """True when a lookup for ``query`` is in flight: ``shared`` would join it."""
        task = self._inflight.get(query)
        return task is not None and not task.done()

    def info(self) -> CacheInfo:
        """Counters and size now."""
        return CacheInfo(
            self._hits,
            self._misses,
            self._coalesced,
            self._stale_served,
            len(self._entries),
            self.options.cache_size,
            len(self._compiled),
            sum(c.template.size for c in self._compiled.values()),
            self._compiled_size,
            self._compiled_hits,
        )

    # --- compiled resolutions ----------------------------------------------------------

    def compiled(self, key: Hashable) -> Compiled | None:
        """The valid compiled resolution for location ``key``, with fresh TTLs, or None."""
        compiled = self._compiled.get(key)
        if compiled is None:
            if not self._candidates:
                return None
            # Compiled on second use: a name located once costs no compile.
            plan = self._candidates.pop(key, None)
            if plan is None or not self._compile(key, self._replanned(plan)):
                return None
            compiled = self._compiled[key]
        now = self._clock()
        if not compiled.valid or now >= compiled.valid_until:
            # Expired, replaced, or at its refresh-ahead point: the next locate goes
            # through the answers again (which starts the refresh).
            del self._compiled[key]
            return None
        if now >= compiled.views_until:
            compiled.views_until = compiled.template.retime(now)
        self._hits += compiled.lookups
        self._compiled_hits += 1
        return compiled

    def resolution(
        self,
        compiled: Compiled,
        rng_for: RngFactory | None,
        prefer: Target | None,
        demoted: Collection[Endpoint],
    ) -> Resolution:
        """A finished Resolution replaying ``compiled`` (fresh draws unless seeded)."""
        return self._finished(compiled, compiled.template.expand(rng_for, prefer, demoted))

    def replay(self, compiled: Compiled) -> Resolution:
        """The finished Resolution behind every stream replaying ``compiled``.

        Shared and built once: it holds no targets (each stream is given those from
        ``Template.expand``), only what a stream reports (attempts, discarded, reason).
        """
        replay = compiled.replay
        if replay is None:
            replay = compiled.replay = self._finished(compiled, [])
        return replay

    def _finished(self, compiled: Compiled, targets: list[Target]) -> Resolution:
        template, clock = compiled.template, self._clock
        return Resolution.finished(
            targets,
            attempts=lambda: compiled.attempts(clock()),
            discarded=template.discarded,
            reason=template.reason,
        )

    def compile(self, key: Hashable, plan: Callable[[], Resolution]) -> None:
        """Remember that location ``key`` was resolved; ``plan`` starts it again.

        It is compiled when ``key`` is next looked up (``compiled``): planned again
        over the cache, and only if every answer it needs is cached and fresh then.
        """
        candidates = self._candidates
        candidates.pop(key, None)
        candidates[key] = plan
        while len(candidates) > min(_CANDIDATES, self._compiled_size):
            del candidates[next(iter(candidates))]

    def _replanned(self, plan: Callable[[], Resolution]) -> Resolution:
        """``plan()`` driven as far as fresh cached answers take it (no lookups).

        Done if every answer it needed is cached and fresh; otherwise it stops at the
        first one that is not (and ``_compile`` refuses it).
        """
        resolution = plan()
        now = self._clock()
        for _ in range(_COMPILE_ROUNDS):
            queries = resolution.needs()
            if not queries:
                break
            answers = []
            for query in queries:
                entry = self._find(query, now)
                if entry is None or now >= entry.fresh_until:
                    return resolution
                answers.append(entry.fresh(query, now))
            resolution.feed_all(answers)
            resolution.ready()  # releases targets: done once all are
        return resolution

    def _compile(self, key: Hashable, resolution: Resolution) -> bool:
        """Compile ``resolution`` for ``key`` if every answer it used is cached.

        Only fresh (not stale) answers still held, unchanged, qualify; a failure is
        never cached, so a branch that failed is never compiled into a success.
        """
        template = resolution.template() if resolution.done else None
        if template is None:
            return False
        now = self._clock()
        entries: dict[Query, _Entry] = {}
        for answer in template.attempts:
            entry = self._find(answer.query, now)
            if (
                entry is None
                or answer.stale
                or now >= entry.fresh_until
                or entry.answer.status is not answer.status
                or entry.answer.records != answer.records
                or entry.answer.cnames != answer.cnames
            ):
                return False
            entries[answer.query] = entry
        if not entries:
            return False  # nothing was looked up: planning again is as cheap
        compiled = Compiled(template, entries, now)
        for entry in entries.values():
            dependents = entry.dependents
            if dependents is None:
                entry.dependents = [compiled]
                continue
            if len(dependents) > 8:
                dependents[:] = [d for d in dependents if d.valid]
            dependents.append(compiled)
        old = self._compiled.pop(key, None)
        if old is not None:
            old.valid = False
        self._compiled[key] = compiled
        while len(self._compiled) > self._compiled_size:
            _, dropped = self._compiled.popitem(last=False)
            dropped.valid = False
        return True

    def flush(self, name: str | None = None) -> None:
        """Forget every answer, or those for ``name`` (every type).

        Queries in flight are not cancelled; their answers are stored when they come.
        """
        if name is None:
            for entry in self._entries.values():
                entry.invalidate()
            self._entries.clear()
            self._entries.names = 0
            for compiled in self._compiled.values():
                compiled.valid = False
            self._compiled.clear()
            self._candidates.clear()
            return
        name = name.lower().rstrip(".")
        entries = self._entries
        for key in [k for k in entries if (k if isinstance(k, str) else k.name) == name]:
            self._drop(key)

    async def aclose(self, *, close_backend: bool = True) -> None:
        """Cancel the queries in flight, then close the wrapped backend (if asked)."""
        self._closed = True
        # The plans refer to their Locator, which refers to this cache, and the bound
        # settle callback refers to the cache itself: break both cycles, so a closed
        # Locator and its cache go without waiting for the garbage collector.
        self._candidates.clear()
        self._on_landed = _as_landed
        lookups = list(self._inflight.values())
        self._inflight.clear()
        for lookup in lookups:
            lookup.cancel()
        tasks = [t for t in lookups if isinstance(t, asyncio.Task)]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if close_backend:
            await self.backend.aclose()

    def _find(self, query: Query, now: float) -> _Entry | None:
        # `in` first: a miss raises (and catches) nothing.
        entries = self._entries
        key: _Key = query
        if query not in entries:
            key = query.name
            if not entries.names or key not in entries:
                return None
        entry = entries[key]
        if now >= entry.evict_at:
            self._drop(key)  # expired, stale window included
            return None
        return entry

    def _drop(self, key: _Key) -> None:
        entry: Any = self._entries.pop(key, None)
        if entry is not None:
            if key.__class__ is str:
                self._entries.names -= 1
            entry.invalidate()

    def _start(self, query: Query) -> PendingAnswer:
        submit = self._submit
        lookup: PendingAnswer
        if submit is None:
            task = asyncio.get_running_loop().create_task(self._fetch(query))
            task.add_done_callback(functools.partial(self._forget, query))
            lookup = task
        else:
            # No task and no future of our own: the backend completes its future
            # with the settled (stored) answer, from the resolver's callback.
            lookup = submit(query, self._on_landed)
        self._inflight[query] = lookup
        return lookup

    def _landed(self, answer: Answer) -> Answer:
        """A submitted lookup's answer: no longer in flight, stored (or stale data)."""
        query = answer.query
        self._inflight.pop(query, None)
        ttl = answer.ttl
        if answer.status is not Status.NOERROR or answer.additional or not ttl:
            return self._settle(answer)
        # The common case inline (a cold locate stores 16 of these): a positive answer
        # whose TTL needs no clamping is stored as it is and handed back unchanged.
        options = self.options
        if options.min_ttl <= ttl <= options.max_ttl:
            now = self._clock()
            self._put(query, _Entry(answer, now, ttl, options), now)
            return answer
        return self._settle(answer)

    def _forget(self, query: Query, task: asyncio.Task[Answer]) -> None:
        if self._inflight.get(query) is task:
            del self._inflight[query]
        if not task.cancelled() and task.exception() is not None:
            # Marked as retrieved (a refresh nobody waits for must not log "never
            # retrieved"); waiters still get it from result().
            log.error("backend failed on %s: %r", query, task.exception())

    def _refresh(self, query: Query) -> None:
        task = self._inflight.get(query)
        if (task is not None and not task.done()) or self._closed:
            return
        with contextlib.suppress(RuntimeError):  # no running loop: used outside asyncio
            self._start(query)

    async def _fetch(self, query: Query) -> Answer:
        # Any exception is a bug (or misuse) and reaches every waiter: never cached,
        # never disguised as a DNS failure.
        return self._settle(await self.backend.query(query))

    def _settle(self, answer: Answer) -> Answer:
        """Store a fresh answer; a failure falls back to stale data (RFC 8767)."""
        now = self._clock()
        if answer.status.is_failure:
            return self._stale_or(answer, now)
        return self._store(answer, now)

    def _stale_or(self, failure: Answer, now: float) -> Answer:
        """RFC 8767 §4: a failed refresh leaves the old data usable for a while."""
        query = failure.query
        entry = self._find(query, now)
        if entry is None or entry.additional:
            return failure
        if now < entry.fresh_until:  # a refresh-ahead failed; the data is still good
            return entry.fresh(query, now)
        log.info("%s: %s; serving stale data", query, failure.status)
        entry.recheck_at = min(now + STALE_RECHECK, entry.evict_at)
        self._stale_served += 1
        return entry.stale(query, now)

    def _store(self, answer: Answer, now: float) -> Answer:
        additional = answer.additional
        if not additional:
            return self._store_answer(answer, now)
        # The entry keeps the SRV RRset alone; its targets' addresses are entries of
        # their own (lower rank). This resolution gets them all, in-domain or not.
        view = self._store_answer(replace(answer, additional=()), now)
        if not self.options.use_additional:
            return view
        self._store_additional(answer.query.name, additional, now)
        return replace(view, additional=additional)

    def _store_additional(self, owner: str, additional: tuple[Answer, ...], now: float) -> None:
        """Cache additional-section A/AAAA answers, at a rank below answer data.

        Only for targets inside the SRV owner's domain (``_sip._tcp.example.com`` ->
        ``example.com`` and names below it), where the server that answered the SRV
        query is likely authoritative for them too; others are used for the current
        resolution only. Never over an answer-section entry still fresh (RFC 2181
        §5.4.1: an authoritative answer replaces additional data, never the reverse).
        """
        domain = _srv_domain(owner)
        suffix = "." + domain
        options = self.options
        for extra in additional:
            query = extra.query
            name = query.name
            ttl = extra.ttl
            if extra.status is not Status.NOERROR or not ttl:
                continue
            if name != domain and not name.endswith(suffix):
                continue
            existing = self._find(query, now)
            if existing is not None and not existing.additional and now < existing.fresh_until:
                continue
            lifetime = min(max(ttl, options.min_ttl), options.max_ttl)
            entry = _Entry(extra, now, lifetime, options)
            entry.additional = True
            self._put(query, entry, now)

    def _store_answer(self, answer: Answer, now: float) -> Answer:
        options = self.options
        ttl = answer.ttl
        if answer.status is Status.NOERROR:
            if not ttl:  # TTL 0 (or unknown): use for this resolution only
                return answer
            lifetime = min(max(ttl, options.min_ttl), options.max_ttl)
        else:
            lifetime = options.negative_ttl if ttl is None else min(ttl, options.negative_ttl)
        if lifetime <= 0:
            return answer
        query = answer.query
        entry = _Entry(answer, now, lifetime, options)
        key: _Key = query
        if answer.status is Status.NXDOMAIN and not answer.cnames:
            key = query.name
            self._drop(query)  # the name is gone, whatever was cached for it
        self._put(key, entry, now)
        return entry.fresh(query, now)

    def _put(self, key: _Key, entry: _Entry, now: float) -> None:
        entries = self._entries
        if key in entries:
            self._drop(key)  # replaced: what was compiled from the old answer ends
        if key.__class__ is str:
            entries.names += 1
        entries[key] = entry
        self._stores_to_sweep -= 1
        if self._stores_to_sweep <= 0:  # O(size) once per `size` stores: O(1) each
            self._stores_to_sweep = self.options.cache_size
            for expired in entries.sweep(now):
                self._drop(expired)
