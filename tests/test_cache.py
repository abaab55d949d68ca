"""CachingBackend: TTLs, negative caching, coalescing, serve-stale, refresh-ahead, size.

Time is a FakeClock, so expiry is exact. Tests that need a query to reach a real
server use names never asked before in that channel: c-ares keeps its own cache.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from asip_locate import (
    Answer,
    CachedLookup,
    CacheInfo,
    CachingBackend,
    DnsBackend,
    LocateOptions,
    Locator,
    NoTargetsError,
    Query,
    RType,
    Status,
)
from asip_locate.testing import FakeBackend, FakeClock, GatedBackend, ZoneServer

ZONE = """\
example.test. 3600 IN SOA ns.example.test. hostmaster.example.test. 1 7200 900 1209600 300
www.example.test. 60 IN A 127.0.0.1
www.example.test. 60 IN A 127.0.0.2
short.example.test. 5 IN A 127.0.0.3
long.example.test. 100000 IN A 127.0.0.4
zero.example.test. 0 IN A 127.0.0.5
alias.example.test. 20 IN CNAME www.example.test.
"""
NO_SOA_ZONE = "host.nosoa.test. 60 IN A 127.0.0.6\n"

A = RType.A
AAAA = RType.AAAA


# early_srv off: these tests pin the queries of the classic three waves (NAPTR, SRV, A/AAAA).
CLASSIC = LocateOptions(early_srv=False)


def make(clock: FakeClock, zone: str = ZONE, **options: Any) -> tuple[CachingBackend, FakeBackend]:
    fake = FakeBackend(zone)
    return CachingBackend(fake, LocateOptions(**options), clock=clock), fake


async def ask(cache: CachingBackend, name: str, rtype: RType = A) -> Answer:
    return await cache.query(Query(name, rtype))


# --- positive answers -----------------------------------------------------------------


async def test_positive_answer_lives_exactly_its_ttl(clock: FakeClock) -> None:
    cache, fake = make(clock)
    first = await ask(cache, "www.example.test")
    assert first.status is Status.NOERROR
    assert first.ttl == 60
    query = Query("www.example.test", A)

    clock.advance(0.5)
    assert cache.cached(query) == Answer(query, Status.NOERROR, first.records, 59)
    clock.advance(49.5)
    answer = cache.cached(query)
    assert answer is not None
    assert answer.ttl == 10
    clock.advance(9.999)
    answer = cache.cached(query)
    assert answer is not None
    assert answer.ttl == 0
    clock.advance(0.001)  # exactly 60 s after the answer: expired
    assert cache.cached(query) is None
    assert len(fake.calls) == 1

    second = await ask(cache, "www.example.test")
    assert second.ttl == 60
    assert len(fake.calls) == 2
    assert cache.info() == CacheInfo(
        hits=3, misses=2, size=1, maxsize=10_000, compiled_maxsize=1250
    )


async def test_cnames_on_the_way_bound_the_ttl(clock: FakeClock) -> None:
    cache, _ = make(clock)
    answer = await ask(cache, "alias.example.test")
    assert answer.cnames == ("alias.example.test",)
    assert answer.ttl == 20
    clock.advance(20)
    assert cache.cached(Query("alias.example.test", A)) is None


@pytest.mark.parametrize(
    ("name", "options", "lifetime"),
    [
        ("short.example.test", {"min_ttl": 30}, 30),
        ("www.example.test", {"min_ttl": 30}, 60),
        ("www.example.test", {"max_ttl": 45}, 45),
        ("long.example.test", {}, 86_400),  # the default max_ttl
        ("short.example.test", {"min_ttl": 10, "max_ttl": 10}, 10),
    ],
)
async def test_ttl_clamps(
    clock: FakeClock, name: str, options: dict[str, int], lifetime: int
) -> None:
    cache, fake = make(clock, ZONE, **options)
    assert (await ask(cache, name)).ttl == lifetime
    clock.advance(lifetime - 0.001)
    assert cache.cached(Query(name, A)) is not None
    clock.advance(0.001)
    assert cache.cached(Query(name, A)) is None
    assert len(fake.calls) == 1


async def test_ttl_zero_is_never_cached(clock: FakeClock) -> None:
    cache, fake = make(clock, min_ttl=60)
    for _ in range(3):
        answer = await ask(cache, "zero.example.test")
        assert answer.status is Status.NOERROR
        assert answer.ttl == 0
    assert len(fake.calls) == 3
    assert cache.info().size == 0


# --- negative answers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "name", "rtype", "status", "negative_ttl", "lifetime"),
    [
        (NO_SOA_ZONE, "gone.nosoa.test", A, Status.NXDOMAIN, 30, 30),
        (NO_SOA_ZONE, "host.nosoa.test", AAAA, Status.NODATA, 30, 30),
        # The backend reported an SOA-derived TTL (300): negative_ttl caps it...
        (ZONE, "gone.example.test", A, Status.NXDOMAIN, 30, 30),
        # ...and a lower SOA TTL wins (RFC 2308 §5).
        (ZONE, "www.example.test", AAAA, Status.NODATA, 600, 300),
    ],
)
async def test_negative_answers_live_negative_ttl(
    clock: FakeClock,
    zone: str,
    name: str,
    rtype: RType,
    status: Status,
    negative_ttl: int,
    lifetime: int,
) -> None:
    cache, fake = make(clock, zone, negative_ttl=negative_ttl)
    answer = await ask(cache, name, rtype)
    assert answer.status is status
    assert answer.ttl == lifetime
    clock.advance(lifetime - 1)
    cached = cache.cached(Query(name, rtype))
    assert cached is not None
    assert cached.status is status
    assert cached.ttl == 1
    clock.advance(1)
    assert cache.cached(Query(name, rtype)) is None
    assert len(fake.calls) == 1


async def test_nxdomain_covers_every_type_of_the_name(clock: FakeClock) -> None:
    cache, fake = make(clock)
    await ask(cache, "gone.example.test", A)
    aaaa = cache.cached(Query("gone.example.test", AAAA))
    assert aaaa == Answer(Query("gone.example.test", AAAA), Status.NXDOMAIN, ttl=30)
    # NODATA is per type (RFC 2308 §5).
    await ask(cache, "www.example.test", AAAA)
    assert cache.cached(Query("www.example.test", RType.SRV)) is None
    assert len(fake.calls) == 2


async def test_negative_ttl_zero_disables_negative_caching(clock: FakeClock) -> None:
    cache, fake = make(clock, negative_ttl=0)
    await ask(cache, "gone.example.test")
    await ask(cache, "gone.example.test")
    assert len(fake.calls) == 2


# --- failures -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [Status.SERVFAIL, Status.TIMEOUT, Status.REFUSED, Status.ERROR])
async def test_failures_are_never_cached(clock: FakeClock, status: Status) -> None:
    cache, fake = make(clock)
    query = Query("www.example.test", A)
    fake.fail[query] = status
    assert (await cache.query(query)).status is status
    assert cache.cached(query) is None
    assert (await cache.query(query)).status is status
    assert len(fake.calls) == 2
    del fake.fail[query]
    assert (await cache.query(query)).status is Status.NOERROR
    assert cache.info().size == 1


async def test_a_backend_exception_reaches_every_waiter_and_is_not_cached(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(FakeBackend):
        async def query(self, query: Query) -> Answer:
            raise RuntimeError("boom")

    cache = CachingBackend(Broken(ZONE), clock=clock)
    answers = await asyncio.gather(
        *(ask(cache, "www.example.test") for _ in range(3)), return_exceptions=True
    )
    assert [type(a) for a in answers] == [RuntimeError] * 3  # never an ERROR answer
    assert cache.info().size == 0
    assert cache.info().misses == 1  # one shared query, which raised
    assert "backend failed on www.example.test A" in caplog.text


# --- coalescing -----------------------------------------------------------------------


async def test_concurrent_identical_queries_share_one(clock: FakeClock) -> None:
    fake = GatedBackend(ZONE)
    cache = CachingBackend(fake, clock=clock)
    waiters = [asyncio.ensure_future(ask(cache, "www.example.test")) for _ in range(100)]
    other = asyncio.ensure_future(ask(cache, "www.example.test", AAAA))
    await asyncio.sleep(0)
    fake.open()
    answers = await asyncio.gather(*waiters, other)
    assert fake.calls == [Query("www.example.test", A), Query("www.example.test", AAAA)]
    assert all(a == answers[0] for a in answers[:100])
    assert cache.info() == CacheInfo(
        misses=2, coalesced=99, size=2, maxsize=10_000, compiled_maxsize=1250
    )


async def test_cancelling_a_waiter_leaves_the_shared_query_alone(clock: FakeClock) -> None:
    fake = GatedBackend(ZONE)
    cache = CachingBackend(fake, clock=clock)
    # The first waiter is the one that started the query: cancel exactly that one.
    first, *others = [asyncio.ensure_future(ask(cache, "www.example.test")) for _ in range(3)]
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    assert first.cancelled()
    fake.open()
    answers = await asyncio.gather(*others)
    assert [a.status for a in answers] == [Status.NOERROR] * 2
    assert len(fake.calls) == 1
    assert cache.cached(Query("www.example.test", A)) is not None


async def test_a_query_nobody_waits_for_still_fills_the_cache(clock: FakeClock) -> None:
    fake = GatedBackend(ZONE)
    cache = CachingBackend(fake, clock=clock)
    waiter = asyncio.ensure_future(ask(cache, "www.example.test"))
    await asyncio.sleep(0)
    waiter.cancel()
    fake.open()
    for _ in range(5):
        await asyncio.sleep(0)
    assert cache.cached(Query("www.example.test", A)) is not None


async def test_aclose_cancels_queries_in_flight(clock: FakeClock) -> None:
    fake = GatedBackend(ZONE)  # never answers
    cache = CachingBackend(fake, clock=clock)
    waiter = asyncio.ensure_future(ask(cache, "www.example.test"))
    await asyncio.sleep(0)
    waiter.cancel()
    await cache.aclose()  # the autouse fixture fails the test if a task is left
    assert fake.closed


# --- serve-stale ----------------------------------------------------------------------


async def test_serve_stale_when_the_refresh_fails(clock: FakeClock) -> None:
    cache, fake = make(clock, stale_ttl=300)
    query = Query("www.example.test", A)
    fresh = await cache.query(query)
    fake.fail[query] = Status.SERVFAIL

    clock.advance(100)  # expired 40 s ago
    assert cache.cached(query) is None  # expired data is not served without a refresh
    stale = await cache.query(query)
    assert stale == Answer(query, Status.NOERROR, fresh.records, 30, stale=True)
    assert len(fake.calls) == 2

    # RFC 8767 §5: for the next 30 s the stale answer is served without asking.
    clock.advance(29)
    answer = cache.cached(query)
    assert answer is not None
    assert answer.stale
    assert answer.ttl == 30
    clock.advance(1)
    assert cache.cached(query) is None
    assert (await cache.query(query)).stale
    assert len(fake.calls) == 3

    # A successful refresh replaces the stale data.
    del fake.fail[query]
    clock.advance(30)
    answer = await cache.query(query)
    assert not answer.stale
    assert answer.ttl == 60
    assert cache.info().stale_served == 3


async def test_serve_stale_ends_with_the_stale_window(clock: FakeClock) -> None:
    cache, fake = make(clock, stale_ttl=50)
    query = Query("www.example.test", A)
    await cache.query(query)
    fake.fail[query] = Status.TIMEOUT
    clock.advance(60 + 40)
    answer = await cache.query(query)
    assert answer.stale
    assert answer.ttl == 10
    clock.advance(10)  # 50 s past expiry: gone
    assert cache.cached(query) is None
    assert (await cache.query(query)).status is Status.TIMEOUT


async def test_serve_stale_is_off_by_default(clock: FakeClock) -> None:
    cache, fake = make(clock)
    query = Query("www.example.test", A)
    await cache.query(query)
    fake.fail[query] = Status.SERVFAIL
    clock.advance(60)
    assert (await cache.query(query)).status is Status.SERVFAIL


async def test_stale_negative_answers_are_served_too(clock: FakeClock) -> None:
    cache, fake = make(clock, stale_ttl=60)
    query = Query("gone.example.test", A)
    await cache.query(query)
    fake.fail[query] = Status.SERVFAIL
    clock.advance(40)
    answer = await cache.query(query)
    assert answer.status is Status.NXDOMAIN
    assert answer.stale


# --- refresh-ahead --------------------------------------------------------------------


async def test_refresh_ahead_refreshes_a_hot_entry_in_the_background(
    clock: FakeClock,
) -> None:
    cache, fake = make(clock, refresh_ahead=0.1)
    query = Query("www.example.test", A)
    await cache.query(query)
    clock.advance(53)  # 7 s left of 60: not yet in the last 10 %
    assert cache.cached(query) is not None
    await asyncio.sleep(0)
    assert len(fake.calls) == 1

    clock.advance(1)  # 6 s left: a hit starts a refresh and is answered at once
    answer = cache.cached(query)
    assert answer is not None
    assert answer.ttl == 6
    assert cache.cached(query) is not None  # one refresh per entry
    await asyncio.sleep(0)
    assert len(fake.calls) == 2
    answer = cache.cached(query)
    assert answer is not None
    assert answer.ttl == 60

    clock.advance(60)  # the new entry expired: a hot domain never saw a miss
    assert cache.cached(query) is None
    assert cache.info().misses == 1


async def test_a_failed_refresh_ahead_keeps_the_entry(clock: FakeClock) -> None:
    cache, fake = make(clock, refresh_ahead=0.5)
    query = Query("www.example.test", A)
    await cache.query(query)
    fake.fail[query] = Status.SERVFAIL
    clock.advance(40)
    assert cache.cached(query) is not None
    await asyncio.sleep(0)
    answer = cache.cached(query)
    assert answer is not None
    assert answer.ttl == 20
    assert not answer.stale
    await asyncio.sleep(0)
    assert len(fake.calls) == 2  # no second try for the same entry


async def test_aclose_cancels_refreshes(clock: FakeClock) -> None:
    fake = GatedBackend(ZONE)
    cache = CachingBackend(fake, LocateOptions(refresh_ahead=0.5), clock=clock)
    query = Query("www.example.test", A)
    first = asyncio.ensure_future(cache.query(query))
    assert await fake.release() == 1
    await first  # later queries stay held: the refresh never ends
    clock.advance(40)
    assert cache.cached(query) is not None
    await asyncio.sleep(0)
    assert fake.waiting == [query]  # the refresh is in flight
    await cache.aclose()
    assert fake.cancelled == 1


# --- size and flush -------------------------------------------------------------------


async def test_size_is_bounded_and_least_recently_used_goes_first(clock: FakeClock) -> None:
    zone = "".join(f"h{i}.many.test. 300 IN A 127.0.1.{i % 250 + 1}\n" for i in range(1000))
    cache, fake = make(clock, zone, cache_size=100)
    keep = Query("h0.many.test", A)
    for i in range(1000):
        await ask(cache, f"h{i}.many.test")
        assert cache.cached(keep) is not None  # used all the time: never evicted
    info = cache.info()
    assert info.size == 100
    assert info.maxsize == 100
    assert cache.cached(Query("h1.many.test", A)) is None
    assert cache.cached(Query("h999.many.test", A)) is not None
    assert len(fake.calls) == 1000


async def test_expired_entries_are_gone_on_read_and_swept_unread(clock: FakeClock) -> None:
    zone = "".join(
        f"h{i}.many.test. {60 if i < 2 else 300} IN A 127.0.1.{i + 1}\n" for i in range(8)
    )
    cache, _fake = make(clock, zone, cache_size=8, stale_ttl=30)
    for i in range(2):
        await ask(cache, f"h{i}.many.test")  # 60 s + 30 s of stale window
    clock.advance(90)
    assert cache.cached(Query("h0.many.test", A)) is None  # read: dropped at once
    assert cache.info().size == 1
    for i in range(2, 8):
        await ask(cache, f"h{i}.many.test")
    # The 8th store (cache_size) swept h1, which nobody read; nothing was evicted.
    assert cache.info().size == 6
    assert all(cache.cached(Query(f"h{i}.many.test", A)) for i in range(2, 8))


async def test_flush_one_name_or_everything(clock: FakeClock) -> None:
    cache, fake = make(clock)
    for name, rtype in [
        ("www.example.test", A),
        ("www.example.test", AAAA),
        ("gone.example.test", A),
        ("short.example.test", A),
    ]:
        await ask(cache, name, rtype)
    assert cache.info().size == 4

    cache.flush("WWW.example.test.")  # any spelling of the name
    assert cache.cached(Query("www.example.test", A)) is None
    assert cache.cached(Query("www.example.test", AAAA)) is None
    assert cache.cached(Query("short.example.test", A)) is not None
    cache.flush("gone.example.test")
    assert cache.cached(Query("gone.example.test", AAAA)) is None

    cache.flush()
    assert cache.info().size == 0
    await ask(cache, "short.example.test")
    assert len(fake.calls) == 5


@pytest.mark.parametrize(
    "options",
    [
        {"cache_size": -1},
        {"negative_ttl": -1},
        {"stale_ttl": -0.5},
        {"refresh_ahead": 1.0},
        {"refresh_ahead": -0.1},
        {"min_ttl": 10, "max_ttl": 5},
    ],
)
def test_cache_options_are_checked(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="LocateOptions"):
        LocateOptions(**options)


def test_the_cache_is_a_backend_with_cached_lookups() -> None:
    cache = CachingBackend(FakeBackend(ZONE))
    assert isinstance(cache, DnsBackend)
    assert isinstance(cache, CachedLookup)
    locator = Locator(CLASSIC, backend=cache)
    assert locator.backend is cache  # not wrapped twice


def test_a_caching_backend_needs_room() -> None:
    with pytest.raises(ValueError, match="cache_size"):
        CachingBackend(FakeBackend(ZONE), LocateOptions(cache_size=0))


# --- through the Locator --------------------------------------------------------------

DOMAIN_ZONE = """\
example.test. 3600 IN SOA ns.example.test. hostmaster.example.test. 1 7200 900 1209600 300
{d}. 300 IN NAPTR 10 50 "s" "SIP+D2U" "" _sip._udp.{d}.
{d}. 300 IN NAPTR 20 50 "s" "SIP+D2T" "" _sip._tcp.{d}.
_sip._udp.{d}. 120 IN SRV 10 50 5060 sip1.{d}.
_sip._tcp.{d}. 200 IN SRV 10 50 5060 sip1.{d}.
sip1.{d}. 100 IN A 127.0.0.11
sip1.{d}. 40 IN AAAA ::1
"""


def domain_zone(domain: str) -> str:
    return DOMAIN_ZONE.format(d=domain)


async def test_targets_carry_the_remaining_ttl(clock: FakeClock) -> None:
    locator = Locator(CLASSIC, backend=FakeBackend(domain_zone("d.example.test")), clock=clock)
    async with locator:
        targets = await locator.resolve("sip:d.example.test")
        assert [t.ttl for t in targets] == [40, 100, 40, 100]  # AAAA 40, A 100
        clock.advance(39.5)
        targets = await locator.resolve("sip:d.example.test")
        assert [t.ttl for t in targets] == [0, 60, 0, 60]
        clock.advance(0.5)  # the AAAA expired: asked again, the rest from the cache
        targets = await locator.resolve("sip:d.example.test")
        assert [t.ttl for t in targets] == [40, 60, 40, 60]
        assert locator.cache_info().misses == 6


async def test_a_fully_cached_locate_creates_no_task(clock: FakeClock) -> None:
    locator = Locator(CLASSIC, backend=FakeBackend(domain_zone("d.example.test")), clock=clock)
    loop = asyncio.get_running_loop()
    created: list[Coroutine[Any, Any, Any]] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        created.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    async with locator:
        first = await locator.resolve("sip:d.example.test")
        loop.set_task_factory(factory)
        try:
            again = await locator.resolve("sip:d.example.test")
        finally:
            loop.set_task_factory(None)
    assert again == first
    assert not created
    assert locator.cache_info().hits == 5


async def test_stale_data_marks_the_targets(clock: FakeClock) -> None:
    fake = FakeBackend(domain_zone("d.example.test"))
    options = LocateOptions(stale_ttl=3600, early_srv=False)
    async with Locator(options, backend=fake, clock=clock) as locator:
        await locator.resolve("sip:d.example.test")
        naptr = Query("d.example.test", RType.NAPTR)
        fake.fail[naptr] = Status.SERVFAIL
        clock.advance(110)  # NAPTR (300 s) is fresh, AAAA and A are not
        fake.fail[Query("sip1.d.example.test", AAAA)] = Status.TIMEOUT
        targets = await locator.resolve("sip:d.example.test")
        assert [(t.address.version, t.stale, t.ttl) for t in targets] == [
            (6, True, 10),  # SRV udp (120 s) has 10 s left, the stale AAAA gets 30
            (4, False, 10),
            (6, True, 30),
            (4, False, 90),
        ]
        clock.advance(200)  # NAPTR expired: every target now comes from stale NAPTR
        targets = await locator.resolve("sip:d.example.test")
        assert all(t.stale for t in targets)


async def test_no_srv_answers_bound_and_mark_the_address_fallback(clock: FakeClock) -> None:
    fake = FakeBackend("a.example.test. 300 IN A 127.0.0.7\n")
    naptr = Query("a.example.test", RType.NAPTR)
    srv = Query("_sip._udp.a.example.test", RType.SRV)
    options = LocateOptions(stale_ttl=600, transports=["udp"], early_srv=False)
    async with Locator(options, backend=fake, clock=clock) as locator:
        fake.fail[naptr] = Status.SERVFAIL  # not cached: NAPTR gives no TTL
        (first,) = await locator.resolve("sip:a.example.test")
        assert first.ttl == 30  # the negative SRV answer bounds the A fallback
        assert not first.stale

        del fake.fail[naptr]
        clock.advance(10)  # NAPTR NODATA fetched now (30 s), SRV has 20 s left
        (second,) = await locator.resolve("sip:a.example.test")
        assert second.ttl == 20

        clock.advance(30)  # both negative answers expired, the A record did not
        fake.fail[srv] = Status.SERVFAIL
        (third,) = await locator.resolve("sip:a.example.test")
        assert third.endpoint == first.endpoint
        assert third.stale  # the SRV NODATA behind the fallback was served stale


async def test_cache_off(clock: FakeClock) -> None:
    fake = FakeBackend(domain_zone("d.example.test"))
    async with Locator(LocateOptions(cache_size=0, early_srv=False), backend=fake) as locator:
        assert locator.backend is fake
        await locator.resolve("sip:d.example.test")
        await locator.resolve("sip:d.example.test")
        assert locator.cache_info() == CacheInfo()
        locator.flush_cache()
    assert len(fake.calls) == 10


async def test_locator_flush_cache(clock: FakeClock) -> None:
    fake = FakeBackend(domain_zone("d.example.test"))
    async with Locator(CLASSIC, backend=fake, clock=clock) as locator:
        await locator.resolve("sip:d.example.test")
        locator.flush_cache("sip1.d.example.test")
        await locator.resolve("sip:d.example.test")
        assert len(fake.calls) == 7
        locator.flush_cache()
        assert locator.cache_info().size == 0


# --- against a real DNS server --------------------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[ZoneServer]:
    async with ZoneServer(domain_zone("one.example.test")) as server:
        yield server


async def test_a_thousand_concurrent_locates_send_one_query_each(server: ZoneServer) -> None:
    options = LocateOptions(nameservers=(server.address,), early_srv=False)
    async with Locator(options) as locator:
        results = await asyncio.gather(
            *(locator.resolve("sip:one.example.test") for _ in range(1000))
        )
        info = locator.cache_info()
    assert all(r == results[0] for r in results)
    assert len(results[0]) == 4
    sent = Counter((q.name, q.qtype) for q in server.log)
    assert sent == {
        ("one.example.test", "NAPTR"): 1,
        ("_sip._udp.one.example.test", "SRV"): 1,
        ("_sip._tcp.one.example.test", "SRV"): 1,
        ("sip1.one.example.test", "A"): 1,
        ("sip1.one.example.test", "AAAA"): 1,
    }
    assert info.misses == 5
    assert info.hits + info.coalesced == 1000 * 5 - 5  # 5 lookups per locate


async def test_cancelled_locates_do_not_disturb_the_others(server: ZoneServer) -> None:
    server.delay = 0.05
    options = LocateOptions(nameservers=(server.address,), early_srv=False)
    async with Locator(options) as locator:
        tasks = [asyncio.ensure_future(locator.resolve("sip:one.example.test")) for _ in range(10)]
        await asyncio.sleep(0.01)
        tasks[0].cancel()
        tasks[5].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    assert isinstance(results[5], asyncio.CancelledError)
    good = [r for i, r in enumerate(results) if i not in (0, 5)]
    assert all(isinstance(r, list) and len(r) == 4 for r in good)
    assert len(server.log) == 5


async def test_locator_aclose_ends_a_shared_query_nobody_waits_for(server: ZoneServer) -> None:
    server.inject(drop=True)  # the query stays in flight until c-ares gives up
    options = LocateOptions(nameservers=(server.address,), timeout=5.0, tries=1, early_srv=False)
    locator = Locator(options)
    task = asyncio.ensure_future(locator.resolve("sip:one.example.test"))
    for _ in range(20):
        await asyncio.sleep(0.01)
        if server.log:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert locator.cache_info().misses == 1  # the NAPTR query, still in flight
    cache = locator.backend
    assert isinstance(cache, CachingBackend)
    shared = list(cache._inflight.values())
    await locator.aclose()  # cancels it; the autouse fixture checks that no task is left
    assert len(shared) == 1
    assert shared[0].cancelled()


async def test_serve_stale_from_a_failing_server(clock: FakeClock) -> None:
    # TTL 2: c-ares keeps the answers 2 s of real time, our cache as long as the
    # FakeClock says. c-ares expires whole seconds, so 2 s gives a safe 1 s margin.
    zone = """\
stale.example.test. 2 IN NAPTR 10 50 "s" "SIP+D2U" "" _sip._udp.stale.example.test.
_sip._udp.stale.example.test. 2 IN SRV 10 50 5060 sip1.stale.example.test.
sip1.stale.example.test. 2 IN A 127.0.0.11
sip1.stale.example.test. 2 IN AAAA ::1
"""
    async with ZoneServer(zone) as server:
        options = LocateOptions(
            nameservers=(server.address,), stale_ttl=600, timeout=0.2, tries=1, early_srv=False
        )
        async with Locator(options, clock=clock) as locator:
            fresh = await locator.resolve("sip:stale.example.test")
            assert not any(t.stale for t in fresh)
            sent = len(server.log)
            server.inject(rcode="SERVFAIL")

            clock.advance(300)  # every entry expired in our cache...
            again = await locator.resolve("sip:stale.example.test")
            # ...but c-ares still had them: no query reached the (failing) server.
            assert len(server.log) == sent
            assert not any(t.stale for t in again)

            clock.advance(300)
            await asyncio.sleep(2.05)  # now c-ares' copies have expired too
            stale = await locator.resolve("sip:stale.example.test")
            assert len(server.log) > sent
            assert [t.endpoint for t in stale] == [t.endpoint for t in fresh]
            assert all(t.stale and t.ttl == 30 for t in stale)
            assert locator.cache_info().stale_served > 0

            clock.advance(600)  # past the stale window: the failure shows
            with pytest.raises(NoTargetsError):
                await locator.resolve("sip:stale.example.test")


# --- backends that complete a future themselves (FutureLookup) ------------------------


class Submitting(FakeBackend):
    """A FutureLookup: answers complete a future from a loop callback, as c-ares' do."""

    def __init__(self, zone: str, *, hold: bool = False) -> None:
        super().__init__(zone)
        self.hold = hold
        self.futures: list[asyncio.Future[Answer]] = []

    def submit(
        self, query: Query, settle: Callable[[Answer], Answer] | None = None
    ) -> asyncio.Future[Answer]:
        self.calls.append(query)
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.futures.append(future)

        def answer() -> None:
            if not future.done():
                found = self.zone.answer(query)
                future.set_result(found if settle is None else settle(found))

        if not self.hold:
            asyncio.get_running_loop().call_soon(answer)
        return future


@pytest.mark.parametrize("cache_size", [0, 100], ids=["no-cache", "cache"])
async def test_a_future_lookup_backend_costs_no_task_per_query(
    clock: FakeClock, cache_size: int
) -> None:
    loop = asyncio.get_running_loop()
    created: list[object] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        created.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    backend = Submitting(domain_zone("d.example.test"))
    options = LocateOptions(cache_size=cache_size, early_srv=False)
    async with Locator(options, backend=backend, clock=clock) as locator:
        reference = Locator(options, backend=FakeBackend(domain_zone("d.example.test")))
        async with reference:
            want = await reference.resolve("sip:d.example.test")
        loop.set_task_factory(factory)
        try:
            targets = await locator.resolve("sip:d.example.test")
        finally:
            loop.set_task_factory(None)
    assert targets == want
    assert len(backend.calls) == 5
    assert not created


async def test_aclose_cancels_submitted_lookups(clock: FakeClock) -> None:
    backend = Submitting(ZONE, hold=True)  # never answers
    cache = CachingBackend(backend, clock=clock)
    waiter = asyncio.ensure_future(ask(cache, "www.example.test"))
    await asyncio.sleep(0)
    assert len(backend.futures) == 1
    await cache.aclose()
    assert backend.futures[0].cancelled()
    with pytest.raises(asyncio.CancelledError):
        await waiter


@pytest.mark.parametrize("backend_kind", ["query", "submit"])
async def test_a_closed_locator_and_its_cache_go_without_the_garbage_collector(
    backend_kind: str,
) -> None:
    zone = domain_zone("d.example.test")
    backend = Submitting(zone) if backend_kind == "submit" else FakeBackend(zone)
    locator = Locator(LocateOptions(early_srv=False), backend=backend)
    gc.disable()
    try:
        async with locator:
            for _ in range(3):  # cold, compiled on second use, compiled
                assert await locator.resolve("sip:d.example.test")
        assert locator.cache_info().compiled_hits == 2
        cache = weakref.ref(locator._cache)
        owner = weakref.ref(locator)
        del locator
        assert owner() is None
        assert cache() is None  # no cycle keeps its answers alive until a collection
    finally:
        gc.enable()
