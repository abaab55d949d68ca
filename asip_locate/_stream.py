"""TargetStream: runs one Resolution's queries concurrently and yields its targets.

The stream schedules, waits, enforces the deadline and cancels; every ordering
decision (RFC order, de-duplication, demotion, stickiness) is the Resolution's.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import weakref
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from types import TracebackType

from asip_locate._backend import Capabilities, PendingAnswer
from asip_locate._errors import LocateError, LocateTimeoutError, NoTargetsError
from asip_locate._model import Answer, Discarded, Query, Target
from asip_locate._observe import Watch
from asip_locate._plan import Resolution

log = logging.getLogger("asip_locate")

Located = Callable[[Hashable, Sequence[Target]], None]
"""Told (location key, targets) per batch of targets a resolution releases (the
sticky table's ``located``): once for a resolution whose targets are all known."""


class Closing:
    """A Locator's closed flag, shared by its streams.

    Streams replaying a compiled result are not tracked one by one (that would cost
    more than the rest of a cached locate): they check this flag instead.
    """

    __slots__ = ("closed",)

    def __init__(self) -> None:
        self.closed = False


_NEVER_CLOSED = Closing()


class Flights:
    """Cold locates in progress, one per key (single flight).

    The first stream of a key to start leads: it runs its plan and, once that is
    done (or the stream stops), lands its flight. Streams of the same key starting
    meanwhile follow: they wait for the landing, then re-plan, which normally finds
    the leader's compiled result instead of running the same plan again.
    """

    __slots__ = ("_flights", "_kicks", "followed")

    def __init__(self) -> None:
        self._flights: dict[Hashable, asyncio.Future[None]] = {}
        self._kicks: dict[Hashable, Callable[[], None]] = {}
        self.followed: set[Hashable] = set()
        """Keys whose flight has followers: only their leaders advance eagerly."""

    def __len__(self) -> int:
        return len(self._flights)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._flights

    def join(self, key: Hashable, kick: Callable[[], None]) -> asyncio.Future[None] | None:
        """The flight to follow for ``key``, or None: the caller leads a new one.

        ``kick`` is called (soon) when a first follower comes, so that the leader
        takes in the answers it already has without waiting for its consumer.
        """
        flight = self.follow(key)
        if flight is None:
            self._flights[key] = asyncio.get_running_loop().create_future()
            self._kicks[key] = kick
        return flight

    def follow(self, key: Hashable) -> asyncio.Future[None] | None:
        """The flight in progress for ``key`` to follow, if any (never leads one)."""
        flight = self._flights.get(key)
        if flight is not None and key not in self.followed:
            self.followed.add(key)
            kick = self._kicks.get(key)
            if kick is not None:
                asyncio.get_running_loop().call_soon(kick)
        return flight

    def land(self, key: Hashable) -> None:
        """The leader for ``key`` is done (or gave up): wake its followers."""
        flight = self._flights.pop(key, None)
        self.followed.discard(key)
        self._kicks.pop(key, None)
        if flight is not None and not flight.done():
            flight.set_result(None)


class _Flight:
    """A stream's part in single flight (see Flights)."""

    __slots__ = ("flights", "joined", "key", "leading", "pump_due", "replan")

    def __init__(self, flights: Flights, key: Hashable, replan: Callable[[], Resolution]) -> None:
        self.flights = flights
        self.key = key
        self.replan = replan
        self.joined = False
        """The stream has led or followed (``Flights.join``) already."""
        self.leading = False
        """True while the stream leads: it then advances from its lookups' callbacks
        (eagerly), so followers never wait for the stream's consumer."""
        self.pump_due = False


class TargetStream:
    """An async iterator (and async context manager) of Targets in RFC 3263 order.

    The first target is yielded as soon as it is known while lookups for later ones
    go on concurrently. Ends with NoTargetsError if no target at all was found, and
    with LocateTimeoutError if the deadline passes before any target is known.
    ``aclose()`` (or leaving ``async with``) cancels the lookups still running.
    Cancelling a pending ``next()`` cancels its lookups too, but the stream stays
    usable: iterating again sends the interrupted queries anew. A stream closed by
    ``Locator.aclose()`` raises LocateError ("locator closed") when iterated.

    Args:
        text: The URI (or Via) being located, for messages.
        resolution: The plan to run.
        lookups: The backend's capabilities (``Capabilities.of``).
        deadline: Seconds the stream may wait for DNS, from the first ``next()``.
        max_concurrency: Lookups in flight at once.
        key: The location key, told to ``located`` with the targets released.
        located: Called with (key, targets) per batch of targets the resolution
            releases (stickiness), or None.
        ready: The targets of a finished resolution (a compiled locate), instead of
            ``resolution.ready()``.
        on_done: Called once with the stream when its resolution is done (the
            Locator keeps the result for later locates of the same key).
        flights: Single flight: with ``flight_key`` and ``replan``, a stream that
            starts while another of the same key is resolving waits for it, then
            takes ``replan()`` (normally the other's compiled result) instead.
        watch: Reports this stream's events to the Locator's observer, or None (no
            observer: then no event is built). See docs/observe.md.
        closing: The owner's Closing flag: once set, iterating raises LocateError
            ("locator closed").
    """

    __slots__ = (
        "__weakref__",
        "_active",
        "_closed",
        "_closing",
        "_deadline",
        "_deadline_at",
        "_error",
        "_flight",
        "_located",
        "_lookups",
        "_max_concurrency",
        "_next_index",
        "_on_done",
        "_owned",
        "_pending",
        "_progressed",
        "_ready",
        "_resolution",
        "_trimmed",
        "_waiter",
        "_wake",
        "_watch",
        "key",
        "uri",
    )

    def __init__(
        self,
        text: str,
        resolution: Resolution,
        lookups: Capabilities,
        deadline: float,
        max_concurrency: int,
        key: Hashable = None,
        ready: list[Target] | None = None,
        watch: Watch | None = None,
        closing: Closing = _NEVER_CLOSED,
        *,
        located: Located | None = None,
        on_done: Callable[[TargetStream], None] | None = None,
        flights: Flights | None = None,
        flight_key: Hashable = None,
        replan: Callable[[], Resolution] | None = None,
    ) -> None:
        # The first nine may be passed by position: a compiled (cached) locate does,
        # which spares it keyword matching, half of what building the stream costs.
        self.uri = text
        self._closing = closing
        self.key = key
        self._watch = watch
        self._resolution = resolution
        self._lookups = lookups
        self._deadline = deadline
        self._deadline_at: float | None = None
        self._max_concurrency = max_concurrency
        self._located = located
        self._on_done = on_done
        # Released targets not yet yielded are _ready[_next_index:]; a finished
        # resolution (a cached locate) gives every target at once.
        self._ready: list[Target] = resolution.ready() if ready is None else ready
        self._next_index = 0
        if located is not None and self._ready:
            located(key, self._ready)
        self._pending: dict[PendingAnswer, Query] = {}
        """Every lookup waited for; those in ``_owned`` are this stream's to cancel, the
        others belong to the backend (shared between streams)."""
        self._owned: set[asyncio.Future[Answer]] = set()
        self._waiter: asyncio.Future[None] | None = None
        self._wake: Callable[[object], None] | None = None  # made on first use
        self._trimmed = 0
        """Targets yielded and dropped from ``_ready`` (see ``_yielded``)."""
        self._closed = False
        self._error: BaseException | None = None
        """Raised by every later ``next()`` (e.g. "locator closed")."""
        self._flight = (
            None if flights is None or replan is None else _Flight(flights, flight_key, replan)
        )
        self._active = False
        self._progressed = False

    def __repr__(self) -> str:
        return (
            f"<TargetStream {self.uri} yielded={self._yielded}"
            f" ready={len(self._ready) - self._next_index} pending={len(self._pending)}"
            f" done={self._resolution.done}>"
        )

    @property
    def attempts(self) -> tuple[Answer, ...]:
        """Every DNS answer this stream has used so far."""
        return self._resolution.attempts

    @property
    def discarded(self) -> tuple[Discarded, ...]:
        """Records this stream's answers held but the planner did not use, and why."""
        return self._resolution.discarded

    def __aiter__(self) -> AsyncIterator[Target]:
        if self._resolution.final and (self._flight is None or self._flight.joined):
            # Every target is known (a cached locate): an async generator's C-level
            # __anext__ costs a third of a coroutine's per target.
            return self._replay()
        return self

    @property
    def _yielded(self) -> int:
        return self._trimmed + self._next_index

    async def _replay(self) -> AsyncIterator[Target]:
        """Yield the known targets, then end as ``__anext__`` does (they share state).

        A finished resolution's ``_ready`` never changes, so it is iterated directly.
        """
        watch, closing = self._watch, self._closing
        index = self._next_index
        for target in self._ready[index:] if index else self._ready:
            if self._closed or closing.closed:  # aclose(), or Locator.aclose()
                break
            index += 1
            self._next_index = index
            if watch is not None:
                watch.yielded(target)
            yield target
        if index and not (self._closed or closing.closed):  # the usual end, inlined
            self._closed = True
            if watch is not None:
                watch.done(self._yielded)
            return
        self._end_final()

    async def __anext__(self) -> Target:
        # Fast path: a target already released (every target of a cached locate).
        index = self._next_index
        if index < len(self._ready) and not self._closed and not self._closing.closed:
            self._next_index = index + 1
            target = self._ready[index]
            if self._watch is not None:
                self._watch.yielded(target)
            return target
        if self._resolution.final and (self._flight is None or self._flight.joined):
            self._end_final()
            raise StopAsyncIteration
        if self._error is not None:
            raise self._error
        if self._closed:
            raise StopAsyncIteration
        if self._deadline_at is None:
            self._deadline_at = asyncio.get_running_loop().time() + self._deadline
        try:
            return await self._next()
        except BaseException as exc:
            if self._watch is not None:
                self._report_end(self._watch, exc)
            # E.g. the caller was cancelled: stop the lookups, but keep the stream
            # usable (iterating again sends the interrupted queries anew).
            self._interrupt()
            raise

    def _end_final(self) -> None:
        """A finished resolution (a cached locate) has no target left: end the stream.

        Returns when it ended well (some target was yielded, or it had ended before);
        raises the error that ends it otherwise.
        """
        if self._closing.closed:
            self.abort(LocateError(f"{self.uri}: locator closed"))
        if self._error is not None:
            raise self._error
        if self._closed:
            return
        self._closed = True
        yielded = self._yielded
        if yielded:
            if self._watch is not None:
                self._watch.done(yielded)
            return
        resolution = self._resolution
        error = NoTargetsError(self.uri, resolution.attempts, resolution.reason)
        if self._watch is not None:
            self._watch.done(0, error)
        raise error

    def _report_end(self, watch: Watch, exc: BaseException) -> None:
        """``exc`` left ``_next``: report the end if the stream has ended.

        It ran out, failed, or was closed meanwhile; a cancelled ``next()`` leaves it
        open, which is not an end.
        """
        if self._closed:
            watch.done(self._yielded, exc)

    async def _next(self) -> Target:
        flight = self._flight
        if flight is not None and not flight.joined:
            flight.joined = True
            landing = flight.flights.join(
                flight.key, functools.partial(_pump_stream, weakref.ref(self))
            )
            if landing is None:
                flight.leading = True
                if self._resolution.final:
                    # Made as a follower, but its flight landed before this first
                    # next(): it leads with a plan of its own (or a compiled result).
                    self._resolution = flight.replan()
                    self._ready = []
                    self._release(self._resolution.ready())
                    if self._watch is not None and self._resolution.final:
                        self._watch.replayed(self._resolution.attempts)  # from memory
            else:
                await self._follow(landing, flight.replan)
        resolution = self._resolution
        if resolution.error is not None:
            self._closed = True
            raise resolution.error
        self._active = True
        while True:
            index = self._next_index
            if index < len(self._ready):
                self._next_index = index + 1
                target = self._ready[index]
                if self._watch is not None:
                    self._watch.yielded(target)
                return target
            self._start_queries()
            released = resolution.ready()
            if released:
                if self._next_index:
                    del self._ready[: self._next_index]
                    self._trimmed += self._next_index
                    self._next_index = 0
                self._release(released)
                if resolution.done:
                    self._finish()  # every target known: followers need not wait
                continue
            if resolution.done:
                self._closed = True
                self._finish()
                if self._yielded:
                    raise StopAsyncIteration
                raise NoTargetsError(self.uri, resolution.attempts, resolution.reason)
            await self._wait()

    def _waker(self) -> Callable[[object], None]:
        wake = self._wake
        if wake is None:
            # Through a weak reference: a shared lookup outliving this stream must not
            # keep it alive (its __del__ cancels what it owns).
            wake = self._wake = functools.partial(_wake_stream, weakref.ref(self))
        return wake

    async def _follow(self, flight: asyncio.Future[None], replan: Callable[[], Resolution]) -> None:
        """Wait (within the deadline) for the flight led by another stream, then re-plan."""
        assert self._deadline_at is not None
        if not flight.done():
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            flight.add_done_callback(self._waker())
            timer = loop.call_at(self._deadline_at, _wake, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        if self._error is not None:
            raise self._error
        if self._closed:
            raise StopAsyncIteration
        if not flight.done():
            self._closed = True
            raise LocateTimeoutError(self.uri, self._deadline, ())
        self._resolution = replan()
        self._trimmed += self._next_index
        self._ready = []
        self._next_index = 0
        self._release(self._resolution.ready())
        if self._watch is not None and self._resolution.final:
            # The leader's compiled result: its answers are lookups this stream joined.
            self._watch.replayed(self._resolution.attempts, coalesced=True)

    def _release(self, targets: list[Target]) -> None:
        """Queue ``targets`` (released by the resolution) and tell ``located``."""
        if targets:
            self._ready += targets
            if self._located is not None:
                self._located(self.key, targets)

    def _finish(self) -> None:
        """The resolution is done: hand its result on, land a flight led."""
        on_done, self._on_done = self._on_done, None
        if on_done is not None:
            on_done(self)
        self._land()

    def _land(self) -> None:
        flight = self._flight
        if flight is not None and flight.leading:
            flight.leading = False
            self._active = False
            flight.flights.land(flight.key)

    def _pump(self) -> None:
        """A lookup of a leading stream finished: take every answer in, go on at once."""
        flight = self._flight
        if flight is None or not (flight.leading and self._active) or self._closed:
            return
        resolution = self._resolution
        answers = []
        pending, owned = self._pending, self._owned
        for future in [f for f in pending if f.done()]:
            if future.cancelled() or future.exception() is not None:
                continue  # left for next(), which raises it
            del pending[future]
            owned.discard(future)  # type: ignore[arg-type,unused-ignore]
            answer = future.result()
            if self._watch is not None:
                self._watch.answered(answer, future)
            answers.append(answer)
        if not answers:
            return
        self._progressed = True
        resolution.feed_all(answers)
        self._start_queries()
        self._release(resolution.ready())
        if resolution.done:
            self._finish()

    def _start_queries(self) -> None:
        resolution = self._resolution
        cached, shared = self._lookups.cached, self._lookups.shared
        watch = self._watch
        while True:
            room = self._max_concurrency - len(self._pending)
            if room <= 0:
                return
            queries = resolution.needs(room)
            if not queries:
                return
            known = []
            for query in queries:
                answer = cached(query) if cached is not None else None
                if answer is not None:
                    if watch is not None:
                        watch.cached(answer)
                    known.append(answer)
                    continue
                if shared is not None:
                    if watch is not None:
                        joins = watch.joins(query)  # asked before shared() starts it
                        future = shared(query)
                        watch.sent(query, future if joins else None)
                    else:
                        future = shared(query)
                else:
                    submit = self._lookups.submit
                    owned: asyncio.Future[Answer] = (
                        submit(query)  # type: ignore[assignment]
                        if submit is not None
                        else asyncio.ensure_future(self._lookups.query(query))
                    )
                    self._owned.add(owned)
                    future = owned
                    if watch is not None:
                        watch.sent(query)
                self._pending[future] = query
                future.add_done_callback(self._wake or self._waker())
            if known:
                resolution.feed_all(known)

    async def _wait(self) -> None:
        assert self._deadline_at is not None
        if not self._pending:
            raise RuntimeError(f"{self!r}: nothing to wait for")  # a planner bug
        loop = asyncio.get_running_loop()
        # Answers that came while the caller was busy with earlier targets (e.g. pinging
        # them) cost no waiting: they are used even once the deadline has passed.
        done = [future for future in self._pending if future.done()]
        self._progressed = False
        while (
            not done
            and not self._progressed
            and not self._closed
            and loop.time() < self._deadline_at
        ):
            # A private waiter, woken by any of our lookups or by the deadline. Unlike
            # asyncio.wait it leaves nothing to remove from lookups that thousands of
            # streams share (each removal scans every other waiter's callback). A
            # wake-up may find nothing new (a callback for an answer already taken).
            waiter = self._waiter = loop.create_future()
            timer = loop.call_at(self._deadline_at, _wake, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
            done = [future for future in self._pending if future.done()]
        if self._error is not None:  # Locator.aclose() ran while we waited
            raise self._error
        if self._closed:  # aclose() from another task while we waited
            raise StopAsyncIteration
        if self._progressed and not done:
            return  # the leader's callbacks took the answers in
        if not done:
            self._cancel()
            self._closed = True
            if self._yielded:
                log.warning("%s: deadline of %gs reached; ending", self.uri, self._deadline)
                raise StopAsyncIteration
            raise LocateTimeoutError(self.uri, self._deadline, self._resolution.attempts)
        answers = []
        try:
            for future in done:
                query = self._pending.pop(future)
                self._owned.discard(future)  # type: ignore[arg-type,unused-ignore]
                try:
                    answer = self._result(query, future)
                    if self._watch is not None:
                        self._watch.answered(answer, future)
                    answers.append(answer)
                except BaseException:
                    self._resolution.retry((query,))  # asked again if iterated again
                    raise
        finally:
            # Even when a lookup raised, the answers already taken are kept.
            self._resolution.feed_all(answers)

    def _result(self, query: Query, future: PendingAnswer) -> Answer:
        if future.cancelled():  # a shared lookup ended by its owner's aclose()
            self._cancel()
            self._closed = True
            self._error = LocateError(f"{self.uri}: the backend was closed ({query})")
            raise self._error
        # Anything but an Answer is a bug (or misuse, such as a second event loop):
        # it propagates, never disguised as a DNS failure.
        return future.result()

    def _interrupt(self) -> None:
        """Cancel the lookups; keep answers already in and offer the others again."""
        if self._closed:
            self._cancel()
            return
        answers, interrupted = [], []
        for future, query in self._pending.items():
            if future.done() and not future.cancelled() and future.exception() is None:
                answer = future.result()
                if self._watch is not None:
                    self._watch.answered(answer, future)
                answers.append(answer)
            else:
                interrupted.append(query)
        self._pending.clear()
        self._cancel()
        if answers:
            self._resolution.feed_all(answers)
        self._resolution.retry(interrupted)

    def _cancel(self) -> list[asyncio.Future[Answer]]:
        """Cancel this stream's own lookups and forget shared ones (the backend's)."""
        self._active = False
        self._land()  # followers go on by themselves
        tasks = list(self._owned)
        self._pending.clear()
        self._owned.clear()
        if self._waiter is not None:
            _wake(self._waiter)  # a next() waiting in another task ends now
        for task in tasks:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: no "exception was never retrieved" later
            task.cancel()
        return tasks

    def abort(self, error: BaseException) -> None:
        """End the stream: every later (or waiting) ``next()`` raises ``error``."""
        if self._error is None:
            self._error = error
        self._closed = True
        self._cancel()

    async def aclose(self) -> None:
        """Stop: cancel lookups still running and wait until they are gone."""
        self._closed = True
        if self._watch is not None:
            self._watch.done(self._yielded, closed=True)  # unless it ended already
        tasks = self._cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def __del__(self) -> None:
        # Left without aclose (e.g. `break` out of a bare `async for`): cancel anyway.
        if self._owned or (self._flight is not None and self._flight.leading):
            with contextlib.suppress(RuntimeError):  # the loop may be closed already
                self._cancel()
        if self._watch is not None:
            self._watch.done(self._yielded, closed=True)  # unless it ended already

    async def __aenter__(self) -> TargetStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _wake_stream(ref: weakref.ref[TargetStream], _future: object) -> None:
    stream = ref()
    if stream is not None:
        flight = stream._flight
        if (
            flight is not None
            and flight.leading
            and not flight.pump_due
            and flight.key in flight.flights.followed
        ):
            # Once per loop iteration: answers completing together are fed at once.
            flight.pump_due = True
            asyncio.get_running_loop().call_soon(_pump_stream, ref)
        if stream._waiter is not None:
            _wake(stream._waiter)


def _pump_stream(ref: weakref.ref[TargetStream]) -> None:
    stream = ref()
    if stream is not None:
        if stream._flight is not None:
            stream._flight.pump_due = False
        stream._pump()
