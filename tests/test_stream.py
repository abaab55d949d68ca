"""TargetStream and Locator behaviour: early exit, errors, deadline, ownership."""

from __future__ import annotations

import asyncio

import pytest

from asip_locate import (
    Answer,
    InvalidUriError,
    IpStrategy,
    LocateError,
    LocateOptions,
    LocateTimeoutError,
    Locator,
    NoTargetsError,
    Query,
    Status,
    UnsupportedTransportError,
    parse_uri,
)
from asip_locate.testing import FakeBackend, GatedBackend, ZoneServer

from .conftest import DEMO_ZONE

# Without the cache: a stream's own lookups are what its close cancels (with the cache,
# lookups are shared and belong to the cache until Locator.aclose).
NO_CACHE_UDP = LocateOptions(seed=3, transports=["udp"], cache_size=0)


def slow_after_first_round() -> GatedBackend:
    """Address queries of the second SRV host never finish until cancelled."""
    return GatedBackend(DEMO_ZONE, gated="sip2.example.test")


async def test_first_target_while_later_lookups_are_pending() -> None:
    backend = slow_after_first_round()
    async with Locator(NO_CACHE_UDP, backend=backend) as locator:
        async with locator.locate("sip:example.test") as stream:
            first = await anext(stream)
            assert first.host == "sip1.example.test"
            assert "pending=" in repr(stream)
        # leaving `async with` cancelled the lookups still running
        assert backend.cancelled


async def test_break_out_of_bare_async_for_cancels_pending_work() -> None:
    backend = slow_after_first_round()
    async with Locator(NO_CACHE_UDP, backend=backend) as locator:
        async for _target in locator.locate("sip:example.test"):
            break
        for _ in range(3):
            await asyncio.sleep(0)
        assert backend.cancelled


async def test_locator_aclose_closes_open_streams_and_backend() -> None:
    backend = slow_after_first_round()
    locator = Locator(LocateOptions(transports=["udp"]), backend=backend)
    stream = locator.locate("sip:example.test")
    await anext(stream)
    await locator.aclose()
    assert backend.closed
    assert backend.cancelled
    for _ in range(2):  # never a silently empty stream
        with pytest.raises(LocateError, match="locator closed"):
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
    backend = FakeBackend(DEMO_ZONE)
    async with Locator(backend=backend) as locator:
        stream = locator.locate("sips:example.test;transport=udp")
        # A normal stream: attempts, repr and aclose work before iterating.
        assert stream.attempts == ()
        assert stream.discarded == ()
        assert "sips:example.test;transport=udp" in repr(stream)
        with pytest.raises(UnsupportedTransportError, match="SIPS cannot use transport=udp"):
            await anext(stream)
        with pytest.raises(StopAsyncIteration):
            await anext(stream)
        await stream.aclose()
        async with locator.locate("sips:example.test;transport=udp") as again:
            with pytest.raises(UnsupportedTransportError):
                await anext(again)
        with pytest.raises(UnsupportedTransportError):
            await locator.resolve("sips:example.test;transport=udp")
    assert backend.calls == []


async def test_locate_accepts_a_parsed_uri() -> None:
    async with Locator(LocateOptions(seed=1), backend=FakeBackend(DEMO_ZONE)) as locator:
        by_text = await locator.resolve("sip:example.test")
        by_uri = await locator.resolve(parse_uri("sip:example.test"))
        assert by_uri == by_text
        async with locator.locate(parse_uri("sip:example.test")) as stream:
            assert stream.uri == "sip:example.test"
            assert [t async for t in stream] == by_text


async def test_a_borrowed_backend_is_never_closed() -> None:
    backend = FakeBackend(DEMO_ZONE)
    for cache_size in (0, 100):
        locator = Locator(LocateOptions(cache_size=cache_size), backend=backend, own_backend=False)
        async with locator:
            assert len(await locator.resolve("sip:example.test")) == 9
        assert not backend.closed
    async with Locator(backend=backend):
        pass
    assert backend.closed  # own_backend=True (the default) closes it


async def test_is_demoted() -> None:
    async with Locator(LocateOptions(seed=1), backend=FakeBackend(DEMO_ZONE)) as locator:
        first, second, *_ = await locator.resolve("sip:example.test")
        assert not locator.is_demoted(first)
        locator.report_failure(first)
        assert locator.is_demoted(first)
        assert locator.is_demoted(first.endpoint)
        assert not locator.is_demoted(second)
        locator.report_success(first.endpoint)
        assert not locator.is_demoted(first)


class Broken(FakeBackend):
    """A backend with a bug: NAPTR queries raise (as a second event loop would)."""

    async def query(self, query: Query) -> Answer:
        if query.rtype == "NAPTR":
            raise RuntimeError("boom")
        return await super().query(query)


@pytest.mark.parametrize("cache_size", [0, 100], ids=["no-cache", "cache"])
async def test_backend_exception_propagates(cache_size: int) -> None:
    options = LocateOptions(seed=1, cache_size=cache_size)
    async with Locator(options, backend=Broken(DEMO_ZONE)) as locator:
        # Never turned into an ERROR answer (which would give SRV targets here).
        with pytest.raises(RuntimeError, match="boom"):
            await locator.resolve("sip:example.test")
        stream = locator.locate("sip:example.test")
        with pytest.raises(RuntimeError, match="boom"):
            await anext(stream)
        await stream.aclose()


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
        # Single flight: the first locate resolves, the 1,999 others wait for it and
        # replay its compiled result instead of joining each shared lookup.
        info = locator.cache_info()
        assert (info.coalesced, info.compiled_hits) == (0, 1999)


async def test_per_call_overrides_share_cache_and_health() -> None:
    backend = FakeBackend(DEMO_ZONE)
    async with Locator(LocateOptions(seed=1), backend=backend) as locator:
        default = await locator.resolve("sip:example.test")
        assert {t.transport for t in default} == {"tls", "tcp", "udp"}
        calls = len(backend.calls)
        udp4 = await locator.resolve(
            "sip:example.test", transports=["udp"], ip_strategy="ipv4_only"
        )
        assert [(t.transport, t.address.version) for t in udp4] == [("udp", 4), ("udp", 4)]
        assert len(backend.calls) == calls  # every answer came from the shared cache
        # Each variant keeps its own compiled result; the default is unchanged.
        for _ in range(2):
            assert await locator.resolve("sip:example.test") == default
            assert (
                await locator.resolve(
                    "sip:example.test", transports=["udp"], ip_strategy="ipv4_only"
                )
                == udp4
            )
        async with locator.locate("sip:example.test", transports=["udp"]) as stream:
            assert {t.transport async for t in stream} == {"udp"}
        # One health table for all: a failure demotes the endpoint for every variant.
        locator.report_failure(udp4[0])
        again = await locator.resolve(
            "sip:example.test", transports=["udp"], ip_strategy="ipv4_only"
        )
        assert again == [udp4[1], udp4[0]]
        with pytest.raises(ValueError, match="unknown transport"):
            locator.locate("sip:example.test", transports=["pigeon"])


async def test_per_call_deadline() -> None:
    async with ZoneServer(DEMO_ZONE) as server:
        server.inject(drop=True)
        options = LocateOptions(nameservers=(server.address,), timeout=5, tries=1)
        async with Locator(options) as locator:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(LocateTimeoutError, match=r"0\.2s"):
                await locator.resolve("sip:example.test", deadline=0.2)
            assert loop.time() - started < 3
