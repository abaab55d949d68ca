"""Compiled resolutions: a cached locate replays its plan (fake clock, exact)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from asip_locate import (
    LocateError,
    LocateOptions,
    Locator,
    NoTargetsError,
    Query,
    RType,
    Status,
    Target,
)
from asip_locate.testing import FakeBackend, FakeClock

from .conftest import DEMO_ZONE

DOMAIN_ZONE = """\
example.test. 3600 IN SOA ns.example.test. hostmaster.example.test. 1 7200 900 1209600 300
{d}. 300 IN NAPTR 10 50 "s" "SIP+D2U" "" _sip._udp.{d}.
{d}. 300 IN NAPTR 20 50 "s" "SIP+D2T" "" _sip._tcp.{d}.
_sip._udp.{d}. 120 IN SRV 10 50 5060 sip1.{d}.
_sip._tcp.{d}. 200 IN SRV 10 50 5060 sip1.{d}.
sip1.{d}. 100 IN A 127.0.0.11
sip1.{d}. 40 IN AAAA ::1
"""

POOL_ZONE = """\
$TTL 300
pool.test. 3600 IN SOA ns1.pool.test. hostmaster.pool.test. 1 7200 900 1209600 60
_sip._udp.pool.test. IN SRV 10 50 5060 p1.pool.test.
_sip._udp.pool.test. IN SRV 10 30 5060 p2.pool.test.
_sip._udp.pool.test. IN SRV 10 20 5060 p3.pool.test.
p1.pool.test. IN A 127.0.0.21
p2.pool.test. IN A 127.0.0.22
p3.pool.test. IN A 127.0.0.23
"""


def zone(*domains: str) -> str:
    return "".join(DOMAIN_ZONE.format(d=d) for d in domains)


def make(clock: FakeClock, text: str, **options: Any) -> tuple[Locator, FakeBackend]:
    fake = FakeBackend(text)
    # early_srv off: these tests pin the queries of the classic three waves.
    return Locator(
        LocateOptions(**{"early_srv": False, **options}), backend=fake, clock=clock
    ), fake


def shape(targets: list[Target]) -> list[tuple[str, int | None]]:
    return [(str(t.endpoint), t.ttl) for t in targets]


async def test_a_cached_locate_replays_the_compiled_resolution(clock: FakeClock) -> None:
    locator, fake = make(clock, DEMO_ZONE, seed=1)
    async with locator:
        async with locator.locate("sip:alice@example.test") as first:
            cold = [t async for t in first]
            queries = [a.query for a in first.attempts]
        calls = len(fake.calls)
        # Compiled on second use: a location located once costs no compile.
        assert locator.cache_info().compiled == 0
        assert await locator.resolve("sip:alice@example.test") == cold
        info = locator.cache_info()
        assert (info.compiled, info.compiled_targets, info.compiled_hits) == (1, 9, 1)
        # alice@ and bob@ share a location key, so one compiled entry.
        for uri in ("sip:alice@example.test", "sip:bob@example.test", "example.test"):
            assert await locator.resolve(uri) == cold
            async with locator.locate(uri) as stream:
                assert [t async for t in stream] == cold
                assert [a.query for a in stream.attempts] == queries
                assert all(a.ttl is not None and a.ttl > 0 for a in stream.attempts)
        assert len(fake.calls) == calls
        assert locator.cache_info().compiled == 1
        assert locator.cache_info().compiled_hits == 7
        assert locator.cache_info().hits == 7 * calls


async def test_unseeded_cached_locates_draw_afresh_chi_square(clock: FakeClock) -> None:
    locator, _ = make(clock, POOL_ZONE, transports=["udp"], ip_strategy="ipv4_only")
    trials = 6000
    async with locator:
        firsts: Counter[str] = Counter()
        for _ in range(trials):
            firsts[(await locator.resolve("sip:pool.test"))[0].host] += 1
        assert locator.cache_info().compiled_hits == trials - 1
    # RFC 2782 with weights 50/30/20 arranged in that order and R in [0, 100]: the
    # first record wins for R <= 50 (51 of 101 values), the others for 30 and 20.
    expected = {"p1.pool.test": 51 / 101, "p2.pool.test": 30 / 101, "p3.pool.test": 20 / 101}
    chi2 = sum((firsts[h] - trials * p) ** 2 / (trials * p) for h, p in expected.items())
    assert chi2 < 13.82  # 2 degrees of freedom, p = 0.001


async def test_a_seeded_locator_stays_reproducible(clock: FakeClock) -> None:
    results = []
    for _ in range(2):
        locator, _ = make(clock, POOL_ZONE, seed=5, transports=["udp"])
        async with locator:
            results += [await locator.resolve("sip:pool.test") for _ in range(5)]
    assert all(r == results[0] for r in results)


async def test_targets_carry_the_remaining_ttl(clock: FakeClock) -> None:
    locator, fake = make(clock, zone("d.example.test"))
    async with locator:
        assert shape(await locator.resolve("sip:d.example.test"))[:2] == [
            ("udp [::1]:5060", 40),
            ("udp 127.0.0.11:5060", 100),
        ]
        clock.advance(10.25)
        again = await locator.resolve("sip:d.example.test")
        assert [t.ttl for t in again] == [29, 89, 29, 89]
        clock.advance(0.75)
        assert [t.ttl for t in await locator.resolve("sip:d.example.test")] == [29, 89, 29, 89]
        clock.advance(0.001)
        assert [t.ttl for t in await locator.resolve("sip:d.example.test")] == [28, 88, 28, 88]
        assert locator.cache_info().compiled_hits == 3
        assert len(fake.calls) == 5


async def test_the_first_expiry_ends_the_compiled_entry(clock: FakeClock) -> None:
    locator, fake = make(clock, zone("d.example.test"))
    async with locator:
        await locator.resolve("sip:d.example.test")
        clock.advance(40)  # the AAAA (40 s) expired
        targets = await locator.resolve("sip:d.example.test")
        assert fake.calls[5:] == [Query("sip1.d.example.test", RType.AAAA)]
        assert [t.ttl for t in targets] == [40, 60, 40, 60]
        assert locator.cache_info().compiled_hits == 0
        await locator.resolve("sip:d.example.test")  # compiled again
        assert locator.cache_info().compiled_hits == 1


async def test_refresh_ahead_still_refreshes(clock: FakeClock) -> None:
    locator, fake = make(clock, zone("d.example.test"), refresh_ahead=0.5)
    async with locator:
        await locator.resolve("sip:d.example.test")
        clock.advance(15)
        await locator.resolve("sip:d.example.test")  # compiled: nothing is due yet
        assert locator.cache_info().compiled_hits == 1
        clock.advance(6)  # the AAAA (40 s) is past half its life: refresh it
        targets = await locator.resolve("sip:d.example.test")
        assert [t.ttl for t in targets] == [19, 79, 19, 79]  # answered from memory
        await asyncio.sleep(0)
        assert fake.calls[5:] == [Query("sip1.d.example.test", RType.AAAA)]
        targets = await locator.resolve("sip:d.example.test")
        assert [t.ttl for t in targets] == [40, 79, 40, 79]  # the refreshed AAAA


async def test_flush_and_replacement_invalidate_only_dependents(clock: FakeClock) -> None:
    locator, fake = make(clock, zone("d1.example.test", "d2.example.test"))
    async with locator:
        for _ in range(2):
            await locator.resolve("sip:d1.example.test")
            await locator.resolve("sip:d2.example.test")
        assert locator.cache_info().compiled == 2
        locator.flush_cache("sip1.d1.example.test")
        calls = len(fake.calls)
        await locator.resolve("sip:d2.example.test")
        assert locator.cache_info().compiled_hits == 3  # d2 did not depend on it
        await locator.resolve("sip:d1.example.test")
        assert locator.cache_info().compiled_hits == 3  # d1 did: planned again
        assert len(fake.calls) == calls + 2  # its A and AAAA only
        locator.flush_cache()
        assert locator.cache_info().compiled == 0


async def test_negative_results_are_compiled_too(clock: FakeClock) -> None:
    locator, fake = make(clock, DEMO_ZONE)
    async with locator:
        with pytest.raises(NoTargetsError) as cold:
            await locator.resolve("sip:gone.example.test")
        calls = len(fake.calls)
        for _ in range(2):
            with pytest.raises(NoTargetsError) as again:
                await locator.resolve("sip:gone.example.test")
            assert str(again.value) == str(cold.value)
            assert [a.query for a in again.value.attempts] == [a.query for a in cold.value.attempts]
            with pytest.raises(NoTargetsError):
                await anext(locator.locate("sip:gone.example.test"))
        assert len(fake.calls) == calls
        assert locator.cache_info().compiled_hits == 4
        clock.advance(30)  # negative_ttl
        with pytest.raises(NoTargetsError):
            await locator.resolve("sip:gone.example.test")
        assert len(fake.calls) > calls


async def test_a_failed_branch_is_never_compiled(clock: FakeClock) -> None:
    locator, fake = make(clock, DEMO_ZONE, transports=["udp"], seed=1)
    srv = Query("_sip._udp.example.test", RType.SRV)
    fake.fail[srv] = Status.SERVFAIL
    async with locator:
        for _ in range(3):
            # NAPTR -> SRV failed -> A/AAAA of the domain: nothing there, no target.
            with pytest.raises(NoTargetsError):
                await locator.resolve("sip:example.test")
        assert fake.calls.count(srv) == 3  # asked every time, never compiled
        assert locator.cache_info().compiled == 0
        del fake.fail[srv]
        good = await locator.resolve("sip:example.test")
        assert await locator.resolve("sip:example.test") == good
        assert locator.cache_info().compiled == 1


async def test_stale_answers_are_not_compiled(clock: FakeClock) -> None:
    locator, fake = make(clock, zone("d.example.test"), stale_ttl=3600)
    async with locator:
        await locator.resolve("sip:d.example.test")
        fake.fail[Query("sip1.d.example.test", RType.AAAA)] = Status.TIMEOUT
        clock.advance(50)
        stale = await locator.resolve("sip:d.example.test")
        assert [t.stale for t in stale] == [True, False, True, False]
        assert locator.cache_info().compiled == 0
        assert [t.stale for t in await locator.resolve("sip:d.example.test")] == [
            True,
            False,
            True,
            False,
        ]


async def test_compiled_memory_is_bounded_and_counted(clock: FakeClock) -> None:
    names = [f"d{i}.example.test" for i in range(5)]
    locator, _ = make(clock, zone(*names), cache_size=16)
    async with locator:
        for name in names:
            await locator.resolve(f"sip:{name}")
            await locator.resolve(f"sip:{name}")
        info = locator.cache_info()
        assert info.compiled_maxsize == 2
        assert info.compiled == 2
        assert info.compiled_targets == 8


async def test_compiled_streams_keep_stickiness_demotion_and_close(clock: FakeClock) -> None:
    locator, _ = make(clock, POOL_ZONE, transports=["udp"], seed=3, sticky_for=60)
    async with locator:
        baseline = await locator.resolve("sip:pool.test")
        locator.report_success(baseline[2])
        async with locator.locate("sip:pool.test") as stream:
            assert [t async for t in stream] == [baseline[2], baseline[0], baseline[1]]
        locator.report_failure(baseline[2])
        assert await locator.resolve("sip:pool.test") == [baseline[0], baseline[1], baseline[2]]
        assert locator.cache_info().compiled_hits == 2
        stream = locator.locate("sip:pool.test")
        assert await anext(stream) == baseline[0]
    with pytest.raises(LocateError, match="locator closed"):
        await anext(stream)
