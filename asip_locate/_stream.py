"""TargetStream: runs one Resolution's queries concurrently and yields its targets."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import weakref
from collections import deque
from collections.abc import Callable
from types import TracebackType

from asip_locate._backend import DnsBackend
from asip_locate._errors import LocateTimeoutError, NoTargetsError
from asip_locate._model import Answer, Discarded, Endpoint, Query, Status, Target
from asip_locate._plan import Resolution

log = logging.getLogger("asip_locate")


class TargetStream:
    """An async iterator (and async context manager) of Targets in RFC 3263 order.

    The first target is yielded as soon as it is known while lookups for later ones
    go on concurrently. Ends with NoTargetsError if no target at all was found, and
    with LocateTimeoutError if the deadline passes before any target is known.
    ``aclose()`` (or leaving ``async with``) cancels the lookups still running.
    Cancelling a pending ``next()`` cancels its lookups too, but the stream stays
    usable: iterating again sends the interrupted queries anew.

    ``demoted`` (a frozen predicate) holds matching endpoints back until every other
    target was yielded; ``observe`` is called with each target as it is yielded.
    """

    def __init__(
        self,
        text: str,
        resolution: Resolution,
        backend: DnsBackend,
        *,
        deadline: float,
        max_concurrency: int,
        demoted: Callable[[Endpoint], bool] | None = None,
        observe: Callable[[Target], None] | None = None,
    ) -> None:
        self.uri = text
        self._resolution = resolution
        self._backend = backend
        # What isinstance(backend, CachedLookup) checks, without the ~4 us it costs.
        cached = getattr(backend, "cached", None)
        self._cached: Callable[[Query], Answer | None] | None = cached if callable(cached) else None
        self._deadline = deadline
        self._deadline_at: float | None = None
        self._max_concurrency = max_concurrency
        self._demoted = demoted
        self._observe = observe
        self._ready: deque[Target] = deque()
        self._held_back: list[Target] = []
        self._seen: set[Endpoint] = set()
        shared = getattr(backend, "shared", None)
        self._shared: Callable[[Query], asyncio.Future[Answer]] | None = (
            shared if callable(shared) else None
        )
        self._tasks: dict[asyncio.Future[Answer], Query] = {}
        """Every lookup waited for; those in ``_owned`` are this stream's to cancel, the
        others belong to the cache (shared between streams)."""
        self._owned: set[asyncio.Future[Answer]] = set()
        self._waiter: asyncio.Future[None] | None = None
        # Lookups call back through a weak reference: a shared lookup outliving this
        # stream must not keep it alive (its __del__ cancels what it owns).
        self._on_done = functools.partial(_wake_stream, weakref.ref(self))
        self._interrupted: deque[Query] = deque()
        self._yielded = 0
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"<TargetStream {self.uri} yielded={self._yielded} ready={len(self._ready)}"
            f" pending={len(self._tasks)} interrupted={len(self._interrupted)}"
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

    def __aiter__(self) -> TargetStream:
        return self

    async def __anext__(self) -> Target:
        if self._closed:
            raise StopAsyncIteration
        if self._deadline_at is None:
            self._deadline_at = asyncio.get_running_loop().time() + self._deadline
        try:
            return await self._next()
        except BaseException:
            # E.g. the caller was cancelled: stop the lookups, but keep the stream
            # usable (iterating again sends the interrupted queries anew).
            self._interrupt()
            raise

    async def _next(self) -> Target:
        resolution = self._resolution
        while True:
            if self._ready:
                self._yielded += 1
                target = self._ready.popleft()
                if self._observe is not None:
                    self._observe(target)
                return target
            self._start_queries()
            self._collect(resolution.ready())
            if self._ready:
                continue
            if resolution.done:
                if self._held_back:
                    self._ready.extend(self._held_back)
                    self._held_back.clear()
                    continue
                self._closed = True
                if self._yielded:
                    raise StopAsyncIteration
                raise NoTargetsError(self.uri, resolution.attempts, resolution.reason)
            await self._wait()

    def _collect(self, targets: list[Target]) -> None:
        for target in targets:
            endpoint = target.endpoint
            if endpoint in self._seen:
                continue  # RFC 3263 §4.3 gains nothing from retrying one endpoint
            self._seen.add(endpoint)
            if self._demoted is not None and self._demoted(endpoint):
                self._held_back.append(target)
            else:
                self._ready.append(target)

    def _start_queries(self) -> None:
        resolution = self._resolution
        while True:
            room = self._max_concurrency - len(self._tasks)
            if room <= 0:
                return
            if self._interrupted:
                queries = [self._interrupted.popleft() for _ in range(room) if self._interrupted]
            else:
                queries = resolution.needs(room)
            if not queries:
                return
            cached, shared, known = self._cached, self._shared, []
            for query in queries:
                answer = cached(query) if cached else None
                if answer is not None:
                    known.append(answer)
                elif shared is not None:
                    self._track(shared(query), query)
                else:
                    task = asyncio.ensure_future(self._backend.query(query))
                    self._track(task, query)
                    self._owned.add(task)
            if known:
                resolution.feed_all(known)

    async def _wait(self) -> None:
        assert self._deadline_at is not None
        if not self._tasks:
            raise RuntimeError(f"{self!r}: nothing to wait for")  # a planner bug
        loop = asyncio.get_running_loop()
        # Answers that came while the caller was busy with earlier targets (e.g. pinging
        # them) cost no waiting: they are used even once the deadline has passed.
        done = [task for task in self._tasks if task.done()]
        while not done and not self._closed and loop.time() < self._deadline_at:
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
            done = [task for task in self._tasks if task.done()]
        if self._closed:  # aclose() ran (e.g. from Locator.aclose) while we waited
            self._cancel()
            if self._yielded:
                raise StopAsyncIteration
            raise NoTargetsError(self.uri, self._resolution.attempts, "the stream was closed")
        if not done:
            self._cancel()
            self._closed = True
            if self._yielded:
                log.warning("%s: deadline of %gs reached; ending", self.uri, self._deadline)
                raise StopAsyncIteration
            raise LocateTimeoutError(self.uri, self._deadline, self._resolution.attempts)
        for task in done:
            self._feed(self._tasks.pop(task), task)

    def _track(self, future: asyncio.Future[Answer], query: Query) -> None:
        self._tasks[future] = query
        future.add_done_callback(self._on_done)

    def _feed(self, query: Query, task: asyncio.Future[Answer]) -> None:
        self._owned.discard(task)
        try:
            answer = task.result()
        except asyncio.CancelledError:  # a shared lookup ended by the cache's aclose()
            answer = Answer(query, Status.ERROR, detail="lookup cancelled")
        except Exception as exc:  # a backend bug must not kill a SIP transaction
            log.exception("backend failed on %s", query)
            answer = Answer(query, Status.ERROR, detail=f"{type(exc).__name__}: {exc}")
        self._resolution.feed(answer)

    def _interrupt(self) -> None:
        """Cancel the lookups; keep answers already in and remember the others."""
        if self._closed:
            self._cancel()
            return
        for task, query in list(self._tasks.items()):
            if task.done() and not task.cancelled():
                del self._tasks[task]
                self._feed(query, task)
            else:
                self._interrupted.append(query)
        self._cancel()

    def _cancel(self) -> list[asyncio.Future[Answer]]:
        """Cancel this stream's own lookups and forget shared ones (the cache's)."""
        tasks = list(self._owned)
        self._tasks.clear()
        self._owned.clear()
        if self._waiter is not None:
            _wake(self._waiter)  # a next() waiting in another task ends now
        for task in tasks:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: no "exception was never retrieved" later
            task.cancel()
        return tasks

    async def aclose(self) -> None:
        """Stop: cancel lookups still running and wait until they are gone."""
        self._closed = True
        tasks = self._cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def __del__(self) -> None:
        # Left without aclose (e.g. `break` out of a bare `async for`): cancel anyway.
        if self._owned:
            with contextlib.suppress(RuntimeError):  # the loop may be closed already
                self._cancel()

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


def _wake_stream(ref: weakref.ref[TargetStream], _future: asyncio.Future[Answer]) -> None:
    stream = ref()
    if stream is not None and stream._waiter is not None:
        _wake(stream._waiter)
