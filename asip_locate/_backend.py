"""The DNS backend seam: one query in, one Answer out, plus optional capabilities.

A Locator resolves a backend's capabilities once (``Capabilities.of``); the stream
then calls plain callables, never ``getattr`` or ``isinstance`` per query.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from asip_locate._model import Answer, Query


@runtime_checkable
class DnsBackend(Protocol):
    """Anything that answers DNS queries for a Locator.

    ``query`` never raises for DNS outcomes (NXDOMAIN, SERVFAIL, timeouts...): it
    returns an Answer with the matching Status. Any exception it raises is a bug (or
    misuse, such as a second event loop) and reaches the caller. A Locator owns its
    backend and closes it with ``aclose`` (unless ``own_backend=False``).
    """

    async def query(self, query: Query) -> Answer:
        """Ask one question."""
        ...

    async def aclose(self) -> None:
        """Release sockets and stop pending work."""
        ...


@runtime_checkable
class CachedLookup(Protocol):
    """Optional backend capability: answer from memory without awaiting.

    The stream calls ``cached`` before it starts a lookup, so a fully cached locate
    runs without tasks or I/O.
    """

    def cached(self, query: Query) -> Answer | None:
        """The answer if it is already known, else None."""
        ...


class PendingAnswer(Protocol):
    """The part of ``asyncio.Future[Answer]`` a stream uses (this module stays pure)."""

    def done(self) -> bool:
        """True once the answer (or an exception) is in."""
        ...

    def cancelled(self) -> bool:
        """True when the lookup was cancelled (e.g. by its owner's ``aclose``)."""
        ...

    def result(self) -> Answer:
        """The answer; raises what the lookup raised."""
        ...

    def exception(self) -> BaseException | None:
        """What the lookup raised, or None."""
        ...

    def add_done_callback(self, fn: Callable[[Any], object], /) -> None:
        """Call ``fn(self)`` once done."""
        ...

    def cancel(self) -> bool:
        """Cancel the lookup (only its owner may)."""
        ...


@runtime_checkable
class SharedLookup(Protocol):
    """Optional backend capability: join the backend's own in-flight lookup.

    The returned future belongs to the backend: waiters must never cancel it. It
    spares each waiter a task, which matters when thousands of locates wait on one
    name.
    """

    def shared(self, query: Query) -> PendingAnswer:
        """The backend-owned lookup for ``query`` (joined or started)."""
        ...


@runtime_checkable
class FutureLookup(Protocol):
    """Optional backend capability: start a lookup, get a future (no task needed).

    For resolvers that complete a future from their own callback (c-ares does):
    the cache and the stream then spend no asyncio Task per query. The caller owns
    the future and may cancel it. Like ``query``, it never fails for DNS outcomes.
    """

    def submit(
        self, query: Query, settle: Callable[[Answer], Answer] | None = None
    ) -> PendingAnswer:
        """Start the lookup for ``query``.

        ``settle``, when given, is called with the Answer as it arrives (on the
        loop's thread), and the future completes with what it returns, or with
        what it raises: the cache stores an answer this way without a future or
        callback of its own. It is not called once the future is cancelled.
        """
        ...


@dataclass(frozen=True, slots=True)
class Capabilities:
    """A backend's capabilities, found once (by ``Locator``) and then just called.

    Attributes:
        query: ``backend.query``.
        cached: ``backend.cached`` when the backend is a CachedLookup, else None.
        shared: ``backend.shared`` when the backend is a SharedLookup, else None.
        submit: ``backend.submit`` when the backend is a FutureLookup, else None.
    """

    query: Callable[[Query], Awaitable[Answer]]
    cached: Callable[[Query], Answer | None] | None = None
    shared: Callable[[Query], PendingAnswer] | None = None
    submit: Callable[[Query], PendingAnswer] | None = None

    @classmethod
    def of(cls, backend: DnsBackend) -> Capabilities:
        """Resolve ``backend``'s capabilities (runtime Protocol checks, once)."""
        return cls(
            backend.query,
            backend.cached if isinstance(backend, CachedLookup) else None,
            backend.shared if isinstance(backend, SharedLookup) else None,
            backend.submit if isinstance(backend, FutureLookup) else None,
        )
