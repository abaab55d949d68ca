"""Failure feedback: demotion, Retry-After, success, stickiness, bounds (fake clock)."""

from __future__ import annotations

import io
import ipaddress
import math
from typing import Any

import pytest

from asip_locate import (
    CachedLookup,
    Endpoint,
    EndpointHealth,
    FailureReason,
    HealthStore,
    IpStrategy,
    LocateOptions,
    Locator,
    Query,
    RType,
    Target,
    Transport,
)
from asip_locate._health import HealthTable
from asip_locate.cli import explain
from asip_locate.testing import FakeBackend, FakeClock, GatedBackend, ZoneServer

ZONE = """\
$TTL 300
example.test. 3600 IN SOA ns1.example.test. hostmaster.example.test. 1 7200 900 1209600 60
_sip._udp.example.test. IN SRV 10 0 5060 a.example.test.
_sip._udp.example.test. IN SRV 20 0 5060 b.example.test.
_sip._udp.example.test. IN SRV 30 0 5060 c.example.test.
a.example.test. IN A 127.0.0.11
b.example.test. IN A 127.0.0.12
c.example.test. IN A 127.0.0.13
pool.test. 3600 IN SOA ns1.pool.test. hostmaster.pool.test. 1 7200 900 1209600 60
_sip._udp.pool.test. IN SRV 10 50 5060 p1.pool.test.
_sip._udp.pool.test. IN SRV 10 50 5060 p2.pool.test.
_sip._udp.pool.test. IN SRV 10 50 5060 p3.pool.test.
_sip._udp.pool.test. IN SRV 20 0 5060 backup.pool.test.
p1.pool.test. IN A 127.0.0.21
p2.pool.test. IN A 127.0.0.22
p3.pool.test. IN A 127.0.0.23
backup.pool.test. IN A 127.0.0.29
multi.pool.test. IN A 127.0.0.31
multi.pool.test. IN A 127.0.0.32
multi.pool.test. IN A 127.0.0.33
multi.pool.test. IN AAAA ::1
"""

URI = "sip:alice@example.test"
A, B, C = "127.0.0.11", "127.0.0.12", "127.0.0.13"


def make(clock: FakeClock, backend: Any = None, **options: Any) -> Locator:
    opts: dict[str, Any] = {"transports": ("udp",), "ip_strategy": "ipv4_only", "seed": 7}
    opts.update(options)
    return Locator(LocateOptions(**opts), backend=backend or FakeBackend(ZONE), clock=clock)


async def addresses(locator: Locator, uri: str = URI) -> list[str]:
    return [str(t.address) for t in await locator.resolve(uri)]


def endpoint(address: str, port: int = 5060) -> Endpoint:
    return Endpoint(Transport.UDP, ipaddress.ip_address(address), port)


# --- demotion and expiry -----------------------------------------------------------


async def test_failure_demotes_until_the_hold_expires(clock: FakeClock) -> None:
    async with make(clock) as locator:
        targets = await locator.resolve(URI)
        assert [str(t.address) for t in targets] == [A, B, C]
        locator.report_failure(targets[0])
        assert await addresses(locator) == [B, C, A]
        assert locator.health() == [
            EndpointHealth(targets[0].endpoint, FailureReason.TIMEOUT, 1030.0, 1, None)
        ]
        clock.advance(29.5)
        assert await addresses(locator) == [B, C, A]
        clock.advance(0.5)  # exactly failure_hold: the demotion is over
        assert await addresses(locator) == [A, B, C]
        assert locator.health() == []


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (FailureReason.TIMEOUT, FailureReason.TIMEOUT),
        ("timeout", FailureReason.TIMEOUT),
        ("transport", FailureReason.TRANSPORT),
        ("TRANSPORT", FailureReason.TRANSPORT),
        ("503", FailureReason.SERVICE_UNAVAILABLE),
        (FailureReason.OTHER, FailureReason.OTHER),
    ],
)
async def test_every_reason_without_retry_after_uses_failure_hold(
    clock: FakeClock, given: Any, expected: FailureReason
) -> None:
    async with make(clock, failure_hold=12.0) as locator:
        locator.report_failure(endpoint(B), reason=given)
        [entry] = locator.health()
        assert (entry.reason, entry.until, entry.retry_after) == (expected, 1012.0, None)
        assert await addresses(locator) == [A, C, B]
        clock.advance(12)
        assert await addresses(locator) == [A, B, C]


async def test_retry_after_holds_for_that_long(clock: FakeClock) -> None:
    async with make(clock, failure_hold=30.0) as locator:
        locator.report_failure(
            endpoint(A), reason=FailureReason.SERVICE_UNAVAILABLE, retry_after=120
        )
        [entry] = locator.health()
        assert entry == EndpointHealth(
            endpoint(A), FailureReason.SERVICE_UNAVAILABLE, 1120.0, 1, 120.0
        )
        clock.advance(30)  # past failure_hold: Retry-After wins
        assert await addresses(locator) == [B, C, A]
        clock.advance(89.9)
        assert await addresses(locator) == [B, C, A]
        clock.advance(0.1)
        assert await addresses(locator) == [A, B, C]


async def test_short_retry_after_is_honoured(clock: FakeClock) -> None:
    async with make(clock, failure_hold=30.0) as locator:
        locator.report_failure(endpoint(A), reason="503", retry_after=5)
        assert await addresses(locator) == [B, C, A]
        clock.advance(5)
        assert await addresses(locator) == [A, B, C]


async def test_a_report_never_shortens_a_hold_in_force(clock: FakeClock) -> None:
    async with make(clock, failure_hold=30.0) as locator:
        locator.report_failure(endpoint(A), reason="503", retry_after=600)
        clock.advance(10)
        locator.report_failure(endpoint(A), reason="timeout")
        [entry] = locator.health()
        assert (entry.reason, entry.until, entry.failures) == (FailureReason.TIMEOUT, 1600.0, 2)
        clock.advance(100)
        locator.report_failure(endpoint(A), reason="503", retry_after=1000)
        assert locator.health()[0].until == 2110.0  # a longer hold extends it
        assert locator.health()[0].failures == 3


async def test_failures_count_restarts_after_expiry(clock: FakeClock) -> None:
    async with make(clock) as locator:
        locator.report_failure(endpoint(A))
        locator.report_failure(endpoint(A))
        assert locator.health()[0].failures == 2
        clock.advance(30)
        locator.report_failure(endpoint(A))
        assert locator.health()[0].failures == 1


async def test_success_clears_the_demotion(clock: FakeClock) -> None:
    async with make(clock) as locator:
        targets = await locator.resolve(URI)
        locator.report_failure(targets[0], reason="503", retry_after=3600)
        assert await addresses(locator) == [B, C, A]
        locator.report_success(targets[0])
        assert locator.health() == []
        assert await addresses(locator) == [A, B, C]


async def test_all_demoted_are_still_returned_in_unchanged_order(clock: FakeClock) -> None:
    async with make(clock) as locator:
        for address in (C, A, B):
            locator.report_failure(endpoint(address), reason="transport")
        assert await addresses(locator) == [A, B, C]
        assert [h.endpoint for h in locator.health()] == [endpoint(C), endpoint(A), endpoint(B)]


async def test_demoted_ones_keep_their_relative_order(clock: FakeClock) -> None:
    async with make(clock) as locator:
        locator.report_failure(endpoint(B))
        locator.report_failure(endpoint(A))
        assert await addresses(locator) == [C, A, B]


async def test_demotion_applies_to_response_targets(clock: FakeClock) -> None:
    async with make(clock, sticky_for=60.0) as locator:
        via = "SIP/2.0/UDP example.test"
        first = await locator.resolve_response(via)
        assert [str(t.address) for t in first] == [A, B, C]
        locator.report_failure(first[0])
        locator.report_success(first[2])  # no stickiness for responses
        assert [str(t.address) for t in await locator.resolve_response(via)] == [B, C, A]


# --- stable order within one stream ------------------------------------------------


async def test_failure_reported_mid_stream_does_not_reorder_it(clock: FakeClock) -> None:
    backend = GatedBackend(ZONE, gated="b.example.test")
    async with make(clock, backend=backend) as locator:
        async with locator.locate(URI) as stream:
            first = await anext(stream)
            locator.report_failure(first)
            locator.report_failure(endpoint(B))  # not even resolved yet
            backend.open()
            rest = [t async for t in stream]
        assert [str(t.address) for t in [first, *rest]] == [A, B, C]
        assert await addresses(locator) == [C, A, B]  # the next stream sees both


async def test_success_reported_mid_stream_does_not_promote(clock: FakeClock) -> None:
    backend = GatedBackend(ZONE, gated="c.example.test")
    async with make(clock, backend=backend) as locator:
        locator.report_failure(endpoint(A))
        locator.report_failure(endpoint(C))
        async with locator.locate(URI) as stream:
            first = await anext(stream)
            locator.report_success(endpoint(C))
            backend.open()
            rest = [t async for t in stream]
        assert [str(t.address) for t in [first, *rest]] == [B, A, C]
        assert await addresses(locator) == [B, C, A]


async def test_expiry_mid_stream_does_not_reorder_it(clock: FakeClock) -> None:
    backend = GatedBackend(ZONE, gated="b.example.test")
    async with make(clock, backend=backend) as locator:
        locator.report_failure(endpoint(B))
        async with locator.locate(URI) as stream:
            first = await anext(stream)
            clock.advance(3600)
            backend.open()
            rest = [t async for t in stream]
        assert [str(t.address) for t in [first, *rest]] == [A, C, B]
        assert await addresses(locator) == [A, B, C]


# --- bounds, switches, validation, inspection ---------------------------------------


async def test_table_is_bounded_least_recently_updated_dropped(clock: FakeClock) -> None:
    async with make(clock, health_size=2) as locator:
        locator.report_failure(endpoint(A))
        locator.report_failure(endpoint(B))
        locator.report_failure(endpoint(A))  # A is now the most recently updated
        locator.report_failure(endpoint(C))  # so B goes
        assert [h.endpoint for h in locator.health()] == [endpoint(A), endpoint(C)]
        assert await addresses(locator) == [B, A, C]


async def test_many_extensions_and_evictions_keep_expiry_exact(clock: FakeClock) -> None:
    async with make(clock, health_size=2) as locator:
        for step in range(200):  # every report extends A's hold: stale expiry records pile up
            locator.report_failure(endpoint(A), reason="503", retry_after=100 + step)
            clock.advance(1)
        assert locator.health()[0].until == 1000 + 199 + 100 + 199
        for address in (B, C, "127.0.0.14"):  # evictions leave stale records too
            locator.report_failure(endpoint(address))
        assert [h.endpoint for h in locator.health()] == [endpoint(C), endpoint("127.0.0.14")]
        locator.report_failure(endpoint(A), reason="503", retry_after=50)
        clock.advance(30)
        assert [h.endpoint for h in locator.health()] == [endpoint(A)]
        assert await addresses(locator) == [B, C, A]
        clock.advance(20)
        assert locator.health() == []
        assert await addresses(locator) == [A, B, C]


async def test_health_size_zero_disables_feedback(clock: FakeClock) -> None:
    async with make(clock, health_size=0) as locator:
        locator.report_failure(endpoint(A), reason="503", retry_after=60)
        assert locator.health() == []
        assert await addresses(locator) == [A, B, C]


async def test_failure_hold_zero_turns_greylisting_off(clock: FakeClock) -> None:
    async with make(clock, failure_hold=0.0) as locator:
        locator.report_failure(endpoint(A))
        assert await addresses(locator) == [A, B, C]
        locator.report_failure(endpoint(A), reason="503", retry_after=60)
        assert await addresses(locator) == [B, C, A]


async def test_reports_validate_their_input(clock: FakeClock) -> None:
    async with make(clock) as locator:
        with pytest.raises(ValueError, match="'bogus'"):
            locator.report_failure(endpoint(A), reason="bogus")
        for bad in (-1.0, math.nan, math.inf):
            with pytest.raises(ValueError, match="retry_after"):
                locator.report_failure(endpoint(A), reason="503", retry_after=bad)
        with pytest.raises(TypeError, match="Target or Endpoint"):
            locator.report_failure("127.0.0.11")  # type: ignore[arg-type]
        assert locator.health() == []


@pytest.mark.parametrize(
    ("name", "value"),
    [("failure_hold", -1.0), ("failure_hold", math.nan), ("sticky_for", math.inf)],
)
def test_options_reject_bad_durations(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=name):
        LocateOptions(**{name: value})  # type: ignore[arg-type]


def test_options_reject_negative_health_size() -> None:
    with pytest.raises(ValueError, match="health_size"):
        LocateOptions(health_size=-1)


async def test_clear_health_by_target_endpoint_or_all(clock: FakeClock) -> None:
    async with make(clock) as locator:
        targets = await locator.resolve(URI)
        for target in targets:
            locator.report_failure(target)
        locator.clear_health(targets[0])
        locator.clear_health(targets[1].endpoint)
        assert [h.endpoint for h in locator.health()] == [targets[2].endpoint]
        assert await addresses(locator) == [A, B, C]
        locator.clear_health()
        assert locator.health() == []


# --- the HealthStore seam ------------------------------------------------------------


class RecordingStore(HealthTable):
    """A HealthStore that records the calls a Locator makes (and closes once)."""

    def __init__(self) -> None:
        super().__init__(size=1, hold=1.0, clock=lambda: 0.0)
        self.calls: list[str] = []

    def bind(self, *, size: int, hold: float, clock: Any) -> None:
        self.calls.append(f"bind {size} {hold:g}")
        super().bind(size=size, hold=hold, clock=clock)

    def report_failure(
        self, endpoint: Endpoint, reason: FailureReason, retry_after: float | None = None
    ) -> EndpointHealth | None:
        self.calls.append(f"failure {endpoint.address} {reason}")
        return super().report_failure(endpoint, reason, retry_after)

    def report_success(self, endpoint: Endpoint) -> None:
        self.calls.append(f"success {endpoint.address}")
        super().report_success(endpoint)

    def clear(self, endpoint: Endpoint | None = None) -> None:
        self.calls.append(f"clear {endpoint and endpoint.address}")
        super().clear(endpoint)

    async def aclose(self) -> None:
        self.calls.append("aclose")


async def test_a_health_store_gets_the_options_clock_and_every_report(clock: FakeClock) -> None:
    store = RecordingStore()
    options = LocateOptions(transports=("udp",), ip_strategy=IpStrategy.IPV4_ONLY, seed=7,
                            failure_hold=12.0, health_size=8)  # fmt: skip
    locator = Locator(options, backend=FakeBackend(ZONE), clock=clock, health_store=store)
    async with locator:
        assert isinstance(store, HealthStore)
        locator.report_failure(endpoint(B))
        assert await addresses(locator) == [A, C, B]
        assert locator.health()[0].until == 1012.0  # the Locator's clock and failure_hold
        locator.report_success(endpoint(B))
        locator.clear_health(endpoint(C))
        locator.clear_health()
    await locator.aclose()
    assert store.calls == [
        "bind 8 12",
        "failure 127.0.0.12 timeout",
        "success 127.0.0.12",
        "clear 127.0.0.13",
        "clear None",
        "aclose",
    ]


def test_health_table_satisfies_the_protocol() -> None:
    table: HealthStore = HealthTable(size=1, hold=1.0, clock=lambda: 0.0)
    with pytest.raises(ValueError, match="health_size"):
        table.bind(size=-1, hold=1.0, clock=lambda: 0.0)
    with pytest.raises(ValueError, match="failure_hold"):
        table.bind(size=1, hold=math.nan, clock=lambda: 0.0)


async def test_apply_sets_a_mirrored_state_as_given(clock: FakeClock) -> None:
    table = HealthTable(size=2, hold=30.0, clock=clock)
    await table.start()
    a, b, c = endpoint(A), endpoint(B), endpoint(C)
    table.report_failure(a, FailureReason.TIMEOUT)
    frozen = table.snapshot()
    table.apply(EndpointHealth(a, FailureReason.OTHER, 1005.0, 3, None))  # may shorten
    assert table.entries() == [EndpointHealth(a, FailureReason.OTHER, 1005.0, 3, None)]
    assert table.snapshot() is frozen  # same members: the frozen set is kept
    table.apply(EndpointHealth(b, FailureReason.TIMEOUT, 999.0, 1, None))  # already over
    table.apply(EndpointHealth(b, FailureReason.TIMEOUT, 1010.0, 1, None))
    table.apply(EndpointHealth(c, FailureReason.TIMEOUT, 1020.0, 1, None))  # bound: a goes
    assert table.snapshot() == {b, c}
    table.apply(EndpointHealth(b, FailureReason.TIMEOUT, 1000.0, 1, None))  # ends it
    assert table.snapshot() == {c}
    clock.advance(20)
    assert table.snapshot() == frozenset()
    table.apply(EndpointHealth(a, FailureReason.TIMEOUT, 1100.0, 1, None))
    table.discard(b)  # unknown: harmless
    table.discard(a)
    assert table.entries() == []
    table.apply(EndpointHealth(a, FailureReason.TIMEOUT, 1100.0, 1, None))
    table.discard()
    assert table.snapshot() == frozenset()
    await table.aclose()
    off = HealthTable(size=0, hold=1.0, clock=clock)  # health_size 0: nothing kept
    off.apply(EndpointHealth(a, FailureReason.TIMEOUT, 2000.0, 1, None))
    assert off.entries() == []


def test_endpoint_health_str() -> None:
    entry = EndpointHealth(endpoint(A), FailureReason.SERVICE_UNAVAILABLE, 1.0, 2, 30.0)
    assert str(entry) == "udp 127.0.0.11:5060: 503, 2 failure(s), retry-after 30s"


# --- stickiness ---------------------------------------------------------------------


async def test_sticky_target_goes_first_among_equals(clock: FakeClock) -> None:
    async with make(clock, sticky_for=60.0) as locator:
        baseline = await locator.resolve("sip:pool.test")
        names = [t.host for t in baseline]
        assert names[3] == "backup.pool.test"
        locator.report_success(baseline[2])
        expected = [names[2], names[0], names[1], names[3]]
        for uri in ("sip:pool.test", "sip:bob@pool.test", "sip:carol@pool.test;lr"):
            assert [t.host for t in await locator.resolve(uri)] == expected
        # Another location key (a transport parameter) is not affected.
        other = await locator.resolve("sip:pool.test;transport=udp")
        assert [t.host for t in other] == names
        clock.advance(60)
        assert [t.host for t in await locator.resolve("sip:pool.test")] == names


async def test_stickiness_never_crosses_srv_priorities(clock: FakeClock) -> None:
    async with make(clock, sticky_for=60.0) as locator:
        baseline = await locator.resolve("sip:pool.test")
        locator.report_success(baseline[3])  # the priority-20 backup
        assert await locator.resolve("sip:pool.test") == baseline


async def test_stickiness_overrides_weighted_chance(clock: FakeClock) -> None:
    async with make(clock, sticky_for=60.0, seed=None) as locator:
        first = (await locator.resolve("sip:pool.test"))[0]
        locator.report_success(first.endpoint)  # an Endpoint is enough
        for _ in range(10):
            targets = await locator.resolve("sip:pool.test")
            assert targets[0] == first
            assert targets[3].host == "backup.pool.test"


async def test_stickiness_is_off_by_default(clock: FakeClock) -> None:
    async with make(clock) as locator:
        baseline = await locator.resolve("sip:pool.test")
        locator.report_success(baseline[2])
        assert await locator.resolve("sip:pool.test") == baseline


async def test_failure_ends_stickiness(clock: FakeClock) -> None:
    async with make(clock, sticky_for=600.0) as locator:
        baseline = await locator.resolve("sip:pool.test")
        locator.report_success(baseline[1])
        assert (await locator.resolve("sip:pool.test"))[0] == baseline[1]
        locator.report_failure(baseline[1])
        assert (await locator.resolve("sip:pool.test"))[-1] == baseline[1]
        clock.advance(30)  # demotion over, and no stickiness left
        assert await locator.resolve("sip:pool.test") == baseline


async def test_clear_health_ends_stickiness(clock: FakeClock) -> None:
    async with make(clock, sticky_for=600.0) as locator:
        baseline = await locator.resolve("sip:pool.test")
        locator.report_success(baseline[1])
        locator.clear_health()
        assert await locator.resolve("sip:pool.test") == baseline


async def test_sticky_address_among_same_family_addresses(clock: FakeClock) -> None:
    async with make(clock, sticky_for=60.0) as locator:
        uri = "sip:multi.pool.test:5070"
        assert await addresses(locator, uri) == ["127.0.0.31", "127.0.0.32", "127.0.0.33"]
        locator.report_success(endpoint("127.0.0.33", 5070))
        assert await addresses(locator, uri) == ["127.0.0.33", "127.0.0.31", "127.0.0.32"]


async def test_sticky_address_keeps_the_family_order(clock: FakeClock) -> None:
    async with make(clock, sticky_for=60.0, ip_strategy="prefer_ipv6") as locator:
        uri = "sip:multi.pool.test:5070"
        assert await addresses(locator, uri) == ["::1", "127.0.0.31", "127.0.0.32", "127.0.0.33"]
        locator.report_success(endpoint("127.0.0.32", 5070))
        assert await addresses(locator, uri) == ["::1", "127.0.0.32", "127.0.0.31", "127.0.0.33"]


async def test_latest_success_wins_and_other_failures_leave_it(clock: FakeClock) -> None:
    async with make(clock, sticky_for=60.0) as locator:
        baseline = await locator.resolve("sip:pool.test")
        locator.report_success(baseline[1])
        locator.report_success(baseline[2])
        assert await locator.resolve("sip:pool.test") == [
            baseline[2],
            baseline[0],
            baseline[1],
            baseline[3],
        ]
        locator.report_failure(baseline[1])
        assert await locator.resolve("sip:pool.test") == [
            baseline[2],
            baseline[0],
            baseline[3],
            baseline[1],
        ]


async def test_sticky_memory_is_bounded(clock: FakeClock) -> None:
    async with make(clock, sticky_for=60.0, health_size=2) as locator:
        for port in (5070, 5071, 5072):
            uri = f"sip:multi.pool.test:{port}"
            await locator.resolve(uri)
            locator.report_success(endpoint("127.0.0.33", port))
        first = [(await addresses(locator, f"sip:multi.pool.test:{p}"))[0] for p in (5070, 5072)]
        assert first == ["127.0.0.31", "127.0.0.33"]  # the oldest key was dropped


async def test_success_for_a_target_never_located_is_harmless(clock: FakeClock) -> None:
    async with make(clock, sticky_for=60.0) as locator:
        locator.report_success(endpoint("127.0.0.99"))
        assert await addresses(locator) == [A, B, C]


# --- DNS data is never touched ------------------------------------------------------


async def test_failures_never_change_the_dns_cache(clock: FakeClock) -> None:
    fake = FakeBackend(ZONE)
    async with make(clock, backend=fake, failure_hold=10.0, sticky_for=60.0) as locator:
        assert isinstance(locator.backend, CachedLookup)  # the Locator's CachingBackend
        cache = locator.backend
        async with locator.locate(URI) as stream:
            before = [t async for t in stream]
            queries = [answer.query for answer in stream.attempts]
        held = {q: cache.cached(q) for q in queries}
        assert None not in held.values()
        info = locator.cache_info()
        asked = list(fake.calls)

        locator.report_failure(before[0], reason="503", retry_after=3600)
        locator.report_failure(before[1], reason="transport")
        locator.report_success(before[2])

        # Every cached answer is still there, unchanged; nothing was flushed or added.
        assert {q: cache.cached(q) for q in queries} == held
        assert (locator.cache_info().size, locator.cache_info().misses) == (info.size, info.misses)
        after = await locator.resolve(URI)
        assert [t.endpoint for t in after] == [before[i].endpoint for i in (2, 0, 1)]
        assert fake.calls == asked  # served from the cache: no query re-sent
        assert [t.ttl for t in after] == [t.ttl for t in before]
        # The transport demotion ends (10 s) while the answers live on (NODATA 30 s,
        # records 300 s): a failure neither shortened nor extended their lifetime.
        clock.advance(20)
        again = await locator.resolve(URI)
        assert [t.endpoint for t in again] == [before[i].endpoint for i in (1, 2, 0)]
        assert fake.calls == asked
        assert [t.ttl for t in again] == [t.ttl - 20 for t in before if t.ttl is not None]
        clock.advance(10)  # the NAPTR NODATA (negative_ttl 30 s) expires on time
        await locator.resolve(URI)
        assert fake.calls[len(asked) :] == [Query("example.test", RType.NAPTR)]


# --- end to end over real DNS (ZoneServer + aiodns) ---------------------------------


def _real(server: ZoneServer, **extra: Any) -> LocateOptions:
    return LocateOptions(
        nameservers=(server.address,),
        transports=(Transport.UDP,),
        ip_strategy=IpStrategy.IPV4_ONLY,
        timeout=1.0,
        tries=1,
        **extra,
    )


async def test_end_to_end_next_locate_starts_with_the_second(clock: FakeClock) -> None:
    async with ZoneServer(ZONE) as server, Locator(_real(server), clock=clock) as locator:
        first = await locator.resolve(URI)
        assert [str(t.address) for t in first] == [A, B, C]
        locator.report_failure(first[0], reason="transport")
        async with locator.locate(URI) as stream:
            assert await anext(stream) == first[1]
        clock.advance(30)
        async with locator.locate(URI) as stream:
            assert await anext(stream) == first[0]


async def test_end_to_end_failover_loop(clock: FakeClock) -> None:
    """The README example: locate -> try -> report; a later request skips the dead one."""
    tried: list[str] = []

    async def send(target: Target) -> bool:
        tried.append(str(target.address))
        return str(target.address) != A  # a.example.test is down

    async with ZoneServer(ZONE) as server, Locator(_real(server), clock=clock) as locator:
        for _ in range(2):
            async with locator.locate(URI) as targets:
                async for target in targets:
                    if await send(target):
                        locator.report_success(target)
                        break
                    locator.report_failure(target, reason=FailureReason.TIMEOUT)
    assert tried == [A, B, B]


# --- CLI ----------------------------------------------------------------------------


async def test_explain_marks_demoted_targets(clock: FakeClock) -> None:
    async with make(clock) as locator:
        locator.report_failure(endpoint(A), reason="503", retry_after=60)
        targets = await locator.resolve(URI)
        out = io.StringIO()
        explain(targets, out, health=locator.health())
    lines = out.getvalue().splitlines()
    marked = [line for line in lines if "demoted" in line]
    assert len(marked) == 1
    assert marked[0].endswith(
        "#3 udp 127.0.0.11:5060  [demoted: 503, 1 failure(s), retry-after 60s]"
    )
    assert any(line.endswith("#1 udp 127.0.0.12:5060") for line in lines)
    plain = io.StringIO()
    explain(targets, plain)
    assert "demoted" not in plain.getvalue()
