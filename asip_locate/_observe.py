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


def fan_out(*observers: Observer) -> Observer:
    """One observer that calls each of ``observers`` in turn, each guarded on its own.

    An observer that raises neither stops the others nor reaches the caller.
    """
    guarded = tuple(guard_observer(o) for o in observers)

    def observe(event: Event) -> None:
        for each in guarded:
            each(event)

    return observe
