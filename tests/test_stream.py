"""TargetStream and Locator behaviour: early exit, errors, deadline, ownership."""

from __future__ import annotations

import asyncio

import pytest

from asip_locate import (
    Answer,
    InvalidUriError,
    IpStrategy,
    LocateOptions,
    LocateTimeoutError,
    Locator,
    NoTargetsError,
    Query,
    Status,
)
from asip_locate.testing import FakeBackend, ZoneServer

from .conftest import DEMO_ZONE

# Without the cache: a stream's own lookups are what its close cancels (with the cache,
# lookups are shared and belong to the cache until Locator.aclose).
NO_CACHE_UDP = LocateOptions(seed=3, transports=["udp"], cache_size=0)


class SlowAfterFirstRound(FakeBackend):
    """Address queries of the second SRV host never finish until cancelled."""

    def __init__(self) -> None:
        super().__init__(DEMO_ZONE)
        self.cancelled: list[Query] = []

    async def query(self, query: Query) -> Answer:
        if query.name == "sip2.example.test":
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.append(query)
                raise
        return await super().query(query)


async def test_first_target_while_later_lookups_are_pending() -> None:
    backend = SlowAfterFirstRound()
    async with Locator(NO_CACHE_UDP, backend=backend) as locator:
        async with locator.locate("sip:example.test") as stream:
            first = await anext(stream)
            assert first.host == "sip1.example.test"
            assert "pending=" in repr(stream)
        # leaving `async with` cancelled the lookups still running
        assert backend.cancelled


async def test_break_out_of_bare_async_for_cancels_pending_work() -> None:
    backend = SlowAfterFirstRound()
    async with Locator(NO_CACHE_UDP, backend=backend) as locator:
        async for _target in locator.locate("sip:example.test"):
            break
        for _ in range(3):
            await asyncio.sleep(0)
        assert backend.cancelled


async def test_locator_aclose_closes_open_streams_and_backend() -> None:
    backend = SlowAfterFirstRound()
    locator = Locator(LocateOptions(transports=["udp"]), backend=backend)
    stream = locator.locate("sip:example.test")
    await anext(stream)
    await locator.aclose()
    assert backend.closed
    assert backend.cancelled
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    with pytest.raises(RuntimeError, match="closed"):
        locator.locate("sip:example.test")


async def test_invalid_uri_raises_at_once() -> None:
    async with Locator(backend=FakeBackend(DEMO_ZONE)) as locator:
        with pytest.raises(InvalidUriError, match="sip:exa mple"):
            locator.locate("sip:exa mple.test")


async def test_no_targets_names_the_cause_and_keeps_attempts() -> None:
    async with Locator(backend=FakeBackend(DEMO_ZONE)) as locator:
        with pytest.raises(NoTargetsError) as info:
            await locator.resolve("sip:gone.example.test")
    error = info.value
    assert "gone.example.test NAPTR: NXDOMAIN" in str(error)
    assert {a.query.name for a in error.attempts} >= {
        "gone.example.test",
        "_sip._udp.gone.example.test",
    }
    assert all(a.status is Status.NXDOMAIN for a in error.attempts)


async def test_unsupported_transport_surfaces_when_iterating() -> None:
    async with Locator(backend=FakeBackend(DEMO_ZONE)) as locator:
        stream = locator.locate("sips:example.test;transport=udp")
        with pytest.raises(NoTargetsError, match="SIPS cannot use transport=udp"):
            await anext(stream)


async def test_backend_exception_becomes_an_error_answer(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(FakeBackend):
        async def query(self, query: Query) -> Answer:
            if query.rtype == "NAPTR":
                raise RuntimeError("boom")
            return await super().query(query)

    async with Locator(LocateOptions(seed=1), backend=Broken(DEMO_ZONE)) as locator:
        targets = await locator.resolve("sip:example.test")
    assert targets[0].transport == "udp"  # NAPTR failed -> SRV per transport
    assert "backend failed" in caplog.text


async def test_deadline_raises_locate_timeout_error() -> None:
    async with ZoneServer(DEMO_ZONE) as server:
        server.inject(drop=True)
        options = LocateOptions(nameservers=(server.address,), timeout=5, tries=1, deadline=0.3)
        async with Locator(options) as locator:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(LocateTimeoutError) as info:
                await locator.resolve("sip:example.test")
            assert loop.time() - started < 3  # far below c-ares' own 5 s timeout
    assert isinstance(info.value, TimeoutError)
    assert "0.3s" in str(info.value)


async def test_deadline_after_some_targets_ends_the_stream() -> None:
    async with ZoneServer(DEMO_ZONE) as server:
        server.inject(name="sip2.example.test", drop=True)
        options = LocateOptions(
            nameservers=(server.address,),
            timeout=5,
            tries=1,
            deadline=0.5,
            transports=["udp"],
            ip_strategy=IpStrategy.IPV4_ONLY,
            seed=1,
        )
        async with Locator(options) as locator:
            targets = await locator.resolve("sip:example.test")
    assert [t.host for t in targets] == ["sip1.example.test"]


async def test_concurrency_bound_is_respected() -> None:
    in_flight = 0
    peak = 0

    class Counting(FakeBackend):
        async def query(self, query: Query) -> Answer:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0)
            in_flight -= 1
            return await super().query(query)

    async with Locator(LocateOptions(max_concurrency=2), backend=Counting(DEMO_ZONE)) as loc:
        targets = await loc.resolve("sip:example.test")
    assert peak == 2
    assert len(targets) == 9


async def test_answers_arriving_together_never_look_like_the_deadline() -> None:
    # Many lookups finishing in one loop iteration wake the stream more than once; a
    # wake-up that finds nothing new must not be taken for the deadline.
    async with ZoneServer(DEMO_ZONE) as server:
        options = LocateOptions(nameservers=(server.address,), deadline=5, cache_size=0)
        async with Locator(options) as locator:
            for _ in range(20):
                targets = await locator.resolve("sip:example.test")
                assert len(targets) == 9


async def test_thousands_waiting_on_one_shared_lookup_all_get_targets() -> None:
    backend = FakeBackend(DEMO_ZONE, latency=0.01)
    async with Locator(LocateOptions(seed=1), backend=backend) as locator:
        results = await asyncio.gather(*(locator.resolve("sip:example.test") for _ in range(2000)))
        assert {len(r) for r in results} == {9}
        assert len(backend.calls) == len(set(backend.calls))  # one query per (name, type)
        assert locator.cache_info().coalesced == 2000 * len(backend.calls) - len(backend.calls)
