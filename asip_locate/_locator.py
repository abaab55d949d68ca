"""Locator: the public entry point that ties parsing, planning, DNS and streams."""

from __future__ import annotations

import functools
import random
import time
import weakref
from collections.abc import Callable
from types import TracebackType

from asip_locate._aiodns import AiodnsBackend
from asip_locate._backend import DnsBackend
from asip_locate._cache import CacheInfo, CachingBackend
from asip_locate._errors import NoTargetsError
from asip_locate._health import (
    EndpointHealth,
    HealthStore,
    HealthTable,
    StickyTable,
    endpoint_of,
    failure_reason,
)
from asip_locate._model import Endpoint, FailureReason, Target
from asip_locate._options import LocateOptions
from asip_locate._order import Rng
from asip_locate._plan import Resolution, RngFactory, plan_request
from asip_locate._stream import TargetStream
from asip_locate._uri import SipUri, parse_uri
from asip_locate._via import Via, parse_via, plan_response

LocationKey = tuple[bool, str, int | None, str | None]
"""What decides a resolution: (secure, RFC 3263 TARGET, port, transport parameter)."""


def _location_key(uri: SipUri, as_sips: bool) -> LocationKey:
    return (uri.secure or as_sips, uri.target, uri.port, uri.transport)


class Locator:
    """Finds where to send SIP requests (RFC 3263 §4) and responses (§5).

    Args:
        options: LocateOptions; None uses the defaults.
        backend: Where DNS questions go; None builds an AiodnsBackend from the
            options. The Locator owns the backend and closes it in ``aclose``.
            With ``options.cache_size`` > 0 it is wrapped in a CachingBackend.
        clock: Monotonic seconds for cache expiry and health state (inject a fake
            clock in tests); default ``time.monotonic``.
        health_store: Where endpoint health lives (a HealthStore, e.g.
            ``asip_locate.redis.RedisHealthStore`` to share it across processes);
            None keeps it in this Locator's memory. The Locator binds it to its
            options and clock and closes it in ``aclose``.

    Use as ``async with Locator() as locator:``.
    """

    def __init__(
        self,
        options: LocateOptions | None = None,
        *,
        backend: DnsBackend | None = None,
        clock: Callable[[], float] = time.monotonic,
        health_store: HealthStore | None = None,
    ) -> None:
        self.options = options or LocateOptions()
        self.clock = clock
        if backend is None:
            backend = AiodnsBackend(
                self.options.nameservers,
                timeout=self.options.timeout,
                tries=self.options.tries,
                max_records=self.options.max_records,
            )
        if self.options.cache_size > 0 and not isinstance(backend, CachingBackend):
            backend = CachingBackend(backend, self.options, clock=clock)
        self.backend = backend
        # --- health store (issue 15): in-memory HealthTable unless one is given ---
        self._health: HealthStore
        if health_store is None:
            self._health = HealthTable(
                size=self.options.health_size, hold=self.options.failure_hold, clock=clock
            )
        else:
            health_store.bind(
                size=self.options.health_size, hold=self.options.failure_hold, clock=clock
            )
            self._health = health_store
        # --- end health store ---
        self._sticky = StickyTable(
            size=self.options.health_size, hold=self.options.sticky_for, clock=clock
        )
        self._cache = backend if isinstance(backend, CachingBackend) else None
        self._random = random.Random()
        self._streams: weakref.WeakSet[TargetStream] = weakref.WeakSet()
        self._closed = False

    def __repr__(self) -> str:
        return f"<Locator open_streams={len(self._streams)} closed={self._closed}>"

    def _rng_factory(self) -> RngFactory:
        seed = self.options.seed
        if seed is None:
            shared: Rng = self._random
            return lambda name: shared
        # One generator per SRV owner: the order stays the same whatever order the
        # answers arrive in.
        return lambda name: random.Random(f"{seed}:{name}")

    def locate(self, uri: str, *, as_sips: bool = False) -> TargetStream:
        """Stream the targets for ``uri`` in RFC 3263 order.

        Args:
            uri: A SIP/SIPS URI, or a bare ``host`` / ``host:port``.
            as_sips: Resolve as if the URI were SIPS (RFC 3261 §8.1.2: the
                Request-URI is SIPS although the next hop, e.g. a Route, is not).

        Raises:
            InvalidUriError: at once, when ``uri`` cannot be parsed.
        """
        if self._closed:
            raise RuntimeError("Locator is closed")
        parsed = parse_uri(uri)
        key = _location_key(parsed, as_sips)
        sticky = self._sticky.enabled
        try:
            resolution = plan_request(
                parsed,
                self.options,
                self._rng_factory(),
                as_sips=as_sips,
                prefer=self._sticky.preferred(key) if sticky else None,
            )
        except NoTargetsError as exc:
            return _FailedStream(uri, exc)
        return self._open_stream(uri, resolution, key if sticky else None)

    async def resolve(self, uri: str, *, as_sips: bool = False) -> list[Target]:
        """All targets for ``uri``, in order. Raises NoTargetsError if there are none."""
        async with self.locate(uri, as_sips=as_sips) as stream:
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
        resolution = plan_response(parsed, self.options, self._rng_factory())
        return self._open_stream(str(parsed), resolution)

    def _open_stream(
        self, text: str, resolution: Resolution, key: LocationKey | None = None
    ) -> TargetStream:
        # Frozen now: failures reported while this stream runs do not reorder it.
        demoted = self._health.snapshot()
        stream = TargetStream(
            text,
            resolution,
            self.backend,
            deadline=self.options.deadline,
            max_concurrency=self.options.max_concurrency,
            demoted=demoted.__contains__ if demoted else None,
            observe=None if key is None else functools.partial(self._sticky.seen, key),
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
        self._health.report_failure(endpoint, failure_reason(reason), retry_after)
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
        """Close every stream still open, then the backend and the health store."""
        if self._closed:
            return
        self._closed = True
        for stream in list(self._streams):
            await stream.aclose()
        try:
            await self.backend.aclose()
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


class _FailedStream(TargetStream):
    """A stream whose only outcome is an error known before any lookup."""

    def __init__(self, uri: str, error: NoTargetsError) -> None:
        self.uri = uri
        self._error: NoTargetsError | None = error
        self._tasks = {}
        self._owned = set()
        self._waiter = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<TargetStream {self.uri} failed>"

    async def __anext__(self) -> Target:
        error, self._error = self._error, None
        if error is None:
            raise StopAsyncIteration
        raise error
