"""CachingBackend: a TTL-respecting DNS answer cache layered over any DnsBackend."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TLRUCache

from asip_locate._backend import DnsBackend
from asip_locate._model import Answer, Query, Status
from asip_locate._options import LocateOptions

log = logging.getLogger("asip_locate")

# RFC 8767 §4: stale data is handed out with a TTL of 30 seconds.
STALE_ANSWER_TTL = 30
# RFC 8767 §5 ("failure recheck timer"): after a refresh failed, serve the stale data
# without asking again for this long, so a dead server does not slow every locate.
STALE_RECHECK = 30.0

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
    """

    hits: int = 0
    misses: int = 0
    coalesced: int = 0
    stale_served: int = 0
    size: int = 0
    maxsize: int = 0


class _Entry:
    """One cached answer and its timers (absolute times on the cache's clock)."""

    __slots__ = ("answer", "evict_at", "fresh_until", "recheck_at", "refresh_at", "view")

    def __init__(self, answer: Answer, now: float, lifetime: int, options: LocateOptions):
        self.answer = answer
        self.fresh_until = now + lifetime
        self.evict_at = self.fresh_until + options.stale_ttl
        ahead = options.refresh_ahead
        self.refresh_at = self.fresh_until - ahead * lifetime if ahead > 0 else math.inf
        self.recheck_at = -math.inf
        self.view = answer
        """The answer with its remaining TTL, rebuilt when that changes."""

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


def _evict_at(key: _Key, entry: _Entry, now: float) -> float:
    return entry.evict_at


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
        self._entries: TLRUCache[_Key, _Entry] = TLRUCache(
            options.cache_size, _evict_at, timer=clock
        )
        self._inflight: dict[Query, asyncio.Task[Answer]] = {}
        self._hits = self._misses = self._coalesced = self._stale_served = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"<CachingBackend {self.info()} inflight={len(self._inflight)} {self.backend!r}>"

    def cached(self, query: Query) -> Answer | None:
        """The answer from memory, or None when ``query`` must be asked."""
        entry = self._find(query)
        if entry is None:
            return None
        now = self._clock()
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
        # The task belongs to the cache: cancelling this caller must not cancel it.
        return await asyncio.shield(self.shared(query))

    def shared(self, query: Query) -> asyncio.Future[Answer]:
        """Join (or start) the cache's own query for ``query``, which is not cached.

        The future belongs to the cache: wait for it (``asyncio.wait`` does not cancel
        what it waits for), never cancel it. This spares a waiter the task and shield
        that ``query`` costs, which matters when thousands of locates wait on one name.
        """
        task = self._inflight.get(query)
        if task is None:
            self._misses += 1
            return self._start(query)
        self._coalesced += 1
        return task

    def info(self) -> CacheInfo:
        """Counters and size now."""
        return CacheInfo(
            self._hits,
            self._misses,
            self._coalesced,
            self._stale_served,
            len(self._entries),
            self.options.cache_size,
        )

    def flush(self, name: str | None = None) -> None:
        """Forget every answer, or those for ``name`` (every type).

        Queries in flight are not cancelled; their answers are stored when they come.
        """
        if name is None:
            self._entries.clear()
            return
        name = name.lower().rstrip(".")
        entries = self._entries
        for key in [k for k in entries if (k if isinstance(k, str) else k.name) == name]:
            entries.pop(key, None)

    async def aclose(self) -> None:
        """Cancel the queries in flight, then close the wrapped backend."""
        self._closed = True
        tasks = list(self._inflight.values())
        self._inflight.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.backend.aclose()

    def _find(self, query: Query) -> _Entry | None:
        entries = self._entries
        try:
            return entries[query]
        except KeyError:
            pass
        try:
            return entries[query.name]
        except KeyError:
            return None

    def _start(self, query: Query) -> asyncio.Task[Answer]:
        task = asyncio.get_running_loop().create_task(self._fetch(query))
        self._inflight[query] = task
        task.add_done_callback(lambda done: self._forget(query, done))
        return task

    def _forget(self, query: Query, task: asyncio.Task[Answer]) -> None:
        if self._inflight.get(query) is task:
            del self._inflight[query]

    def _refresh(self, query: Query) -> None:
        if query in self._inflight or self._closed:
            return
        with contextlib.suppress(RuntimeError):  # no running loop: used outside asyncio
            self._start(query)

    async def _fetch(self, query: Query) -> Answer:
        try:
            answer = await self.backend.query(query)
        except Exception as exc:  # a backend bug must not poison every waiter
            log.exception("backend failed on %s", query)
            answer = Answer(query, Status.ERROR, detail=f"{type(exc).__name__}: {exc}")
        now = self._clock()
        if answer.status.is_failure:
            return self._stale_or(answer, now)
        return self._store(answer, now)

    def _stale_or(self, failure: Answer, now: float) -> Answer:
        """RFC 8767 §4: a failed refresh leaves the old data usable for a while."""
        query = failure.query
        entry = self._find(query)
        if entry is None or now >= entry.evict_at:
            return failure
        if now < entry.fresh_until:  # a refresh-ahead failed; the data is still good
            return entry.fresh(query, now)
        log.info("%s: %s; serving stale data", query, failure.status)
        entry.recheck_at = min(now + STALE_RECHECK, entry.evict_at)
        self._stale_served += 1
        return entry.stale(query, now)

    def _store(self, answer: Answer, now: float) -> Answer:
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
            self._entries.pop(query, None)  # the name is gone, whatever was cached for it
        self._entries[key] = entry
        return entry.fresh(query, now)
