"""Cancelling a locate at every await point: nothing leaks, nothing else breaks."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import re
import warnings

import pytest

from asip_locate import (
    LocateError,
    LocateOptions,
    Locator,
    Target,
    TargetStream,
)
from asip_locate.testing import FakeBackend, GatedBackend, ZoneServer
from tests.conftest import DEMO_ZONE

URI = "sip:alice@example.test"
OTHER = "sips:bob@example.test"


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def expected(uri: str) -> list[Target]:
    async with Locator(LocateOptions(seed=1), backend=FakeBackend(DEMO_ZONE)) as locator:
        return await locator.resolve(uri)


async def steps_of_a_full_locate() -> int:
    backend = GatedBackend(DEMO_ZONE)
    async with Locator(LocateOptions(seed=1), backend=backend) as locator:
        task = asyncio.ensure_future(locator.resolve(URI))
        steps = 0
        while not task.done():
            steps += await backend.release()
            assert steps < 100
        await task
    return steps


def own_tasks() -> set[asyncio.Task[object]]:
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current and not t.done()}


async def test_a_full_locate_takes_several_steps() -> None:
    assert await steps_of_a_full_locate() >= 5


def inflight(locator: Locator) -> int:
    """Queries in the cache's in-flight table (0 without a cache)."""
    match = re.search(r"inflight=(\d+)", repr(locator.backend))
    return int(match.group(1)) if match else 0


@pytest.mark.parametrize("style", ["async-with", "bare-async-for", "resolve"])
@pytest.mark.parametrize("other_uri", [OTHER, URI], ids=["other-uri", "same-uri"])
@pytest.mark.parametrize("cache_size", [0, 100], ids=["no-cache", "cache"])
async def test_cancel_after_every_step(
    style: str, other_uri: str, cache_size: int, caplog: pytest.LogCaptureFixture
) -> None:
    total = await steps_of_a_full_locate()
    want = await expected(URI)
    want_other = await expected(other_uri)
    before = own_tasks()
    for k in range(total + 1):
        backend = GatedBackend(DEMO_ZONE)
        got: list[Target] = []
        opts = LocateOptions(seed=1, cache_size=cache_size)
        async with Locator(opts, backend=backend) as locator:

            async def consume(got: list[Target]) -> None:
                if style == "async-with":
                    async with locator.locate(URI) as stream:
                        async for target in stream:
                            got.append(target)
                elif style == "bare-async-for":
                    async for target in locator.locate(URI):
                        got.append(target)
                else:
                    got.extend(await locator.resolve(URI))

            victim = asyncio.ensure_future(consume(got))
            other = asyncio.ensure_future(locator.resolve(other_uri))
            released = 0
            while released < k and not victim.done():
                released += await backend.release()
            finished = victim.done()
            victim.cancel()
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                try:
                    await victim
                except asyncio.CancelledError:
                    assert not victim.done() or victim.cancelled()
                # Whatever was received before the cancel is a prefix of the full answer.
                assert got == want[: len(got)]
                if not finished and not cache_size and k:
                    # (k = 0 cancels the victim before it even started.)
                    assert backend.cancelled  # the victim's own lookups were cancelled
                if cache_size:
                    # Shared lookups belong to the cache: a cancelled caller never
                    # cancels them for the other waiters.
                    assert backend.cancelled == 0
                # The other locate (sharing queries through the cache) gets every answer.
                backend.open()
                assert await other == want_other
                await settle()
                gc.collect()
                await settle()
                # The cache is consistent: nothing stuck in flight, and the same
                # locate again gives the full answer.
                assert inflight(locator) == 0
                assert await locator.resolve(URI) == want
            assert own_tasks() == before, (k, own_tasks() - before)
    # "Task was destroyed but it is pending!" and "exception was never retrieved" are
    # logged by asyncio, not warned: check the log too.
    assert not [r for r in caplog.records if r.name == "asyncio"], caplog.text


async def test_cancelled_stream_can_be_iterated_again() -> None:
    total = await steps_of_a_full_locate()
    want = await expected(URI)
    for k in range(total + 1):
        backend = GatedBackend(DEMO_ZONE)
        async with Locator(LocateOptions(seed=1), backend=backend) as locator:
            stream = locator.locate(URI)
            got: list[Target] = []
            for _ in range(20):  # interrupt every next() after k releases
                step = asyncio.ensure_future(anext(stream, None))
                released = 0
                while released < k and not step.done():
                    released += await backend.release()
                if not step.done():
                    step.cancel()
                    with pytest.raises(asyncio.CancelledError):
                        await step
                    assert "pending=0" in repr(stream)
                    backend.open()  # the retry runs without gates
                    continue
                target = await step
                if target is None:
                    break
                got.append(target)
            else:
                backend.open()
                got += [t async for t in stream]
            assert got == want, k
            await stream.aclose()


async def test_breaking_out_of_a_bare_async_for_cancels_pending_lookups() -> None:
    backend = GatedBackend(DEMO_ZONE)
    async with Locator(LocateOptions(seed=1, cache_size=0), backend=backend) as locator:
        task = asyncio.ensure_future(_first(locator))
        while not task.done():
            await backend.release()
        assert await task == (await expected(URI))[0]
        # The stream is gone: TargetStream.__del__ cancelled the lookups still waiting.
        await settle()
        gc.collect()
        await settle()
        assert not backend.waiting
        assert backend.cancelled >= 1


async def test_breaking_out_with_the_cache_leaves_its_lookups_to_finish() -> None:
    backend = GatedBackend(DEMO_ZONE)
    async with Locator(LocateOptions(seed=1), backend=backend) as locator:
        task = asyncio.ensure_future(_first(locator))
        while not task.done():
            await backend.release()
        assert await task == (await expected(URI))[0]
        await settle()
        gc.collect()
        await settle()
        # The stream's own tasks are gone; the cache's shared queries go on and are
        # stored when they finish, for the next locate.
        pending = len(backend.waiting)
        assert pending >= 1
        assert inflight(locator) == pending
        await backend.release(pending)
        assert inflight(locator) == 0
        assert backend.cancelled == 0
        misses = locator.cache_info().misses
        assert await locator.resolve(URI) == await expected(URI)
        assert locator.cache_info().misses == misses  # all from the cache


async def _first(locator: Locator) -> Target:
    async for target in locator.locate(URI):
        return target  # leaves a bare `async for` with lookups in flight
    raise AssertionError("no target")


async def test_locator_aclose_during_a_locate_cancels_it_cleanly() -> None:
    backend = GatedBackend(DEMO_ZONE)
    locator = Locator(LocateOptions(seed=1), backend=backend)
    stream = locator.locate(URI)
    task = asyncio.ensure_future(anext(stream))
    await backend.release(2)
    await locator.aclose()
    assert backend.closed
    await settle()
    assert not backend.waiting
    # The waiting consumer learns that the locator was closed, and so does anyone
    # iterating the stream later: never a silently empty stream.
    with pytest.raises(LocateError, match="locator closed"):
        await task
    with pytest.raises(LocateError, match="locator closed"):
        await anext(stream)


async def test_cancel_over_real_dns_leaves_nothing_behind() -> None:
    async with ZoneServer(DEMO_ZONE, delay=0.05) as server:
        opts = LocateOptions(nameservers=(server.address,), timeout=1.0, tries=1, seed=1)
        async with Locator(opts) as locator:
            # c-ares caches answers, so later rounds cancel at other points.
            for delay in (0.0, 0.01, 0.06, 0.12, 0.0, 0.001):
                task = asyncio.ensure_future(locator.resolve(URI))
                await asyncio.sleep(delay)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    assert await task == await expected(URI)  # it was faster
            # The locator (and its c-ares channel) still works afterwards.
            targets = await locator.resolve(URI)
    assert targets == await expected(URI)


def test_stream_del_without_a_loop_does_not_raise() -> None:
    async def make() -> TargetStream:
        backend = GatedBackend(DEMO_ZONE)
        locator = Locator(backend=backend)
        stream = locator.locate(URI)
        pending.append(asyncio.ensure_future(anext(stream)))
        await settle()
        return stream

    pending: list[asyncio.Future[Target]] = []

    loop = asyncio.new_event_loop()
    try:
        stream = loop.run_until_complete(make())
    finally:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        del stream
        gc.collect()
