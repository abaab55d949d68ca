"""The cached hot path: compiled draws, replayed streams, stickiness told once."""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Hashable, Iterable
from typing import Any

import pytest

from asip_locate import LocateError, LocateOptions, Locator, NoTargetsError, Target, Transport
from asip_locate._backend import Capabilities
from asip_locate._health import StickyTable
from asip_locate._model import Endpoint
from asip_locate._order import pair_chance, pair_first
from asip_locate._plan import Resolution
from asip_locate._stream import TargetStream
from asip_locate.testing import FakeBackend, FakeClock

PAIR_ZONE = """\
$TTL 300
pair.test. 3600 IN SOA ns.pair.test. hostmaster.pair.test. 1 7200 900 1209600 60
_sip._udp.pair.test. IN SRV 10 60 5060 a.pair.test.
_sip._udp.pair.test. IN SRV 10 40 5060 b.pair.test.
_sip._udp.pair.test. IN SRV 20 10 5060 c.pair.test.
a.pair.test. IN A 127.0.0.31
b.pair.test. IN A 127.0.0.32
c.pair.test. IN A 127.0.0.33
"""


def make(clock: FakeClock, **options: Any) -> Locator:
    options = {"transports": ["udp"], "early_srv": False, **options}
    return Locator(LocateOptions(**options), backend=FakeBackend(PAIR_ZONE), clock=clock)


class _AllDraws:
    """Answers ``randint`` with one chosen value, to enumerate every outcome of R."""

    def __init__(self, value: int) -> None:
        self.value = value

    def randint(self, a: int, b: int) -> int:
        assert a <= self.value <= b
        return self.value

    def random(self) -> float:
        raise AssertionError("not used by pair_first")


@pytest.mark.parametrize("weights", [(0, 0), (0, 5), (5, 0), (60, 40), (1, 1), (65535, 1)])
def test_pair_chance_is_exactly_the_chance_of_the_rfc_2782_draw(
    weights: tuple[int, int],
) -> None:
    total = sum(weights)
    outcomes = range(2) if total == 0 else range(total + 1)  # every R randint can give
    wins = sum(pair_first(weights, _AllDraws(r)) for r in outcomes)
    assert pair_chance(weights) == wins / len(outcomes)


async def test_cached_pairs_draw_afresh_with_the_rfc_2782_chances(clock: FakeClock) -> None:
    trials = 3000
    async with make(clock) as locator:
        firsts: Counter[str] = Counter()
        for _ in range(trials):
            targets = await locator.resolve("sip:pair.test")
            assert targets[2].host == "c.pair.test"  # the priority-20 record: always last
            firsts[targets[0].host] += 1
        assert locator.cache_info().compiled_hits == trials - 1
    # Weights 60/40 and R in [0, 100]: the first record wins for R <= 60.
    expected = {"a.pair.test": 61 / 101, "b.pair.test": 40 / 101}
    chi2 = sum((firsts[h] - trials * p) ** 2 / (trials * p) for h, p in expected.items())
    assert chi2 < 10.83  # 1 degree of freedom, p = 0.001


async def test_a_cached_stream_resumes_after_break_and_stops_after_aclose(
    clock: FakeClock,
) -> None:
    async with make(clock, seed=1) as locator:
        baseline = await locator.resolve("sip:pair.test")
        stream = locator.locate("sip:pair.test")
        async for target in stream:
            assert target == baseline[0]
            break
        assert [t async for t in stream] == baseline[1:]  # the same stream goes on
        assert [t async for t in stream] == []  # and stays ended

        stream = locator.locate("sip:pair.test")
        seen = []
        async for target in stream:
            seen.append(target)
            await stream.aclose()
        assert seen == baseline[:1]
        assert locator.cache_info().compiled_hits == 2


async def test_a_cached_stream_raises_once_its_locator_is_closed(clock: FakeClock) -> None:
    locator = make(clock, seed=1)
    baseline = await locator.resolve("sip:pair.test")
    stream = locator.locate("sip:pair.test")
    seen = []

    async def close_while_iterating() -> None:
        async for target in stream:
            seen.append(target)
            await locator.aclose()

    with pytest.raises(LocateError, match=r"pair\.test: locator closed"):
        await close_while_iterating()
    assert seen == baseline[:1]
    with pytest.raises(LocateError, match="locator closed"):
        await anext(stream)


async def test_a_cached_negative_result_ends_async_for_with_no_targets(clock: FakeClock) -> None:
    async with make(clock) as locator:

        async def iterate() -> None:
            async for _target in locator.locate("sip:nowhere.pair.test"):
                pass

        for _ in range(3):  # cold, then compiled on second use
            with pytest.raises(NoTargetsError, match=r"nowhere\.pair\.test"):
                await iterate()
        assert locator.cache_info().compiled_hits == 2


def _target(last: int) -> Target:
    return Target(Transport.UDP, _address(last), 5060, f"h{last}.test")


def _address(last: int) -> Any:
    return ipaddress.ip_address(f"127.0.0.{last}")


def test_the_sticky_table_learns_each_source_once_and_again_after_forgetting(
    clock: FakeClock,
) -> None:
    table = StickyTable(size=8, hold=60, clock=clock)
    a, b = _target(41), _target(42)
    source = object()
    table.located("k1", [a, b], source)
    table.forget()  # clear_health(): the table starts over, sources included
    table.located("k1", [a, b], source)  # so the same source is told again
    table.succeeded(b.endpoint)
    assert table.preferred("k1") == b


def test_a_source_whose_targets_were_evicted_is_told_again(clock: FakeClock) -> None:
    table = StickyTable(size=2, hold=60, clock=clock)
    a, b, c = _target(41), _target(42), _target(43)
    source = object()
    table.located("k1", [a], source)
    table.located("k2", [b, c])  # a is evicted (size 2): k1 must be told again
    table.located("k1", [a], source)
    table.succeeded(a.endpoint)
    assert table.preferred("k1") == a


def test_a_stream_tells_located_once_for_a_finished_resolution() -> None:
    told: list[tuple[Hashable, list[Target]]] = []

    def located(key: Hashable, targets: Iterable[Target]) -> None:
        told.append((key, list(targets)))

    targets = [_target(41), _target(42), _target(43)]
    resolution = Resolution.finished([], attempts=tuple)
    lookups = Capabilities.of(FakeBackend(PAIR_ZONE))
    stream = TargetStream(
        "sip:x.test",
        resolution,
        lookups,
        deadline=1.0,
        max_concurrency=4,
        key="k",
        located=located,
        ready=targets,
    )
    assert told == [("k", targets)]
    del stream


async def test_cached_locates_do_not_walk_their_targets_into_the_sticky_table(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    walked: list[Endpoint] = []
    real = StickyTable.located

    def counting(
        self: StickyTable, key: Hashable, targets: Iterable[Target], source: object = None
    ) -> None:
        def each() -> Iterable[Target]:
            for target in targets:
                walked.append(target.endpoint)
                yield target

        real(self, key, each(), source)

    monkeypatch.setattr(StickyTable, "located", counting)
    async with make(clock, sticky_for=60) as locator:
        await locator.resolve("sip:pair.test")  # cold: its 3 targets are told
        for _ in range(10):  # the first compiled locate tells them once more
            async with locator.locate("sip:pair.test") as stream:
                assert len([t async for t in stream]) == 3
        assert len(walked) == 6
        b = next(e for e in walked if str(e.address) == "127.0.0.32")
        locator.report_success(b)  # learned from the table: b is sticky for the key
        for _ in range(5):
            assert (await locator.resolve("sip:pair.test"))[0].endpoint == b
