"""Single flight: concurrent cold locates of one location run one plan."""

from __future__ import annotations

import asyncio

import pytest

from asip_locate import (
    LocateOptions,
    LocateTimeoutError,
    Locator,
    NoTargetsError,
    Query,
    RType,
    Status,
)
from asip_locate.testing import FakeBackend, GatedBackend

from .conftest import DEMO_ZONE

URI = "sip:alice@example.test"


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def expected() -> list[object]:
    async with Locator(LocateOptions(seed=1), backend=FakeBackend(DEMO_ZONE)) as locator:
        return list(await locator.resolve(URI))


async def test_followers_take_the_leaders_compiled_result() -> None:
    backend = GatedBackend(DEMO_ZONE)
    async with Locator(LocateOptions(seed=1), backend=backend) as locator:
        tasks = [asyncio.ensure_future(locator.resolve(URI)) for _ in range(50)]
        await settle()
        assert len(locator._flights) == 1
        backend.open()
        results = await asyncio.gather(*tasks)
        info = locator.cache_info()
    assert all(r == results[0] for r in results)
    assert results[0] == await expected()
    assert len(backend.calls) == len(set(backend.calls))
    assert (info.coalesced, info.compiled_hits) == (0, 49)


async def test_a_slow_consumer_of_the_leader_never_holds_followers_back() -> None:
    backend = GatedBackend(DEMO_ZONE)
    async with Locator(LocateOptions(seed=1), backend=backend) as locator:
        leader = locator.locate(URI)
        first = asyncio.ensure_future(anext(leader))
        await settle()
        followers = [asyncio.ensure_future(locator.resolve(URI)) for _ in range(5)]
        backend.open()
        assert await first == (await expected())[0]
        # The leader is not iterated again, yet its plan finished from its lookups'
        # callbacks, so the followers got the whole answer.
        results = await asyncio.gather(*followers)
        want = await expected()
        assert all(r == want for r in results)
        assert locator.cache_info().compiled_hits == 5
        assert [t async for t in leader] == (await expected())[1:]
        await leader.aclose()


async def test_a_stream_never_iterated_leads_nothing() -> None:
    async with Locator(LocateOptions(seed=1), backend=FakeBackend(DEMO_ZONE)) as locator:
        idle = locator.locate(URI)
        assert await locator.resolve(URI) == await expected()
        assert [t async for t in idle] == await expected()


@pytest.mark.parametrize("how", ["aclose", "cancel"])
async def test_followers_go_on_when_the_leader_stops(how: str) -> None:
    backend = GatedBackend(DEMO_ZONE)
    async with Locator(LocateOptions(seed=1), backend=backend) as locator:
        leader = locator.locate(URI)
        step = asyncio.ensure_future(anext(leader))
        await settle()
        follower = asyncio.ensure_future(locator.resolve(URI))
        await settle()
        if how == "aclose":
            await leader.aclose()
        step.cancel()
        with pytest.raises((asyncio.CancelledError, StopAsyncIteration)):
            await step
        await settle()
        # Landed: the follower leads a plan of its own (else it would wait for the
        # stopped leader until its deadline and fail).
        backend.open()
        assert await follower == await expected()


async def test_a_failed_leader_lets_followers_plan_and_fail_alike() -> None:
    backend = GatedBackend("")  # nothing exists: NXDOMAIN everywhere
    srv = Query("_sip._udp.example.test", RType.SRV)
    backend.fail[srv] = Status.SERVFAIL  # a failure is never compiled
    async with Locator(LocateOptions(seed=1), backend=backend) as locator:
        tasks = [asyncio.ensure_future(locator.resolve(URI)) for _ in range(5)]
        await settle()
        backend.open()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, NoTargetsError) for r in results)
    assert backend.calls.count(srv) >= 2  # the failure was asked again, not replayed


async def test_followers_keep_their_own_deadline() -> None:
    backend = GatedBackend(DEMO_ZONE)  # never opened: the leader waits forever
    options = LocateOptions(seed=1, deadline=0.05)
    async with Locator(options, backend=backend) as locator:
        leader = asyncio.ensure_future(locator.resolve(URI))
        await settle()
        with pytest.raises(LocateTimeoutError):
            await locator.resolve(URI)
        with pytest.raises(LocateTimeoutError):
            await leader


async def test_a_follower_arriving_late_wakes_an_idle_leader() -> None:
    # The leader's last answers came in while its consumer sat on the first target
    # (nobody followed then, so nothing took them in): a follower arriving now must
    # not wait for that consumer, nor for its own deadline.
    backend = GatedBackend(DEMO_ZONE, gated="sip2.example.test")
    async with Locator(LocateOptions(seed=1, deadline=3), backend=backend) as locator:
        leader = locator.locate(URI)
        assert await anext(leader) == (await expected())[0]
        backend.open()
        await settle()
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await locator.resolve(URI) == await expected()
        assert loop.time() - started < 1
        assert locator.cache_info().compiled_hits == 1
        await leader.aclose()
