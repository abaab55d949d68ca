"""Locator: the public entry point that ties parsing, planning, DNS and streams."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
import random
import time
import weakref
from collections.abc import Callable, Hashable, Sequence
from types import TracebackType
from typing import Any

from asip_locate._aiodns import AiodnsBackend
from asip_locate._backend import Capabilities, DnsBackend
from asip_locate._cache import CacheInfo, CachingBackend, Compiled
from asip_locate._errors import LocateError, LocateTimeoutError, NoTargetsError
from asip_locate._health import (
    EndpointHealth,
    HealthStore,
    HealthTable,
    StickyTable,
    endpoint_of,
    failure_reason,
)
from asip_locate._model import Endpoint, FailureReason, Target, Transport
from asip_locate._observe import FailureReported, Observer, SuccessReported, Watch, guard_observer
from asip_locate._options import IpStrategy, LocateOptions
from asip_locate._plan import Resolution, RngFactory, plan_request
from asip_locate._stream import Closing, Flights, TargetStream
from asip_locate._uri import SipUri, parse_uri
from asip_locate._via import Via, parse_via, plan_response

LocationKey = tuple[bool, str, int | None, str | None]
"""What decides a resolution: (secure, RFC 3263 TARGET, port, transport parameter)."""

_TOKENS = itertools.count()

_PARSED_MAX = 4096
"""URI texts whose parse is remembered per Locator (parsing costs ~4 us)."""

_VARIANTS_MAX = 64
"""Per-call option overrides remembered (each has its own compiled results)."""


def _location_key(uri: SipUri, as_sips: bool) -> LocationKey:
    return (uri.secure or as_sips, uri.target, uri.port, uri.transport)


async def _landed(flight: asyncio.Future[None], within: float) -> bool:
    """Wait until ``flight`` is done or ``within`` seconds passed; True if it is done.

    A private waiter, as in TargetStream: nothing to remove from a flight that
    thousands of locates wait on.
    """
    if not flight.done():
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        flight.add_done_callback(functools.partial(_wake, waiter))
        timer = loop.call_later(within, _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
    return flight.done()


def _ended(watch: Watch | None, error: LocateError) -> LocateError:
    """``error`` ends a locate that made no stream: tell its watch (if any)."""
    if watch is not None:
        watch.done(0, error)
    return error


def _wake(waiter: asyncio.Future[None], *_: object) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _FastRandom:
    """``random.Random`` through its C ``random()``: ~3x cheaper than ``randint``.

    For unseeded draws only (a seed must keep ``randint``'s exact sequence); the
    bias of scaling a 53-bit float to a range of SRV weights is below 2**-37.
    """

    __slots__ = ("random",)

    def __init__(self, source: random.Random) -> None:
        self.random = source.random

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))


class Locator:
    """Finds where to send SIP requests (RFC 3263 §4) and responses (§5).

    Args:
        options: LocateOptions; None uses the defaults.
        backend: Where DNS questions go; None builds an AiodnsBackend from the
            options. With ``options.cache_size`` > 0 it is wrapped in a CachingBackend
            (unless it is one already).
        own_backend: True (default): ``aclose`` closes the backend. False borrows it
            (e.g. one backend shared by several Locators): it is never closed here.
        clock: Monotonic seconds for cache expiry and health state (inject a fake
            clock in tests); default ``time.monotonic``.
        health_store: Where endpoint health lives (a HealthStore, e.g.
            ``asip_locate.redis.RedisHealthStore`` to share it across processes);
            None keeps it in this Locator's memory. The Locator binds it to its
            options and clock and closes it in ``aclose``.
        observer: Called with an event (``asip_locate.Event``) for each step of
            every locate and for each ``report_failure`` / ``report_success``, for
            metrics or tracing (docs/observe.md). Its exceptions are logged and
            swallowed (``guard_observer``). None (default): no event is built.

    Use as ``async with Locator() as locator:``.
    """

    def __init__(
        self,
        options: LocateOptions | None = None,
        *,
        backend: DnsBackend | None = None,
        own_backend: bool = True,
        clock: Callable[[], float] = time.monotonic,
        health_store: HealthStore | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.options = options = options or LocateOptions()
        self.clock = clock
        if backend is None:
            backend = AiodnsBackend(
                options.nameservers,
                timeout=options.timeout,
                tries=options.tries,
                max_records=options.max_records,
                additional=options.use_additional,
            )
            own_backend = True
        self._given = backend
        self._own_backend = own_backend
        if options.cache_size > 0 and not isinstance(backend, CachingBackend):
            backend = CachingBackend(backend, options, clock=clock)
        self.backend = backend
        # --- health store (issue 15): in-memory HealthTable unless one is given ---
        self._health: HealthStore
        if health_store is None:
            self._health = HealthTable(
                size=options.health_size, hold=options.failure_hold, clock=clock
            )
        else:
            health_store.bind(size=options.health_size, hold=options.failure_hold, clock=clock)
            self._health = health_store
        # --- end health store ---
        self._cache = backend if isinstance(backend, CachingBackend) else None
        self._lookups = Capabilities.of(backend)  # resolved once
        self._sticky = StickyTable(size=options.health_size, hold=options.sticky_for, clock=clock)
        self._located = self._sticky.located if self._sticky.enabled else None
        self._random = random.Random()
        seed = options.seed
        if seed is None:
            shared = _FastRandom(self._random)
            self._rng_for: RngFactory = lambda name: shared
        else:
            # One generator per SRV owner: the order stays the same whatever order the
            # answers arrive in, and a compiled resolution replays the draw it made.
            self._rng_for = lambda name: random.Random(f"{seed}:{name}")
        self._redraw: RngFactory | None = self._rng_for if seed is None else None
        """What a compiled result draws afresh with; None replays its (seeded) draw."""
        self._flights = Flights()
        self._token = next(_TOKENS)
        self._variants: dict[tuple[object, object], tuple[LocateOptions, int]] = {}
        """Stands for this Locator's options in compiled keys (a cache may be shared)."""
        self._parsed: dict[tuple[str, bool], tuple[SipUri, LocationKey, tuple[Hashable, ...]]] = {}
        self._streams: weakref.WeakSet[TargetStream] = weakref.WeakSet()
        """Streams that may have lookups to stop (those replaying a compiled result
        check ``_closing`` instead)."""
        self._closing = Closing()
        self._closed = False
        self._observer = None if observer is None else guard_observer(observer)
        self._locate_ids = itertools.count(1)
        self._in_flight = None if self._cache is None else self._cache.in_flight
        self._handoff: Watch | None = None
        """A Watch ``resolve`` started, for the stream ``locate`` opens next."""

    def __repr__(self) -> str:
        return f"<Locator open_streams={len(self._streams)} closed={self._closed}>"

    def _parse(
        self, uri: str | SipUri, as_sips: bool
    ) -> tuple[SipUri, LocationKey, tuple[Hashable, ...]]:
        """The parsed URI, its location key and its compiled-resolution key."""
        text = uri if isinstance(uri, str) else None
        if text is not None:
            known = self._parsed.get((text, as_sips))
            if known is not None:
                return known
        parsed = parse_uri(uri) if isinstance(uri, str) else uri
        if not isinstance(parsed, SipUri):
            raise TypeError(f"expected a URI string or SipUri, got {uri!r}")
        key = _location_key(parsed, as_sips)
        # The certificate name (the URI host) shapes Targets too, when maddr is used;
        # the Locator itself stands for its options (a shared cache may serve many).
        compiled_key = (*key, parsed.host, self._token)
        result = (parsed, key, compiled_key)
        if text is not None:
            if len(self._parsed) >= _PARSED_MAX:
                self._parsed.clear()
            self._parsed[(text, as_sips)] = result
        return result

    def _watch(self, text: str) -> Watch:
        """The events of a new locate (only called with an observer): LocateStarted."""
        watch, self._handoff = self._handoff, None
        if watch is not None:
            return watch
        assert self._observer is not None
        return Watch(self._observer, next(self._locate_ids), text, self._in_flight)

    def _variant(
        self,
        transports: Sequence[Transport | str] | None,
        ip_strategy: IpStrategy | str | None,
    ) -> tuple[LocateOptions, int]:
        """The options of one call (per-call overrides) and their compiled-key token."""
        if transports is None and ip_strategy is None:
            return self.options, self._token
        wanted = (None if transports is None else tuple(transports), ip_strategy)
        found = self._variants.get(wanted)
        if found is None:
            changes: dict[str, Any] = {}
            if transports is not None:
                changes["transports"] = tuple(transports)
            if ip_strategy is not None:
                changes["ip_strategy"] = ip_strategy
            if len(self._variants) >= _VARIANTS_MAX:
                self._variants.clear()
            found = self._variants[wanted] = (
                dataclasses.replace(self.options, **changes),
                next(_TOKENS),
            )
        return found

    def locate(
        self,
        uri: str | SipUri,
        *,
        as_sips: bool = False,
        transports: Sequence[Transport | str] | None = None,
        ip_strategy: IpStrategy | str | None = None,
        deadline: float | None = None,
    ) -> TargetStream:
        """Stream the targets for ``uri`` in RFC 3263 order.

        Args:
            uri: A SIP/SIPS URI (text or parsed ``SipUri``), or a bare ``host`` /
                ``host:port``.
            as_sips: Resolve as if the URI were SIPS (RFC 3261 §8.1.2: the
                Request-URI is SIPS although the next hop, e.g. a Route, is not).
            transports: For this call only, instead of ``options.transports``.
            ip_strategy: For this call only, instead of ``options.ip_strategy``.
            deadline: For this call only, instead of ``options.deadline``.
                Overrides share the cache and the endpoint health.

        Raises:
            InvalidUriError: at once, when ``uri`` cannot be parsed. Anything else
                (e.g. UnsupportedTransportError) is raised when the stream is iterated.
            ValueError: at once, for an unknown transport or ip_strategy override.
        """
        if self._closed:
            raise RuntimeError("Locator is closed")
        known = self._parsed.get((uri, as_sips)) if isinstance(uri, str) else None
        parsed, key, compiled_key = known or self._parse(uri, as_sips)
        if transports is None and ip_strategy is None:
            options = self.options
        else:
            options, token = self._variant(transports, ip_strategy)
            compiled_key = (*compiled_key[:-1], token)
        text = uri if isinstance(uri, str) else str(uri)
        watch = None if self._observer is None else self._watch(text)
        # Frozen now: failures reported while this stream runs do not reorder it.
        demoted = self._health.snapshot()
        prefer = self._sticky.preferred(key) if self._located is not None else None
        cache = self._cache
        compiled = cache.compiled(compiled_key) if cache is not None else None
        if cache is not None and compiled is not None:
            targets = self._replayed(key, compiled, prefer, demoted)
            stream = TargetStream(  # by position: the cached hot path (see __init__)
                text,
                compiled.replay or cache.replay(compiled),
                self._lookups,
                self.options.deadline if deadline is None else deadline,
                options.max_concurrency,
                key,
                targets,
                watch,
                self._closing,
            )
            if watch is not None:
                watch.replayed(stream.attempts)  # every answer behind it, from memory
            return stream
        stream = self._cold_stream(
            text, parsed, as_sips, key, compiled_key, options, prefer, demoted, deadline, watch
        )
        self._streams.add(stream)
        return stream

    def _replayed(
        self,
        key: LocationKey,
        compiled: Compiled,
        prefer: Target | None,
        demoted: frozenset[Endpoint],
    ) -> list[Target]:
        """The targets of one locate replaying ``compiled`` (the sticky table told once)."""
        targets = compiled.template.expand(self._redraw, prefer, demoted)
        if self._located is not None:
            self._located(key, targets, compiled.template)  # once per compiled result
        return targets

    def _cold_stream(
        self,
        text: str,
        parsed: SipUri,
        as_sips: bool,
        key: LocationKey,
        compiled_key: Hashable,
        options: LocateOptions,
        prefer: Target | None,
        demoted: frozenset[Endpoint],
        deadline: float | None,
        watch: Watch | None,
    ) -> TargetStream:
        """A stream that plans (and, with the cache, may lead or follow a flight)."""
        cache = self._cache
        rng_for = self._redraw

        def plan() -> Resolution:
            return plan_request(
                parsed, options, self._rng_for, as_sips=as_sips, prefer=prefer, demoted=demoted
            )

        replan = on_done = None
        if cache is not None and compiled_key in self._flights:
            # A follower (see Flights): it re-plans after the flight, so planning
            # now would be wasted (thousands of followers in a storm).
            resolution = Resolution.finished([], attempts=tuple)
        else:
            resolution = plan()
        if cache is not None:
            on_done = self._compile_for(compiled_key, plan)

            def replan() -> Resolution:
                # After the flight this stream followed: its compiled result if
                # there is one, else a plan of our own (over cached answers).
                found = cache.compiled(compiled_key)
                if found is not None:
                    return cache.resolution(found, rng_for, prefer, demoted)
                return plan()

        return TargetStream(
            text,
            resolution,
            self._lookups,
            deadline=self.options.deadline if deadline is None else deadline,
            max_concurrency=options.max_concurrency,
            key=key,
            located=self._located,
            on_done=on_done,
            flights=self._flights,
            flight_key=compiled_key,
            replan=replan,
            watch=watch,
        )

    def _compile_for(
        self, key: Hashable, plan: Callable[[], Resolution]
    ) -> Callable[[TargetStream], None]:
        cache = self._cache
        assert cache is not None

        def compile_result(stream: TargetStream) -> None:
            if stream._resolution.compilable:
                cache.compile(key, plan)

        return compile_result

    async def resolve(
        self,
        uri: str | SipUri,
        *,
        as_sips: bool = False,
        transports: Sequence[Transport | str] | None = None,
        ip_strategy: IpStrategy | str | None = None,
        deadline: float | None = None,
    ) -> list[Target]:
        """All targets for ``uri``, in order. Raises NoTargetsError if there are none.

        The arguments are those of ``locate``.
        """
        cache = self._cache
        if cache is not None and not self._closed:
            # A compiled resolution needs no stream: its targets are all final.
            _, token = self._variant(transports, ip_strategy)
            _, key, compiled_key = self._parse(uri, as_sips)
            if token != self._token:
                compiled_key = (*compiled_key[:-1], token)
            compiled = cache.compiled(compiled_key)
            flight = self._flights.follow(compiled_key) if compiled is None else None
            watch = None
            if self._observer is not None and (compiled is not None or flight is not None):
                watch = self._watch(uri if isinstance(uri, str) else str(uri))
            if flight is not None:
                # Single flight without a stream: wait for the leader, then take its
                # compiled result (the stream path below if there is none).
                within = self.options.deadline if deadline is None else deadline
                if not await _landed(flight, within):
                    text = uri if isinstance(uri, str) else str(uri)
                    raise _ended(watch, LocateTimeoutError(text, within, ()))
                if self._closed:
                    raise _ended(watch, LocateError(f"{uri}: locator closed"))
                compiled = cache.compiled(compiled_key)
            if compiled is not None:
                demoted = self._health.snapshot()
                prefer = self._sticky.preferred(key) if self._located is not None else None
                targets = self._replayed(key, compiled, prefer, demoted)
                if watch is not None:
                    # A follower took the leader's result: its answers count as joined.
                    attempts = compiled.attempts(cache._clock())  # remaining TTLs
                    watch.replayed(attempts, coalesced=flight is not None)
                if not targets:
                    text = uri if isinstance(uri, str) else str(uri)
                    replay = cache.replay(compiled)
                    error = NoTargetsError(text, replay.attempts, replay.reason)
                    raise _ended(watch, error)
                if watch is not None:
                    for target in targets:
                        watch.yielded(target)
                    watch.done(len(targets))
                return targets
            self._handoff = watch  # a follower without a result: its stream goes on
        try:
            stream = self.locate(
                uri,
                as_sips=as_sips,
                transports=transports,
                ip_strategy=ip_strategy,
                deadline=deadline,
            )
        finally:
            self._handoff = None
        async with stream:
            return [target async for target in stream]

    def locate_response(self, via: str | Via) -> TargetStream:
        """Stream where to send a response, given the request's top Via.

        Follows RFC 3261 §18.2.2, RFC 3581 §4 and RFC 3263 §5 (see ``plan_response``).
        For reliable transports the connection the request came on comes first; that
        is the caller's to reuse, and the targets are what to try once it is gone.

        Args:
            via: The top Via header value (``SIP/2.0/UDP host;received=...``), as
                text or as parsed by ``parse_via``.

        Raises:
            InvalidViaError: at once, when ``via`` cannot be parsed.
        """
        if self._closed:
            raise RuntimeError("Locator is closed")
        parsed = via if isinstance(via, Via) else parse_via(via)
        text = str(parsed)
        watch = None if self._observer is None else self._watch(text)
        resolution = plan_response(
            parsed, self.options, self._rng_for, demoted=self._health.snapshot()
        )
        stream = TargetStream(
            text,
            resolution,
            self._lookups,
            deadline=self.options.deadline,
            max_concurrency=self.options.max_concurrency,
            watch=watch,
        )
        self._streams.add(stream)
        return stream

    async def resolve_response(self, via: str | Via) -> list[Target]:
        """All response targets for ``via``, in order. NoTargetsError if none."""
        async with self.locate_response(via) as stream:
            return [target async for target in stream]

    def report_failure(
        self,
        target: Target | Endpoint,
        *,
        reason: FailureReason | str = FailureReason.TIMEOUT,
        retry_after: float | None = None,
    ) -> None:
        """Tell the locator that sending to ``target`` failed (RFC 3263 §4.3).

        Later locates put the endpoint after every healthy one (never drop it) for
        ``retry_after`` seconds when given (a 503's Retry-After, RFC 3261 §21.5.4),
        else for ``options.failure_hold`` seconds. A report never shortens a hold in
        force, and it ends any stickiness to the endpoint. Streams already started
        keep their order. DNS data (and any DNS cache) is never touched.

        Args:
            target: The Target (or its Endpoint) that failed.
            reason: A FailureReason or its value: "timeout" (default), "transport",
                "503", "other".
            retry_after: Seconds from a Retry-After header, if the response had one.

        Raises:
            ValueError: unknown ``reason``, or ``retry_after`` negative or not finite.
        """
        endpoint = endpoint_of(target)
        why = failure_reason(reason)
        self._health.report_failure(endpoint, why, retry_after)
        if self._observer is not None:
            self._observer(FailureReported(endpoint, why, retry_after))
        if self._sticky.enabled:
            self._sticky.forget(endpoint)

    def report_success(self, target: Target | Endpoint) -> None:
        """Tell the locator that ``target`` answered: clear its demotion.

        With ``options.sticky_for`` > 0 the target also becomes preferred among its
        equals in later locates of the URIs that found it (see README, Failover).
        """
        endpoint = endpoint_of(target)
        self._health.report_success(endpoint)
        self._sticky.succeeded(endpoint)
        if self._observer is not None:
            self._observer(SuccessReported(endpoint))

    def is_demoted(self, target: Target | Endpoint) -> bool:
        """True when ``target``'s endpoint is demoted now (a reported failure holds)."""
        return endpoint_of(target) in self._health.snapshot()

    def health(self) -> list[EndpointHealth]:
        """The endpoints demoted now, least recently reported first."""
        return self._health.entries()

    def clear_health(self, endpoint_or_target: Target | Endpoint | None = None) -> None:
        """Forget the demotion and stickiness of one endpoint, or of all when None."""
        endpoint = None if endpoint_or_target is None else endpoint_of(endpoint_or_target)
        self._health.clear(endpoint)
        self._sticky.forget(endpoint)

    def cache_info(self) -> CacheInfo:
        """The DNS cache's counters and size (all zero when the cache is off)."""
        return CacheInfo() if self._cache is None else self._cache.info()

    def flush_cache(self, name: str | None = None) -> None:
        """Drop every cached answer, or only those for ``name`` (all types)."""
        if self._cache is not None:
            self._cache.flush(name)

    async def aclose(self) -> None:
        """Close every open stream, then the backend (if owned) and the health store.

        A stream opened before raises LocateError ("locator closed") when iterated
        again, or at once in a task waiting on it.
        """
        if self._closed:
            return
        self._closed = True
        self._closing.closed = True
        for stream in list(self._streams):
            stream.abort(LocateError(f"{stream.uri}: locator closed"))
            await stream.aclose()
        try:
            if self._own_backend:
                await self.backend.aclose()
            elif self._cache is not None and self._cache is not self._given:
                await self._cache.aclose(close_backend=False)
        finally:
            await self._health.aclose()  # health store (issue 15)

    async def __aenter__(self) -> Locator:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
