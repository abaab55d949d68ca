"""Failure feedback: per-endpoint health (RFC 3263 §4.3, RFC 3261 §21.5.4) and stickiness.

This state is kept apart from DNS data on purpose: a failed request says something
about one (transport, address, port), never about the records that led to it, so a
failure must not shorten, evict or rewrite a cached DNS answer (one well-known proxy
did, and one failed call made every later call fail until the TTL ran out).

Both tables are bounded and expire by the Locator's injected clock. Neither drops a
target: demoted endpoints are only moved behind healthy ones, and a sticky target is
only moved ahead of its equals.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from asip_locate._model import Endpoint, FailureReason, Target

log = logging.getLogger("asip_locate")

_KEYS_PER_ENDPOINT = 16
"""Location keys remembered per endpoint for stickiness (one server may serve many)."""


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    """One demoted endpoint, as ``Locator.health()`` shows it.

    Attributes:
        endpoint: The (transport, address, port) that failed.
        reason: The reason given with the latest failure.
        until: Clock time (``Locator.clock``) at which the demotion ends.
        failures: Failures reported since the endpoint was last healthy.
        retry_after: The Retry-After seconds given with the latest failure, if any.
    """

    endpoint: Endpoint
    reason: FailureReason
    until: float
    failures: int
    retry_after: float | None = None

    def __str__(self) -> str:
        text = f"{self.endpoint}: {self.reason}, {self.failures} failure(s)"
        if self.retry_after is not None:
            text += f", retry-after {self.retry_after:g}s"
        return text


def endpoint_of(value: Target | Endpoint) -> Endpoint:
    """The Endpoint of a Target (or the Endpoint itself)."""
    if isinstance(value, Target):
        return value.endpoint
    if isinstance(value, Endpoint):
        return value
    raise TypeError(f"expected a Target or Endpoint, got {value!r}")


def failure_reason(value: FailureReason | str) -> FailureReason:
    """``value`` as a FailureReason; plain strings ("timeout", "503"...) are accepted."""
    try:
        return FailureReason(str(value).lower())
    except ValueError:
        known = ", ".join(r.value for r in FailureReason)
        raise ValueError(f"unknown failure reason {value!r} (known: {known})") from None


def _check_seconds(name: str, value: float) -> float:
    if not 0 <= value < math.inf:  # NaN fails every comparison
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    return float(value)


@runtime_checkable
class HealthStore(Protocol):
    """Where a Locator keeps endpoint health: ``Locator(health_store=...)``.

    The default is the in-memory HealthTable of the Locator's own process;
    ``asip_locate.redis.RedisHealthStore`` shares the state across processes. Every
    method but ``start`` and ``aclose`` runs on a locate's or a report's path, so
    none may block or do I/O: a store that shares state keeps a local mirror and
    writes in the background. ``Locator.aclose()`` closes the store it was given.
    """

    def bind(self, *, size: int, hold: float, clock: Callable[[], float]) -> None:
        """Take the Locator's ``health_size``, ``failure_hold`` and clock (once)."""
        ...

    def snapshot(self) -> frozenset[Endpoint]:
        """The endpoints demoted now, frozen; called by every locate (keep it cheap)."""
        ...

    def report_failure(
        self, endpoint: Endpoint, reason: FailureReason, retry_after: float | None = None
    ) -> EndpointHealth | None:
        """Demote ``endpoint`` (never shortening a hold in force); its new state."""
        ...

    def report_success(self, endpoint: Endpoint) -> None:
        """Forget any demotion of ``endpoint``."""
        ...

    def entries(self) -> list[EndpointHealth]:
        """Demotions in force now, least recently updated first."""
        ...

    def clear(self, endpoint: Endpoint | None = None) -> None:
        """Forget ``endpoint``'s demotion, or every demotion when None."""
        ...

    async def start(self) -> None:
        """Start any background work (idempotent; ``bind`` may already have)."""
        ...

    async def aclose(self) -> None:
        """Stop background work and release connections; leaves no task behind."""
        ...


class HealthTable:
    """Demoted endpoints with their expiry; least recently updated dropped first.

    Hold per report: ``retry_after`` seconds when given (RFC 3261 §21.5.4 for 503;
    Retry-After also comes with other responses, RFC 3261 §20.33), else ``hold``
    seconds (``LocateOptions.failure_hold``) for a timeout, a transport error, a 503
    without Retry-After, or another failure. A report never shortens a hold already
    in force; only a success (or ``clear``) ends it early.
    """

    def __init__(self, *, size: int, hold: float, clock: Callable[[], float]) -> None:
        HealthTable.bind(self, size=size, hold=hold, clock=clock)  # not a subclass' bind
        self._entries: OrderedDict[Endpoint, EndpointHealth] = OrderedDict()
        # The same keys in a plain set: copying it into a frozenset reuses the stored
        # hashes, where hashing an Endpoint again runs Python code (Enum, ipaddress).
        self._demoted: set[Endpoint] = set()
        self._frozen: frozenset[Endpoint] | None = frozenset()
        # (until, sequence, endpoint), lazily pruned: finds expiries in O(log n).
        self._expiry: list[tuple[float, int, Endpoint]] = []
        self._sequence = itertools.count()

    def __len__(self) -> int:
        return len(self._entries)

    def bind(self, *, size: int, hold: float, clock: Callable[[], float]) -> None:
        """Set the bound, the default hold and the clock (HealthStore protocol)."""
        if size < 0:
            raise ValueError(f"LocateOptions.health_size must be >= 0, got {size!r}")
        self.size = size
        self.hold = _check_seconds("LocateOptions.failure_hold", hold)
        self._clock = clock

    async def start(self) -> None:
        """Nothing to start: the table lives in memory."""

    async def aclose(self) -> None:
        """Nothing to close: the table lives in memory."""

    def report_failure(
        self,
        endpoint: Endpoint,
        reason: FailureReason,
        retry_after: float | None = None,
    ) -> EndpointHealth | None:
        """Demote ``endpoint``; returns its new state (None when not demoted at all)."""
        if retry_after is not None:
            retry_after = _check_seconds("retry_after", retry_after)
        if not self.size:
            return None
        now = self._clock()
        self._expire(now)
        hold = self.hold if retry_after is None else retry_after
        until = now + hold
        failures = 1
        old = self._entries.pop(endpoint, None)
        if old is not None:
            until = max(until, old.until)
            failures = old.failures + 1
        if until <= now:
            return None  # a hold of 0 s: nothing to remember
        entry = EndpointHealth(endpoint, reason, until, failures, retry_after)
        self._entries[endpoint] = entry
        if old is None:
            self._demoted.add(endpoint)
            self._frozen = None
        if old is None or until != old.until:
            heapq.heappush(self._expiry, (until, next(self._sequence), endpoint))
        while len(self._entries) > self.size:
            dropped, _ = self._entries.popitem(last=False)
            self._demoted.discard(dropped)
            self._frozen = None
            log.debug("health table full (%d): forgetting %s", self.size, dropped)
        if len(self._expiry) > 2 * len(self._entries) + 64:
            self._expiry = [(e.until, next(self._sequence), ep) for ep, e in self._entries.items()]
            heapq.heapify(self._expiry)
        log.info("demoting %s for %gs (%s)", endpoint, until - now, reason)
        return entry

    def report_success(self, endpoint: Endpoint) -> None:
        """Forget any demotion of ``endpoint``."""
        if self._entries.pop(endpoint, None) is not None:
            self._demoted.discard(endpoint)
            self._frozen = None
            log.info("%s is healthy again", endpoint)

    def entries(self) -> list[EndpointHealth]:
        """Demotions in force now, least recently updated first."""
        self._expire(self._clock())
        return list(self._entries.values())

    def clear(self, endpoint: Endpoint | None = None) -> None:
        """Forget ``endpoint``'s demotion, or every demotion when None."""
        if endpoint is None:
            self._entries.clear()
            self._demoted.clear()
            self._expiry.clear()
            self._frozen = None
        else:
            HealthTable.report_success(self, endpoint)  # not a subclass' (no second report)

    def apply(self, entry: EndpointHealth) -> None:
        """Set ``entry`` as its endpoint's state as given (a mirror of shared state).

        Unlike ``report_failure`` the state replaces the old one (it may end earlier):
        the source of truth has already merged the reports. Expired entries are
        dropped; the bound applies as usual.
        """
        if not self.size:
            return
        now = self._clock()
        self._expire(now)
        endpoint = entry.endpoint
        old = self._entries.pop(endpoint, None)
        if entry.until <= now:
            if old is not None:
                self._demoted.discard(endpoint)
                self._frozen = None
            return
        self._entries[endpoint] = entry
        if old is None:
            self._demoted.add(endpoint)
            self._frozen = None
        if old is None or entry.until != old.until:
            heapq.heappush(self._expiry, (entry.until, next(self._sequence), endpoint))
        while len(self._entries) > self.size:
            dropped, _ = self._entries.popitem(last=False)
            self._demoted.discard(dropped)
            self._frozen = None
        if len(self._expiry) > 2 * len(self._entries) + 64:
            self._expiry = [(e.until, next(self._sequence), ep) for ep, e in self._entries.items()]
            heapq.heapify(self._expiry)

    def discard(self, endpoint: Endpoint | None = None) -> None:
        """Forget ``endpoint`` (or everything when None) without logging."""
        if endpoint is None:
            self._entries.clear()
            self._demoted.clear()
            self._expiry.clear()
            self._frozen = None
        elif self._entries.pop(endpoint, None) is not None:
            self._demoted.discard(endpoint)
            self._frozen = None

    def snapshot(self) -> frozenset[Endpoint]:
        """The endpoints demoted now, frozen (later reports do not change it).

        The same frozenset is returned until a report, a clear or an expiry changes
        the table, so a locate with an unchanged table costs one clock read.
        """
        expiry = self._expiry
        if expiry and expiry[0][0] <= (now := self._clock()):
            self._expire(now)
        if self._frozen is None:
            self._frozen = frozenset(self._demoted)
        return self._frozen

    def _expire(self, now: float) -> None:
        expiry = self._expiry
        while expiry and expiry[0][0] <= now:
            _, _, endpoint = heapq.heappop(expiry)
            entry = self._entries.get(endpoint)
            if entry is not None and entry.until <= now:
                del self._entries[endpoint]
                self._demoted.discard(endpoint)
                self._frozen = None


@dataclass(frozen=True, slots=True)
class _Sticky:
    target: Target
    until: float


class StickyTable:
    """The target that last succeeded for each location key, for ``hold`` seconds.

    A location key names what decides a resolution (scheme, RFC 3263 TARGET, port,
    transport), so ``sip:alice@example.com`` and ``sip:bob@example.com`` share one.
    Each resolution tells the table once which targets it released for its key
    (``located``), so that ``succeeded(endpoint)`` knows which keys the endpoint was
    located for. Disabled when ``hold`` or ``size`` is 0.
    """

    def __init__(self, *, size: int, hold: float, clock: Callable[[], float]) -> None:
        self.size = size
        self.hold = _check_seconds("LocateOptions.sticky_for", hold)
        self._clock = clock
        self._origins: OrderedDict[Endpoint, dict[Hashable, Target]] = OrderedDict()
        self._sticky: OrderedDict[Hashable, _Sticky] = OrderedDict()
        self._sticky_keys: dict[Endpoint, set[Hashable]] = {}  # reverse of _sticky
        self._told: dict[Hashable, object] = {}
        """Per key, the source (a compiled result) whose targets ``_origins`` holds."""

    @property
    def enabled(self) -> bool:
        """True when stickiness is on (``LocateOptions.sticky_for`` > 0)."""
        return self.hold > 0 and self.size > 0

    def located(self, key: Hashable, targets: Iterable[Target], source: object = None) -> None:
        """A resolution for ``key`` released ``targets``.

        ``source`` names what produced them when it is reused (a compiled result,
        replayed by many locates): telling the same source again costs one look-up.
        """
        if source is not None:
            if self._told.get(key) is source:
                return
            self._told[key] = source
            while len(self._told) > self.size:
                del self._told[next(iter(self._told))]
        origins = self._origins
        for target in targets:
            endpoint = target.endpoint
            keys = origins.pop(endpoint, {})
            keys.pop(key, None)
            keys[key] = target
            while len(keys) > _KEYS_PER_ENDPOINT:
                dropped = next(iter(keys))
                del keys[dropped]
                self._told.pop(dropped, None)
            origins[endpoint] = keys
        while len(origins) > self.size:
            # Forgotten: their keys' sources must tell the table again.
            for lost in origins.popitem(last=False)[1]:
                self._told.pop(lost, None)

    def succeeded(self, endpoint: Endpoint) -> None:
        """Make ``endpoint`` sticky for every key it was recently located for."""
        if not self.enabled:
            return
        until = self._clock() + self.hold
        for key, target in self._origins.get(endpoint, {}).items():
            self._drop(key)
            self._sticky[key] = _Sticky(target, until)
            self._sticky_keys.setdefault(endpoint, set()).add(key)
        while len(self._sticky) > self.size:
            self._drop(next(iter(self._sticky)))

    def preferred(self, key: Hashable) -> Target | None:
        """The sticky target for ``key``, if one is in force."""
        entry = self._sticky.get(key)
        if entry is None:
            return None
        if entry.until <= self._clock():
            self._drop(key)
            return None
        return entry.target

    def forget(self, endpoint: Endpoint | None = None) -> None:
        """Drop stickiness to ``endpoint`` (after a failure), or all when None."""
        if endpoint is None:
            self._sticky.clear()
            self._sticky_keys.clear()
            self._origins.clear()
            self._told.clear()
            return
        for key in self._sticky_keys.pop(endpoint, set()):
            del self._sticky[key]

    def _drop(self, key: Hashable) -> None:
        entry = self._sticky.pop(key, None)
        if entry is not None:
            keys = self._sticky_keys[entry.target.endpoint]
            keys.discard(key)
            if not keys:
                del self._sticky_keys[entry.target.endpoint]
