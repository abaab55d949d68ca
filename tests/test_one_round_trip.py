"""Issue 13: a cold locate in one round trip (early SRV queries, additional-section data).

Round counts are exact: ``drive`` answers each round of ``needs()`` at once, as a
stream with enough concurrency would, so "round 1" means one round trip.
"""

from __future__ import annotations

import os
import random
import shutil
from typing import Any

import pytest

from asip_locate import (
    AiodnsBackend,
    Answer,
    LocateOptions,
    Locator,
    NoTargetsError,
    Query,
    RType,
    Status,
)
from asip_locate._plan import Resolution, plan_request
from asip_locate._uri import parse_uri
from asip_locate.testing import FakeBackend, FakeClock, Zone, ZoneServer, drive
from tests.conftest import IN_CI
from tests.vectors import URI_CASES, options, zone_text

SOA = "example.test. 3600 IN SOA ns.example.test. h.example.test. 1 7200 900 1209600 300"
HOSTS = "\n".join(
    f"{h}.example.test. IN A 127.0.0.{i}\n{h}.example.test. IN AAAA fd00::{i}"
    for i, h in enumerate(["s1", "t1", "u1"], 11)
)
SRV = """\
_sips._tcp.example.test. IN SRV 10 0 5061 s1.example.test.
_sip._tcp.example.test. IN SRV 10 0 5060 t1.example.test.
_sip._udp.example.test. IN SRV 10 0 5060 u1.example.test.
"""
NAPTR = """\
example.test. IN NAPTR 10 50 "s" "SIPS+D2T" "" _sips._tcp.example.test.
example.test. IN NAPTR 20 50 "s" "SIP+D2T" "" _sip._tcp.example.test.
example.test. IN NAPTR 30 50 "s" "SIP+D2U" "" _sip._udp.example.test.
"""
ELSEWHERE = """\
example.test. IN NAPTR 10 50 "s" "SIP+D2T" "" tcp.proxies.example.test.
tcp.proxies.example.test. IN SRV 10 0 5060 t1.example.test.
"""
CONVENTIONAL = f"$TTL 300\n{SOA}\n{NAPTR}{SRV}{HOSTS}\n"
SRV_ONLY = f"$TTL 300\n{SOA}\n{SRV}{HOSTS}\n"
UNCONVENTIONAL = f"$TTL 300\n{SOA}\n{ELSEWHERE}{HOSTS}\n"


def plan(uri: str = "sip:example.test", **opts: Any) -> Resolution:
    return plan_request(
        parse_uri(uri), LocateOptions(**opts), lambda name: random.Random(f"1:{name}")
    )


@pytest.mark.parametrize(
    ("text", "additional", "early_srv", "rounds", "asked"),
    [
        # NAPTR naming the conventional SRV names: all in round 1 with additional data.
        (CONVENTIONAL, True, True, 1, 4),
        (CONVENTIONAL, False, True, 2, 10),
        (CONVENTIONAL, True, False, 2, 4),
        (CONVENTIONAL, False, False, 3, 10),
        # No NAPTR: the SRV names were asked with it.
        (SRV_ONLY, True, True, 1, 4),
        (SRV_ONLY, False, True, 2, 10),
        (SRV_ONLY, True, False, 2, 4),
        # NAPTR pointing elsewhere: its SRV name is asked in round 2.
        (UNCONVENTIONAL, True, True, 2, 5),
        (UNCONVENTIONAL, False, True, 3, 7),
        (UNCONVENTIONAL, True, False, 2, 2),
    ],
)
def test_round_counts(
    text: str, additional: bool, early_srv: bool, rounds: int, asked: int
) -> None:
    zone = Zone(text, additional=additional)
    run = drive(plan(early_srv=early_srv), zone)
    assert run.round_count == rounds
    assert set(run.rounds) == {rounds}  # first target and whole list in the same round
    assert len(run.asked) == asked
    assert run.targets


def test_the_order_is_that_of_rfc_3263_whatever_the_timing() -> None:
    reference = drive(plan(early_srv=False, use_additional=False), Zone(CONVENTIONAL))
    fast = drive(plan(), Zone(CONVENTIONAL, additional=True))
    assert [t.endpoint for t in fast.targets] == [t.endpoint for t in reference.targets]
    assert [t.path for t in fast.targets] == [t.path for t in reference.targets]


@pytest.mark.parametrize("case", URI_CASES, ids=[c["id"] for c in URI_CASES])
def test_vectors_give_the_same_targets_with_and_without_the_shortcuts(
    case: dict[str, Any],
) -> None:
    def run(additional: bool, **extra: Any) -> list[object]:
        resolution = plan_request(
            parse_uri(case["input"]["uri"]),
            options(case, **extra),
            lambda name: random.Random(f"7:{name}"),
            as_sips=case["client"].get("resolve_as_sips", False),
        )
        return [
            t.endpoint
            for t in drive(resolution, Zone(zone_text(case), additional=additional)).targets
        ]

    classic = run(False, early_srv=False, use_additional=False)
    assert run(True) == classic
    assert run(False) == classic
    assert run(True, early_srv=False) == classic


def test_additional_data_is_used_only_for_usable_targets_and_families() -> None:
    # The SRV answer names t1 (port 0: unusable) and t2; additional data for t1, and
    # only A for t2: t2's AAAA is still asked, t1's addresses are never used.
    text = f"""$TTL 300
{SOA}
_sip._tcp.example.test. IN SRV 10 0 0 t1.example.test.
_sip._tcp.example.test. IN SRV 20 0 5060 t2.example.test.
t1.example.test. IN A 127.0.0.1
t2.example.test. IN A 127.0.0.2
t2.example.test. IN AAAA fd00::2
"""
    zone = Zone(text)
    srv = Query("_sip._tcp.example.test", RType.SRV)
    t1a, t2a = Query("t1.example.test", RType.A), Query("t2.example.test", RType.A)
    extra = (zone.answer(t1a), zone.answer(t2a))

    def answer(query: Query) -> Answer:
        found = zone.answer(query)
        return (
            Answer(srv, found.status, found.records, found.ttl, additional=extra)
            if query == srv
            else found
        )

    run = drive(plan("sip:example.test;transport=tcp"), answer)
    assert run.asked == (srv, Query("t2.example.test", RType.AAAA))
    assert [str(t.endpoint) for t in run.targets] == ["tcp [fd00::2]:5060", "tcp 127.0.0.2:5060"]
    assert run.targets[1].path == (srv, t2a)


def test_use_additional_off_asks_every_address() -> None:
    run = drive(plan(use_additional=False), Zone(CONVENTIONAL, additional=True))
    assert len(run.asked) == 10
    assert run.round_count == 2


def test_an_early_query_that_failed_is_asked_again_when_a_branch_needs_it() -> None:
    udp = Query("_sip._udp.example.test", RType.SRV)
    resolution = plan()
    first = resolution.needs()
    assert first[0] == Query("example.test", RType.NAPTR)
    assert udp in first
    zone = Zone(CONVENTIONAL, additional=True)
    resolution.feed_all(
        Answer(q, Status.ERROR, detail="Misformatted DNS reply") if q == udp else zone.answer(q)
        for q in first
    )
    assert udp in resolution.needs()  # the NAPTR names it: asked again, not given up
    assert [a.status for a in resolution.attempts if a.query == udp] == [Status.ERROR]


def test_early_answers_are_used_only_where_rfc_3263_asks() -> None:
    # The early _sip._udp answer exists, but the NAPTR names only a TCP SRV elsewhere:
    # no UDP target may come out of it.
    text = UNCONVENTIONAL + SRV
    run = drive(plan(), Zone(text, additional=True))
    assert Query("_sip._udp.example.test", RType.SRV) in run.asked
    assert {t.transport.value for t in run.targets} == {"tcp"}
    assert {t.host for t in run.targets} == {"t1.example.test"}


def test_early_queries_respect_the_query_budget() -> None:
    resolution = plan(max_queries=2)
    assert len(resolution.needs()) == 2  # NAPTR and one early SRV, no more


def test_a_sips_uri_asks_only_sips_srv_names_early() -> None:
    needs = plan("sips:example.test").needs()
    assert needs == [
        Query("example.test", RType.NAPTR),
        Query("_sips._tcp.example.test", RType.SRV),
    ]


def test_no_early_queries_when_naptr_is_skipped_or_the_transport_is_forced() -> None:
    assert len(plan("sip:example.test;transport=tcp").needs()) == 1
    assert len(plan(use_naptr=False).needs()) == 3
    assert len(plan("sip:example.test:5080").needs()) == 2


# --- the cache: additional data at a lower rank -----------------------------------


def locator(text: str, clock: FakeClock, **opts: Any) -> tuple[Locator, FakeBackend]:
    fake = FakeBackend(Zone(text, additional=True))
    return Locator(LocateOptions(seed=1, **opts), backend=fake, clock=clock), fake


async def test_in_domain_additional_data_is_cached_and_compiled() -> None:
    clock = FakeClock()
    loc, fake = locator(CONVENTIONAL, clock)
    async with loc:
        cold = await loc.resolve("sip:example.test")
        assert len(fake.calls) == 4  # NAPTR and three SRV: every address came along
        assert {t.ttl for t in cold} == {300}
        for _ in range(3):  # cached, then compiled
            assert await loc.resolve("sip:example.test") == cold
        assert len(fake.calls) == 4
        assert loc.cache_info().compiled_hits >= 1
        clock.advance(301)
        await loc.resolve("sip:example.test")
        # expired: asked again, and again one round trip's worth of questions
        assert len(fake.calls) == 8


async def test_out_of_domain_additional_data_is_used_once_not_cached() -> None:
    text = f"""$TTL 300
{SOA}
other.test. 3600 IN SOA ns.other.test. h.other.test. 1 7200 900 1209600 300
_sip._tcp.example.test. IN SRV 10 0 5060 sip.other.test.
sip.other.test. IN A 127.0.0.9
"""
    clock = FakeClock()
    loc, fake = locator(text, clock, transports=["tcp"], ip_strategy="ipv4_only", use_naptr=False)
    async with loc:
        first = await loc.resolve("sip:example.test")
        assert [str(t.endpoint) for t in first] == ["tcp 127.0.0.9:5060"]
        assert Query("sip.other.test", RType.A) not in fake.calls  # came along
        await loc.resolve("sip:example.test")
        # not cached (outside example.test): asked in its own right the second time
        assert fake.calls.count(Query("sip.other.test", RType.A)) == 1


async def test_additional_data_never_replaces_answer_data() -> None:
    clock = FakeClock()
    loc, fake = locator(CONVENTIONAL, clock, use_naptr=False)
    t1 = Query("t1.example.test", RType.A)
    async with loc:
        cache = loc.backend
        answered = await cache.query(t1)  # answer-section data first
        assert answered.ttl == 300
        before = cache._find(t1, clock())  # type: ignore[attr-defined]
        clock.advance(100)
        await loc.resolve("sip:example.test")  # its SRV reply carries t1's A again
        entry = cache._find(t1, clock())  # type: ignore[attr-defined]
        assert entry is before  # the answer-section entry, unchanged
        assert not entry.additional
        assert entry.fresh_until == clock() - 100 + 300
        assert fake.calls.count(t1) == 1


async def test_additional_data_is_never_served_stale() -> None:
    # Answer-section data is served stale when its refresh fails (RFC 8767); data
    # that came as additional data is not: it ranks lower (RFC 2181 §5.4.1).
    clock = FakeClock()
    opts: dict[str, Any] = {"use_naptr": False, "transports": ["tcp"], "stale_ttl": 3600}
    loc, fake = locator(SRV_ONLY, clock, ip_strategy="ipv4_only", **opts)
    async with loc:
        await loc.resolve("sip:example.test")
        clock.advance(301)
        srv, t1 = Query("_sip._tcp.example.test", RType.SRV), Query("t1.example.test", RType.A)
        fake.fail = {srv: Status.SERVFAIL, t1: Status.SERVFAIL}
        with pytest.raises(NoTargetsError) as caught:
            await loc.resolve("sip:example.test")
        stale = {a.query: a for a in caught.value.attempts}
        assert stale[srv].stale  # the SRV answer was served stale
        assert stale[t1].status is Status.SERVFAIL  # the address was not
        assert loc.cache_info().stale_served == 1


# --- real sockets ---------------------------------------------------------------


async def test_one_round_trip_through_a_real_server() -> None:
    async with ZoneServer(CONVENTIONAL, additional=True) as server:
        opts = LocateOptions(nameservers=(server.address,), seed=1)
        async with Locator(opts) as loc:
            targets = await loc.resolve("sip:example.test")
        asked = [(q.name, q.qtype) for q in server.log]
    assert len(targets) == 6
    assert sorted(asked) == sorted(
        [
            ("example.test", "NAPTR"),
            ("_sips._tcp.example.test", "SRV"),
            ("_sip._tcp.example.test", "SRV"),
            ("_sip._udp.example.test", "SRV"),
        ]
    )


async def test_use_additional_off_neither_uses_nor_caches_additional_data() -> None:
    clock = FakeClock()
    loc, fake = locator(CONVENTIONAL, clock, use_additional=False)
    async with loc:
        await loc.resolve("sip:example.test")
        assert len(fake.calls) == 10  # NAPTR, 3 SRV and the 6 addresses
        cache = loc.backend
        assert cache._find(Query("t1.example.test", RType.A), clock()).additional is False  # type: ignore[attr-defined]


class Counting:
    """Counts the questions a Locator sends (through any backend)."""

    def __init__(self, inner: AiodnsBackend) -> None:
        self.inner = inner
        self.asked: list[Query] = []

    async def query(self, query: Query) -> Answer:
        self.asked.append(query)
        return await self.inner.query(query)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.servers
@pytest.mark.parametrize("kind", ["nsd", "knot"])
async def test_authoritative_servers_give_one_round_trip(kind: str) -> None:
    # NSD and Knot put in-zone SRV targets' A/AAAA in the additional section: a cold
    # locate of the benchmark domain (3 NAPTR -> 3 SRV -> 6 hosts) asks 4 questions.
    binary = {"nsd": "nsd", "knot": "knotd"}[kind]
    if not shutil.which(binary, path=f"{os.environ.get('PATH', '')}:/usr/sbin"):
        message = f"{binary} is not installed (Debian package {kind})"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from benchmarks import _servers, _zone

    start = _servers.start_nsd if kind == "nsd" else _servers.start_knot
    server = start(_zone.zone_text(1))
    try:
        counting = Counting(AiodnsBackend([server.address]))
        async with Locator(LocateOptions(seed=1), backend=counting) as loc:
            targets = await loc.resolve(f"sip:{_zone.domain(0)}")
    finally:
        server.stop()
    assert len(targets) == _zone.TARGETS_PER_LOCATE
    assert len(counting.asked) == 4
    assert {q.rtype for q in counting.asked} == {RType.NAPTR, RType.SRV}
