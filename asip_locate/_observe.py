"""The observer hook: events a Locator reports while it works, for metrics and tracing.

An observer is a plain callable taking one event (``Callable[[Event], None]``), given
as ``Locator(observer=...)``. Events are frozen, slotted dataclasses delivered
synchronously, in the order things happen, on the event loop's thread:

* ``LocateStarted``: a stream was opened (``locate`` / ``locate_response``).
* ``QuerySent``: the stream asked the backend a question memory could not answer.
* ``AnswerReceived``: an answer was used, with where it came from (``AnswerSource``).
* ``TargetYielded``: the stream handed a target to the caller.
* ``LocateDone``: the stream ended (ran out, failed, or was closed early).
* ``FailureReported`` / ``SuccessReported``: ``Locator.report_failure`` /
  ``report_success`` was called.

Why a callable and not a protocol with one method per event: it is the least a caller
must write (a function, a bound method, ``list.append``), ``fan_out`` composes several,
a ``match`` statement dispatches, and a new event type added later breaks no observer
(ignore what you do not know). aiohttp's ``TraceConfig`` signals and httpx's
``event_hooks`` are async; these are sync on purpose: they run inside the stream's
bookkeeping, where nothing may await, and counters and span events need no I/O. An
observer that must do I/O should hand the event to a queue.

The Locator wraps the observer with ``guard_observer``: an exception it raises is
logged (the first with its traceback, then a one-line count at the 10th, 100th,
1000th... failure) and swallowed, so an observer bug never breaks a locate. With no
observer no event is built: each emit point is ``if observer is not None:
observer(Event(...))``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from asip_locate._errors import LocateError
from asip_locate._model import Answer, Endpoint, FailureReason, Query, Target

log = logging.getLogger("asip_locate")


class AnswerSource(StrEnum):
    """Where an answer a stream used came from."""

    NETWORK = "network"
    """A lookup this stream started (no answer in memory, none in flight)."""
    CACHE = "cache"
    """Fresh data from the Locator's cache, without waiting."""
    STALE = "stale"
    """Expired data served because a refresh failed (RFC 8767); ``answer.stale``."""
    COALESCED = "coalesced"
    """A lookup already in flight for another stream, joined rather than sent again."""


@dataclass(frozen=True, slots=True)
class LocateStarted:
    """A stream was opened by ``Locator.locate`` or ``locate_response``.

    Attributes:
        locate_id: Numbers this stream's events; unique per Locator (1, 2, 3...).
        uri: The URI (or Via) as given, the stream's ``uri``.
    """

    locate_id: int
    uri: str


@dataclass(frozen=True, slots=True)
class QuerySent:
    """The stream asked its backend a question that memory could not answer.

    Cache hits send nothing: they show as an ``AnswerReceived`` with source ``cache``
    (or ``stale``) and no ``QuerySent``. A query joining one already in flight is sent
    here with ``coalesced=True`` (no packet leaves for it).

    Attributes:
        locate_id: The stream's number (see ``LocateStarted``).
        query: The question (``query.rtype`` is NAPTR, SRV, A or AAAA).
        coalesced: True when the query joined a lookup already in flight.
    """

    locate_id: int
    query: Query
    coalesced: bool = False


@dataclass(frozen=True, slots=True)
class AnswerReceived:
    """The stream fed an answer to its plan (every answer it used, cached or not).

    Attributes:
        locate_id: The stream's number (see ``LocateStarted``).
        answer: The answer; ``answer.status`` says NOERROR, NXDOMAIN, TIMEOUT...
        source: Where it came from.
    """

    locate_id: int
    answer: Answer
    source: AnswerSource


@dataclass(frozen=True, slots=True)
class TargetYielded:
    """The stream handed a target to its caller.

    Attributes:
        locate_id: The stream's number (see ``LocateStarted``).
        uri: The stream's ``uri``.
        target: The target.
        index: 0 for the first target of the stream, then 1, 2...
    """

    locate_id: int
    uri: str
    target: Target
    index: int


@dataclass(frozen=True, slots=True)
class LocateDone:
    """The stream ended; sent once per stream.

    Attributes:
        locate_id: The stream's number (see ``LocateStarted``).
        uri: The stream's ``uri``.
        yielded: How many targets the caller received.
        error: The error the stream raised (``NoTargetsError``, ``LocateTimeoutError``),
            or None.
        closed: True when the stream was closed (``aclose``, leaving ``async with``,
            garbage collection) before it ran out of targets: the usual end when a
            target worked. False when it ran to its end.
    """

    locate_id: int
    uri: str
    yielded: int
    error: LocateError | None = None
    closed: bool = False


@dataclass(frozen=True, slots=True)
class FailureReported:
    """``Locator.report_failure`` was called (after its arguments were checked).

    Attributes:
        endpoint: The endpoint that failed.
        reason: Why.
        retry_after: Seconds from a Retry-After header, or None.
    """

    endpoint: Endpoint
    reason: FailureReason
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class SuccessReported:
    """``Locator.report_success`` was called.

    Attributes:
        endpoint: The endpoint that answered.
    """

    endpoint: Endpoint


Event = (
    LocateStarted
    | QuerySent
    | AnswerReceived
    | TargetYielded
    | LocateDone
    | FailureReported
    | SuccessReported
)
"""Every event an observer may receive; more may be added in minor releases."""

Observer = Callable[[Event], None]
"""What ``Locator(observer=...)`` takes: called with each event, its result ignored."""


class _Guarded:
    """An observer whose exceptions are logged (rate-limited) and swallowed."""

    __slots__ = ("failures", "observer")

    def __init__(self, observer: Observer) -> None:
        self.observer = observer
        self.failures = 0

    def __repr__(self) -> str:
        return f"<guarded {self.observer!r} failures={self.failures}>"

    def __call__(self, event: Event) -> None:
        try:
            self.observer(event)
        except Exception:
            self.failures = failures = self.failures + 1
            if failures == 1:
                log.exception("observer %r failed on %r (ignored)", self.observer, event)
            elif _power_of_ten(failures):
                log.warning("observer %r has failed %d times", self.observer, failures)


def _power_of_ten(n: int) -> bool:
    while n % 10 == 0:
        n //= 10
    return n == 1


def guard_observer(observer: Observer) -> Observer:
    """Wrap ``observer`` so that an exception it raises never reaches the caller.

    The first exception is logged (logger ``asip_locate``) with its traceback, later
    ones as a one-line count at the 10th, 100th, 1000th... failure. Guarding a guarded
    observer returns it unchanged. The Locator guards the observer it is given.
    """
    if isinstance(observer, _Guarded):
        return observer
    return _Guarded(observer)


class Watch:
    """One locate's side of the observer: builds and sends that locate's events.

    Made by the Locator only when it has an observer (sending ``LocateStarted``), so
    a locate without one builds nothing; the stream checks ``watch is not None``.

    Args:
        observer: The Locator's (guarded) observer.
        locate_id: The locate's number.
        uri: The URI (or Via) as given.
        in_flight: Whether a shared lookup for a query is in flight already
            (``CachingBackend.in_flight``), to report joins as coalesced; or None.
    """

    __slots__ = ("ended", "in_flight", "joined", "locate_id", "observer", "uri", "yields")

    def __init__(
        self,
        observer: Observer,
        locate_id: int,
        uri: str,
        in_flight: Callable[[Query], bool] | None = None,
    ) -> None:
        self.observer = observer
        self.locate_id = locate_id
        self.uri = uri
        self.in_flight = in_flight
        self.joined: set[object] = set()
        """Lookups (futures) this locate joined rather than started."""
        self.ended = False
        self.yields = 0
        """Targets yielded so far (the next TargetYielded's index)."""
        observer(LocateStarted(locate_id, uri))

    def joins(self, query: Query) -> bool:
        """True when asking ``query`` now would join a lookup already in flight."""
        in_flight = self.in_flight
        return in_flight is not None and in_flight(query)

    def sent(self, query: Query, joined: object = None) -> None:
        """``query`` went to the backend; ``joined`` is the in-flight lookup it joined."""
        if joined is not None:
            self.joined.add(joined)
        self.observer(QuerySent(self.locate_id, query, joined is not None))

    def answered(self, answer: Answer, lookup: object = None) -> None:
        """``answer`` came from the lookup ``lookup`` (network, joined, or stale)."""
        if answer.stale:
            source = AnswerSource.STALE
        elif lookup is not None and lookup in self.joined:
            self.joined.discard(lookup)
            source = AnswerSource.COALESCED
        else:
            source = AnswerSource.NETWORK
        self.observer(AnswerReceived(self.locate_id, answer, source))

    def cached(self, answer: Answer) -> None:
        """``answer`` came from memory without waiting."""
        source = AnswerSource.STALE if answer.stale else AnswerSource.CACHE
        self.observer(AnswerReceived(self.locate_id, answer, source))

    def replayed(self, answers: tuple[Answer, ...], coalesced: bool = False) -> None:
        """A compiled result was taken: report each answer behind it.

        From memory (``cached``) unless ``coalesced``: the locate waited for another
        locate of the same URI (single flight) and took its result, so each answer is
        a query it joined (``QuerySent(coalesced=True)``, then source ``coalesced``).
        """
        observer, locate_id = self.observer, self.locate_id
        for answer in answers:
            if coalesced:
                observer(QuerySent(locate_id, answer.query, True))
                observer(AnswerReceived(locate_id, answer, AnswerSource.COALESCED))
            else:
                source = AnswerSource.STALE if answer.stale else AnswerSource.CACHE
                observer(AnswerReceived(locate_id, answer, source))

    def yielded(self, target: Target) -> None:
        """``target`` was handed to the caller."""
        index = self.yields
        self.yields = index + 1
        self.observer(TargetYielded(self.locate_id, self.uri, target, index))

    def done(self, yielded: int, error: BaseException | None = None, closed: bool = False) -> None:
        """The locate ended (sent once; later calls do nothing)."""
        if not self.ended:
            self.ended = True
            self.joined.clear()
            failure = error if isinstance(error, LocateError) else None
            self.observer(LocateDone(self.locate_id, self.uri, yielded, failure, closed))


def fan_out(*observers: Observer) -> Observer:
    """One observer that calls each of ``observers`` in turn, each guarded on its own.

    An observer that raises neither stops the others nor reaches the caller.
    """
    guarded = tuple(guard_observer(o) for o in observers)

    def observe(event: Event) -> None:
        for each in guarded:
            each(event)

    return observe
